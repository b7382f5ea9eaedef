"""Over-calls the review reasoning must not make, and what it must still say (issue 8 items 11-17, 20,
next.diagnostic-injection, next.vascular-referral). Each behaviour: a fixture that fires and one that must not."""

import pytest
from conftest import D, ids
from test_rules import hip_candidate, reviewed, run_assess

from injectwise.adapters.fhir import read_bundle
from injectwise.demo.builder import CPT, BundleBuilder
from injectwise.engine.evaluate import review


def finding(r, fid):
    return next(f for f in r.findings if f.id == fid)


def failed_hip(prefix="f", guidance="ultrasound", anesthetic="lidocaine", xray=False):
    """A hip injection that did not help: baseline 7, still 7 at four weeks."""
    b = hip_candidate(prefix)
    b.injection("2026-01-05", "hip-intra-articular", "right", guidance, "triamcinolone", 40, anesthetic,
                40 if anesthetic else None)
    b.pain("2026-01-05T09:00:00", 7)
    b.pain("2026-02-02", 7)
    if xray:
        b.procedure("X-ray of right hip, 2 views", "2025-11-01", snomed="168537006")
    return b


# ---- 11. the anaesthetic phase is the anaesthetic's own duration ------------------------------
def test_lidocaine_score_twelve_hours_later_says_nothing_about_the_joint(kb):
    b = failed_hip("lido12")
    b.pain("2026-01-05T22:00:00", 7)  # 12 h after a 1-2 h anaesthetic: outside its window
    r = reviewed(kb, b, "2026-02-10")
    assert r.outcome == "non-responder"
    assert "failure.incorrect-diagnosis" not in ids(r)
    assert any("anaesthetic test cannot be read" in u for u in r.unknowns)


def test_lidocaine_score_within_its_window_is_the_anaesthetic_test(kb):
    b = failed_hip("lido1")
    b.pain("2026-01-05T11:30:00", 7)  # 90 minutes after: within lidocaine's 1-2 h
    r = reviewed(kb, b, "2026-02-10")
    f = finding(r, "failure.incorrect-diagnosis")
    assert f.likelihood == "high" and any("anaesthetic phase" in e.what for e in f.evidence)


def test_bupivacaine_lasts_longer_so_a_six_hour_score_still_counts(kb):
    b = failed_hip("bupi6", anesthetic="bupivacaine")
    b.pain("2026-01-05T16:00:00", 7)
    assert "failure.incorrect-diagnosis" in ids(reviewed(kb, b, "2026-02-10"))
    b2 = failed_hip("bupi20", anesthetic="bupivacaine")
    b2.pain("2026-01-06T06:00:00", 7)  # 20 h later: beyond 8 h + 4 h margin
    assert "failure.incorrect-diagnosis" not in ids(reviewed(kb, b2, "2026-02-10"))


# ---- 12. durability over the recorded follow-up; OMERACT-OARSI responder -------------------------
def test_relief_that_lasted_the_expected_weeks_then_faded_is_the_expected_course(kb):
    b = hip_candidate("faded")
    b.condition("M54.50", "Low back pain", "2020-01-01")  # a competing generator that must not be blamed
    b.injection("2025-12-01", "hip-intra-articular", "right", "landmark", "triamcinolone", 40)
    b.pain("2025-12-01", 8)
    b.pain("2025-12-20", 3)
    b.pain("2026-01-20", 3)  # day 50: relief lasted beyond 6 weeks
    b.pain("2026-02-25", 8)  # then faded
    r = reviewed(kb, b, "2026-03-01")
    assert r.outcome == "responder"
    assert not {"failure.incorrect-diagnosis", "next.re-evaluate-diagnosis", "failure.incorrect-location"} & set(ids(r))


def test_relief_that_faded_within_weeks_is_still_a_partial_failure(kb):
    b = hip_candidate("short")
    b.condition("M54.50", "Low back pain", "2020-01-01")
    b.injection("2025-12-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "bupivacaine", 10)
    b.pain("2025-12-01", 8)
    b.pain("2025-12-20", 3)
    b.pain("2026-01-10", 8)  # faded by day 40
    r = reviewed(kb, b, "2026-03-01")
    assert r.outcome == "partial" and "failure.incorrect-diagnosis" in ids(r)


def test_relief_still_present_at_the_last_score_is_not_non_response(kb):
    b = hip_candidate("ongoing")
    b.injection("2025-03-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.pain("2025-03-01", 7)
    b.pain("2025-04-01", 7)  # first injection failed
    b.injection("2025-10-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.pain("2025-10-01", 7)
    b.pain("2025-10-20", 3)  # second one: relief still present at its last score (day 19)
    r = run_assess(b, kb)
    assert "defer.repeated-nonresponse" not in ids(r)
    b2 = hip_candidate("twofail")
    for d in ("2025-03-01", "2025-10-01"):
        b2.injection(d, "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
        b2.pain(d, 7)
    b2.pain("2025-04-01", 7)
    b2.pain("2025-10-30", 7)
    assert "defer.repeated-nonresponse" in ids(run_assess(b2, kb))


@pytest.mark.parametrize("before,after,expected", [(2, 1, "partial"), (3, 1, "responder"), (8, 4, "responder"),
                                                   (8, 5, "partial"), (8, 7, "non-responder")])
def test_responder_needs_relative_and_absolute_change(kb, before, after, expected):
    b = hip_candidate(f"omeract{before}{after}")
    b.injection("2025-12-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.pain("2025-12-01", before)
    b.pain("2026-01-05", after)
    assert reviewed(kb, b, "2026-01-10").outcome == expected


# ---- 13. one glucose peak in days 1-3 is expected; persistent very high glucose is a red flag -----
def _diabetic_injected(prefix):
    b = hip_candidate(prefix)
    b.condition("E11.9", "Type 2 diabetes mellitus", "2015-01-01")
    b.injection("2026-02-10", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    return b


def test_glucose_peak_on_day_two_is_hyperglycaemia_not_a_red_flag(kb):
    b = _diabetic_injected("peak")
    b.lab("2339-0", "Glucose", 350, "mg/dL", "2026-02-12")
    r = reviewed(kb, b, "2026-03-01")
    assert "adverse.hyperglycemia" in ids(r) and "urgent.red-flag" not in ids(r)


@pytest.mark.parametrize("value,unit", [(320, "mg/dL"), (17.5, "mmol/L")])
def test_glucose_still_very_high_after_the_expected_days_is_a_red_flag(kb, value, unit):
    b = _diabetic_injected(f"persist{unit[:2]}")
    b.lab("2339-0", "Glucose", 350, "mg/dL", "2026-02-12")
    b.lab("2339-0", "Glucose", value, unit, "2026-02-17")
    r = reviewed(kb, b, "2026-03-01")
    f = finding(r, "urgent.red-flag")
    assert any(e.when is not None and e.when.date().isoformat() == "2026-02-17" for e in f.evidence)


def test_a_glucose_red_flag_asks_for_medical_review_not_hip_imaging(kb):
    b = _diabetic_injected("glucimg")
    b.lab("2339-0", "Glucose", 350, "mg/dL", "2026-02-12")
    b.lab("2339-0", "Glucose", 330, "mg/dL", "2026-02-17")
    r = reviewed(kb, b, "2026-03-01")
    assert "urgent.red-flag" in ids(r) and "next.advanced-imaging" not in ids(r)


def test_osteonecrosis_after_the_injection_asks_for_imaging_and_names_it(kb):
    b = _diabetic_injected("avnimg")
    b.condition("M87.051", "Idiopathic aseptic necrosis of right femur", "2026-02-25")
    r = reviewed(kb, b, "2026-03-01")
    f = finding(r, "next.advanced-imaging")
    assert any("necrosis" in (e.value or "").lower() or "necrosis" in e.what.lower() for e in f.evidence)


def test_moderately_high_glucose_later_is_not_a_red_flag(kb):
    b = _diabetic_injected("mod")
    b.lab("2339-0", "Glucose", 220, "mg/dL", "2026-02-17")
    assert "urgent.red-flag" not in ids(reviewed(kb, b, "2026-03-01"))


# ---- 14. a competing diagnosis defers only when current, same side and region -------------------
LANDMARK = ("hip-intra-articular", "right", "landmark", "triamcinolone", 40)


@pytest.mark.parametrize("icd,text,status,defers", [
    ("M54.16", "Radiculopathy, lumbar region", "active", True),
    ("M54.16", "Radiculopathy, lumbar region", "resolved", False),
    ("M54.42", "Lumbago with sciatica, left side", "active", False),
    ("M54.41", "Lumbago with sciatica, right side", "active", True),
    ("M46.1", "Sacroiliitis", "active", True),
    ("G57.11", "Meralgia paresthetica", "active", True),
    (None, "Ulnar nerve entrapment at the right elbow", "active", False),
])
def test_competing_diagnosis_must_be_current_same_side_same_region(kb, icd, text, status, defers):
    b = hip_candidate(f"comp{abs(hash((icd, text, status))) % 10000}")
    b.condition(icd, text, "2024-01-01", status=status)
    assert ("defer.diagnosis-uncertain" in ids(run_assess(b, kb, plan=LANDMARK))) is defers


def test_guided_injection_with_anaesthetic_is_itself_the_diagnostic_test(kb):
    b = hip_candidate("diag")
    b.condition("M54.16", "Radiculopathy, lumbar region", "2024-01-01")
    assert "defer.diagnosis-uncertain" not in ids(run_assess(b, kb))  # US-guided with lidocaine
    b.injection("2025-06-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    assert "defer.diagnosis-uncertain" in ids(run_assess(b, kb))  # that test was already done here


def test_hip_disease_refers_to_the_knee(kb):
    b = BundleBuilder("knee")
    b.condition("M17.11", "Unilateral primary osteoarthritis, right knee", "2022-01-01")
    b.therapy("2025-06-01", "2025-09-01", "Physical therapy - knee strengthening")
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2022-01-01")
    plan = ("knee-intra-articular", "right", "landmark", "triamcinolone", 40)
    assert "defer.diagnosis-uncertain" in ids(run_assess(b, kb, plan=plan))
    b2 = BundleBuilder("knee2")
    b2.condition("M17.11", "Unilateral primary osteoarthritis, right knee", "2022-01-01")
    b2.therapy("2025-06-01", "2025-09-01", "Physical therapy - knee strengthening")
    b2.condition("M16.12", "Unilateral primary osteoarthritis, left hip", "2022-01-01")
    assert "defer.diagnosis-uncertain" not in ids(run_assess(b2, kb, plan=plan))


# ---- 15. inflammatory arthritis does not wait for physiotherapy ----------------------------------
def test_inflammatory_arthritis_does_not_wait_for_physiotherapy(kb):
    b = BundleBuilder("ra")
    b.condition("M06.9", "Rheumatoid arthritis, unspecified", "2020-01-01")
    r = run_assess(b, kb)
    assert "defer.conservative-care-not-tried" not in ids(r)


def test_gout_elsewhere_does_not_excuse_hip_oa_from_physiotherapy(kb):
    b = BundleBuilder("gout")
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2022-01-01")
    b.condition(None, "Gout of the left foot", "2024-01-01")
    assert "defer.conservative-care-not-tried" in ids(run_assess(b, kb))


# ---- 16. radiographs first ---------------------------------------------------------------------
def test_no_imaging_on_record_means_radiographs_first(kb):
    r = reviewed(kb, failed_hip("noxr"), "2026-02-10")
    assert "next.re-evaluate-diagnosis.radiographs-first" in ids(r)
    assert "next.advanced-imaging" not in ids(r)


def test_with_radiographs_done_advanced_imaging_is_next(kb):
    r = reviewed(kb, failed_hip("xr", xray=True), "2026-02-10")
    assert "next.advanced-imaging" in ids(r)
    assert "next.re-evaluate-diagnosis.radiographs-first" not in ids(r)


def test_a_specific_question_justifies_mri_without_radiographs(kb):
    b = failed_hip("labrum")
    b.condition("S73.191A", "Tear of the right acetabular labrum", "2025-12-01")
    r = reviewed(kb, b, "2026-02-10")
    assert "next.advanced-imaging" in ids(r)


# ---- 17. onset and response windows per drug ---------------------------------------------------
def test_dexamethasone_is_judged_sooner_than_triamcinolone(kb):
    for drug, expected in (("dexamethasone", "responder"), ("triamcinolone", "too-early")):
        b = hip_candidate(f"onset{drug[:3]}")
        b.injection("2026-02-20", "hip-intra-articular", "right", "ultrasound", drug, 40 if drug == "triamcinolone" else 8)
        b.pain("2026-02-20", 7)
        b.pain("2026-02-28", 2)
        r = reviewed(kb, b, "2026-03-01")
        assert r.outcome == expected, drug
    tri = finding(r, "next.reassess-later")
    assert "2026-03-06" in tri.title and "14 days" in tri.rationale


def test_dexamethasone_too_early_before_its_own_window(kb):
    b = hip_candidate("dexearly")
    b.injection("2026-02-26", "hip-intra-articular", "right", "ultrasound", "dexamethasone", 8)
    r = reviewed(kb, b, "2026-03-01")
    assert r.outcome == "too-early" and "2026-03-05" in finding(r, "next.reassess-later").title


# ---- next.diagnostic-injection and next.vascular-referral ---------------------------------------
def test_failed_hip_injection_with_sacroiliac_features_suggests_a_guided_si_block(kb):
    b = failed_hip("si")
    b.condition("M46.1", "Sacroiliitis, right", "2025-06-01")
    r = reviewed(kb, b, "2026-02-10")
    f = finding(r, "next.diagnostic-injection")
    assert "sacroiliac joint" in f.rationale and any(e.resource.startswith("Condition/") for e in f.evidence)


def test_failed_knee_injection_with_hip_oa_suggests_a_diagnostic_hip_injection(kb):
    b = BundleBuilder("kneehip")
    b.condition("M17.11", "Unilateral primary osteoarthritis, right knee", "2022-01-01")
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2022-01-01")
    b.injection("2026-01-05", "knee-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.pain("2026-01-05T09:00:00", 7)
    b.pain("2026-02-02", 7)
    f = finding(reviewed(kb, b, "2026-02-10"), "next.diagnostic-injection")
    assert "hip joint" in f.rationale


def test_no_other_source_means_no_diagnostic_injection(kb):
    r = reviewed(kb, failed_hip("nosrc"), "2026-02-10")
    assert "next.diagnostic-injection" not in ids(r)
    b = failed_hip("leftsrc")
    b.condition("M54.42", "Lumbago with sciatica, left side", "2025-06-01")  # the other side
    assert "next.diagnostic-injection" not in ids(reviewed(kb, b, "2026-02-10"))


@pytest.mark.parametrize("icd,text", [(None, "Right buttock claudication on walking, eases with rest"),
                                      ("I70.211", "Atherosclerosis of native arteries of right leg, intermittent claudication"),
                                      (None, "Absent pedal pulses, right foot")])
def test_vascular_claudication_gets_a_vascular_referral(kb, icd, text):
    b = failed_hip(f"vasc{len(text)}")
    b.condition(icd, text, "2026-01-20")
    assert "next.vascular-referral" in ids(reviewed(kb, b, "2026-02-10"))


def test_neurogenic_claudication_is_not_vascular(kb):
    b = failed_hip("neurog")
    b.condition(None, "Neurogenic claudication from lumbar spinal stenosis", "2026-01-20")
    r = reviewed(kb, b, "2026-02-10")
    assert "next.vascular-referral" not in ids(r) and "failure.alternative-pathology.vascular" not in ids(r)


# ---- 20. ICD-10-CM site and side from the code's own structure -----------------------------------
@pytest.mark.parametrize("code,region,side", [
    ("M70.61", "hip", "right"), ("M70.62", "hip", "left"), ("M16.11", "hip", "right"), ("M16.0", "hip", "bilateral"),
    ("M17.12", "knee", "left"), ("M75.101", "shoulder", "right"), ("M75.42", "shoulder", "left"),
    ("S72.001A", "hip", "right"), ("S72.012A", "hip", "left"), ("S72.22XA", "hip", "left"),
    ("M25.551", "hip", "right"), ("M25.562", "knee", "left"), ("Z96.641", "hip", "right"),
    ("Z96.642", "hip", "left"), ("T84.51XA", "hip", "right"), ("T84.54XA", "knee", "left"),
    ("M54.11", "cervical-thoracic-spine", None), ("M54.12", "cervical-thoracic-spine", None),
    ("M79.11", None, None), ("M19.91", None, None), ("M54.16", "lumbar-spine", None),
])
def test_icd10_site_and_side_table(kb, code, region, side):
    assert kb.icd10_sites.locate(code) == (region, side)


def test_trochanteric_bursitis_code_places_the_diagnosis_at_the_right_hip(kb):
    plan_right = ("greater-trochanteric-bursa", "right", "landmark", "triamcinolone", 40)
    plan_left = ("greater-trochanteric-bursa", "left", "landmark", "triamcinolone", 40)
    for plan, uncertain in ((plan_right, False), (plan_left, True)):
        b = BundleBuilder(f"gtb{plan[1]}")
        b.condition("M70.61", "Trochanteric bursitis", "2025-10-01")  # side only in the code
        b.therapy("2025-06-01", "2025-09-01", "Physical therapy - hip abductor strengthening")
        assert ("defer.diagnosis-uncertain" in ids(run_assess(b, kb, plan=plan))) is uncertain, plan[1]


def test_review_reads_nothing_after_the_as_of_date(kb):
    b = failed_hip("asof")
    b.condition(None, "Right buttock claudication", "2026-02-20")  # recorded after the as-of date
    rec = read_bundle(b.bundle())
    assert "next.vascular-referral" not in ids(review(rec, kb, D("2026-02-10")))


def test_foot_symptoms_after_a_lumbar_injection_still_count_as_neuropathy(kb):
    b = hip_candidate("footdrop")
    b.injection("2025-12-01", "lumbar-transforaminal", "right", "fluoroscopy", "dexamethasone", 10)
    b.condition(None, "New numbness and tingling of the right foot", "2025-12-20")
    assert "adverse.neuropathy" in ids(reviewed(kb, b, "2026-01-15"))


def test_cellulitis_of_the_foot_does_not_block_a_hip_injection(kb):
    b = hip_candidate("footcell")
    b.condition("L03.031", "Cellulitis of right toe", "2026-02-20")
    assert "contraindication.skin-infection-at-site" not in ids(run_assess(b, kb))
    b2 = hip_candidate("hipcell")
    b2.condition(None, "Cellulitis over the right lateral hip", "2026-02-20")
    assert "contraindication.skin-infection-at-site" in ids(run_assess(b2, kb))


def test_an_mri_already_done_is_not_told_radiographs_first(kb):
    b = failed_hip("mri")
    b.procedure("MRI of right hip without contrast", "2025-11-01", snomed="241601008")
    r = reviewed(kb, b, "2026-02-10")
    assert "next.re-evaluate-diagnosis.radiographs-first" not in ids(r)


@pytest.mark.parametrize("when,counts", [("2026-01-05T15:30:00", True), ("2026-01-05T16:30:00", False)])
def test_anaesthetic_window_has_a_policy_margin(kb, when, counts):
    b = failed_hip(f"margin{when[-8:-6]}")  # injected 10:00; lidocaine 2 h + 4 h margin = until 16:00
    b.pain(when, 7)
    assert ("failure.incorrect-diagnosis" in ids(reviewed(kb, b, "2026-02-10"))) is counts


def test_education_gives_the_planned_drugs_own_judging_day(kb):
    r = run_assess(hip_candidate("edu"), kb, plan=("hip-intra-articular", "right", "ultrasound", "dexamethasone", 8))
    f = next(f for f in r.findings if f.id == "education.what-to-expect")
    assert "judged at 7" in f.rationale


@pytest.mark.parametrize("verification,onset,defers", [("confirmed", "2026-02-01", True),
                                                       ("refuted", "2026-02-01", False),
                                                       ("confirmed", "2026-03-10", False)])  # after the as-of date
def test_competing_diagnosis_refuted_or_future_does_not_defer(kb, verification, onset, defers):
    b = hip_candidate(f"cv{verification[:3]}{onset[5:7]}")
    b.condition(None, "Right-sided sciatica", onset, verification=verification)
    assert ("defer.diagnosis-uncertain" in ids(run_assess(b, kb, plan=LANDMARK))) is defers


def test_inflammatory_arthritis_in_text_only_skips_physiotherapy_first(kb):
    b = BundleBuilder("psa")
    b.condition(None, "Psoriatic arthritis with right hip synovitis", "2024-01-01")
    assert "defer.conservative-care-not-tried" not in ids(run_assess(b, kb))


@pytest.mark.parametrize("plan_side,fires", [("right", True), ("left", False)])
def test_prosthesis_side_comes_from_the_code(kb, plan_side, fires):
    b = hip_candidate(f"z96{plan_side}")
    b.condition("Z96.641", "Presence of artificial hip joint", "2020-01-01")  # right, in the code only
    plan = ("greater-trochanteric-bursa", plan_side, "ultrasound", "triamcinolone", 40)
    b.condition("M70.61" if plan_side == "right" else "M70.62", "Trochanteric bursitis", "2025-10-01")
    assert ("caution.prosthetic-joint" in ids(run_assess(b, kb, plan=plan))) is fires


@pytest.mark.parametrize("when,phase", [("2026-06-03T15:00:00", "relief"), ("2026-06-03T21:00:00", "unknown")])
def test_relief_charted_hours_after_lidocaine_reads_as_the_anaesthetic_test(kb, when, phase):
    b = hip_candidate(f"chart{when[11:13]}")
    b.injection("2026-06-03", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    b.pain("2026-06-03", 7)
    b.pain(when, 2)
    r = reviewed(kb, b, "2026-06-08")
    assert r.outcome == "too-early" and r.detail["anesthetic_phase"] == phase


def test_failed_hip_injection_with_axial_back_pain_suggests_a_facet_block(kb):
    b = failed_hip("facet")
    b.condition("M47.816", "Lumbar spondylosis (facet arthropathy)", "2024-01-01")
    f = finding(reviewed(kb, b, "2026-02-10"), "next.diagnostic-injection")
    assert "lumbar facet joint or medial branch" in f.rationale


def test_a_facet_injection_is_recognised_as_fluoroscopy_guided(kb):
    b = hip_candidate("facetinj")
    b.add({"resourceType": "Procedure", "subject": b.subject, "status": "completed",
           "code": {"coding": [{"system": CPT, "code": "64493", "display": "Injection, paravertebral facet joint, lumbar"}]},
           "performedDateTime": "2025-12-01T10:00:00Z", "bodySite": [{"text": "right L4-L5"}]})
    r = reviewed(kb, b, "2026-01-15")
    assert r.subject["target"] == "lumbar-facet" and r.subject["guidance"] == "fluoroscopy"


# ---- calendar days at the boundaries -------------------------------------------------------------
def test_a_score_on_day_fourteen_is_judged_whatever_its_hour(kb):
    b = hip_candidate("day14")
    b.injection("2026-04-01T10:00:00", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.pain("2026-04-01T09:00:00", 7)
    b.pain("2026-04-15T09:00:00", 2)  # day 14, one hour "short" of 14 x 24 h
    assert reviewed(kb, b, "2026-04-15").outcome == "responder"
    b2 = hip_candidate("day13")
    b2.injection("2026-04-01T10:00:00", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b2.pain("2026-04-01T09:00:00", 7)
    b2.pain("2026-04-14T20:00:00", 2)  # day 13: still too early to count
    assert reviewed(kb, b2, "2026-04-14").outcome == "too-early"


def test_scores_after_the_as_of_day_do_not_count(kb):
    b = hip_candidate("later")
    b.injection("2026-04-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.pain("2026-04-01", 7)
    b.pain("2026-04-16", 8)  # the day after the as-of date
    assert reviewed(kb, b, "2026-04-15").outcome == "unknown"


@pytest.mark.parametrize("days,fires", [(83, True), (84, False)])
def test_the_interval_counts_calendar_days(kb, days, fires):
    from datetime import date, timedelta
    last = (date(2026, 3, 1) - timedelta(days=days)).isoformat()
    b = hip_candidate(f"int{days}")
    b.injection(f"{last}T16:30:00", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    r = run_assess(b, kb)
    assert ("defer.injection-interval" in ids(r)) is fires
    if fires:
        assert f"was {days} days ago" in finding(r, "defer.injection-interval").rationale


# ---- diabetes by HbA1c alone ---------------------------------------------------------------------
@pytest.mark.parametrize("value,unit,when,cautions", [
    (7.1, "%", "2026-02-01", True),          # diagnostic, no diagnosis coded
    (54, "mmol/mol", "2026-02-01", True),    # 7.1 % in IFCC units
    (6.1, "%", "2026-02-01", False),         # prediabetes range
    (7.1, "%", "2024-01-01", False),         # too old to describe the patient now
])
def test_a_diagnostic_hba1c_alone_gives_the_glucose_caution(kb, value, unit, when, cautions):
    b = hip_candidate(f"a1c{int(value)}{unit[:2]}{when[:4]}")
    b.lab("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", value, unit, when)
    r = run_assess(b, kb)
    assert ("caution.diabetes" in ids(r)) is cautions
    if cautions:
        assert any("4548-4" in e.what or "HbA1c" in e.what or "A1c" in e.what for e in finding(r, "caution.diabetes").evidence)


# ---- urgent findings are never answered with "too early, wait" -----------------------------------
def test_infection_signs_a_week_after_the_injection_are_urgent_not_too_early(kb):
    b = hip_candidate("sepearly")
    b.injection("2026-02-20", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.pain("2026-02-20", 6)
    b.condition("M25.451", "Effusion, right hip - hot, red and swollen", "2026-02-28", category="encounter-diagnosis")
    b.lab("8310-5", "Body temperature", 101.3, "[degF]", "2026-02-28")
    r = reviewed(kb, b, "2026-02-28")
    assert r.outcome == "too-early"  # the response itself still cannot be judged
    assert "urgent.infection-suspected" in ids(r)
    assert "failure.delayed-effect" not in ids(r) and "next.reassess-later" not in ids(r)


def test_too_early_without_anything_urgent_still_says_wait(kb):
    b = hip_candidate("waitok")
    b.injection("2026-02-20", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.pain("2026-02-20", 6)
    r = reviewed(kb, b, "2026-02-28")
    assert {"failure.delayed-effect", "next.reassess-later"} <= set(ids(r))


# ---- a harm attributed to the injection must be new after it --------------------------------------
def _after_hip(prefix):
    b = hip_candidate(prefix)
    b.injection("2026-01-05", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    return b


def test_a_radiculopathy_known_before_the_injection_is_not_a_new_nerve_injury(kb):
    b = _after_hip("radold")
    b.condition("M54.16", "Radiculopathy, lumbar region, right", "2025-06-01", body_site="right")
    b.condition("M54.16", "Lumbar radiculopathy, right", "2026-02-01", category="encounter-diagnosis",
                body_site="right")  # the same problem named again after the injection
    assert "adverse.neuropathy" not in ids(reviewed(kb, b, "2026-02-10"))


def test_paraesthesia_first_recorded_after_the_injection_is_a_new_nerve_finding(kb):
    b = _after_hip("radnew")
    b.condition("R20.2", "Paresthesia of right lateral thigh", "2026-02-01", category="encounter-diagnosis")
    f = finding(reviewed(kb, b, "2026-02-10"), "adverse.neuropathy")
    assert any(e.when is not None and e.when.date().isoformat() == "2026-02-01" for e in f.evidence)


def test_new_without_after_is_refused_when_the_rules_load(kb):
    from injectwise.core.errors import KnowledgeError
    from injectwise.engine.dsl import Compiler

    with pytest.raises(KnowledgeError, match="new needs after"):
        Compiler(kb, "test-rule").compile({"condition": {"concept": "neuropathic-pain", "new": True}})


@pytest.mark.parametrize("days,defers", [(0, True), (90, True), (91, False)])
def test_the_pre_arthroplasty_window_counts_calendar_days(kb, days, defers):
    from datetime import date, timedelta
    on = (date(2026, 3, 1) + timedelta(days=days)).isoformat()
    b = hip_candidate(f"tha{days}")
    b.future_order("Total hip arthroplasty, right", on, snomed="52734007")
    assert ("defer.planned-arthroplasty" in ids(run_assess(b, kb))) is defers


@pytest.mark.parametrize("days,fires", [(30, True), (31, False)])
def test_a_recent_problem_window_includes_its_last_day(kb, days, fires):
    """A hot swollen joint recorded exactly 30 days ago (at any hour) is still recent (policy 30 days)."""
    from datetime import date, timedelta
    on = (date(2026, 3, 1) - timedelta(days=days)).isoformat()
    b = hip_candidate(f"recent{days}")
    b.condition("R26.2", "Unable to bear weight on the right leg", f"{on}T23:30:00", category="encounter-diagnosis",
                status=None)
    assert ("contraindication.red-flag" in ids(run_assess(b, kb))) is fires


# ---- bleeding disorders (EULAR 2021 rec 8; ASRA patient factors) ---------------------------------
@pytest.mark.parametrize("icd,text,verification,fires", [
    ("D66", "Hereditary factor VIII deficiency", "confirmed", True),
    ("D68.0", "Von Willebrand disease", "confirmed", True),
    (None, "Coagulopathy", "confirmed", True),
    ("D66", "Hereditary factor VIII deficiency", "refuted", False),
    ("D68.51", "Activated protein C resistance", "confirmed", False),  # thrombophilia, not a bleeding disorder
])
def test_a_bleeding_disorder_is_a_caution(kb, icd, text, verification, fires):
    b = hip_candidate(f"bleed{(icd or 'x').replace('.', '')}{verification[:3]}")
    b.condition(icd, text, "2010-01-01", verification=verification)
    r = run_assess(b, kb)
    assert ("caution.bleeding-disorder" in ids(r)) is fires
    if fires:
        assert r.outcome == "proceed-with-caution"


def test_each_draft_injection_is_assessed_and_the_worst_verdict_wins():
    from datetime import date

    from injectwise.adapters.fhir import read_bundle
    from injectwise.demo.builder import BundleBuilder
    from injectwise.engine.evaluate import assess
    from injectwise.knowledge import load_knowledge

    b = BundleBuilder("bi")
    b.condition("M17.0", "Bilateral primary osteoarthritis of knee", "2019-01-01")
    b.condition(None, "Abrasion over the left anterior knee", "2026-05-30", category="encounter-diagnosis")
    b.therapy("2025-05-01", "2025-08-01", "Physical therapy - knees")
    b.planned("knee-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.planned("knee-intra-articular", "left", "ultrasound", "triamcinolone", 40)
    r = assess(read_bundle(b.bundle()), load_knowledge(), date(2026, 6, 1))
    assert r.outcome == "do-not-inject" and r.subject["side"] == "left"
    assert "contraindication.skin-infection-at-site" in [f.id for f in r.findings]
    assert sorted((p["side"], p["verdict"]) for p in r.detail["planned_injections"]) == [
        ("left", "do-not-inject"), ("right", "proceed")]


def test_radiographs_showing_end_stage_oa_need_no_mri(kb):
    b = failed_hip("kl4", xray=True)
    b.text_obs("Kellgren-Lawrence grade right hip (radiograph)", 4, "2026-01-05")
    r = reviewed(kb, b, "2026-02-10")
    assert "failure.disease-progression" in ids(r) and "next.advanced-imaging" not in ids(r)


@pytest.mark.parametrize("value,coded,fires", [
    ("Anterosuperior labral tear with a paralabral cyst", False, True),
    ("No labral tear; cartilage preserved", False, False),
    ("Anterosuperior labral tear with a paralabral cyst", True, False),  # a coded answer is not read as a report
])
def test_a_narrative_result_is_read_like_a_note(kb, value, coded, fires):
    from injectwise.adapters.fhir import read_bundle
    from injectwise.adapters.notes import add_bundle_notes

    b = failed_hip("mri")
    b.result(None, "MRI arthrogram right hip", value, "2026-01-25", coded=coded)
    rec = read_bundle(b.bundle())
    add_bundle_notes(rec, kb, D("2026-02-10"))
    r = review(rec, kb, D("2026-02-10"))
    assert ("failure.alternative-pathology.mechanical" in ids(r)) is fires


def test_guidance_in_words_is_read_for_a_target_whose_code_has_no_ultrasound_variant(kb):
    """CPT 64450, 20551, 20552 and 27096 have no ultrasound code: "under ultrasound guidance" in the order's
    text is the guidance (it was read as unknown, and image guidance was then 'recommended')."""
    from injectwise.engine.clinical import ClinicalView

    for text, want in [("Corticosteroid injection, right superior gluteal nerve, under ultrasound guidance", "ultrasound"),
                       ("Lateral epicondyle injection, US guidance", "ultrasound"),
                       ("SI joint injection without ultrasound", "landmark"),
                       ("Trigger point injections, ultrasound-guided", "ultrasound")]:
        assert ClinicalView.guidance_from_text(text) == want, text


def test_a_cervical_radiculopathy_competes_with_the_shoulder_not_the_hip(kb):
    from injectwise.engine.clinical import _regions_of_text

    cervical = _regions_of_text(kb, "radiculopathy, cervical region")
    assert cervical == {"cervical-thoracic-spine"}
    assert "shoulder" in kb.regions["cervical-thoracic-spine"].refers_to
    assert "hip" not in kb.regions["cervical-thoracic-spine"].refers_to
    assert _regions_of_text(kb, "radiculopathy, lumbar region") == {"lumbar-spine"}
    assert _regions_of_text(kb, "radicular pain down the right leg") == {"lumbar-spine"}


# ---- probeb: relief in the anaesthetic phase shows the injectate reached the painful structure ----------
@pytest.mark.parametrize("hour_score,technique_blamed", [(1, False), (7, True)])
def test_landmark_injection_with_anaesthetic_relief_is_not_blamed_on_technique(kb, hour_score, technique_blamed):
    b = failed_hip(f"lmk{hour_score}", guidance="landmark")
    b.pain("2026-01-05T11:00:00", hour_score)  # one hour after: lidocaine's phase
    got = set(ids(reviewed(kb, b, "2026-02-10")))
    assert ("failure.improper-technique" in got) is technique_blamed, got
    assert ("failure.incorrect-location" in got) is technique_blamed, got


def test_a_facet_injection_whose_relief_faded_within_weeks_points_to_radiofrequency_ablation(kb):
    b = BundleBuilder("facet")
    b.condition("M47.816", "Spondylosis of lumbar region without myelopathy or radiculopathy (facet arthropathy)", "2025-01-01")
    b.therapy("2025-02-01", "2025-05-01", "Physical therapy - lumbar")
    b.injection("2026-01-05", "lumbar-facet", None, "fluoroscopy", "methylprednisolone", 40)
    b.pain("2026-01-05", 7)
    b.pain("2026-01-20", 3)  # relief at two weeks ...
    b.pain("2026-02-25", 7)  # ... gone by seven weeks
    r = reviewed(kb, b, "2026-03-01")
    assert r.outcome == "partial" and "next.radiofrequency-ablation" in ids(r)
    b2 = BundleBuilder("facet2")
    b2.condition("M47.816", "Spondylosis of lumbar region (facet arthropathy)", "2025-01-01")
    b2.therapy("2025-02-01", "2025-05-01", "Physical therapy - lumbar")
    b2.injection("2026-01-05", "lumbar-facet", None, "fluoroscopy", "methylprednisolone", 40)
    b2.pain("2026-01-05", 7)
    b2.pain("2026-02-25", 7)  # no relief at all: the facet joint is not shown to be the generator
    assert "next.radiofrequency-ablation" not in ids(reviewed(kb, b2, "2026-03-01"))


def test_a_resolved_radiculopathy_is_no_alternative_pathology(kb):
    def knee(status):
        b = BundleBuilder(f"rad{status}")
        b.condition("M17.11", "Unilateral primary osteoarthritis, right knee", "2020-01-01")
        b.condition("M54.16", "Radiculopathy, lumbar region", "2012-01-01", status=status)
        b.therapy("2025-02-01", "2025-05-01", "Physical therapy - knee")
        b.injection("2026-01-05", "knee-intra-articular", "right", "ultrasound", "triamcinolone", 40)
        b.pain("2026-01-05", 7)
        b.pain("2026-02-20", 7)
        return ids(reviewed(kb, b, "2026-03-01"))
    assert "failure.alternative-pathology.neuropathic" in knee("active")
    assert "failure.alternative-pathology.neuropathic" not in knee("resolved")


@pytest.mark.parametrize("value,fires", [(11.1, True), (11.0, False)])
def test_a_converted_glucose_keeps_its_precision_at_the_threshold(kb, value, fires):
    """11.1 mmol/L is the usual equivalent of 200 mg/dL; converted it must not read as 199.98."""
    b = _diabetic_injected(f"prec{int(value * 10)}")
    b.lab("2339-0", "Glucose", value, "mmol/L", "2026-02-11")
    assert ("adverse.hyperglycemia" in ids(reviewed(kb, b, "2026-03-01"))) is fires


def test_a_tendon_torn_after_the_injection_is_imaged_even_when_the_pain_improved(kb):
    b = BundleBuilder("cuff")
    b.condition("M75.51", "Bursitis of right shoulder", "2025-11-01")
    b.therapy("2025-12-01", "2026-03-01", "Physical therapy - shoulder")
    b.injection("2026-03-02", "subacromial-bursa", "right", "ultrasound", "triamcinolone", 40)
    b.pain("2026-03-02", 7)
    b.pain("2026-04-10", 3)
    b.condition("M75.121", "Complete rotator cuff tear of right shoulder, not traumatic", "2026-04-08",
                category="encounter-diagnosis")
    r = reviewed(kb, b, "2026-04-10")
    assert {"adverse.tendon-rupture", "next.diagnostic-ultrasound"} <= set(ids(r)), ids(r)


@pytest.mark.parametrize("side,harm", [("right", True), ("left", False)])
def test_skin_change_and_tendon_tear_count_only_on_the_injected_side(kb, side, harm):
    b = BundleBuilder(f"skin{side}")
    b.condition("M17.0", "Bilateral primary osteoarthritis of knee", "2019-01-01")
    b.therapy("2025-01-01", "2025-04-01", "Physical therapy - knees")
    b.injection("2026-04-15", "knee-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.pain("2026-04-15", 7)
    b.pain("2026-05-27", 3)
    b.condition("L90.5", f"Skin thinning and depigmentation over the {side} knee", "2026-05-27",
                category="encounter-diagnosis")
    b.condition("S86.811A", f"Patellar tendon tear, {side} knee", "2026-05-27", category="encounter-diagnosis")
    got = set(ids(reviewed(kb, b, "2026-05-27")))
    assert ("adverse.soft-tissue-atrophy" in got) is harm, got
    assert ("adverse.tendon-rupture" in got) is harm, got


# ---- the anaesthetic phase told in words (no score in the first hours) ----------------------------
def _told_hip(prefix, told, guidance="ultrasound", anesthetic="lidocaine"):
    """A hip injection with no relief at four weeks; the procedure note tells how the first hours went."""
    b = hip_candidate(prefix)
    b.injection("2026-01-05", "hip-intra-articular", "right", guidance, "triamcinolone", 40, anesthetic,
                40 if anesthetic else None, note=told)
    b.pain("2026-01-05T09:00:00", 7)
    b.pain("2026-02-02", 7)
    return b


@pytest.mark.parametrize("told", ["No relief at all, not even in the first hours.", "The lidocaine did nothing.",
                                  "No immediate relief.", "Never had any relief, even on the day of the injection.",
                                  "Pain unchanged immediately after the injection."])
def test_no_relief_told_for_the_first_hours_is_the_negative_anaesthetic_test(kb, told):
    r = reviewed(kb, _told_hip("tn", told), "2026-02-10")
    f = finding(r, "failure.incorrect-diagnosis")
    assert f.likelihood == "high" and any(e.what == "pain in the anaesthetic phase" for e in f.evidence)
    landmark = reviewed(kb, _told_hip("tl", told, guidance="landmark"), "2026-02-10")
    assert finding(landmark, "failure.incorrect-location").likelihood == "high"


@pytest.mark.parametrize("told", ["Immediate relief for a few hours, then the pain came back.",
                                  "Good relief for 3 hours, then back to 7/10.",
                                  "The lidocaine helped but the pain came back that evening."])
def test_relief_told_for_the_first_hours_shows_the_injectate_reached_the_joint(kb, told):
    r = reviewed(kb, _told_hip("tr", told, guidance="landmark"), "2026-02-10")
    assert "failure.incorrect-location" not in ids(r) and "failure.improper-technique" not in ids(r)
    assert "education.anesthetic-phase" in ids(r)


def test_no_relief_told_without_an_anaesthetic_tests_nothing(kb):
    r = reviewed(kb, _told_hip("tx", "No relief even in the first hours.", anesthetic=None), "2026-02-10")
    assert "failure.incorrect-diagnosis" not in ids(r)


@pytest.mark.parametrize("told", ["Relief for 3 weeks, then it wore off.", "No relief from physiotherapy in the first weeks.",
                                  "Not any immediate relief was expected; good relief from week 2."])
def test_other_spans_are_not_the_anaesthetic_phase(kb, told):
    r = reviewed(kb, _told_hip("to", told, guidance="landmark"), "2026-02-10")
    assert "education.anesthetic-phase" not in ids(r)
    assert finding(r, "failure.incorrect-location").likelihood == "moderate"
