"""FHIR shapes real EHRs send (issue 8 items 18-19): medication references and strengths, Observation
components and coded values, reasons linking conservative care to its problem, and bad or missing dates."""

import copy

import pytest
from conftest import D, ids
from hypothesis import given
from hypothesis import strategies as st
from test_rules import AS_OF, hip_candidate

from injectwise.adapters.fhir import read_bundle
from injectwise.core.errors import InputError
from injectwise.demo.builder import RXNORM, SNOMED, UCUM, BundleBuilder
from injectwise.engine.evaluate import assess, review

KENALOG = {"resourceType": "Medication", "code": {"text": "Kenalog-40 injectable suspension"},
           "ingredient": [{"itemCodeableConcept": {"coding": [{"system": RXNORM, "code": "10759",
                                                               "display": "triamcinolone"}]},
                           "strength": {"numerator": {"value": 40, "unit": "mg", "system": UCUM, "code": "mg"},
                                        "denominator": {"value": 1, "unit": "mL", "system": UCUM, "code": "mL"}}}]}


def _steroid_admin(b: BundleBuilder, proc_id: str, medication: dict, dose_ml: float) -> dict:
    return b.add({"resourceType": "MedicationAdministration", "status": "completed", "subject": b.subject,
                  "effectiveDateTime": "2025-12-01T10:00:00Z", "partOf": [{"reference": f"Procedure/{proc_id}"}],
                  "dosage": {"dose": {"value": dose_ml, "unit": "mL", "system": UCUM, "code": "mL"}}, **medication})


def _injected_by_reference(shape: str) -> BundleBuilder:
    b = hip_candidate(f"med{shape}")
    proc = b.injection("2025-12-01", "hip-intra-articular", "right", "ultrasound", None, None)
    med = copy.deepcopy(KENALOG)
    if shape == "contained":
        med["id"] = "k40"
        admin = _steroid_admin(b, proc["id"], {"medicationReference": {"reference": "#k40"}}, 1)
        admin["contained"] = [med]
    else:
        m = b.add(med)
        ref = {"reference": f"Medication/{m['id']}"}
        if shape == "absolute":
            ref = {"reference": f"https://ehr.example.org/fhir/Medication/{m['id']}"}
        body = {"medication": {"reference": ref}} if shape == "r5" else {"medicationReference": ref}
        _steroid_admin(b, proc["id"], body, 1)
    return b


@pytest.mark.parametrize("shape", ["bundled", "contained", "absolute", "r5"])
def test_medication_reference_with_strength_gives_the_dose_in_mg(kb, shape):
    b = _injected_by_reference(shape)
    b.pain("2025-12-01", 8)
    b.pain("2026-01-10", 3)
    r = review(read_bundle(b.bundle()), kb, D("2026-01-15"))
    steroid = r.subject["steroid"]
    assert steroid["drug"] == "triamcinolone" and steroid["dose_mg"] == 40


def test_r5_medication_concept_is_read(kb):
    b = hip_candidate("r5c")
    proc = b.injection("2025-12-01", "hip-intra-articular", "right", "ultrasound", None, None)
    b.add({"resourceType": "MedicationAdministration", "status": "completed", "subject": b.subject,
           "occurenceDateTime": "2025-12-01T10:00:00Z", "partOf": [{"reference": f"Procedure/{proc['id']}"}],
           "medication": {"concept": {"coding": [{"system": RXNORM, "code": "6902", "display": "methylprednisolone"}]}},
           "dosage": {"dose": {"value": 80, "unit": "mg"}}})
    r = review(read_bundle(b.bundle()), kb, D("2026-01-15"))
    assert r.subject["steroid"]["drug"] == "methylprednisolone" and r.subject["steroid"]["dose_mg"] == 80


def test_unresolvable_reference_keeps_its_display_and_says_dose_unknown(kb):
    b = hip_candidate("unres")
    proc = b.injection("2025-12-01", "hip-intra-articular", "right", "ultrasound", None, None)
    b.add({"resourceType": "MedicationAdministration", "status": "completed", "subject": b.subject,
           "effectiveDateTime": "2025-12-01T10:00:00Z", "partOf": [{"reference": f"Procedure/{proc['id']}"}],
           "medicationReference": {"reference": "Medication/elsewhere", "display": "triamcinolone acetonide"}})
    r = review(read_bundle(b.bundle()), kb, D("2026-01-15"))
    assert r.subject["steroid"]["drug"] == "triamcinolone"
    assert "corticosteroid dose not recorded" in r.unknowns


def test_observation_components_are_read_as_values(kb):
    b = hip_candidate("comp")
    b.add({"resourceType": "Observation", "status": "final", "subject": b.subject,
           "code": {"text": "Vital signs panel"}, "effectiveDateTime": "2026-03-01T08:00:00Z",
           "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                          "valueQuantity": {"value": 128, "unit": "mm[Hg]"}},
                         {"code": {"coding": [{"system": "http://loinc.org", "code": "8310-5",
                                               "display": "Body temperature"}]},
                          "valueQuantity": {"value": 38.6, "unit": "Cel", "code": "Cel"}}]})
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    r = assess(read_bundle(b.bundle()), kb, AS_OF)
    assert "contraindication.infection-suspected" in ids(r)
    rec = read_bundle(b.bundle())
    assert any(o.ref.endswith("#component-1") and o.value == 38.6 for o in rec.observations)


@pytest.mark.parametrize("key,value,expected", [
    ("valueCodeableConcept", {"coding": [{"system": SNOMED, "code": "10828004", "display": "Positive"}]}, "Positive"),
    ("valueString", "Gram-positive cocci in clusters", "Gram-positive cocci in clusters")])
def test_coded_and_string_observation_values_are_kept_as_text(key, value, expected):
    b = BundleBuilder("vals")
    b.add({"resourceType": "Observation", "status": "final", "subject": b.subject, "code": {"text": "Joint fluid"},
           "effectiveDateTime": "2026-02-01", key: value})
    (o,) = read_bundle(b.bundle()).observations
    assert expected in o.value_text


# ---- CarePlan.addresses / reasonReference: therapy for which problem -----------------------------
def _no_pt_hip() -> BundleBuilder:
    b = BundleBuilder("reason")
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2022-01-01")
    return b


def _pt_plan(b: BundleBuilder, reason_ref: str, kind: str) -> None:
    activity = {"detail": {"status": "completed", "code": {"coding": [{"system": SNOMED, "code": "91251008",
                                                                           "display": "Physical therapy"}]},
                           "scheduledPeriod": {"start": "2025-06-01", "end": "2025-09-01"}}}
    if kind == "careplan":
        b.add({"resourceType": "CarePlan", "status": "completed", "intent": "plan", "subject": b.subject,
               "addresses": [{"reference": reason_ref}], "activity": [activity]})
    elif kind == "servicerequest":
        b.add({"resourceType": "ServiceRequest", "status": "completed", "intent": "order", "subject": b.subject,
               "code": {"coding": [{"system": SNOMED, "code": "91251008", "display": "Physical therapy"}]},
               "authoredOn": "2025-06-01", "reasonReference": [{"reference": reason_ref}]})
    else:
        b.add({"resourceType": "Procedure", "status": "completed", "subject": b.subject,
               "code": {"coding": [{"system": SNOMED, "code": "91251008", "display": "Physical therapy"}]},
               "performedPeriod": {"start": "2025-06-01", "end": "2025-09-01"},
               "reasonReference": [{"reference": reason_ref}]})


@pytest.mark.parametrize("kind", ["careplan", "servicerequest", "procedure"])
def test_ankle_sprain_exercises_are_not_hip_physical_therapy(kb, kind):
    b = _no_pt_hip()
    sprain = b.condition("S93.401A", "Sprain of unspecified ligament of right ankle", "2025-05-20", status="resolved")
    _pt_plan(b, f"Condition/{sprain['id']}", kind)
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    assert "defer.conservative-care-not-tried" in ids(assess(read_bundle(b.bundle()), kb, AS_OF))


@pytest.mark.parametrize("kind", ["careplan", "servicerequest", "procedure"])
def test_physical_therapy_for_the_hip_problem_counts(kb, kind):
    b = _no_pt_hip()
    hip = b.resources[1]
    _pt_plan(b, f"Condition/{hip['id']}", kind)
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    assert "defer.conservative-care-not-tried" not in ids(assess(read_bundle(b.bundle()), kb, AS_OF))


# ---- 19. impossible or missing dates are reported, and safety values still count -----------------
def test_fever_with_an_impossible_date_still_blocks_and_is_reported(kb):
    b = hip_candidate("baddate")
    b.add({"resourceType": "Observation", "status": "final", "subject": b.subject,
           "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"}]},
           "effectiveDateTime": "2026-02-30", "valueQuantity": {"value": 38.9, "unit": "Cel", "code": "Cel"}})
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    r = assess(read_bundle(b.bundle()), kb, AS_OF)
    assert r.outcome == "do-not-inject" and "contraindication.infection-suspected" in ids(r)
    assert any("2026-02-30" in u and "not a valid date" in u for u in r.unknowns)


def test_observation_without_a_date_is_reported_not_dropped(kb):
    b = hip_candidate("nodate")
    b.add({"resourceType": "Observation", "status": "final", "subject": b.subject,
           "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
           "valueQuantity": {"value": 39.2, "unit": "Cel", "code": "Cel"}})
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    r = assess(read_bundle(b.bundle()), kb, AS_OF)
    assert "contraindication.infection-suspected" in ids(r)
    assert any("no effective date" in u for u in r.unknowns)


def test_condition_with_an_impossible_onset_still_counts(kb):
    b = hip_candidate("badcond")
    c = b.condition("R50.9", "Fever", "2026-02-28", category="encounter-diagnosis")
    c["onsetDateTime"] = c["recordedDate"] = "2026-02-31"
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    r = assess(read_bundle(b.bundle()), kb, AS_OF)
    assert "contraindication.infection-suspected" in ids(r)
    assert any(f"Condition/{c['id']}" in u for u in r.unknowns)


def test_good_dates_give_no_date_unknowns(kb):
    b = hip_candidate("gooddate")
    b.lab("8310-5", "Body temperature", 36.8, "Cel", "2026-02-28")
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    r = assess(read_bundle(b.bundle()), kb, AS_OF)
    assert r.outcome == "proceed" and not any("date" in u for u in r.unknowns)


def test_undated_pain_score_is_not_used_to_judge_response(kb):
    b = hip_candidate("undatedpain")
    b.injection("2025-12-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.pain("2025-12-01", 8)
    p = b.pain("2026-01-10", 2)
    del p["effectiveDateTime"]
    r = review(read_bundle(b.bundle()), kb, D("2026-01-15"))
    assert r.outcome == "unknown" and any("no effective date" in u for u in r.unknowns)


# ---- property: any ICD-10-CM-like code gives a known region and side or nothing, never an error ----

ICD_LIKE = st.from_regex(r"[A-Z][0-9]{2}(\.[0-9A-Z]{0,4})?", fullmatch=True)


@given(code=ICD_LIKE)
def test_icd10_locate_is_total(kb, code):
    region, side = kb.icd10_sites.locate(code)
    assert region is None or region in kb.regions
    assert side in (None, "right", "left", "bilateral")


def test_injection_with_an_impossible_date_is_one_clear_error(kb):
    b = hip_candidate("badinj")
    proc = b.injection("2025-12-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    proc["performedDateTime"] = "2025-02-30T10:00:00Z"
    with pytest.raises(InputError, match=r"no performed date.*2025-02-30.*not a valid date"):
        review(read_bundle(b.bundle()), kb, D("2026-01-15"))


def test_draft_order_with_contained_medication_and_volume_dose(kb):
    b = hip_candidate("draftml")
    sr = b.planned("hip-intra-articular", "right", "ultrasound", None, None)
    med = copy.deepcopy(KENALOG)
    med["id"] = "k40"
    b.add({"resourceType": "MedicationRequest", "status": "draft", "intent": "proposal", "subject": b.subject,
           "contained": [med], "medicationReference": {"reference": "#k40"},
           "reasonReference": [{"reference": f"ServiceRequest/{sr['id']}"}],
           "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 3, "unit": "mL", "code": "mL"}}]}]})
    r = assess(read_bundle(b.bundle()), kb, AS_OF)
    assert r.subject["steroid"]["dose_mg"] == 120 and "dose.above-recommended" in ids(r)


# ---- statuses with a local coding beside the HL7 one; note renditions and Binary attachments --------------
def _septic_condition(b: BundleBuilder, verification: str) -> None:
    c = b.condition("M00.9", "Septic arthritis, right hip", "2026-02-20", category="encounter-diagnosis")
    c["verificationStatus"] = {"coding": [
        {"system": "urn:oid:1.2.840.114350.1.13.0", "code": "LOCAL-7", "display": "Local status"},
        {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}]}


@pytest.mark.parametrize(("verification", "blocks"), [("refuted", False), ("entered-in-error", False),
                                                      ("confirmed", True)])
def test_hl7_status_wins_over_a_local_coding_listed_first(kb, verification, blocks):
    b = hip_candidate(f"st{verification}")
    _septic_condition(b, verification)
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    r = assess(read_bundle(b.bundle()), kb, D("2026-03-01"))
    assert ("contraindication.infection-suspected" in ids(r)) is blocks, ids(r)


FEVER_NOTE = "Date: 2026-02-28\nSince yesterday fever 38.9 C and the right hip is hot,\nswollen and red."


def _noted(prefix: str, contents: list[dict], contained: list[dict] | None = None, extra: list[dict] = ()):
    import base64 as b64

    from injectwise.adapters.notes import add_bundle_notes
    from injectwise.knowledge import load_knowledge

    b = hip_candidate(prefix)
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    for c in contents:
        if "data" in c and not c.get("keep"):
            c["data"] = b64.b64encode(c["data"].encode(c.pop("charset", "utf-8"))).decode()
        c.pop("keep", None)
    doc = {"resourceType": "DocumentReference", "status": "current", "subject": b.subject,
           "date": "2026-02-28T10:00:00Z", "content": [{"attachment": c} for c in contents]}
    if contained:
        doc["contained"] = contained
    b.add(doc)
    for r in extra:
        b.add(r)
    kb = load_knowledge()
    rec = read_bundle(b.bundle())
    add_bundle_notes(rec, kb, D("2026-03-01"))
    return rec, assess(rec, kb, D("2026-03-01"))


def test_html_note_wrapped_lines_and_breaks_read_like_the_plain_note():
    html = "<html><body><p>Date: 2026-02-28<br/>\nSince yesterday fever 38.9 C and the right hip is hot,\n" \
           "swollen and red.</p></body></html>"
    _rec, r = _noted("html", [{"contentType": "text/html", "data": html}])
    assert "contraindication.infection-suspected" in ids(r)
    quotes = [e.quote for f in r.findings for e in f.evidence if e.quote]
    assert any("hot, swollen and red" in q for q in quotes), quotes  # one sentence, not two paragraphs


def test_one_note_in_two_formats_is_read_once():
    from injectwise.adapters.notes.markup import to_plain

    html = "<p>" + FEVER_NOTE.replace("\n", "<br>") + "</p>"
    rec, r = _noted("rend", [{"contentType": "text/html", "data": html},
                             {"contentType": "text/plain; charset=utf-8", "data": FEVER_NOTE},
                             {"contentType": "application/pdf", "data": "%PDF-1.4 binary"}])
    assert rec.documents[0].text == FEVER_NOTE and rec.documents[0].content_type.startswith("text/plain")
    assert "contraindication.infection-suspected" in ids(r)
    assert to_plain(html, "text/html").count("38.9") == 1


def test_a_pdf_only_note_is_not_read_as_text():
    rec, r = _noted("pdf", [{"contentType": "application/pdf", "data": FEVER_NOTE}])
    assert rec.documents[0].text == "" and "contraindication.infection-suspected" not in ids(r)


@pytest.mark.parametrize("where", ["bundle", "contained", "absolute"])
def test_attachment_url_to_a_binary_is_followed(where):
    import base64 as b64

    data = b64.b64encode(FEVER_NOTE.encode()).decode()
    binary = {"resourceType": "Binary", "id": "note1", "contentType": "text/plain", "data": data}
    url = {"bundle": "Binary/note1", "contained": "#note1", "absolute": "https://ehr.example.org/fhir/Binary/note1"}
    rec, r = _noted(f"bin{where}", [{"contentType": "text/plain", "url": url[where]}],
                    contained=[binary] if where == "contained" else None,
                    extra=[] if where == "contained" else [binary])
    assert "38.9" in rec.documents[0].text
    assert "contraindication.infection-suspected" in ids(r)


def test_unresolvable_attachment_url_is_no_text_not_an_error():
    rec, r = _noted("nourl", [{"contentType": "text/plain", "url": "https://elsewhere.example/Binary/9"}])
    assert rec.documents[0].text == "" and r.outcome == "proceed"


def test_declared_charset_is_honoured():
    rec, _ = _noted("latin", [{"contentType": "text/plain; charset=ISO-8859-1",
                               "data": "Temp 38.9 °C, hip hot and swollen.", "charset": "latin-1"}])
    assert "38.9 °C" in rec.documents[0].text


# ---- administrations without partOf belong to the procedure they were given at -----------------------
def _unlinked(b: BundleBuilder) -> dict:
    bundle = b.bundle()
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "MedicationAdministration":
            e["resource"].pop("partOf", None)
    return bundle


def test_unlinked_steroid_and_anaesthetic_join_their_procedure(kb):
    b = hip_candidate("unl")
    b.injection("2025-12-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 40)
    b.pain("2025-12-01", 8)
    b.pain("2026-01-20", 2)
    r = review(read_bundle(_unlinked(b)), kb, D("2026-01-25"))
    assert r.subject["target"] == "hip-intra-articular" and r.subject["steroid"]["dose_mg"] == 40
    assert r.outcome == "responder"


def test_unlinked_same_day_bilateral_knees_get_one_steroid_each(kb):
    b = BundleBuilder("bil")
    b.condition("M17.0", "Bilateral primary osteoarthritis of knee", "2022-01-01")
    b.injection("2025-12-01", "knee-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.injection("2025-12-01", "knee-intra-articular", "left", "ultrasound", "triamcinolone", 40)
    from injectwise.engine.clinical import ClinicalView

    view = ClinicalView(read_bundle(_unlinked(b)), kb, D("2026-01-25"))
    doses = sorted((i.side, i.steroid.dose_mg if i.steroid else None) for i in view.injections)
    assert doses == [("left", 40), ("right", 40)]


def test_a_steroid_on_another_day_is_its_own_injection(kb):
    b = hip_candidate("otherday")
    b.injection("2025-12-01", "hip-intra-articular", "right", "ultrasound", None, None)
    b.add({"resourceType": "MedicationAdministration", "status": "completed", "subject": b.subject,
           "effectiveDateTime": "2025-12-09T10:00:00Z",
           "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "10759"}], "text": "triamcinolone"},
           "dosage": {"dose": {"value": 40, "unit": "mg", "system": UCUM, "code": "mg"}}})
    from injectwise.engine.clinical import ClinicalView

    view = ClinicalView(read_bundle(b.bundle()), kb, D("2026-01-25"))
    assert [i.steroid is not None for i in view.injections] == [False, True]


@pytest.mark.parametrize(("code", "side"), [("24028007", "right"), ("7771000", "left"), ("51440002", "bilateral")])
def test_a_side_sent_only_as_a_snomed_laterality_code_is_read(kb, code, side):
    """An EHR may code the body site and its side with no text or display: the side is not lost."""
    b = hip_candidate(f"lat{code}")
    proc = b.injection("2025-12-01", "hip-intra-articular", None, "ultrasound", "triamcinolone", 40)
    proc["bodySite"] = [{"coding": [{"system": SNOMED, "code": "24136001", "display": "Hip joint structure"}]},
                        {"coding": [{"system": SNOMED, "code": code}]}]
    r = review(read_bundle(b.bundle()), kb, D("2026-01-25"))
    assert r.subject["side"] == side
    proc["bodySite"][1]["coding"][0]["system"] = "urn:local:sides"  # the same digits in another system: no side
    assert review(read_bundle(b.bundle()), kb, D("2026-01-25")).subject.get("side") is None


def _draft_med(b: BundleBuilder, rxcui: str, name: str, mg: float, site: str | None) -> None:
    dose: dict = {"doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg", "system": UCUM, "code": "mg"}}]}
    if site:
        dose["site"] = {"text": site}
    b.add({"resourceType": "MedicationRequest", "status": "draft", "intent": "order", "subject": b.subject,
           "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxcui, "display": name}]},
           "dosageInstruction": [dose]})


def test_draft_medicines_for_two_sites_without_an_order_are_two_planned_injections(kb):
    """A steroid for each knee, no ServiceRequest: each knee is checked with its own 40 mg, not one 80 mg."""
    b = BundleBuilder("mrsites")
    b.condition("M17.0", "Bilateral primary osteoarthritis of knee", "2022-01-01")
    _draft_med(b, "10759", "triamcinolone", 40, "right knee joint")
    _draft_med(b, "10759", "triamcinolone", 40, "left knee joint")
    _draft_med(b, "6387", "lidocaine", 40, None)  # no site: goes with each
    r = assess(read_bundle(b.bundle()), kb, D("2026-03-05"))
    assert sorted(p["side"] for p in r.detail["planned_injections"]) == ["left", "right"]
    assert r.subject["steroid"]["dose_mg"] == 40 and [a["drug"] for a in r.subject["anesthetics"]] == ["lidocaine"]


def test_a_steroid_and_anaesthetic_for_one_site_stay_one_planned_injection(kb):
    b = BundleBuilder("mrone")
    b.condition("M17.11", "Unilateral primary osteoarthritis, right knee", "2022-01-01")
    _draft_med(b, "10759", "triamcinolone", 40, "right knee joint")
    _draft_med(b, "6387", "lidocaine", 40, "right knee joint")
    r = assess(read_bundle(b.bundle()), kb, D("2026-03-05"))
    assert "planned_injections" not in r.detail
    assert r.subject["side"] == "right" and r.subject["steroid"]["dose_mg"] == 40 and r.subject["anesthetics"]
