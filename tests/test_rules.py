"""Per-rule fixture patients, named for the expected outcome. Critical rules from several angles:
codes, text, refuted findings, dates and units."""

import pytest
from conftest import D, ids

from injectwise.adapters.fhir import read_bundle
from injectwise.demo.builder import BundleBuilder
from injectwise.engine.evaluate import assess, review

AS_OF = D("2026-03-01")


def hip_candidate(prefix="p", **kw) -> BundleBuilder:
    """An appropriate candidate: hip OA, completed PT, US-guided 40 mg planned."""
    b = BundleBuilder(prefix, **kw)
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2022-01-01")
    b.therapy("2025-06-01", "2025-09-01", "Physical therapy - hip strengthening")
    return b


def run_assess(b, kb, as_of=AS_OF, plan=("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)):
    b.planned(*plan, "lidocaine", 40)
    return assess(read_bundle(b.bundle()), kb, as_of)


def test_appropriate_candidate_proceeds(kb):
    r = run_assess(hip_candidate(), kb)
    assert r.outcome == "proceed", ids(r)


# ---- contraindication.infection-suspected --------------------------------------------------
def test_infection_by_fever_code(kb):
    b = hip_candidate()
    b.condition("R50.9", "Fever", "2026-02-28", category="encounter-diagnosis")
    r = run_assess(b, kb)
    assert r.outcome == "do-not-inject" and "contraindication.infection-suspected" in ids(r)


def test_infection_by_temperature_in_fahrenheit(kb):
    b = hip_candidate()
    b.lab("8310-5", "Body temperature", 101.3, "[degF]", "2026-03-01")
    r = run_assess(b, kb)
    assert "contraindication.infection-suspected" in ids(r)
    f = next(f for f in r.findings if f.id == "contraindication.infection-suspected")
    assert any("converted from 101.3" in (e.value or "") for e in f.evidence)


def test_infection_by_text_hot_swollen_joint(kb):
    b = hip_candidate()
    b.condition(None, "Right hip hot, swollen and very painful since yesterday", "2026-02-28")
    assert "contraindication.infection-suspected" in ids(run_assess(b, kb))


def test_infection_by_crp_and_wbc(kb):
    b = hip_candidate()
    b.lab("1988-5", "CRP", 35, "mg/L", "2026-02-27")
    b.lab("6690-2", "WBC", 13.1, "10*3/uL", "2026-02-27")
    assert "contraindication.infection-suspected" in ids(run_assess(b, kb))


def test_refuted_fever_is_absent(kb):
    b = hip_candidate()
    b.condition("R50.9", "Fever", "2026-03-01", verification="refuted", category="encounter-diagnosis")
    assert "contraindication.infection-suspected" not in ids(run_assess(b, kb))


def test_negated_fever_text_is_absent(kb):
    b = hip_candidate()
    b.condition(None, "Denies fever or chills", "2026-03-01")
    assert "contraindication.infection-suspected" not in ids(run_assess(b, kb))


def test_old_fever_is_not_current(kb):
    b = hip_candidate()
    b.condition("R50.9", "Fever", "2025-11-01", category="encounter-diagnosis")
    assert "contraindication.infection-suspected" not in ids(run_assess(b, kb))


def test_future_fever_is_invisible_as_of(kb):
    b = hip_candidate()
    b.condition("R50.9", "Fever", "2026-03-05", category="encounter-diagnosis")
    assert "contraindication.infection-suspected" not in ids(run_assess(b, kb))


def test_normal_crp_alone_is_not_infection(kb):
    b = hip_candidate()
    b.lab("1988-5", "CRP", 6, "mg/L", "2026-02-27")
    assert "contraindication.infection-suspected" not in ids(run_assess(b, kb))


# ---- other contraindications ---------------------------------------------------------------
def test_cellulitis_over_the_hip(kb):
    b = hip_candidate()
    b.condition("L03.115", "Cellulitis of right lower limb (lateral hip)", "2026-02-20")
    assert "contraindication.skin-infection-at-site" in ids(run_assess(b, kb))


def test_dermatitis_elsewhere_does_not_block(kb):
    b = hip_candidate()
    b.condition("L30.9", "Dermatitis of the left forearm", "2026-02-20")
    assert "contraindication.skin-infection-at-site" not in ids(run_assess(b, kb))


@pytest.mark.parametrize("code,text", [("10759", "Triamcinolone"), (None, "Allergy to corticosteroids"),
                                       ("6387", "lidocaine"), (None, "Amide local anaesthetic allergy")])
def test_drug_allergy_by_code_and_class(kb, code, text):
    b = hip_candidate()
    b.allergy(code, text)
    assert "contraindication.drug-allergy" in ids(run_assess(b, kb))


def test_refuted_allergy_is_ignored(kb):
    b = hip_candidate()
    b.allergy("10759", "Triamcinolone", verification="refuted")
    assert "contraindication.drug-allergy" not in ids(run_assess(b, kb))


@pytest.mark.parametrize("icd,text", [("S72.001A", "Fracture of right femoral neck"),
                                      (None, "Saddle anaesthesia and new urinary retention"),
                                      ("M21.371", "Foot drop, right foot")])
def test_red_flags(kb, icd, text):
    b = hip_candidate()
    b.condition(icd, text, "2026-02-25")
    assert "contraindication.red-flag" in ids(run_assess(b, kb))


# ---- defer -------------------------------------------------------------------------------
def test_no_physical_therapy_defers(kb):
    b = BundleBuilder("nopt")
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2025-12-01")
    r = run_assess(b, kb)
    assert r.outcome == "defer" and "defer.conservative-care-not-tried" in ids(r)


def test_pt_only_just_started_is_not_a_trial(kb):
    b = BundleBuilder("shortpt")
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2025-12-01")
    b.therapy("2026-02-20", "2026-05-01", "Physical therapy - hip", status="in-progress")
    assert "defer.conservative-care-not-tried" in ids(run_assess(b, kb))


def test_interval_and_exposure(kb):
    b = hip_candidate()
    for d in ("2025-04-01", "2025-07-15", "2025-12-20"):
        b.injection(d, "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    r = run_assess(b, kb)
    assert {"defer.injection-interval", "defer.exposure-limit"} <= set(ids(r))


def test_cumulative_exposure_across_targets_and_drugs(kb):
    b = hip_candidate()
    b.injection("2025-06-01", "lumbar-epidural", None, "fluoroscopy", "methylprednisolone", 80)
    b.injection("2025-09-01", "lumbar-transforaminal", "right", "fluoroscopy", "dexamethasone", 10)
    b.injection("2025-10-01", "sacroiliac-joint", "right", "fluoroscopy", "triamcinolone", 40)
    r = run_assess(b, kb)  # 80 + 53.3 + 40 + 40 planned > 200 mg triamcinolone-equivalent
    assert "defer.exposure-limit" in ids(r)


@pytest.mark.parametrize("n,fires", [(12, True), (11, False)])
def test_years_of_injections_add_up_though_each_year_stays_under_its_limits(kb, n, fires):
    """Seed 000, Patient C: 12 injections in 4 years across back and hip. Three a year at rotating sites keeps every
    12 months under the site, region and dose limits; the long-term count (12 in 4 years, planned included) does not."""
    b = hip_candidate()
    sites = [("lumbar-epidural", None, "fluoroscopy"), ("sacroiliac-joint", "right", "fluoroscopy"),
             ("greater-trochanteric-bursa", "right", "ultrasound")]
    first = D("2022-03-15")  # 12 slots, 4 months apart, the last 2025-11-15
    for k in range(12 - n, 12):
        month = first.month - 1 + 4 * k
        when = f"{first.year + month // 12}-{month % 12 + 1:02d}-15"
        target, side, guidance = sites[k % 3]
        b.injection(when, target, side, guidance, "triamcinolone", 20)
    r = run_assess(b, kb)
    assert ("defer.exposure-limit" in ids(r)) is fires, ids(r)


def test_uncontrolled_diabetes_by_hba1c_in_mmol_per_mol(kb):
    b = hip_candidate()
    b.condition("E11.9", "Type 2 diabetes mellitus", "2015-01-01")
    b.lab("4548-4", "HbA1c", 80, "mmol/mol", "2026-01-10")  # = 9.5 %
    r = run_assess(b, kb)
    assert {"defer.uncontrolled-diabetes", "caution.diabetes"} <= set(ids(r))


def test_controlled_diabetes_is_caution_only(kb):
    b = hip_candidate()
    b.condition("E11.9", "Type 2 diabetes mellitus", "2015-01-01")
    b.lab("4548-4", "HbA1c", 6.8, "%", "2026-01-10")
    r = run_assess(b, kb)
    assert r.outcome == "proceed-with-caution" and "defer.uncontrolled-diabetes" not in ids(r)


def test_inr_above_range_defers(kb):
    b = hip_candidate()
    b.medication("11289", "warfarin 5 mg daily", "2020-01-01")
    b.lab("6301-6", "INR", 4.1, None, "2026-02-28")
    assert {"defer.anticoagulation-out-of-range", "caution.anticoagulant"} <= set(ids(run_assess(b, kb)))


def test_arthroplasty_scheduled_within_window(kb):
    b = hip_candidate()
    b.future_order("Total replacement of right hip", "2026-04-15", snomed="52734007")
    assert "defer.planned-arthroplasty" in ids(run_assess(b, kb))


def test_arthroplasty_far_away_is_fine(kb):
    b = hip_candidate()
    b.future_order("Total replacement of right hip", "2026-09-15", snomed="52734007")
    assert "defer.planned-arthroplasty" not in ids(run_assess(b, kb))


def test_landmark_hip_and_high_dose(kb):
    r = run_assess(hip_candidate(), kb, plan=("hip-intra-articular", "right", "landmark", "methylprednisolone", 80))
    assert {"guidance.image-guidance-recommended", "dose.above-recommended"} <= set(ids(r))
    assert r.outcome == "proceed-with-caution"


def test_lumbar_spine_overlap_makes_diagnosis_uncertain(kb):
    b = hip_candidate()
    b.condition("M54.16", "Radiculopathy, lumbar region", "2024-01-01")
    plan = ("hip-intra-articular", "right", "landmark", "triamcinolone", 40)  # not itself a diagnostic test
    assert "defer.diagnosis-uncertain" in ids(run_assess(b, kb, plan=plan))


# ---- review --------------------------------------------------------------------------------
def reviewed(kb, b, as_of):
    return review(read_bundle(b.bundle()), kb, D(as_of))


def test_too_early(kb):
    b = hip_candidate()
    b.injection("2026-02-25", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    r = reviewed(kb, b, "2026-03-01")
    assert r.outcome == "too-early" and {"failure.delayed-effect", "next.reassess-later"} <= set(ids(r))


def test_responder(kb):
    b = hip_candidate()
    b.injection("2025-12-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.pain("2025-12-01", 8)
    b.pain("2026-01-20", 3)
    r = reviewed(kb, b, "2026-02-01")
    assert r.outcome == "responder" and not [i for i in ids(r) if i.startswith("failure.")]


def test_blind_hip_injection_failure_ranks_location_first(kb):
    b = hip_candidate()
    b.injection("2025-12-01", "hip-intra-articular", "right", "landmark", "triamcinolone", 40, "lidocaine", 40)
    b.pain("2025-12-01", 7)
    b.pain("2025-12-01T12:00:00", 7)
    b.pain("2026-01-15", 7)
    r = reviewed(kb, b, "2026-02-01")
    failures = [i for i in ids(r) if i.startswith("failure.")]
    assert r.outcome == "non-responder"
    assert failures[0] in ("failure.incorrect-location", "failure.improper-technique")
    assert "next.image-guided-reinjection" in ids(r)


def test_infection_after_injection_is_urgent(kb):
    b = hip_candidate()
    b.injection("2026-01-20", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.lab("8310-5", "Body temperature", 38.9, "Cel", "2026-02-28")
    r = reviewed(kb, b, "2026-03-01")
    assert {"urgent.infection-suspected", "adverse.infection"} <= set(ids(r))
    assert r.findings[0].severity == "critical"


def test_hyperglycaemia_after_injection(kb):
    b = hip_candidate()
    b.condition("E11.9", "Type 2 diabetes mellitus", "2015-01-01")
    b.injection("2026-02-20", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.lab("2339-0", "Glucose", 17.5, "mmol/L", "2026-02-22")
    assert "adverse.hyperglycemia" in ids(reviewed(kb, b, "2026-03-01"))


def test_every_finding_cites_evidence_and_literature(kb):
    b = hip_candidate()
    b.condition("R50.9", "Fever", "2026-02-28")
    r = run_assess(b, kb)
    for f in r.findings:
        assert f.citations and f.rule["id"] == f.id
    f = next(f for f in r.findings if f.id == "contraindication.infection-suspected")
    assert f.evidence and "Condition/" in f.rationale and "2026-02-28" in f.rationale


def test_rules_cover_the_stable_vocabulary(kb):
    rule_ids = {r.id for r in kb.rules}
    for vid in kb.vocabulary:
        if vid in ("education", "monitor"):
            continue
        assert any(r == vid or r.startswith(vid + ".") for r in rule_ids), vid


def test_aftercare_cards_only_when_the_injection_may_go_ahead(kb):
    go = run_assess(hip_candidate("go"), kb)
    assert {"education.what-to-expect", "monitor.after-injection"} <= set(ids(go))
    b = BundleBuilder("stop")
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2025-12-01")
    stop = run_assess(b, kb)  # no physical therapy yet: defer
    assert stop.outcome == "defer"
    assert not {"education.what-to-expect", "monitor.after-injection"} & set(ids(stop))


# ---- caution.incomplete-data: data the source could not send is unknown, not "none" -------------
def test_unavailable_data_is_a_caution_in_assess_and_review(kb):
    rec = read_bundle(_planned_bundle())
    assert "caution.incomplete-data" not in ids(assess(rec, kb, AS_OF))
    rec.unavailable = ("allergies", "medication statements (anticoagulants, diabetes medicines)")
    r = assess(rec, kb, AS_OF)
    f = next(f for f in r.findings if f.id == "caution.incomplete-data")
    assert "allergies" in f.rationale and f.severity == "warning"
    assert r.outcome == "proceed-with-caution"
    b = hip_candidate("inc2")
    b.injection("2026-01-10", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    rec2 = read_bundle(b.bundle())
    rec2.unavailable = ("allergies",)
    assert "caution.incomplete-data" in ids(review(rec2, kb, AS_OF))


def test_unavailable_data_never_hides_a_contraindication(kb):
    b = hip_candidate("inc3")
    b.condition("R50.9", "Fever, unspecified", "2026-02-28", category="encounter-diagnosis")
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    rec = read_bundle(b.bundle())
    rec.unavailable = ("allergies",)
    r = assess(rec, kb, AS_OF)
    assert r.outcome == "do-not-inject" and "contraindication.infection-suspected" in ids(r)


def _planned_bundle() -> dict:
    b = hip_candidate("inc")
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    return b.bundle()


# ---- text traps through the language layer (issue 7): each trap is silent, its true counterpart fires
INFECTION = "contraindication.infection-suspected"
RED_FLAG = "contraindication.red-flag"
SKIN = "contraindication.skin-infection-at-site"
PT_FIRST = "defer.conservative-care-not-tried"


@pytest.mark.parametrize(("text", "fires"), [
    ("Effusion right hip, r/o septic arthritis", True),
    ("Septic arthritis of the right hip not ruled out", True),
    ("? septic arthritis right hip", True),
    ("No trauma, hot swollen right hip", True),
    ("No fever but warm, swollen and red right hip", True),
    ("Septic arthritis right hip", True),
    ("Aseptic loosening", False),
    ("Hay fever", False),
    ("Septic arthritis ruled out", False),
    ("No fever, chills or rigors", False),
    ("History of septic arthritis of the right hip in 2009, resolved", False),
    ("Return if fever or a hot swollen joint develops", False),
    ("Mother had septic arthritis", False),
    ("No increase in pain; no fever", False),
])
def test_infection_text_traps_and_counterparts(kb, text, fires):
    b = hip_candidate()
    b.condition(None, text, "2026-02-28")
    assert (INFECTION in ids(run_assess(b, kb))) is fires, text


@pytest.mark.parametrize(("text", "fires"), [
    ("Peptic ulcer", False),
    ("Ulcer over the right lateral hip", True),
    ("Cellulitis of the right hip", True),
])
def test_skin_lesion_text_traps_and_counterparts(kb, text, fires):
    b = hip_candidate()
    b.condition(None, text, "2026-02-28")
    assert (SKIN in ids(run_assess(b, kb))) is fires, text


@pytest.mark.parametrize(("text", "fires"), [
    ("Unable to walk more than 2 blocks because of hip pain", False),
    ("Wrist fracture", False),
    ("Avascular necrosis of the LEFT hip", False),
    ("Unable to bear weight on the right leg since the fall", True),
    ("Avascular necrosis of the right hip", True),
    ("Fracture of the right femoral neck", True),
])
def test_red_flag_text_traps_and_counterparts(kb, text, fires):
    b = hip_candidate()
    b.condition(None, text, "2026-02-20")
    assert (RED_FLAG in ids(run_assess(b, kb))) is fires, text


def _text_procedure(b: BundleBuilder, text: str) -> None:
    b.add({"resourceType": "Procedure", "subject": b.subject, "status": "completed", "code": {"text": text},
           "performedPeriod": {"start": "2025-06-01", "end": "2025-09-01"}})


@pytest.mark.parametrize(("text", "pt_done"), [
    ("PT/INR monitoring", False),
    ("Pt tolerated the procedure well", False),
    ("PT for hip strengthening", True),
    ("Physiotherapy, hip strengthening programme", True),
])
def test_physical_therapy_text_traps_and_counterparts(kb, text, pt_done):
    b = BundleBuilder("p")
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2022-01-01")
    _text_procedure(b, text)
    assert (PT_FIRST not in ids(run_assess(b, kb))) is pt_done, text


# ---- mechanical pathology that the target itself treats ------------------------------------
def test_shoulder_impingement_is_the_subacromial_indication_not_a_mechanical_lesion(kb):
    b = BundleBuilder("sh")
    b.condition(None, "Right shoulder subacromial impingement syndrome", "2025-10-01")
    b.therapy("2025-10-15", "2026-01-15", "Physical therapy - shoulder")
    r = run_assess(b, kb, plan=("subacromial-bursa", "right", "ultrasound", "triamcinolone", 20))
    assert "defer.diagnosis-uncertain" not in ids(r), ids(r)


def test_labral_tear_still_questions_a_hip_injection(kb):
    b = hip_candidate()
    b.condition(None, "Right hip labral tear on MR arthrogram", "2026-01-10")
    assert "defer.diagnosis-uncertain" in ids(run_assess(b, kb, plan=("hip-intra-articular", "right", "landmark",
                                                                      "triamcinolone", 40)))


@pytest.mark.parametrize("code,text,expected", [
    ("6902", "Methylprednisolone", "caution.related-corticosteroid-allergy"),
    (None, "Depo-Medrol (hives)", "caution.related-corticosteroid-allergy"),
    ("10759", "Triamcinolone", "contraindication.drug-allergy")])
def test_allergy_to_another_corticosteroid_is_a_caution_the_planned_one_a_contraindication(kb, code, text, expected):
    b = hip_candidate()
    b.allergy(code, text)
    found = ids(run_assess(b, kb))
    assert expected in found
    other = ({"caution.related-corticosteroid-allergy", "contraindication.drug-allergy"} - {expected}).pop()
    assert other not in found


@pytest.mark.parametrize("allergy,planned,expected", [
    ("Bupivacaine (anaphylaxis)", "ropivacaine", "caution.related-anesthetic-allergy"),
    ("Bupivacaine - hives", "lidocaine", "caution.related-anesthetic-allergy"),
    ("Ropivacaine (anaphylaxis)", "ropivacaine", "contraindication.drug-allergy"),
    ("Bupivacaine (anaphylaxis)", None, None)])
def test_allergy_to_another_local_anaesthetic_is_a_caution_the_planned_one_a_contraindication(kb, allergy, planned,
                                                                                               expected):
    b = hip_candidate()
    b.allergy(None, allergy)
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, planned, 20 if planned else None)
    found = set(ids(assess(read_bundle(b.bundle()), kb, AS_OF)))
    pair = {"caution.related-anesthetic-allergy", "contraindication.drug-allergy"}
    assert found & pair == ({expected} if expected else set()), found


@pytest.mark.parametrize("reaction,contraindicated", [
    ("facial flushing", False),  # a known side effect of the steroid, recorded as an "allergy"
    ("insomnia for two nights", False),
    ("hives and flushing", True),  # an immune sign decides
    ("swelling", True),  # not known to be a side effect: the allergy stands
    (None, True),
])
def test_a_side_effect_recorded_as_an_allergy_does_not_contraindicate(kb, reaction, contraindicated):
    b = hip_candidate()
    b.allergy("10759", "Triamcinolone", reaction=reaction)
    assert ("contraindication.drug-allergy" in ids(run_assess(b, kb))) is contraindicated
