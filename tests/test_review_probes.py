"""Review-mode wording found by probing unseen-style notes (vignettes t440-t473): relief told by how long it
lasted, outcome instruments and 0-100 pain scales, other people's illnesses, entries dated after the note,
bilateral injections judged per side, and harms after the injection."""

from __future__ import annotations

import pytest
from test_notes import ids, review_note

from injectwise.adapters.notes.extract import _one_side, outcome_measure_mark
from injectwise.engine.facts import relief_span_days

HIP = "Date: 05/11/2026\nUS-guided R hip intra-articular injection on 03/02/2026 with triamcinolone 40 mg and lidocaine.\n"


@pytest.mark.parametrize("words,days", [
    ("the relief lasted about 3 weeks and then wore off", 21),
    ("good relief for a month, then it gradually wore off", 30),
    ("much better for about six weeks and is now gradually returning", 42),
    ("relief for two weeks, then the pain came back to baseline", 14),
    ("she had two good weeks, then the pain returned", 14),
    ("worked great for about 3 weeks but now it is back", 21),
])
def test_relief_span_is_read_in_days(words, days):
    got = relief_span_days(words)
    assert got is not None and got[0] == days


def test_relief_without_it_wearing_off_is_no_span():
    assert relief_span_days("good relief for 3 weeks so far") is None


@pytest.mark.parametrize("said,response", [
    ("She says the relief lasted about 3 weeks and then wore off; the pain is back to how it was.", "partial"),
    ("Relief lasted about 8 weeks, then it wore off.", "responder"),
    ("Relief lasted 5 days, then it wore off.", "non-responder"),
])
def test_relief_that_wore_off_is_judged_by_how_long_it_lasted(tmp_path, kb, said, response):
    assert review_note(tmp_path, kb, HIP + said + "\n", "2026-05-11").outcome == response


@pytest.mark.parametrize("sentence,response", [
    ("Oxford Hip Score 18/48 before the injection, 34/48 today.", "responder"),
    ("HOOS JR was 52 before the injection and is 55 today.", "non-responder"),
    ("HOOS JR 50 before the injection, 62 today.", "partial"),
    ("Hip pain was 80/100 before the injection and is 20/100 today.", "responder"),
    ("Hip pain was 80/100 before the injection and is 70/100 today.", "non-responder"),
    ("Patient Global Impression of Change: much improved.", "responder"),
    # WOMAC: lower is better; the 0-96 total, the 0-100 normalised total, the 0-20 pain subscale (MCII 3 of 20)
    ("WOMAC 60/96 before the injection, 30/96 today.", "responder"),
    ("WOMAC total 48/100 before the injection and 20/100 today.", "responder"),
    ("WOMAC 60 before the injection, 55 today.", "non-responder"),
    ("WOMAC pain 14/20 before the injection, 6/20 today.", "responder"),
    ("WOMAC pain 12/20 before the injection, 8/20 today.", "partial"),
    ("WOMAC pain 12/20 before the injection, 10/20 today.", "non-responder"),
])
def test_outcome_instruments_and_0_100_scales_rate_the_response(tmp_path, kb, sentence, response):
    assert review_note(tmp_path, kb, HIP + sentence + "\n", "2026-05-11").outcome == response


def test_an_instrument_name_is_not_an_injection(tmp_path, kb):
    r = review_note(tmp_path, kb, HIP + "Oxford Hip Score 18/48 before the injection, 34/48 today.\n", "2026-05-11")
    assert r.subject["days_since"] == 70


def test_an_out_of_range_instrument_score_is_no_reading():
    assert outcome_measure_mark("Oxford Hip Score 18 before, 60 today") == ""


@pytest.mark.parametrize("sentence,label", [
    ("WOMAC 60/96 before, 30/96 today.", "WOMAC total 60 -> 30"),
    ("WOMAC 40% before, 20% today.", "WOMAC total 40 -> 20"),
    ("WOMAC pain subscale 70/100 before, 40/100 today.", "WOMAC pain subscale 70 -> 40"),
    ("WOMAC pain 14 before, 6 today.", "WOMAC pain subscale 14 -> 6"),
    ("ODI 40% before, 20% now.", "Oswestry Disability Index 40 -> 20"),
])
def test_an_instrument_is_read_on_the_scale_it_states(sentence, label):
    assert label in outcome_measure_mark(sentence)


@pytest.mark.parametrize("sentence", ["WOMAC function 40 before, 20 today.", "ODI 40/50 before, 20/50 now.",
                                      "WOMAC pain 14/40 before, 6/40 today."])
def test_a_subscale_or_a_scale_not_read_is_no_reading(sentence):
    assert outcome_measure_mark(sentence) == ""


@pytest.mark.parametrize("sentence", [
    "Her husband has a fever and a cough since Tuesday.",
    "A household member is on antibiotics for a chest infection.",
    "His wife is currently on antibiotics for cellulitis of her leg and had a fever last week.",
])
def test_another_persons_illness_is_not_the_patients(tmp_path, kb, sentence):
    r = review_note(tmp_path, kb, HIP + "Pain 7/10 before, 2/10 today. " + sentence + "\n", "2026-05-11")
    assert not [i for i in ids(r) if i.startswith(("urgent", "adverse.infection"))]


def test_the_husband_telling_of_the_patients_fever_still_counts(tmp_path, kb):
    r = review_note(tmp_path, kb, "Date: 03/06/2026\nLandmark R knee IA injection on 03/01/2026 (triamcinolone 40 mg). "
                    "Her husband says she has had a fever of 38.9 C since yesterday and the knee is hot and swollen.\n",
                    "2026-03-06")
    assert "urgent.infection-suspected" in ids(r)


@pytest.mark.parametrize("later", [
    "Addendum 06/20/2026: patient called, R hip hot and swollen since yesterday, temperature 38.9 C.",
    "On 06/20/2026 she developed a fever of 39.0 C and a hot swollen hip.",
])
def test_an_entry_dated_after_the_note_is_not_read(tmp_path, kb, later):
    text = ("Date: 06/10/2026\nUS-guided R hip IA injection on 04/29/2026 (triamcinolone 40 mg + lidocaine). "
            "Pain 7/10 before, 2/10 today. No fever.\n" + later + "\n")
    r = review_note(tmp_path, kb, text, "2026-06-10")
    assert r.outcome == "responder"
    assert not [i for i in ids(r) if i.startswith(("urgent", "adverse"))]


def test_a_plan_dated_after_the_note_is_still_read(tmp_path, kb):
    from test_notes import assess_note
    r = assess_note(tmp_path, kb, "Date: 06/10/2026\nR hip OA, completed 12 weeks of PT. "
                    "R total hip replacement booked for 07/15/2026.\n", "2026-06-10",
                    {"target": "hip-intra-articular", "side": "right", "guidance": "ultrasound",
                     "steroid": "triamcinolone", "dose": 40})
    assert "defer.planned-arthroplasty" in ids(r)


@pytest.mark.parametrize("text,side", [
    ("Left lateral hip pain 7/10 before, 2/10 now.", "left"),
    ("R knee pain 7/10.", "right"),
    ("Both knees 7/10.", ""),
    ("Left better than right, 5/10.", ""),
])
def test_one_side(text, side):
    assert _one_side(text) == side


def test_a_bilateral_injection_is_judged_per_side(tmp_path, kb):
    text = ("Date: 05/25/2026\n6 weeks after bilateral landmark greater trochanteric bursa injections on 04/13/2026 "
            "(triamcinolone 40 mg + lidocaine 1% 4 mL each side). Left lateral hip pain 7/10 before, 2/10 now. "
            "Right lateral hip pain 7/10 before, still 7/10 now. Completed 12 weeks of PT.\n")
    r = review_note(tmp_path, kb, text, "2026-05-25")
    assert r.outcome == "partial"
    assert {s["side"]: s["response"] for s in r.detail["per_side"]} == {"left": "responder", "right": "non-responder"}
    assert "urgent.infection-suspected" not in ids(r)  # one side's 2/10 and the other's 7/10 are no relapse


def test_a_new_foot_drop_after_a_known_radiculopathy_is_a_new_nerve_harm(tmp_path, kb):
    text = ("Date: 09/10/2026\nFluoroscopy-guided right L5 transforaminal epidural steroid injection on 09/08/2026 "
            "(dexamethasone 10 mg) for right L5 radiculopathy. Since yesterday new right foot drop: he cannot "
            "dorsiflex the right ankle.\n")
    got = ids(review_note(tmp_path, kb, text, "2026-09-10"))
    assert "adverse.neuropathy" in got and "urgent.progressive-neurological-deficit" in got


@pytest.mark.parametrize("scores,response", [
    ("ODI 48% before the injection, 22% today.", "responder"),  # lower is better: 54% and 26 points less
    ("ODI 48% before the injection, 44% today.", "non-responder"),
])
def test_a_lower_is_better_instrument_with_percent_scores(tmp_path, kb, scores, response):
    opening = ("Date: 06/15/2026\nFluoroscopy-guided L4-5 interlaminar epidural steroid injection on 05/04/2026 "
               "(triamcinolone 80 mg). ")
    assert review_note(tmp_path, kb, opening + scores + "\n", "2026-06-15").outcome == response


def test_an_addendum_dated_after_the_note_but_by_the_as_of_day_is_read(tmp_path, kb):
    text = ("Date: 07/10/2026\nUS-guided L subacromial bursa injection today, 07/10/2026 (triamcinolone 40 mg).\n"
            "Addendum 07/20/2026: patient called, L shoulder hot, red and swollen since yesterday, temperature 38.8 C.\n")
    assert "urgent.infection-suspected" in ids(review_note(tmp_path, kb, text, "2026-07-25"))


def test_a_score_is_not_its_own_date_and_b_l_is_bilateral(tmp_path, kb):
    text = ("Date: 10/05/2026\nF/u 6 wks s/p b/l knee IA injections (TA 40 mg each, US-guided) on 8/24/2026. "
            "L knee pain 7 -> 2/10. R knee unchanged at 7/10.\n")
    r = review_note(tmp_path, kb, text, "2026-10-05")
    assert {s["side"] for s in r.detail["per_side"]} == {"left", "right"}
    from test_notes import _record
    rec = _record(tmp_path, kb, text, "2026-10-05")
    assert all(o.when is None or o.when.month != 7 for o in rec.observations)
