"""The new safety findings reach the EHR over real HTTP as CDS Hooks cards, with the patient data
they rest on and a suggestion to cancel the draft where the answer is "not now"."""

from __future__ import annotations

from typing import Any

from servicekit import REPLAY, check_cards, post, server_fixture

from injectwise.demo.builder import BundleBuilder

SIGN = "/cds-services/injectwise-order-sign"
replay = server_fixture("replay", *REPLAY, doc="Open service replaying records as of their own date.")


def cds_request(b: BundleBuilder) -> dict[str, Any]:
    """History as prefetch searchsets, draft orders in the context."""
    resources = b.resources
    drafts = [r for r in resources if r.get("status") == "draft"]
    patient = b.patient
    prefetch: dict[str, Any] = {"patient": patient}
    for key in ("conditions", "procedures", "medicationAdministrations", "medicationStatements", "observations",
                "allergyIntolerances", "documentReferences", "serviceRequests"):
        prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    for r in resources:
        if r in drafts or r is patient:
            continue
        key = r["resourceType"][0].lower() + r["resourceType"][1:] + "s"
        prefetch[key]["entry"].append({"resource": r})
    return {"hook": "order-sign", "hookInstance": "00000000-0000-4000-8000-0000000000a1",
            "context": {"userId": "Practitioner/1", "patientId": patient["id"],
                        "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                        "entry": [{"resource": r} for r in drafts]}},
            "prefetch": prefetch}


def _cards(replay, b: BundleBuilder) -> dict[str, dict[str, Any]]:
    return {c["source"]["topic"]["code"]: c for c in check_cards(post(replay.url + SIGN, cds_request(b)).json())}


def test_epidural_on_clopidogrel_gives_a_hold_card_that_cancels_the_draft(replay):
    b = BundleBuilder("cds-hold")
    b.condition("M54.16", "Radiculopathy, lumbar region", "2025-06-01")
    b.therapy("2025-06-01", "2025-09-01", "Physical therapy - lumbar stabilisation")
    b.medication("32968", "clopidogrel 75 MG Oral Tablet", "2025-01-01")
    b.lab("2345-7", "Glucose", 98, "mg/dL", "2025-09-02")
    b.planned("lumbar-epidural", None, "fluoroscopy", "dexamethasone", 10)
    cards = _cards(replay, b)
    card = cards["defer.anticoagulant-hold"]
    assert "clopidogrel" in card["detail"] and card["suggestions"][0]["actions"][0]["type"] == "delete"


def test_anaesthetic_overdose_and_immunosuppression_cards(replay):
    b = BundleBuilder("cds-dose")
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2022-01-01")
    b.therapy("2025-06-01", "2025-09-01", "Physical therapy - hip strengthening")
    b.medication("6851", "Methotrexate 2.5 MG Oral Tablet", "2024-01-01")
    b.lab("29463-7", "Body weight", 50, "kg", "2025-09-02")
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40, "lidocaine", 4, aunit="mL",
              atext="lidocaine 10%")
    cards = _cards(replay, b)
    assert "225 mg" in cards["dose.anesthetic-above-maximum"]["detail"]  # 4.5 mg/kg x 50 kg
    assert "Methotrexate" in cards["caution.immunosuppression"]["detail"]
