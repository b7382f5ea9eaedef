"""Safety on real records (issue 8, items 1-10): each behaviour with fixture patients that must fire
and counterparts that must not (resolved, entered-in-error, refuted, wrong side, other region,
before the window, after the as-of date, old result)."""

import pytest
from conftest import D, ids
from hypothesis import given
from hypothesis import strategies as st

from injectwise.adapters.fhir import read_bundle
from injectwise.core.record import Coded, Observation
from injectwise.demo.builder import BundleBuilder
from injectwise.engine.clinical import _mg_per_ml
from injectwise.engine.evaluate import assess, review
from injectwise.engine.safety import result_reading

AS_OF = D("2026-03-01")
INFECTION = "contraindication.infection-suspected"
HIP_PLAN = ("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)


def candidate(prefix="s", **kw) -> BundleBuilder:
    b = BundleBuilder(prefix, **kw)
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2022-01-01")
    b.therapy("2025-06-01", "2025-09-01", "Physical therapy - hip strengthening")
    return b


def assessed(b, plan=HIP_PLAN, anesthetic="lidocaine", amg=40, as_of=AS_OF, **kw):
    b.planned(*plan, anesthetic, amg, **kw)
    return assess(read_bundle(b.bundle()), kb_(), as_of)


def kb_():
    from injectwise.knowledge import load_knowledge
    return load_knowledge()


def finding(r, fid):
    return next(f for f in r.findings if f.id == fid)


# ---- 1. clinical status, not onset, decides ------------------------------------------------
@pytest.mark.parametrize("icd,text", [("M00.051", "Staphylococcal arthritis, right hip"),
                                      ("T84.51XA", "Infection due to internal right hip prosthesis"),
                                      (None, "Septic arthritis of the right hip")])
def test_unresolved_infection_counts_whatever_its_onset(icd, text):
    b = candidate()
    b.condition(icd, text, "2025-06-01")
    assert INFECTION in ids(assessed(b))


def test_old_cellulitis_still_active_blocks():
    b = candidate()
    b.condition("L03.115", "Cellulitis of right lower limb (lateral hip)", "2025-10-01")
    assert "contraindication.skin-infection-at-site" in ids(assessed(b))


def test_active_cancer_counts_whatever_its_onset():
    b = candidate()
    b.condition("C50.911", "Malignant neoplasm of right breast", "2024-02-01")
    assert "contraindication.red-flag" in ids(assessed(b))


@pytest.mark.parametrize("kw", [{"status": "resolved"}, {"verification": "entered-in-error"},
                                {"verification": "refuted"}, {"status": "active", "abated": "2025-12-01"}])
def test_resolved_or_erroneous_infection_never_fires(kw):
    b = candidate()
    b.condition("L03.115", "Cellulitis of right lower limb (lateral hip)", "2025-10-01", **kw)
    b.condition("A41.9", "Sepsis, unspecified organism", "2025-10-01", **kw)
    r = assessed(b)
    assert INFECTION not in ids(r) and "contraindication.skin-infection-at-site" not in ids(r)


def test_problem_without_status_uses_the_recency_window():
    b = candidate()
    b.condition("L03.115", "Cellulitis of right lower limb (lateral hip)", "2025-10-01", status=None)
    assert "contraindication.skin-infection-at-site" not in ids(assessed(b))
    b2 = candidate()
    b2.condition("L03.115", "Cellulitis of right lower limb (lateral hip)", "2026-02-20", status=None)
    assert "contraindication.skin-infection-at-site" in ids(assessed(b2))


def test_antibiotic_course_under_way_whatever_its_start():
    b = candidate()
    b.medication("723", "Amoxicillin 500 MG Oral Capsule", "2025-12-01")
    assert INFECTION in ids(assessed(b))
    b2 = candidate()
    b2.medication("723", "Amoxicillin 500 MG Oral Capsule", "2025-12-01", status="completed", end="2025-12-10")
    assert INFECTION not in ids(assessed(b2))


def test_septic_arthritis_of_this_joint_within_a_year_defers():
    b = candidate()
    b.condition("M00.051", "Staphylococcal arthritis, right hip", "2025-05-01", status="resolved",
                abated="2025-06-15")
    r = assessed(b)
    assert "defer.diagnosis-uncertain.recent-joint-infection" in ids(r) and INFECTION not in ids(r)


def test_current_or_suspected_septic_arthritis_is_a_contraindication_not_a_past_infection():
    for kw in ({"status": "active"}, {"verification": "provisional"}):
        b = candidate()
        b.condition("M00.051", "Staphylococcal arthritis, right hip", "2025-12-01", **kw)
        r = assessed(b)
        assert INFECTION in ids(r) and "defer.diagnosis-uncertain.recent-joint-infection" not in ids(r), kw


@pytest.mark.parametrize("text,onset", [("Septic arthritis, left hip", "2025-05-01"),
                                        ("Septic arthritis, right knee", "2025-05-01"),
                                        ("Septic arthritis, right hip", "2024-01-01")])
def test_septic_arthritis_other_joint_side_or_long_ago_does_not_defer(text, onset):
    b = candidate()
    b.condition(None, text, onset, status="resolved", abated=onset)
    assert "defer.diagnosis-uncertain.recent-joint-infection" not in ids(assessed(b))


# ---- 2. infection evidence beyond diagnoses ------------------------------------------------
@pytest.mark.parametrize("value,unit", [(38.4, "Cel"), (101.3, "[degF]"), (101.3, "degF"), (101.3, "F"),
                                        (38.2, "C"), (38.5, "°C"), (101.0, "Fahrenheit")])
def test_fever_in_any_unit(value, unit):
    b = candidate()
    b.lab("8310-5", "Body temperature", value, unit, "2026-03-01")
    assert INFECTION in ids(assessed(b))


@pytest.mark.parametrize("value,unit", [(37.2, "Cel"), (98.9, "[degF]")])
def test_normal_temperature_in_any_unit(value, unit):
    b = candidate()
    b.lab("8310-5", "Body temperature", value, unit, "2026-03-01")
    assert INFECTION not in ids(assessed(b))


def test_joint_fluid_white_count_in_septic_range():
    b = candidate()
    b.lab(None, "Synovial fluid WBC count", 68000, "/uL", "2026-02-27")
    r = assessed(b)
    assert INFECTION in ids(r)
    assert any("68000" in (e.value or "") for e in finding(r, INFECTION).evidence)
    b2 = candidate()
    b2.lab(None, "Synovial fluid WBC count", 1200, "/uL", "2026-02-27")
    assert INFECTION not in ids(assessed(b2))


@pytest.mark.parametrize("loinc,text,value,coded", [
    ("6463-4", "Bacteria identified in Synovial fluid by Culture", "Staphylococcus aureus", True),
    (None, "Joint fluid culture", "Positive - heavy growth", False),
    ("664-3", "Gram stain, joint aspirate", "Gram-positive cocci in clusters", False),
    (None, "Synovial fluid crystals", "Monosodium urate crystals seen", False)])
def test_positive_results_fire(loinc, text, value, coded):
    b = candidate()
    b.result(loinc, text, value, "2026-02-26", coded=coded)
    assert INFECTION in ids(assessed(b))


@pytest.mark.parametrize("text,value,date", [("Joint fluid culture", "No growth at 5 days", "2026-02-26"),
                                             ("Gram stain, joint aspirate", "No organisms seen", "2026-02-26"),
                                             ("Joint fluid culture", "Pending", "2026-02-26"),
                                             ("Joint fluid culture", "Staphylococcus aureus", "2025-10-01"),
                                             ("Joint fluid culture", "Staphylococcus aureus", "2026-03-03")])
def test_negative_pending_old_or_future_results_do_not_fire(text, value, date):
    b = candidate()
    b.result(None, text, value, date)
    assert INFECTION not in ids(assessed(b))


def test_two_of_crp_wbc_esr_raised():
    b = candidate()
    b.lab("1988-5", "CRP", 24, "mg/L", "2026-02-27")
    b.lab("4537-7", "ESR", 55, "mm/h", "2026-02-27")
    assert INFECTION in ids(assessed(b))
    b2 = candidate()
    b2.lab("4537-7", "ESR", 55, "mm/h", "2026-02-27")
    assert INFECTION not in ids(assessed(b2))


def reviewed(b, as_of):
    return review(read_bundle(b.bundle()), kb_(), D(as_of))


def test_review_culture_positive_after_injection_is_urgent():
    b = candidate()
    b.injection("2026-01-05", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    b.result(None, "Joint fluid culture, right hip", "Staphylococcus aureus", "2026-02-02")
    r = reviewed(b, "2026-03-20")
    assert "urgent.infection-suspected" in ids(r)
    b2 = candidate()
    b2.injection("2026-01-05", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    b2.result(None, "Joint fluid culture, right hip", "Staphylococcus aureus", "2025-11-02")
    assert "urgent.infection-suspected" not in ids(reviewed(b2, "2026-03-20"))


def test_review_pain_improved_then_rising_sharply_is_urgent():
    b = candidate()
    b.pain("2026-01-05", 7)
    b.injection("2026-01-05", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    b.pain("2026-01-25", 2)
    b.pain("2026-02-03", 8)
    assert "urgent.infection-suspected" in ids(reviewed(b, "2026-02-04"))


def test_review_relief_fading_slowly_is_not_infection():
    b = candidate()
    b.pain("2026-01-05", 7)
    b.injection("2026-01-05", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    b.pain("2026-01-25", 2)
    b.pain("2026-03-01", 4)
    b.pain("2026-04-01", 6)
    assert "urgent.infection-suspected" not in ids(reviewed(b, "2026-04-02"))


def test_review_relief_wearing_off_below_the_baseline_is_not_infection():
    """A rise of 3 points within two weeks that stays below the pre-injection pain is the relief fading."""
    b = candidate()
    b.pain("2026-01-05", 8)
    b.injection("2026-01-05", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    b.pain("2026-02-02", 3)
    b.pain("2026-02-16", 6)  # below the 8 before the injection
    assert "urgent.infection-suspected" not in ids(reviewed(b, "2026-02-17"))
    b2 = candidate()
    b2.pain("2026-01-05", 8)
    b2.injection("2026-01-05", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    b2.pain("2026-02-02", 3)
    b2.pain("2026-02-16", 8)  # back to where it was within two weeks: examine for infection
    assert "urgent.infection-suspected" in ids(reviewed(b2, "2026-02-17"))


# ---- 3. bleeding by procedure risk ---------------------------------------------------------
EPIDURAL = ("lumbar-epidural", None, "fluoroscopy", "dexamethasone", 10)


def epidural_candidate():
    b = BundleBuilder("e")
    b.condition("M54.16", "Radiculopathy, lumbar region", "2025-06-01")
    b.therapy("2025-06-01", "2025-09-01", "Physical therapy - lumbar stabilisation")
    return b


@pytest.mark.parametrize("rx,text", [("1114195", "rivaroxaban 20 MG Oral Tablet"), (None, "Dabigatran 150 mg"),
                                     (None, "Edoxaban 60 mg daily"), (None, "Enoxaparin 40 mg subcutaneous"),
                                     ("32968", "clopidogrel 75 MG Oral Tablet"), (None, "Ticagrelor 90 mg"),
                                     ("11289", "Warfarin sodium 5 MG")])
def test_intermediate_risk_target_without_hold_defers(rx, text):
    b = epidural_candidate()
    b.medication(rx, text, "2025-01-01")
    r = assessed(b, plan=EPIDURAL, anesthetic=None)
    assert "defer.anticoagulant-hold" in ids(r) and r.outcome == "defer"


def test_documented_hold_long_enough_does_not_defer():
    b = epidural_candidate()
    b.medication("32968", "clopidogrel 75 MG Oral Tablet", "2025-01-01", status="on-hold", end="2026-02-20")
    assert "defer.anticoagulant-hold" not in ids(assessed(b, plan=EPIDURAL, anesthetic=None))


def test_hold_too_short_defers():
    b = epidural_candidate()
    b.medication("32968", "clopidogrel 75 MG Oral Tablet", "2025-01-01", status="stopped", end="2026-02-27")
    r = assessed(b, plan=EPIDURAL, anesthetic=None)
    assert "defer.anticoagulant-hold" in ids(r)
    assert any("only 2 days" in (e.value or "") for e in finding(r, "defer.anticoagulant-hold").evidence)


def test_dual_antiplatelet_therapy_is_named():
    b = epidural_candidate()
    b.medication(None, "Aspirin 81 mg", "2025-01-01")
    b.medication(None, "Prasugrel 10 mg", "2025-01-01")
    r = assessed(b, plan=EPIDURAL, anesthetic=None)
    assert any("dual antiplatelet" in (e.value or "") for e in finding(r, "defer.anticoagulant-hold").evidence)


def test_aspirin_alone_does_not_need_a_hold():
    b = epidural_candidate()
    b.medication(None, "Aspirin 81 mg", "2025-01-01")
    assert "defer.anticoagulant-hold" not in ids(assessed(b, plan=EPIDURAL, anesthetic=None))


def test_low_risk_hip_on_doac_stays_a_caution():
    b = candidate()
    b.medication("1114195", "rivaroxaban 20 MG Oral Tablet", "2025-01-01")
    r = assessed(b)
    assert "caution.anticoagulant" in ids(r) and "defer.anticoagulant-hold" not in ids(r)


def test_inr_limit_depends_on_procedure_risk():
    b = epidural_candidate()
    b.medication("11289", "Warfarin sodium 5 MG", "2025-01-01", status="stopped", end="2026-02-20")
    b.lab("6301-6", "INR", 1.8, None, "2026-02-28")
    assert "defer.anticoagulation-out-of-range" in ids(assessed(b, plan=EPIDURAL, anesthetic=None))
    b2 = candidate()
    b2.medication("11289", "Warfarin sodium 5 MG", "2025-01-01")
    b2.lab("6301-6", "INR", 1.8, None, "2026-02-28")
    assert "defer.anticoagulation-out-of-range" not in ids(assessed(b2))


def test_platelets_below_limit_defer_and_old_low_count_does_not():
    b = candidate()
    b.lab("777-3", "Platelets", 38, "10*3/uL", "2026-02-25")
    assert "defer.anticoagulation-out-of-range" in ids(assessed(b))
    b2 = candidate()
    b2.lab("777-3", "Platelets", 38, "10*3/uL", "2025-06-25")
    b2.lab("777-3", "Platelets", 210, "10*3/uL", "2026-02-25")
    assert "defer.anticoagulation-out-of-range" not in ids(assessed(b2))


# ---- 4. local anaesthetic maximum dose -----------------------------------------------------
DOSE = "dose.anesthetic-above-maximum"


def test_lidocaine_above_absolute_maximum():
    r = assessed(candidate(), anesthetic="lidocaine", amg=400)
    assert DOSE in ids(r) and "dose.above-recommended" not in ids(r)


def test_mg_per_kg_with_latest_weight():
    b = candidate()
    b.lab("29463-7", "Body weight", 90, "kg", "2025-01-01")
    b.lab("29463-7", "Body weight", 40, "kg", "2026-02-01")
    r = assessed(b, anesthetic="lidocaine", amg=200)  # 4.5 mg/kg x 40 kg = 180 mg
    assert DOSE in ids(r)
    b2 = candidate()
    b2.lab("29463-7", "Body weight", 40, "kg", "2025-01-01")
    b2.lab("29463-7", "Body weight", 90, "kg", "2026-02-01")
    assert DOSE not in ids(assessed(b2, anesthetic="lidocaine", amg=200))


def test_weight_in_pounds_is_converted():
    b = candidate()
    b.lab("29463-7", "Body weight", 88, "[lb_av]", "2026-02-01")  # 40 kg
    assert DOSE in ids(assessed(b, anesthetic="bupivacaine", amg=120))  # 2.5 mg/kg = 100 mg


def test_millilitres_with_concentration():
    r = assessed(candidate(), anesthetic="lidocaine", amg=4, aunit="mL", atext="lidocaine 1% injection")
    assert DOSE not in ids(r)
    assert any(a["dose_mg"] == 40 for a in r.subject["anesthetics"])
    r2 = assessed(candidate(), anesthetic="bupivacaine", amg=40, aunit="mL", atext="bupivacaine 0.5% injection")
    assert DOSE in ids(r2)  # 200 mg > 175 mg


def test_bilateral_same_day_doses_are_summed():
    b = candidate()
    b.planned("hip-intra-articular", "left", "ultrasound", "triamcinolone", 40, "bupivacaine", 100)
    assert DOSE in ids(assessed(b, anesthetic="bupivacaine", amg=100))
    b2 = candidate()
    b2.injection("2026-03-01", "greater-trochanteric-bursa", "right", "ultrasound", "triamcinolone", 40,
                 "lidocaine", 200)
    assert DOSE in ids(assessed(b2, anesthetic="lidocaine", amg=150))
    b3 = candidate()
    b3.injection("2026-02-27", "greater-trochanteric-bursa", "right", "ultrasound", "triamcinolone", 40,
                 "lidocaine", 200)
    assert DOSE not in ids(assessed(b3, anesthetic="lidocaine", amg=150))


# ---- 5. prosthetic joint -------------------------------------------------------------------
PROSTHESIS_DEFER = "defer.diagnosis-uncertain.prosthetic-joint"


def test_intra_articular_injection_into_prosthesis_defers():
    b = candidate()
    b.condition("Z96.641", "Presence of right artificial hip joint", "2019-01-01")
    r = assessed(b)
    assert PROSTHESIS_DEFER in ids(r) and r.outcome == "defer"


def test_soft_tissue_next_to_prosthesis_is_a_caution():
    b = candidate()
    b.condition("Z96.641", "Presence of right artificial hip joint", "2019-01-01")
    b.condition("M70.61", "Trochanteric bursitis, right hip", "2025-06-01")
    r = assessed(b, plan=("greater-trochanteric-bursa", "right", "ultrasound", "triamcinolone", 40))
    assert "caution.prosthetic-joint" in ids(r) and PROSTHESIS_DEFER not in ids(r)


def test_prosthesis_on_the_other_side_does_not_defer():
    b = candidate()
    b.condition("Z96.642", "Presence of left artificial hip joint", "2019-01-01")
    assert PROSTHESIS_DEFER not in ids(assessed(b))


# ---- 6. pregnancy from observations --------------------------------------------------------
@pytest.mark.parametrize("loinc,text,value", [("82810-3", "Pregnancy status", "Pregnant"),
                                              ("2106-3", "Choriogonadotropin (pregnancy test) [Presence] in Urine",
                                               "Positive")])
def test_pregnancy_from_observation(loinc, text, value):
    b = candidate()
    b.result(loinc, text, value, "2026-02-20", coded=True)
    r = assessed(b)
    assert "caution.pregnancy" in ids(r)


def test_quantitative_hcg_and_fluoroscopy_is_critical():
    b = candidate()
    b.lab("21198-7", "hCG beta subunit, serum", 1450, "m[IU]/mL", "2026-02-20")
    r = assessed(b, plan=("hip-intra-articular", "right", "fluoroscopy", "triamcinolone", 40))
    f = finding(r, "caution.pregnancy.ionising-guidance")
    assert f.severity == "critical" and "caution.pregnancy" not in ids(r)


@pytest.mark.parametrize("value,date", [("Not pregnant", "2026-02-20"), ("Pregnant", "2024-12-01"),
                                        ("Pregnant", "2026-03-05")])
def test_negative_old_or_future_pregnancy_observation(value, date):
    b = candidate()
    b.result("82810-3", "Pregnancy status", value, date, coded=True)
    assert "caution.pregnancy" not in ids(assessed(b))


def test_later_negative_hcg_cancels_earlier_positive():
    b = candidate()
    b.lab("21198-7", "hCG beta subunit, serum", 300, "m[IU]/mL", "2026-01-10")
    b.lab("21198-7", "hCG beta subunit, serum", 2, "m[IU]/mL", "2026-02-20")
    assert "caution.pregnancy" not in ids(assessed(b))


def test_hcg_in_a_man_is_not_pregnancy():
    b = candidate(sex="male")
    b.lab("21198-7", "hCG beta subunit, serum", 300, "m[IU]/mL", "2026-02-20")
    assert "caution.pregnancy" not in ids(assessed(b))


# ---- 7. immunosuppression ------------------------------------------------------------------
@pytest.mark.parametrize("rx,text", [("6851", "Methotrexate 2.5 MG Oral Tablet"), (None, "Tacrolimus 1 mg"),
                                     (None, "Adalimumab 40 mg/0.4 mL pen"), (None, "Tofacitinib 5 mg")])
def test_immunosuppressant_drugs(rx, text):
    b = candidate()
    b.medication(rx, text, "2024-01-01")
    f = finding(assessed(b), "caution.immunosuppression")
    assert "infection" in f.advice


def test_long_term_glucocorticoid_and_z7952():
    b = candidate()
    b.medication("8640", "Prednisone 10 MG Oral Tablet", "2025-11-01")
    assert "caution.immunosuppression" in ids(assessed(b))
    b2 = candidate()
    b2.condition("Z79.52", "Long term (current) use of systemic steroids", "2020-01-01")
    assert "caution.immunosuppression" in ids(assessed(b2))


def test_short_or_stopped_immunosuppression_does_not_fire():
    b = candidate()
    b.medication("8640", "Prednisone 10 MG Oral Tablet", "2026-02-25")
    b.medication("6851", "Methotrexate 2.5 MG Oral Tablet", "2023-01-01", status="stopped", end="2024-01-01")
    assert "caution.immunosuppression" not in ids(assessed(b))


# ---- 8. excipient and antiseptic allergies -------------------------------------------------
@pytest.mark.parametrize("allergen,steroid,hit", [("Polyethylene glycol", "methylprednisolone", True),
                                                  ("Polysorbate 80", "triamcinolone", True),
                                                  ("Benzyl alcohol", "triamcinolone", True),
                                                  ("Carboxymethylcellulose", "triamcinolone", True),
                                                  ("Carboxymethylcellulose", "methylprednisolone", False),
                                                  ("Polyethylene glycol", "triamcinolone", False)])
def test_excipient_allergy_maps_to_products(allergen, steroid, hit):
    b = candidate()
    b.allergy(None, allergen)
    r = assessed(b, plan=("hip-intra-articular", "right", "ultrasound", steroid, 40))
    assert ("contraindication.drug-allergy" in ids(r)) is hit


def test_chlorhexidine_allergy_is_antiseptic_advice_not_a_contraindication():
    b = candidate()
    b.allergy(None, "Chlorhexidine")
    r = assessed(b)
    assert "caution.antiseptic-allergy" in ids(r) and "contraindication.drug-allergy" not in ids(r)


# ---- 9. HbA1c --------------------------------------------------------------------------------
def test_hba1c_at_limit_defers_without_diabetes_diagnosis():
    b = candidate()
    b.lab("4548-4", "Hemoglobin A1c", 8.0, "%", "2026-01-15")
    assert "defer.uncontrolled-diabetes" in ids(assessed(b))


def test_hba1c_in_mmol_per_mol():
    b = candidate()
    b.lab("4548-4", "Hemoglobin A1c", 75, "mmol/mol", "2026-01-15")  # about 9.0 %
    assert "defer.uncontrolled-diabetes" in ids(assessed(b))


def test_old_hba1c_is_reported_as_old():
    b = candidate()
    b.condition("E11.9", "Type 2 diabetes mellitus", "2015-01-01")
    b.lab("4548-4", "Hemoglobin A1c", 9.4, "%", "2025-01-15")
    r = assessed(b)
    assert "defer.uncontrolled-diabetes" not in ids(r)
    assert any("9.4 % on 2025-01-15" in u and "old" in u for u in r.unknowns)


# ---- 10. review: arthroplasty booked soon after an intra-articular injection ---------------
ARTHRO = "caution.arthroplasty-after-injection"


def test_arthroplasty_booked_within_window_after_injection():
    b = candidate()
    b.injection("2026-02-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    b.future_order("Total replacement of right hip", "2026-04-01", snomed="52734007")
    r = reviewed(b, "2026-03-01")
    assert ARTHRO in ids(r)
    assert any("59 days" in (e.value or "") for e in finding(r, ARTHRO).evidence)


@pytest.mark.parametrize("text,date,target", [("Total replacement of right hip", "2026-06-15", "hip-intra-articular"),
                                              ("Total replacement of left hip", "2026-04-01", "hip-intra-articular"),
                                              ("Total knee replacement, right", "2026-04-01", "hip-intra-articular"),
                                              ("Total replacement of right hip", "2026-04-01",
                                               "greater-trochanteric-bursa")])
def test_arthroplasty_outside_window_other_side_joint_or_soft_tissue(text, date, target):
    b = candidate()
    b.injection("2026-02-01", target, "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    b.future_order(text, date)
    assert ARTHRO not in ids(reviewed(b, "2026-03-01"))


# ---- parsers: property tests ---------------------------------------------------------------
@given(st.integers(min_value=1, max_value=40), st.sampled_from(["lidocaine", "bupivacaine", "ropivacaine"]))
def test_percent_strength_is_ten_mg_per_ml_per_percent(tenths, drug):
    pct = tenths / 10
    assert _mg_per_ml(f"{drug} {pct:g}% injection") == pytest.approx(pct * 10)
    assert _mg_per_ml(f"{drug} hydrochloride {pct * 10:g} MG/ML Injectable Solution") == pytest.approx(pct * 10)


@given(st.text(max_size=60))
def test_result_reading_never_fails_and_says_one_of_four(text):
    o = Observation("Observation/x", Coded((), "culture"), value_text=text)
    assert result_reading(o) in ("positive", "negative", "pending", "unknown")


@given(st.sampled_from(["No growth", "no organisms seen", "Negative", "NEGATIVE for bacteria", "Sterile"]),
       st.sampled_from(["", " at 48 h", " after 5 days"]))
def test_negative_culture_wordings(word, tail):
    assert result_reading(Observation("Observation/x", Coded(), value_text=word + tail)) == "negative"


@given(st.sampled_from(["Staphylococcus aureus", "Gram-negative rods", "Gram-positive cocci in chains",
                        "Positive", "E. coli isolated", "MRSA detected"]))
def test_positive_culture_wordings(word):
    assert result_reading(Observation("Observation/x", Coded(), value_text=word)) == "positive"


def test_bilateral_order_with_a_per_side_dose_counts_both_sides():
    b = candidate()
    b.condition("M16.0", "Bilateral primary osteoarthritis of hip", "2022-01-01")
    sr = b.planned("hip-intra-articular", "bilateral", "ultrasound", "triamcinolone", 40, "bupivacaine", 100)
    for r in b.resources:
        if r["resourceType"] == "MedicationRequest" and "bupivacaine" in r["medicationCodeableConcept"]["text"]:
            r["dosageInstruction"][0]["text"] = "100 mg into each hip"
    assert sr["status"] == "draft"
    r = assess(read_bundle(b.bundle()), kb_(), AS_OF)
    f = finding(r, DOSE)
    assert any("both sides" in e.what for e in f.evidence)


def test_bilateral_order_with_a_total_dose_is_not_doubled():
    b = candidate()
    b.condition("M16.0", "Bilateral primary osteoarthritis of hip", "2022-01-01")
    b.planned("hip-intra-articular", "bilateral", "ultrasound", "triamcinolone", 40, "bupivacaine", 100)
    assert DOSE not in ids(assess(read_bundle(b.bundle()), kb_(), AS_OF))


# ---- as of a date: what ended after it was still current on it -----------------------------
def test_infection_resolved_only_after_the_as_of_day_was_current():
    b = candidate()
    b.condition("L03.115", "Cellulitis of right lower limb (lateral hip)", "2026-02-20", status="resolved",
                abated="2026-03-10")
    assert "contraindication.skin-infection-at-site" in ids(assessed(b))


def test_drug_stopped_only_after_the_as_of_day_was_being_taken():
    b = epidural_candidate()
    b.medication("32968", "clopidogrel 75 MG Oral Tablet", "2025-01-01", status="stopped", end="2026-03-10")
    assert "defer.anticoagulant-hold" in ids(assessed(b, plan=EPIDURAL, anesthetic=None))
    b2 = candidate()
    b2.medication("6851", "Methotrexate 2.5 MG Oral Tablet", "2024-01-01", status="stopped", end="2026-04-01")
    assert "caution.immunosuppression" in ids(assessed(b2))


def test_fluoroscopy_without_a_recent_pregnancy_test_says_not_excluded():
    b = candidate(birth="1995-01-01")
    r = assessed(b, plan=("hip-intra-articular", "right", "fluoroscopy", "triamcinolone", 40))
    assert any("pregnancy not excluded" in u for u in r.unknowns)
    b2 = candidate(birth="1995-01-01")
    b2.result("2106-3", "Pregnancy test, urine", "Negative", "2026-02-27")
    r2 = assessed(b2, plan=("hip-intra-articular", "right", "fluoroscopy", "triamcinolone", 40))
    assert not any("pregnancy" in u for u in r2.unknowns) and "caution.pregnancy.ionising-guidance" not in ids(r2)
    r3 = assessed(candidate(sex="male", birth="1995-01-01"),
                  plan=("hip-intra-articular", "right", "fluoroscopy", "triamcinolone", 40))
    assert not any("pregnancy" in u for u in r3.unknowns)


# ---- boundaries and units -------------------------------------------------------------------
def test_anaesthetic_exactly_at_the_maximum_is_allowed():
    assert DOSE not in ids(assessed(candidate(), anesthetic="lidocaine", amg=300))
    assert DOSE in ids(assessed(candidate(), anesthetic="lidocaine", amg=301))


def test_hold_of_exactly_the_hold_time_is_enough():
    b = epidural_candidate()
    b.medication("32968", "clopidogrel 75 MG Oral Tablet", "2025-01-01", status="stopped", end="2026-02-22")
    assert "defer.anticoagulant-hold" not in ids(assessed(b, plan=EPIDURAL, anesthetic=None))
    b2 = epidural_candidate()
    b2.medication("32968", "clopidogrel 75 MG Oral Tablet", "2025-01-01", status="stopped", end="2026-02-23")
    assert "defer.anticoagulant-hold" in ids(assessed(b2, plan=EPIDURAL, anesthetic=None))


@pytest.mark.parametrize("value,unit,fires", [(68, "10*3/uL", True), (68000, "/uL", True), (30, "10*9/L", False)])
def test_joint_fluid_white_count_units(value, unit, fires):
    b = candidate()
    b.lab(None, "WBC count, joint fluid", value, unit, "2026-02-27")
    assert (INFECTION in ids(assessed(b))) is fires


@pytest.mark.parametrize("value,unit,fires", [(38000, "/uL", True), (45, "10*9/L", True), (120, "K/uL", False)])
def test_platelet_units(value, unit, fires):
    b = candidate()
    b.lab("777-3", "Platelets", value, unit, "2026-02-25")
    assert ("defer.anticoagulation-out-of-range" in ids(assessed(b))) is fires


def test_hba1c_just_below_the_limit_does_not_defer():
    b = candidate()
    b.lab("4548-4", "Hemoglobin A1c", 7.9, "%", "2026-01-15")
    assert "defer.uncontrolled-diabetes" not in ids(assessed(b))


# ---- weight loss and pregnancy by code alone (display text gives nothing away) ------------------
@pytest.mark.parametrize("icd,onset,verification,fires", [
    ("R63.4", "2026-02-10", "confirmed", True),       # abnormal weight loss, recent
    ("R63.4", "2025-06-01", "confirmed", False),      # beyond the red-flag look-back
    ("R63.4", "2026-02-10", "refuted", False),
    ("R63.4", "2026-03-05", "confirmed", False),      # recorded after the as-of date
])
def test_coded_abnormal_weight_loss_is_a_red_flag(icd, onset, verification, fires):
    b = candidate()
    b.condition(icd, "Finding 1", onset, category="encounter-diagnosis", verification=verification)
    assert ("contraindication.red-flag" in ids(assessed(b))) is fires


@pytest.mark.parametrize("icd,fires", [("Z3A.21", True), ("Z34.82", True), ("Z39.2", False)])
def test_coded_pregnancy_weeks_give_the_pregnancy_caution(icd, fires):
    b = candidate(sex="female", birth="1992-04-02")
    b.condition(icd, "Encounter code", "2026-02-20", category="encounter-diagnosis")
    assert ("caution.pregnancy" in ids(assessed(b))) is fires


@pytest.mark.parametrize("icd,fires", [("L03.115", True), ("L03.116", False), ("L02.415", True), ("L02.416", False),
                                       ("L03.119", True)])  # unspecified limb: side unknown, counts (safety first)
def test_skin_infection_side_from_the_icd10_code(icd, fires):
    b = candidate()
    b.condition(icd, "Cellulitis of lower limb", "2026-02-25", category="encounter-diagnosis")
    assert ("contraindication.skin-infection-at-site" in ids(assessed(b))) is fires


@pytest.mark.parametrize("status,defers", [("active", True), ("on-hold", True), ("intended", False), ("not-taken", False),
                                           ("entered-in-error", False), ("stopped", False)])
def test_an_anticoagulant_statement_status_decides_the_hold(status, defers):
    b = BundleBuilder("ac")
    b.condition("M54.16", "Radiculopathy, lumbar region", "2025-10-01")
    b.therapy("2025-11-01", "2026-01-15", "Physical therapy - lumbar")
    b.medication("1114195", "rivaroxaban 20 mg daily", "2024-01-01", status=status)
    r = assessed(b, plan=("lumbar-epidural", None, "fluoroscopy", "dexamethasone", 10), anesthetic=None, amg=None)
    assert ("defer.anticoagulant-hold" in ids(r)) is defers


@pytest.mark.parametrize("text,status,fires", [("Fever", "active", True), ("Hot swollen right hip", "active", True),
                                               ("Fever", None, True), ("Fever", "resolved", False)])
def test_an_undated_current_problem_counts_as_current(text, status, fires):
    b = candidate()
    c = b.condition(None, text, "2026-02-25", category="encounter-diagnosis", status=status)
    for key in ("onsetDateTime", "recordedDate"):
        c.pop(key, None)
    assert ("contraindication.infection-suspected" in ids(assessed(b))) is fires


# ---- a coded range of glucose readings (valueRange) --------------------------------------------------
@pytest.mark.parametrize(("low", "high", "defers"), [(250, 350, True), (120, 180, False), (None, 320, True)])
def test_a_coded_glucose_range_counts_by_its_upper_end(low, high, defers):
    b = candidate()
    b.condition("E11.9", "Type 2 diabetes mellitus", "2015-01-01")
    r = b.lab("2339-0", "Glucose [Mass/volume] in Blood", 0, "mg/dL", "2026-02-25")
    del r["valueQuantity"]
    r["valueRange"] = {"high": {"value": high, "unit": "mg/dL", "code": "mg/dL"}}
    if low is not None:
        r["valueRange"]["low"] = {"value": low, "unit": "mg/dL", "code": "mg/dL"}
    assert ("defer.uncontrolled-diabetes" in ids(assessed(b))) is defers


# ---- AllergyIntolerance.type and .criticality ------------------------------------------------------
@pytest.mark.parametrize(("kind", "criticality", "reaction", "severity", "contraindicated"), [
    ("intolerance", "low", "Nausea", None, False),            # a non-immune side effect, typed so
    ("intolerance", None, "Muscle cramps", None, False),      # typed intolerance, no immune sign in the reaction
    ("intolerance", "low", "Hives", None, True),              # an immune sign is an allergy whatever the type
    ("intolerance", None, None, None, True),                  # no reaction described: cannot be explained away
    ("allergy", "high", "Flushing", None, True),              # high criticality: never explained away
    ("intolerance", "high", "Nausea", None, True),
    (None, None, "Facial flushing", "severe", True),          # a severe reaction counts as high criticality
    (None, "low", "Facial flushing", None, False),            # the earlier side-effect rule still applies
    ("allergy", "low", "Muscle cramps", None, True),          # an allergy with an unclassified reaction stands
])
def test_allergy_type_and_criticality_decide_with_the_reaction(kind, criticality, reaction, severity, contraindicated):
    b = candidate()
    r = b.allergy("10759", "Triamcinolone", reaction=reaction)
    if kind:
        r["type"] = kind
    if criticality:
        r["criticality"] = criticality
    if severity:
        r["reaction"][0]["severity"] = severity
    assert ("contraindication.drug-allergy" in ids(assessed(b))) is contraindicated


def test_an_intolerance_of_another_agent_is_not_read_as_this_one():
    b = candidate()
    r = b.allergy("6387", "Lidocaine", reaction="Nausea")
    r["type"] = "intolerance"
    b2 = candidate()
    r2 = b2.allergy("6387", "Lidocaine", reaction="Nausea")
    r2["criticality"] = "high"
    assert "contraindication.drug-allergy" not in ids(assessed(b))
    assert "contraindication.drug-allergy" in ids(assessed(b2))
