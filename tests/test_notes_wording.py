"""Note wording found by probing unseen-style notes: drug names inside other drug names, anaesthetic doses
given as volume and strength, a date header on its own line, pain written as N/10, and injections counted
over a period whose dates the note does not give."""

from __future__ import annotations

import pytest
from test_notes import _record, assess_note, ids, review_note

from injectwise.engine.evaluate import PlanOverrides, assess

SUBACROMIAL = "Left shoulder pain, subacromial impingement. Home exercise program for 6 weeks, no better.\n"


def test_methylprednisolone_is_one_drug_not_also_prednisolone(tmp_path, kb):
    r = assess_note(tmp_path, kb, SUBACROMIAL + "Plan: left subacromial injection of methylprednisolone 40 mg.\n",
                    "2026-06-02")
    assert r.subject["steroid"]["drug"] == "methylprednisolone"
    assert r.subject["steroid"]["dose_mg"] == 40


@pytest.mark.parametrize("wording,drug,mg", [
    ("methylprednisolone 40 mg + lidocaine 2 mL 1%", "lidocaine", 20),
    ("methylprednisolone 40 mg and 4 mL of 1% lidocaine", "lidocaine", 40),
    ("methylprednisolone 40 mg with lidocaine 1% 5 ml", "lidocaine", 50),
    ("methylprednisolone 40 mg + ropivacaine 0.5% 2 mL", "ropivacaine", 10),
    ("methylprednisolone 40 mg + bupivacaine 0.25% 4 cc", "bupivacaine", 10),
    ("methylprednisolone 40 mg + lidocaine 10 mg/mL 3 mL", "lidocaine", 30),
])
def test_an_anaesthetic_given_as_volume_and_strength_is_converted_to_mg(tmp_path, kb, wording, drug, mg):
    r = assess_note(tmp_path, kb, SUBACROMIAL + f"Plan: left subacromial injection, {wording}.\n", "2026-06-02")
    got = {a["drug"]: a["dose_mg"] for a in r.subject["anesthetics"]}
    assert got.get(drug) == pytest.approx(mg)


def test_a_volume_without_a_strength_stays_unknown(tmp_path, kb):
    r = assess_note(tmp_path, kb, SUBACROMIAL + "Plan: left subacromial injection, methylprednisolone 40 mg + "
                    "lidocaine 4 mL.\n", "2026-06-02")
    assert [a["dose_mg"] for a in r.subject["anesthetics"]] == [None]


@pytest.mark.parametrize("text,dated", [
    # a "Date:" heading line is not glued to the first sentence (it would be a second injection date)
    ("Date: 2026-04-20\nFollow-up 3 days after right hip intra-articular injection (triamcinolone 40 mg, "
     "US guided, 2026-04-17).\n", "2026-04-17"),
    # a month/day date is still a date beside N/10 pain scores
    ("US-guided R hip IA injection 3/10 (triamcinolone 40 mg). Pain 7/10 before, 6/10 now.\n", "2026-03-10"),
])
def test_the_injection_is_dated_once_by_its_own_date(tmp_path, kb, text, dated):
    rec = _record(tmp_path, kb, text, "2026-04-20")
    assert [p.start.date().isoformat() for p in rec.procedures if p.start] == [dated]


def test_pain_written_as_n_over_ten_is_a_score_not_a_date(tmp_path, kb):
    text = ("Right hip intra-articular injection (triamcinolone 40 mg + lidocaine 40 mg, US guided) on 2026-04-17. "
            "Pain 8/10 before, 2/10 for 3 hours afterwards, now 8/10 again.\n")
    rec = _record(tmp_path, kb, text, "2026-04-20")
    pains = [(o.when.date().isoformat() if o.when else None, o.value) for o in rec.observations
             if o.code.text.startswith("pain")]
    assert all(d is not None and d >= "2026-04-17" for d, _ in pains), pains
    assert {v for _, v in pains} == {8.0, 2.0}
    r = review_note(tmp_path, kb, text, "2026-04-20")
    assert r.outcome == "too-early"


def test_injections_counted_over_years_do_not_invent_the_last_date(tmp_path, kb):
    text = ("Twelve injections to the low back, SI joint and hip over the past 4 years; none gave lasting relief. "
            "Requests another hip injection.\n")
    rec = _record(tmp_path, kb, text, "2026-03-05")
    r = assess(rec, kb, __import__("datetime").date(2026, 3, 5), PlanOverrides(
        target="hip-intra-articular", side="right", guidance="ultrasound", steroid="triamcinolone", dose=40))
    assert "defer.injection-interval" not in ids(r)  # when the last one was is not stated
    assert any("without a stated date" in u for u in r.unknowns), r.unknowns
    assert "defer.repeated-nonresponse" in ids(r)


def test_an_anticoagulant_stopped_long_ago_is_not_current(tmp_path, kb):
    knee = {"target": "knee-intra-articular", "side": "right", "guidance": "ultrasound", "steroid": "triamcinolone",
            "dose": 40}
    r = assess_note(tmp_path, kb, "R knee OA, PT done. Warfarin stopped in 3/2025. Platelets 210 on 4/28.\n",
                    "2026-05-01", knee)
    assert "caution.anticoagulant" not in ids(r)
    current = assess_note(tmp_path, kb, "R knee OA, PT done. Apixaban 5 mg BID for AF.\n", "2026-05-01", knee)
    assert "caution.anticoagulant" in ids(current)
    recent = _record(tmp_path, kb, "R knee OA, PT done. Warfarin stopped 4 days ago for the procedure.\n",
                     "2026-05-01")
    assert {m.status for m in recent.medications} == {"on-hold"}  # a hold for this procedure, not a discontinuation


HIP = {"target": "hip-intra-articular", "side": "right", "guidance": "ultrasound", "steroid": "triamcinolone",
       "dose": 40}
HIP_OA = "63 yo F, R hip OA, PT completed 2025. "
WARFARIN = "71 yo M on warfarin for AF, R hip OA, PT completed 2025. "


def reports(tmp_path, kb, text: str, on: str, finding: str, plan: dict | None = None) -> bool:
    """Whether assessing the note alone (the plan from options or from the note) reports `finding`."""
    return finding in ids(assess_note(tmp_path, kb, text, on, plan))


@pytest.mark.parametrize("sentence", [
    "No history of cancer.",
    "Pt has no history of malignancy.",
    "Breast cancer 2012, treated, in remission.",
    "Breast cancer in 2012, in remission since.",
])
def test_a_denied_or_remote_cancer_is_not_a_red_flag(tmp_path, kb, sentence):
    r = assess_note(tmp_path, kb, HIP_OA + sentence + " Plan US-guided R hip IA.\n", "2026-06-01", HIP)
    assert "contraindication.red-flag" not in ids(r), [f.evidence for f in r.findings]


@pytest.mark.parametrize("sentence", [
    "Unexplained weight loss of 8 kg and night pain over 3 months; history of breast cancer.",
    "Metastatic breast cancer, on chemotherapy.",
])
def test_cancer_with_red_flag_features_or_active_cancer_is_a_red_flag(tmp_path, kb, sentence):
    r = assess_note(tmp_path, kb, HIP_OA + sentence + " Plan US-guided R hip IA.\n", "2026-06-01", HIP)
    assert "contraindication.red-flag" in ids(r)


@pytest.mark.parametrize("course", ["pain 7 -> 2 at 4 weeks, back to 7 now",
                                    "pain 7/10 -> 2/10 at 4 weeks, back to 7/10 now",
                                    "pain went from 7 to 2 at 4 weeks and is back to 7 now"])
def test_pain_course_written_with_arrows_or_words_is_read(tmp_path, kb, course):
    text = ("R lateral epicondylitis, eccentric PT done. R lateral epicondyle steroid injection (TA 40 mg, landmark) "
            f"3 months ago: {course}.\n")
    r = review_note(tmp_path, kb, text, "2026-06-15")
    assert r.outcome == "partial", (r.outcome, r.unknowns)


@pytest.mark.parametrize("wording,mg", [
    ("Kenalog-40 1 mL", 40), ("Kenalog-10 2 mL", 20), ("Kenalog 40 mg/mL, 2 mL", 80), ("Kenalog 40 mg", 40),
    ("triamcinolone 40mg/1mL", 40), ("triamcinolone 40 mg/1 mL, 2 mL", 80), ("Celestone Soluspan 6 mg", 6),
    ("Kenalog 40", None),  # 40 mg or 2 mL of Kenalog-40? The note does not say: unknown, not guessed
    ("Celestone Soluspan 2 mL", 12), ("Celestone 1 mL", 6),  # one strength only: 6 mg/mL
    ("Kenalog 2 mL", None), ("Depo-Medrol 1 mL", None),  # sold in several strengths: unknown
])
def test_steroid_doses_written_as_products_volumes_and_strengths(tmp_path, kb, wording, mg):
    r = assess_note(tmp_path, kb, f"R knee OA, PT done 2025.\nPlan: R knee IA injection under US, {wording} with "
                    "lidocaine 1% 3 mL.\n", "2026-06-01")
    assert r.subject["steroid"]["dose_mg"] == mg
    assert [a["dose_mg"] for a in r.subject["anesthetics"]] == [30]


@pytest.mark.parametrize("text,advanced", [
    ("R hip OA KL 4 on X-ray.", True), ("R hip OA, KL grade 3.", True), ("KL 4 osteoarthritis of the R hip.", True),
    ("R hip OA KL 2 on X-ray.", False), ("No severe OA on the X-ray.", False),
])
def test_advanced_osteoarthritis_by_grade_before_or_after_the_disease(kb, text, advanced):
    from injectwise.language import analyze
    found = [m for m in analyze(text, kb).mentions if m.concept == "advanced-osteoarthritis" and not m.negated]
    assert bool(found) is advanced


def test_injections_counted_since_a_date_fall_in_that_period(tmp_path, kb):
    rec = _record(tmp_path, kb, "Three landmark R trochanteric steroid injections since 6/2025, little help.\n",
                  "2026-06-20")
    starts = sorted(p.start.date().isoformat() for p in rec.procedures if p.start)
    assert len(starts) == 3 and starts[0] >= "2025-06-01" and starts[-1] <= "2026-06-20"
    assert all(p.date_estimated for p in rec.procedures if p.start)


@pytest.mark.parametrize("sentence,on,response", [
    ("S/p US-guided R hip IA triamcinolone 40 mg injection 3 weeks ago with 80% relief, still better.", "2026-06-20",
     "responder"),
    ("US-guided R hip IA triamcinolone 40 mg injection 3 weeks ago, helped about 35%.", "2026-06-20", "partial"),
    ("US-guided R hip IA triamcinolone 40 mg injection on 5/1/2026, improvement of 10%.", "2026-06-20", "non-responder"),
    ("R hip IA steroid injection under fluoro on 5/1/2026 with 90% relief for the first hour, none since.", "2026-06-20",
     "non-responder"),  # the first hour is the anaesthetic; "none since" is the steroid
    ("R hip IA steroid injection under fluoro on 5/1/2026. Relief for 2 days only, then back to baseline.", "2026-06-20",
     "non-responder"),
    ("R hip IA triamcinolone injection on 5/1/2026, good relief lasting 12 weeks.", "2026-08-20", "responder"),
    ("R hip IA triamcinolone injection on 6/10/2026 with 80% relief.", "2026-06-15", "too-early"),
])
def test_the_response_in_the_patients_words_when_there_are_no_scores(tmp_path, kb, sentence, on, response):
    assert review_note(tmp_path, kb, sentence + "\n", on).outcome == response


@pytest.mark.parametrize("plan,target,steroid_mg,anaesthetic_mg", [
    ("Will inject L GT bursa with 1 mL Kenalog-40 + 2 mL 1% lidocaine, US guided.", "greater-trochanteric-bursa", 40, 20),
    ("Plan fluoroscopic L SIJ injection, 40 mg triamcinolone + 1 mL 0.5% bupivacaine.", "sacroiliac-joint", 40, 5),
    ("Plan L gluteal trigger point injections, triamcinolone 20 mg + lidocaine 1% 5 mL.", "trigger-point", 20, 50),
    ("Plan L L4-5 facet joint injection with 1 mL Depo-Medrol 40.", "lumbar-facet", 40, None),
])
def test_target_abbreviations_and_product_strengths_in_a_plan(tmp_path, kb, plan, target, steroid_mg, anaesthetic_mg):
    r = assess_note(tmp_path, kb, "Left-sided pain, PT done last year. " + plan + "\n", "2026-06-20")
    assert r.subject["target"] == target and r.subject["steroid"]["dose_mg"] == steroid_mg
    assert [a["dose_mg"] for a in r.subject["anesthetics"]] == ([anaesthetic_mg] if anaesthetic_mg else [])


@pytest.mark.parametrize("sentence,finding,fires", [
    ("Abrasion over the R lateral hip at the planned site.", "contraindication.skin-infection-at-site", True),
    ("Healed abrasion of the L knee last year.", "contraindication.skin-infection-at-site", False),
    ("On prednisone 20 mg daily for polymyalgia.", "caution.immunosuppression", True),
    # taken now, since when unknown: maintenance until shown to be short (IDSA counts any dose for weeks)
    ("On prednisone 5 mg daily for polymyalgia.", "caution.immunosuppression", True),
    ("Prednisone 5 mg daily for 5 days for a gout flare.", "caution.immunosuppression", False),
    ("Finishing a Medrol dose pack this week.", "caution.immunosuppression", False),
    ("Prednisone taper from 40 mg, last dose tomorrow.", "caution.immunosuppression", False),
    ("Kenalog 40 mg.", "caution.immunosuppression", False),  # a depot steroid named alone is no daily medicine
])
def test_broken_skin_and_immunosuppressive_prednisone(tmp_path, kb, sentence, finding, fires):
    r = assess_note(tmp_path, kb, f"R hip OA, PT done 2025. {sentence} Plan US-guided R hip IA triamcinolone 40 mg.\n",
                    "2026-06-20")
    assert (finding in ids(r)) is fires


@pytest.mark.parametrize("sentence,fires", [
    ("Bleeding disorder: hemophilia A.", True), ("Von Willebrand disease type 1.", True),
    ("No bleeding disorder.", False), ("Mother has von Willebrand disease.", False),
])
def test_a_bleeding_disorder_in_a_note(tmp_path, kb, sentence, fires):
    r = assess_note(tmp_path, kb, f"L knee OA, PT done 2025. {sentence} Plan US-guided L knee IA triamcinolone 40 mg.\n",
                    "2026-06-20")
    assert ("caution.bleeding-disorder" in ids(r)) is fires


@pytest.mark.parametrize("sentence,red_flag", [
    # weight loss as a finding is a red flag, as a goal it is not
    ("Unintentional weight loss of 6 kg.", True),
    ("Lost 7 kg without trying since spring.", True),
    ("6 kg weight loss in 3 months and pain at night waking her.", True),  # weight loss with night pain
    ("Night pain from the hip OA; weight stable.", False),
    ("Weight loss advised; BMI 36.", False),
    ("Lost 5 kg on a diet this year, pleased.", False),
    ("Denies weight loss or night sweats.", False),
    # absent pulses in any wording
    ("Absent L dorsalis pedis and posterior tibial pulses.", True),
    ("Pedal pulses not palpable on the left.", True),
    ("Absent ankle reflexes and pedal pulses present.", False),
    ("Pedal pulses palpable, no absent pulses.", False),
    # shorthand in capitals; "Ca" is cancer only beside an organ
    ("PMH: BREAST CA 2019. PAIN WORSE AT NIGHT, WAKES HER. UNINTENTIONAL 5 KG WT LOSS.", True),
    ("Ca 2.4 mmol/L, vitamin D normal.", False),
])
def test_weight_loss_and_absent_pulses_in_a_note_as_red_flags(tmp_path, kb, sentence, red_flag):
    text = HIP_OA + sentence + " Plan US-guided R hip IA.\n"
    assert reports(tmp_path, kb, text, "2026-06-01", "contraindication.red-flag", HIP) is red_flag


@pytest.mark.parametrize("sentence,pregnant", [
    ("G2P1 at 21 weeks.", True), ("GA 21+3, uncomplicated.", True), ("Pregnant, 21/40.", True),
    ("G2P2, last delivery 2019.", False), ("Not pregnant (negative test today).", False),
    # a test result in words
    ("Urine hCG positive today, about 6 weeks by dates.", True), ("Positive pregnancy test yesterday.", True),
    ("Beta-hCG was positive.", True), ("Pregnancy test negative.", False),
    ("Last month's pregnancy test was negative.", False),
])
def test_pregnancy_wordings(tmp_path, kb, sentence, pregnant):
    r = assess_note(tmp_path, kb, f"34 yo F, L lateral hip pain, PT 8 weeks done. {sentence} Plan L GTB injection "
                    "under US, triamcinolone 40 mg.\n", "2026-08-10")
    assert ("caution.pregnancy" in ids(r)) is pregnant


@pytest.mark.parametrize("plan,target", [
    ("TFESI R L5 with dexamethasone 10 mg 3 weeks ago, no relief.", "lumbar-transforaminal"),
    ("L5-S1 ILESI under fluoroscopy 3 weeks ago, triamcinolone 40 mg, no relief.", "lumbar-epidural"),
    ("R SASD bursa injection 3 weeks ago under US, triamcinolone 40 mg, no relief.", "subacromial-bursa"),
])
def test_injection_abbreviations_in_a_history(tmp_path, kb, plan, target):
    r = review_note(tmp_path, kb, "Pain for months, PT done last year. " + plan + "\n", "2026-06-22")
    assert r.subject["target"] == target and r.outcome == "non-responder", (r.subject, r.outcome)


@pytest.mark.parametrize("sentence,on,flare", [
    ("Since last night more pain, 8/10; afebrile, no redness or swelling.", "2026-04-03", True),
    ("Pain is worse since the injection, no fever.", "2026-04-02", True),
    ("Pain worse with walking and stairs, as before.", "2026-04-03", False),  # a pattern, not a rise
    ("Since last week more pain, 8/10.", "2026-04-20", False),  # beyond the flare window
])
def test_a_rise_in_pain_in_words_soon_after_the_injection_is_a_flare(tmp_path, kb, sentence, on, flare):
    text = f"L knee OA. L knee injected on 2026-04-01 (US-guided IA triamcinolone 40 mg). {sentence}\n"
    assert ("adverse.post-injection-flare" in ids(review_note(tmp_path, kb, text, on))) is flare


def test_relief_for_a_week_then_back_to_baseline_is_no_lasting_benefit(tmp_path, kb):
    text = ("R knee OA, injected on 2026-01-14 with triamcinolone 10 mg in 10 mL lidocaine 1% without aspirating. "
            "Slight relief for a week, then back to baseline.\n")
    r = review_note(tmp_path, kb, text, "2026-02-25")
    assert r.outcome == "non-responder" and "failure.inadequate-dose" in ids(r)


def test_a_lab_value_is_not_dated_by_a_duration_in_its_sentence(tmp_path, kb):
    rec = _record(tmp_path, kb, "R hip pain. 6 kg weight loss in 3 months, ESR 78.\n", "2026-03-20")
    esr = [o for o in rec.observations if o.code.text == "ESR"]
    assert [(o.value, o.when.date().isoformat()) for o in esr] == [(78.0, "2026-03-20")]


@pytest.mark.parametrize("sentence,held", [
    ("AF on apixaban; apixaban held since 3/9 (last dose 3/8 evening) for the planned ESI today.", True),
    ("Apixaban held for 3 days.", True),
    ("On apixaban, last dose this morning; ESI planned today.", False),
    ("On apixaban, took his dose this morning.", False),
])
def test_an_anticoagulant_hold_runs_from_the_last_dose(tmp_path, kb, sentence, held):
    text = (f"L5 radiculopathy, PT done last year. {sentence} Plan L4-5 interlaminar epidural steroid injection under "
            "fluoroscopy, dexamethasone 10 mg.\n")
    assert reports(tmp_path, kb, text, "2026-03-12", "defer.anticoagulant-hold") is not held


@pytest.mark.parametrize("sentence,tried", [
    ("PT was ordered in February but she did not attend any sessions.", False),
    ("Declined physical therapy.", False),
    ("Referred to PT last week.", False),
    ("Physical therapy referral placed, not yet started.", False),
    ("Completed PT in 2025; declined an injection then.", True),
    ("Referred to PT in 2025, completed 8 weeks.", True),
    ("PT was completed in 2025 without benefit.", True),
    # "PT with" after a therapy word is the therapy, not the patient
    ("Completed 12 weeks of PT with modest gains.", True),
    ("Six weeks of PT with no change.", True),
])
def test_therapy_ordered_or_declined_is_not_care_tried(tmp_path, kb, sentence, tried):
    text = f"58 yo F, R lateral hip pain for 3 months. {sentence} Plan US-guided R GTB injection, triamcinolone 40 mg.\n"
    assert reports(tmp_path, kb, text, "2026-05-10", "defer.conservative-care-not-tried") is not tried


@pytest.mark.parametrize("sentence,current", [
    ("DVT 2024, warfarin for 6 months, finished July 2024.", False),
    ("Warfarin course completed.", False),
    ("On warfarin for AF, INR 2.4 last week.", True),
])
def test_a_finished_anticoagulant_course_is_not_current(tmp_path, kb, sentence, current):
    r = assess_note(tmp_path, kb, f"Lumbar radiculopathy, PT done. {sentence} Plan L4-5 interlaminar epidural steroid "
                    "injection under fluoroscopy, dexamethasone 10 mg.\n", "2026-06-01")
    assert ("caution.anticoagulant" in ids(r) or "defer.anticoagulant-hold" in ids(r)) is current


@pytest.mark.parametrize("sentence,finding,fires", [
    ("Risks incl infection, skin depigmentation, fat atrophy, tendon rupture, transient hyperglycemia reviewed.",
     "defer.diagnosis-uncertain", False),
    ("Discussed risks of infection and tendon rupture; consented.", "contraindication.infection-suspected", False),
    ("Risks and benefits discussed; hot, swollen R lateral hip today.", "contraindication.infection-suspected", True),
    ("Gluteus medius tendon rupture on MRI last month.", "defer.diagnosis-uncertain", True),
])
def test_a_risk_discussion_lists_possibilities_not_findings(tmp_path, kb, sentence, finding, fires):
    r = assess_note(tmp_path, kb, f"58F, R lateral hip pain x 6 mo, PT x 8 wks done. {sentence} Plan US-guided R GTB "
                    "injection, triamcinolone 40 mg.\n", "2026-04-02")
    assert (finding in ids(r)) is fires, [f.id for f in r.findings]


def test_pain_now_from_baseline_and_pt_the_patient(tmp_path, kb):
    text = ("F/u R knee s/p IA CSI (methylprednisolone 40 mg + lido) 4/8, landmark. Pt reports ~60% better, pain 3/10 "
            "from 7/10, walking further.\n")
    rec = _record(tmp_path, kb, text, "2026-05-20")
    assert not [p for p in rec.procedures if p.category == "therapy"]  # "Pt reports" is the patient
    r = review_note(tmp_path, kb, text, "2026-05-20")
    assert r.outcome == "responder", (r.outcome, r.unknowns)


@pytest.mark.parametrize("sentence,grade", [("R hip OA KL 4.", 4), ("K-L grade 3 on X-ray.", 3),
                                            ("Kellgren-Lawrence grade of 2.", 2), ("OA of the R hip.", None)])
def test_a_kl_grade_in_a_note_is_a_radiograph_read(tmp_path, kb, sentence, grade):
    rec = _record(tmp_path, kb, sentence + "\n", "2026-05-20")
    got = [o.value for o in rec.observations if o.code.codings and o.code.codings[0].code == "kl-grade"]
    assert got == ([grade] if grade is not None else [])


@pytest.mark.parametrize("text,concept,negated,historical", [
    ("Cauda equina symptoms denied.", "cauda-equina", True, False),
    ("Saddle anaesthesia was denied.", "cauda-equina", True, False),
    ("Saddle anaesthesia since yesterday.", "cauda-equina", False, False),
    ("Prostate cancer 2010, no recurrence.", "malignancy", False, True),
    ("Breast cancer survivor.", "malignancy", False, True),
    ("Metastatic prostate cancer.", "malignancy", False, False),
])
def test_denied_after_a_finding_and_a_cancer_without_recurrence(kb, text, concept, negated, historical):
    from injectwise.language import analyze
    found = [m for m in analyze(text, kb).mentions if m.concept == concept]
    assert found and (found[0].negated, found[0].historical) == (negated, historical)


@pytest.mark.parametrize("sentence,fires", [
    ("Blood sugars 250-300 mg/dL for 3 days after, now back to 140.", True),
    ("Blood sugars 120-140 mg/dL since the injection.", False),
])
def test_glucose_for_n_days_after_the_injection(tmp_path, kb, sentence, fires):
    text = ("R knee OA, T2DM on metformin, PT done 2025. US-guided R knee IA triamcinolone 40 mg + lidocaine on "
            f"2026-05-01. Pain 7/10 before, 7/10 today. {sentence}\n")
    assert ("adverse.hyperglycemia" in ids(review_note(tmp_path, kb, text, "2026-06-10"))) is fires


@pytest.mark.parametrize("course,anaesthetic", [
    ("Pain 7/10 before, 1/10 an hour after, 7/10 today.", "relief"),
    ("Pain 7/10 before, 7/10 an hour after and 7/10 today.", "no-relief"),
    ("Pain 7/10 before, 0/10 immediately after, 7/10 today.", "relief"),
])
def test_scores_in_the_hours_after_are_the_anaesthetic_phase(tmp_path, kb, course, anaesthetic):
    text = f"R hip pain, PT done 2025. US-guided R hip IA triamcinolone 40 mg + lidocaine on 2026-05-01. {course}\n"
    r = review_note(tmp_path, kb, text, "2026-06-10")
    assert r.detail["anesthetic_phase"] == anaesthetic and r.outcome == "non-responder"
    assert "urgent.infection-suspected" not in ids(r)  # relief that was the anaesthetic is no "relapse"


def test_pain_radiating_below_the_knee_is_radicular_not_a_knee_problem(kb):
    from injectwise.language import analyze
    got = {m.concept for m in analyze("Pain radiates below the knee, L5 distribution.", kb).mentions}
    assert "radicular-pain" in got and "knee-disorder" not in got


@pytest.mark.parametrize("sentence,target,drug,mg", [
    ("R SI joint inj w/ 40 mg TA under fluoro 3/2.", "sacroiliac-joint", "triamcinolone", 40),
    ("s/p CSI to the R shoulder on 3/2 (Kenalog 40mg/1cc + 4cc 1% lido).", "subacromial-bursa", "triamcinolone", 40),
    ("R hip arthrogram with steroid 3/2.", "hip-intra-articular", None, None),
])
def test_injection_shorthand_in_a_history(tmp_path, kb, sentence, target, drug, mg):
    r = review_note(tmp_path, kb, "Pain for months, PT done last year. " + sentence + "\n", "2026-05-20")
    steroid = r.subject["steroid"] or {}
    assert r.subject["target"] == target and steroid.get("dose_mg") == mg, r.subject
    if drug:
        assert steroid.get("drug") == drug


@pytest.mark.parametrize("sentence,fires", [
    ("Three R knee steroid injections in the past year, each helped about 3 months.", True),
    ("Two R knee steroid injections in the past year, each helped about 4 months.", False),
])
def test_injections_counted_in_the_past_year_count_toward_the_yearly_limit(tmp_path, kb, sentence, fires):
    plan = {"target": "knee-intra-articular", "side": "right", "guidance": "ultrasound", "steroid": "triamcinolone",
            "dose": 40}
    r = assess_note(tmp_path, kb, f"R knee OA, PT done 2025. {sentence} Plan US-guided R knee IA.\n", "2026-06-01", plan)
    assert ("defer.exposure-limit" in ids(r)) is fires


@pytest.mark.parametrize("text,concept,negated,historical", [
    # a whole parenthesis does not end a scope, and a comma aside naming no other concept does not either
    ("R knee septic arthritis (Staph aureus) in October 2025, washed out and treated, resolved.", "joint-infection",
     False, True),
    ("No effusion (on US) or warmth.", "hot-joint", True, False),
    # a trigger inside a parenthesis never reaches out of it
    ("Hip pain (no fever) hot swollen knee.", "hot-joint", False, False),
    # an aside that names another concept still ends the reach of "resolved"
    ("Fever, hot swollen knee, resolved.", "fever", False, False),
])
def test_parentheses_and_asides_in_scopes(kb, text, concept, negated, historical):
    from injectwise.language import analyze
    m = next(m for m in analyze(text, kb).mentions if m.concept == concept)
    assert (m.negated, m.historical) == (negated, historical)


def test_a_dotted_capital_i_does_not_shift_what_a_note_says(tmp_path, kb):
    # "İ" lower-cases to two characters; every later offset would shift and cues be missed
    rec = _record(tmp_path, kb, "Seen by Dr. " + "İ" * 30 + ". Hives to triamcinolone. Plan: rest.\n", "2026-06-01")
    assert [a.code.text for a in rec.allergies]


@pytest.mark.parametrize("sentence,defers", [
    ("Home exercises from a YouTube video for a week.", True),  # completed, but far short of a trial
    ("Completed 4 PT sessions over 8 weeks.", False),
    ("PT completed 3/1/2026.", False),  # one date: how long is not known, not "too short"
    ("Ibuprofen for 2 weeks, no PT yet.", True),
])
def test_a_completed_course_shorter_than_a_trial_is_not_care_tried(tmp_path, kb, sentence, defers):
    text = f"46F, R lateral hip pain for 4 months, tender GT. {sentence} Requests an injection.\n"
    plan = {"target": "greater-trochanteric-bursa", "side": "right", "guidance": "ultrasound", "steroid": "triamcinolone",
            "dose": 40}
    assert reports(tmp_path, kb, text, "2026-05-01", "defer.conservative-care-not-tried", plan) is defers


# ---- 2026-12-05 probing: wordings that were misread --------------------------------------------------------


@pytest.mark.parametrize("opening", ["34F", "67 F", "101F"])
def test_age_and_sex_shorthand_is_not_a_temperature(tmp_path, kb, opening):
    rec = _record(tmp_path, kb, f"{opening} L knee OA, PT done 2025. Plan L knee injection.\n", "2026-03-02")
    temps = [o.value for o in rec.observations if o.code.codings and o.code.codings[0].code == "body-temperature"]
    assert all(93 <= t <= 110 or 34 <= t <= 43 for t in temps), temps
    assert opening != "34F" or not temps


@pytest.mark.parametrize("sentence,red_flag", [
    ("Exam: new weakness of L ankle dorsiflexion 3/5, was 5/5 last month; progressive over 2 weeks.", True),
    ("EHL strength from 5/5 to 3/5 since the last visit.", True),
    ("Numbness in the L foot is getting worse each week.", True),
    ("Hip abductor weakness and worsening pain.", False),
    ("Ankle dorsiflexion 5/5, EHL 5/5.", False),
    ("No progressive weakness.", False),
    ("Weakness 4/5 stable; pain worse over 2 weeks.", False),
])
def test_a_deficit_said_to_progress_is_a_red_flag(tmp_path, kb, sentence, red_flag):
    text = ("64M L5 radiculopathy, 3 months of PT. " + sentence +
            " Plan L L5 TFESI dexamethasone 10 mg under fluoroscopy.\n")
    assert reports(tmp_path, kb, text, "2026-03-02", "contraindication.red-flag") is red_flag


def test_pt_with_a_diagnosis_is_the_patient_and_leaves_therapy_unknown(tmp_path, kb):
    r = assess_note(tmp_path, kb, "67F L knee OA. Pt with knee OA here for an injection. Plan L knee IA triamcinolone "
                    "40 mg under US.\n", "2026-03-02")
    # a note that does not say whether therapy was tried leaves it unknown (incomplete data), never "tried"
    assert "defer.conservative-care-not-tried" not in ids(r)
    assert "caution.incomplete-data" in ids(r)


def test_new_symptoms_not_present_before_are_new_not_absent(tmp_path, kb):
    text = ("Follow-up six weeks after R greater trochanteric bursa injection (methylprednisolone 40 mg + lidocaine, "
            "landmark) on 1/19/2026. Lateral hip pain down from 7/10 to 3/10. Since the injection she has had new "
            "numbness and burning over the anterolateral R thigh, not present before.\n")
    r = review_note(tmp_path, kb, text, "2026-03-02")
    assert "adverse.neuropathy" in ids(r)
    assert r.outcome in ("responder", "partial")


@pytest.mark.parametrize("text,dated", [
    ("Phone follow-up 5 days after L knee injection (dexamethasone 8 mg, lidocaine). Back to 6/10.\n", "2026-02-25"),
    ("Seen today, 2 weeks post R knee injection (triamcinolone 40 mg). Pain 5/10.\n", "2026-02-16"),
    # the stated date wins over the interval, and the injection is recorded once
    ("Follow-up six weeks after R knee injection (triamcinolone 40 mg) on 1/15/2026. Pain 3/10.\n", "2026-01-15"),
    # a later event's interval after the injection does not date the injection
    ("R knee injection (triamcinolone 40 mg) on 1/15/2026; she started PT 2 weeks after the injection.\n",
     "2026-01-15"),
])
def test_an_injection_dated_by_the_time_since_it_at_this_visit(tmp_path, kb, text, dated):
    rec = _record(tmp_path, kb, text, "2026-03-02")
    assert [p.start.date().isoformat() for p in rec.procedures if p.start and "injection" in p.code.text] == [dated]


@pytest.mark.parametrize("text,on,anaesthetic_phase", [
    # a later visit: "from 7 to 3" is the course up to now
    ("R knee injection (triamcinolone 40 mg + lidocaine) on 1/19/2026. Knee pain down from 7/10 to 3/10.\n",
     "2026-03-02", False),
    # the procedure note of the same day: the anaesthetic phase
    ("R knee injection (triamcinolone 40 mg + lidocaine) today. Knee pain went from 7/10 to 3/10.\n",
     "2026-01-19", True),
    ("R knee injection (triamcinolone 40 mg + lidocaine) on 1/19/2026: pain 8 -> 3 in the first hour, 8/10 today.\n",
     "2026-03-02", True),
])
def test_pain_from_a_to_b_is_dated_by_what_the_note_is(tmp_path, kb, text, on, anaesthetic_phase):
    rec = _record(tmp_path, kb, text, on)
    low = [o for o in rec.observations if o.code.text.startswith("pain") and o.value == 3]
    assert len(low) == 1 and low[0].when is not None
    assert (low[0].when.date().isoformat() == "2026-01-19") is anaesthetic_phase


@pytest.mark.parametrize("sentence,allergy", [
    ("After her last steroid shot her face got flushed and she could not sleep; no rash, no hives.", False),
    ("Denies rash or hives after the last triamcinolone injection.", False),
    ("Hives after the last triamcinolone injection.", True),
    ("Not sure if she is allergic to lidocaine.", True),
])
def test_allergy_signs_that_are_denied_are_not_an_allergy(tmp_path, kb, sentence, allergy):
    rec = _record(tmp_path, kb, f"R shoulder impingement, PT done. {sentence} Plan R subacromial injection.\n",
                  "2026-11-20")
    assert bool(rec.allergies) is allergy, [a.code.text for a in rec.allergies]


@pytest.mark.parametrize("text,dated", [
    ("Had a cortisone shot in the R hip at an outside clinic two and a half months ago.\n", "2026-09-05"),
    ("R hip steroid injection a month and a half ago.\n", "2026-10-05"),
    ("Five weeks after R trochanteric injection: about 50% better.\n", "2026-10-16"),
])
def test_injection_dates_with_halves_and_at_the_start_of_a_follow_up_note(tmp_path, kb, text, dated):
    rec = _record(tmp_path, kb, text, "2026-11-20")
    assert [p.start.date().isoformat() for p in rec.procedures if p.start and "injection" in p.code.text] == [dated]


def test_early_relief_that_wore_off_is_not_todays_score(tmp_path, kb):
    """'8/10 to 2/10 for the rest of that day, then back to 8/10' in a follow-up note: the 2 is the anaesthetic
    phase. Read as today's score beside '8/10 today' it looked like relief followed by a sharp rise."""
    text = ("Follow-up: injected L SI joint under fluoroscopy on 8/11/2026 (triamcinolone 40 mg + bupivacaine). Pain "
            "went from 8/10 to 2/10 for the rest of that day, then back to 8/10 and has stayed there; 8/10 today.\n")
    r = review_note(tmp_path, kb, text, "2026-09-01")
    assert r.outcome == "non-responder"
    assert not [i for i in ids(r) if i.startswith("urgent.")]


def test_a_percent_rating_in_the_sentence_after_the_injection_is_the_response(tmp_path, kb):
    text = ("Seen 4 weeks after R knee IA injection (triamcinolone 40 mg + lidocaine, US guided). Feels 80% better, "
            "walking twice as far.\n")
    assert review_note(tmp_path, kb, text, "2026-09-10").outcome == "responder"


def test_a_flare_told_at_a_later_visit_is_dated_in_its_first_days(tmp_path, kb):
    text = ("3 weeks after L subacromial injection (methylprednisolone 40 mg + lidocaine, US) on 8/20/2026. Pain 7/10 "
            "before. Pain was worse for 2 days afterwards, then settled; now 3/10. No fever, no redness.\n")
    r = review_note(tmp_path, kb, text, "2026-09-10")
    assert "adverse.post-injection-flare" in ids(r)
    assert r.outcome in ("responder", "partial")  # "now 3/10" is today's score, not 10 March


@pytest.mark.parametrize("sentence,rupture", [
    ("Two weeks ago felt a sudden pop at the R elbow lifting a box, since then weak grip.", True),
    ("Elbow still aches when gripping.", False),
])
def test_a_sudden_pop_after_a_tendon_injection_is_a_rupture(tmp_path, kb, sentence, rupture):
    text = f"R lateral epicondyle injection (triamcinolone 20 mg) on 7/8/2026. {sentence}\n"
    assert ("adverse.tendon-rupture" in ids(review_note(tmp_path, kb, text, "2026-09-10"))) is rupture


KNEE_NOTE = "R knee OA, 12 weeks of PT done. {} Plan R knee IA triamcinolone 40 mg under US.\n"
HIP_NOTE = "74F R hip OA KL 3, PT done. {} Plan R hip IA triamcinolone 40 mg under US today.\n"


@pytest.mark.parametrize("note,sentence,finding,fires", [
    # an effusion is hot only when no negation stands between
    (KNEE_NOTE, "O: R knee: mild effusion, no erythema, no warmth, skin intact.", "contraindication.infection-suspected",
     False),
    (KNEE_NOTE, "Large effusion, warm to touch.", "contraindication.infection-suspected", True),
    # a replacement talked about is not a booked one
    (HIP_NOTE, "R THA booked for 12/14/2026.", "defer.planned-arthroplasty", True),
    (HIP_NOTE, "Considering R THA next spring.", "defer.planned-arthroplasty", False),
    (HIP_NOTE, "R THA discussed; she wishes to delay it.", "defer.planned-arthroplasty", False),
])
def test_assess_wordings_fire_or_stay_silent(tmp_path, kb, note, sentence, finding, fires):
    assert reports(tmp_path, kb, note.format(sentence), "2026-10-05", finding) is fires


def test_a_soap_plan_heading_is_the_plan(tmp_path, kb):
    text = ("S: R knee pain, 12 wks PT done.\nO: no warmth, skin intact.\nA: R knee OA.\n"
            "P: R knee IA injection today, triamcinolone 40 mg + 1% lidocaine 4 mL under US.\n")
    r = assess_note(tmp_path, kb, text, "2026-10-05")
    assert r.subject["target"] == "knee-intra-articular" and r.subject["steroid"]["dose_mg"] == 40


def test_a_request_to_repeat_plans_the_injection_the_note_described(tmp_path, kb):
    text = ("66F R GTPS. PT 3 months in 2025. R GTB injections (landmark, triamcinolone 40 mg) on 1/12/2026, 4/20/2026 "
            "and 7/27/2026; each helped about a week only. Requests a fourth today.\n")
    r = assess_note(tmp_path, kb, text, "2026-10-05")
    assert r.subject["target"] == "greater-trochanteric-bursa" and r.subject["side"] == "right"
    assert r.subject["steroid"]["dose_mg"] == 40
    assert {"defer.repeated-nonresponse", "defer.exposure-limit"} <= set(ids(r))


def test_sugars_in_the_300s_for_days_afterwards_are_dated_after_the_injection(tmp_path, kb):
    text = ("T2DM on metformin. R knee IA triamcinolone 40 mg on 9/28/2026. Her sugars were in the 300s for three days "
            "afterwards, now back to 140s.\n")
    r = review_note(tmp_path, kb, text, "2026-10-05")
    assert "adverse.hyperglycemia" in ids(r)
    assert "urgent.red-flag" not in ids(r)  # the peak fell in the expected days, it is not rising now


@pytest.mark.parametrize("text,dates", [
    ("Two prior R hip IA injections this year (Feb and June), each with good relief.\n", ["2026-02-01", "2026-06-01"]),
    ("The R hip shot on the 14th (US-guided, triamcinolone 40 mg) did nothing.\n", ["2026-09-14"]),
])
def test_months_without_a_year_and_a_day_of_the_month_date_injections(tmp_path, kb, text, dates):
    rec = _record(tmp_path, kb, text, "2026-10-05")
    got = sorted(p.start.date().isoformat() for p in rec.procedures if p.start and "injection" in p.code.text)
    assert got == dates  # "this year" is the period they fall in, never a date of its own


@pytest.mark.parametrize("wording,mg", [("methylprednisolone 80/lido", 80), ("Depo-Medrol 80/lido", None)])
def test_a_bare_number_after_a_generic_steroid_is_mg_after_a_brand_unknown(tmp_path, kb, wording, mg):
    r = review_note(tmp_path, kb, f"Inj R knee 9/1 ({wording}), landmark. Pre-inj pain 7/10. Now pain 2/10.\n",
                    "2026-10-05")
    assert r.subject["steroid"]["dose_mg"] == mg
    assert r.outcome == "responder"  # "Pre-inj pain 7/10" is the baseline


@pytest.mark.parametrize("sentence,response", [
    ('"The best I\'ve felt in years."', "responder"),
    ("Feels much better.", "responder"),
])
def test_the_patients_own_words_of_benefit(tmp_path, kb, sentence, response):
    text = f"S/p L GTB inj (US, triamcinolone 40 mg) 6 wks ago. {sentence}\n"
    assert review_note(tmp_path, kb, text, "2026-10-05").outcome == response


@pytest.mark.parametrize("wording,mg", [
    ("Celestone Soluspan 1 mL gave ~60% relief", 6),  # the product's own 6 mg/mL, not "60%" (600 mg)
    ("Kenalog 1 mL, 50% better after", None),
    ("Kenalog-40 1 mL, 50% better after", 40),
])
def test_a_percent_relief_beside_a_volume_is_not_a_strength(tmp_path, kb, wording, mg):
    from injectwise.engine.clinical import percent_strength
    rec = _record(tmp_path, kb, f"R SI joint injection 04/01/2026 ({wording}).\n", "2026-06-24")
    doses = [a.dose_value for a in rec.administrations if a.medication.text.lower().startswith(("betameth", "triamc"))]
    assert doses == [mg], doses
    assert percent_strength("~60% relief") is None and percent_strength("12% 2 mL") is None
    assert percent_strength("lidocaine 1% 4 mL") == 1 and percent_strength("0.5% bupivacaine") == 0.5


INFECTION, UNCONTROLLED = "contraindication.infection-suspected", "defer.uncontrolled-diabetes"
T2DM = "58 yo M, T2DM, R hip OA, PT completed 2025. "
YOUNG, PREGNANCY = "34 yo F, R hip OA, PT completed 2025. ", "caution.pregnancy"
# (opening of the note, sentence, finding, fires): the sentence alone decides whether the finding is reported
SENTENCE_CASES = [
    # an antibiotic course that is over, or one that prevents rather than treats, is no infection now
    (HIP_OA, "Had a UTI treated with nitrofurantoin last month, finished 3 weeks ago.", INFECTION, False),
    (HIP_OA, "On doxycycline long-term for acne.", INFECTION, False),
    (HIP_OA, "Takes amoxicillin before dental work (prophylaxis).", INFECTION, False),
    (HIP_OA, "On cephalexin for a UTI, day 2 of 7.", INFECTION, True),
    # a fever that is over by the note; one masked by an antipyretic is not
    (HIP_OA, "Febrile 38.6 two weeks ago with flu, now well.", INFECTION, False),
    (HIP_OA, "Fever 38.5 this morning despite paracetamol, now afebrile after an antipyretic.",
     INFECTION, True),
    (HIP_OA, "Chills and fever since Sunday.", INFECTION, True),
    # a question or form field answered no is a negation
    (YOUNG, "Is there any chance she is pregnant? No.", PREGNANCY, False),
    (YOUNG, "Pregnant: no.", PREGNANCY, False),
    (YOUNG, "Pregnancy status: not pregnant.", PREGNANCY, False),
    (YOUNG, "Pregnant? Yes, 14 weeks.", PREGNANCY, True),
    (YOUNG, "Pregnancy: ? unsure, LMP 7 weeks ago.", PREGNANCY, True),
    # a relative's allergy, or one delabelled, is not the patient's
    (HIP_OA, "Her daughter is allergic to lidocaine.", "contraindication.drug-allergy", False),
    (HIP_OA, "Lidocaine allergy listed but tolerated it for dental work; allergy delabelled by an allergist in 2024.",
     "contraindication.drug-allergy", False),
    (HIP_OA, "Her daughter is allergic to penicillin and she is allergic to lidocaine (hives).",
     "contraindication.drug-allergy", True),
    (HIP_OA, "Allergic to lidocaine (hives).", "contraindication.drug-allergy", True),
    # each value of a series keeps its own date: the latest decides
    (T2DM, "HbA1c 7.1% in 2024, 10.2% last month.", UNCONTROLLED, True),
    (T2DM, "HbA1c 10.2% in 2024, 7.1% last month.", UNCONTROLLED, False),
    (T2DM, "A1c 8.1% (3/2025) -> 9.4% (5/2026).", UNCONTROLLED, True),
    (T2DM, "HbA1c 7.9%, 5% weight loss since March.", UNCONTROLLED,
     False),  # a percentage of something else is no HbA1c
    (WARFARIN, "INR 2.4 last week, 3.6 today.", "defer.anticoagulation-out-of-range", True),
    (WARFARIN, "INR 3.6 last week, 2.4 today.", "defer.anticoagulation-out-of-range", False),
    (WARFARIN, "INR was 4.1 on 6/1, repeat 2.6 on 6/8.", "defer.anticoagulation-out-of-range", False),
    (WARFARIN, "INR 1.9, 3 injections so far.", "defer.anticoagulation-out-of-range", False),  # a count is no INR
]


@pytest.mark.parametrize("opening,sentence,finding,fires", SENTENCE_CASES)
def test_what_one_sentence_of_a_note_decides(tmp_path, kb, opening, sentence, finding, fires):
    text = opening + sentence + " Plan US-guided R hip IA triamcinolone 40 mg + lidocaine 1% 4 mL.\n"
    plan = None if finding == "contraindication.drug-allergy" else HIP  # the allergy cases plan lidocaine in the note
    assert reports(tmp_path, kb, text, "2026-06-10", finding, plan) is fires


@pytest.mark.parametrize("sentence,planned,prosthesis", [
    ("Awaiting THA consult; PT not tolerated due to pain.", False, False),
    ("Referred to ortho for consultation about a total hip replacement.", False, False),
    ("R THA booked for 2026-08-01.", True, False),
    ("R THA in 2019, now painful.", False, True),
])
def test_a_surgeons_opinion_still_to_come_is_neither_a_booked_nor_a_done_replacement(tmp_path, kb, sentence, planned,
                                                                                      prosthesis):
    text = HIP_OA + sentence + " Plan US-guided R hip IA.\n"
    found = ids(assess_note(tmp_path, kb, text, "2026-06-10", HIP))
    assert ("defer.planned-arthroplasty" in found) is planned and ("caution.prosthetic-joint" in found) is prosthesis


def test_a_planned_hyaluronic_acid_injection_is_assessed_not_refused(tmp_path, kb):
    """No steroid, still a needle into a joint: infection and the other safety checks apply."""
    text = "R knee OA, PT completed 2025. Temp 38.4 C today. Plan: US-guided R knee IA Synvisc-One 6 mL.\n"
    r = assess_note(tmp_path, kb, text, "2026-06-10")
    assert r.subject["target"] == "knee-intra-articular" and r.subject["steroid"] is None
    assert "contraindication.infection-suspected" in ids(r)


# ---- a range of home glucose readings is read as its upper end (any reading at or above 300 mg/dL) ------------
KNEE_PLAN = {"target": "knee-intra-articular", "side": "right", "guidance": "ultrasound", "steroid": "triamcinolone",
             "dose": 40}


@pytest.mark.parametrize("sentence,uncontrolled", [
    ("Sugars 250-350 at home.", True),
    ("BGs running 300s.", True),
    ("Home sugars ranging 250 to 340.", True),
    ("BG 250s-300s this week.", True),
    ("Fingerstick glucose 14-19 mmol/L this week.", True),   # 19 mmol/L is about 342 mg/dL
    ("BSL 15-22 mmol/L.", True),
    ("Blood sugars 180-220 mg/dL.", False),
    ("Sugars at home 120-160, well controlled.", False),
    ("Fingerstick glucose 6-9 mmol/L.", False),
    ("Glucose 7.2 - 3 days ago.", False),                     # a duration, not the upper end of a range
    ("Sugars were 250-350 in 2024, now 110-140.", False),       # the old range is dated out of the window
])
def test_a_home_glucose_range_counts_by_its_upper_end(tmp_path, kb, sentence, uncontrolled):
    text = f"Date: 1 Dec 2026. R knee OA, 12 weeks of PT done. T2DM on metformin. {sentence}\n"
    r = assess_note(tmp_path, kb, text, "2026-12-01", KNEE_PLAN)
    assert ("defer.uncontrolled-diabetes" in ids(r)) is uncontrolled


def test_a_glucose_range_is_one_result_with_its_range_in_the_label(tmp_path, kb):
    rec = _record(tmp_path, kb, "Date: 1 Dec 2026. T2DM. Sugars 250-350 at home.\n", "2026-12-01")
    got = [(o.value, o.code.text) for o in rec.observations if o.code.codings[0].code == "glucose"]
    assert len(got) == 1 and got[0][0] == 350 and "250-350" in got[0][1]


# ---- an intolerance in words: its stated side effects are its reaction when it names one agent ------------------
@pytest.mark.parametrize("sentence,contraindicated", [
    ("Kenalog intolerance - nausea and insomnia.", False),
    ("Intolerant of triamcinolone (flushing).", False),
    ("Kenalog intolerance, no rash, just insomnia.", False),
    ("Triamcinolone intolerance (hives).", True),
    ("Intolerance to triamcinolone.", True),                  # no reaction stated
    ("Allergy to triamcinolone - hives.", True),
    ("Allergy to triamcinolone; nausea with codeine.", True),  # whose nausea? not the triamcinolone's
])
def test_an_intolerance_with_side_effects_only_does_not_contraindicate(tmp_path, kb, sentence, contraindicated):
    text = f"Date: 1 Dec 2026. R knee OA, 12 weeks of PT done. {sentence}\n"
    r = assess_note(tmp_path, kb, text, "2026-12-01", KNEE_PLAN)
    assert ("contraindication.drug-allergy" in ids(r)) is contraindicated


# ---- an old, resolved septic arthritis dated in the note is not recent (its onset, not the note's date) ---------
@pytest.mark.parametrize("sentence,defers", [
    ("Septic arthritis of the R knee treated on 2024-03-05 and resolved.", False),
    ("Septic arthritis of the R knee in March 2024, resolved.", False),
    ("Septic arthritis of the R knee in August 2026, resolved.", True),
    ("History of septic arthritis of the R knee, resolved.", True),   # undated: the note's day, conservatively
])
def test_a_resolved_septic_arthritis_is_dated_by_its_onset(tmp_path, kb, sentence, defers):
    text = f"Date: 1 Dec 2026. R knee OA, 12 weeks of PT done. {sentence}\n"
    r = assess_note(tmp_path, kb, text, "2026-12-01", KNEE_PLAN)
    assert ("defer.diagnosis-uncertain.recent-joint-infection" in ids(r)) is defers
    assert "contraindication.infection-suspected" not in ids(r)
