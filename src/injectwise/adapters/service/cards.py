"""Findings -> CDS Hooks 2.0 cards. Every card names its finding (source.topic.code), explains itself
with the patient's data and the literature, and offers a concrete fix where the rule names one."""

from __future__ import annotations

import copy
import os
import re
from typing import Any

from injectwise.engine.result import Finding, Result
from injectwise.knowledge.model import Knowledge

FINDING_SYSTEM = "https://injectwise.org/CodeSystem/finding"
NON_ADHERENCE = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
SUMMARY_MAX = 139
# HL7 non-adherence reason codes (display text as published in the code system) offered per family.
REASONS = {
    "patient-ineligible": "Patient does not meet eligibility for recommended action",
    "action-completed": "Recommended action was already completed",
    "action-unsuccessful": "Recommended action was previously unsuccessful",
    "action-performed-no-adverse-effect": "Intended action was performed previously without adverse effect",
    "need-more-info": "Could not address recommended action due to need for more information/pending results/pending consult",
    "expert-contradicts": "Advice from expert contradicts the recommended action",
    "policy-contradicts": "Institutional policy/guideline contradicts the recommended action",
    "does-not-align-latest-evidence": "Recommended action does not align with the latest evidence",
    "risk-benefit-ratio": "Recipient assessment of risk/benefit ratio",
    "mitigate-risk-negative-outcome": "Action taken to mitigate risk of negative outcome",
    "prefers-alternative": "Patient prefers an alternative approach or treatment",
    "service-not-available": "Treatment or service is not practically available",
    "too-costly-uncovered": "Recommended action is too costly or not covered by insurance",
}
FAMILY_REASONS = {
    "contraindication": ["patient-ineligible", "risk-benefit-ratio", "expert-contradicts", "need-more-info"],
    "urgent": ["patient-ineligible", "action-completed", "need-more-info"],
    "defer": ["action-completed", "action-unsuccessful", "risk-benefit-ratio", "prefers-alternative", "policy-contradicts"],
    "guidance": ["service-not-available", "action-performed-no-adverse-effect", "risk-benefit-ratio", "too-costly-uncovered"],
    "dose": ["risk-benefit-ratio", "does-not-align-latest-evidence", "expert-contradicts"],
    "caution": ["patient-ineligible", "mitigate-risk-negative-outcome", "risk-benefit-ratio"],
}
DEFAULT_REASONS = ["patient-ineligible", "action-completed", "need-more-info", "does-not-align-latest-evidence",
                   "prefers-alternative"]
INDICATOR = {"critical": "critical", "warning": "warning", "info": "info"}
ORDER_HIDDEN_FAMILIES = ("education", "monitor")
UNKNOWNS_SHOWN = 6
# CPT injection codes and their ultrasound-guided counterparts (CPT 2015 arthrocentesis family).
CPT = "http://www.ama-assn.org/go/cpt"
CPT_TO_ULTRASOUND = {"20600": "20604", "20605": "20606", "20610": "20611"}
LANDMARK_WORDS = re.compile(r",?\s*(landmark[- ]guided|landmark|blind|unguided|no imaging|without (imaging|guidance|ultrasound)"
                            r"|by palpation)", re.I)
PT_CODE = {"system": "http://snomed.info/sct", "code": "91251008", "display": "Physical therapy procedure"}


def build_cards(result: Result, kb: Knowledge, base_url: str, hook: str, draft_orders: list[dict[str, Any]],
                show_all: bool) -> list[dict[str, Any]]:
    cards = []
    for f in result.findings:
        family = f.id.split(".", 1)[0]
        if not show_all and hook != "patient-view" and family in ORDER_HIDDEN_FAMILIES:
            continue
        cards.append(_card(f, result, kb, base_url, draft_orders))
    return cards


def _card(f: Finding, result: Result, kb: Knowledge, base_url: str, drafts: list[dict[str, Any]]) -> dict[str, Any]:
    summary = f.title if len(f.title) <= SUMMARY_MAX else f.title[: SUMMARY_MAX - 1].rstrip() + "…"
    card: dict[str, Any] = {
        "uuid": _uuid4(),
        "summary": summary,
        "indicator": INDICATOR[f.severity],
        "detail": _detail(f, result.unknowns),
        "source": {"label": f"injectwise {kb.version}", "url": f"{base_url}/rules/{f.id}",
                   "topic": {"system": FINDING_SYSTEM, "code": f.id, "display": f.title[:200]}},
    }
    suggestions = _suggestions(f, result, kb, drafts)
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one"
    reasons = FAMILY_REASONS.get(f.id.split(".", 1)[0], DEFAULT_REASONS)
    card["overrideReasons"] = [{"system": NON_ADHERENCE, "code": c, "display": REASONS[c]} for c in reasons]
    card["links"] = [{"label": f"Why: rule {f.rule['id']} v{f.rule['version']} and its evidence",
                      "url": f"{base_url}/rules/{f.id}", "type": "absolute"}]
    return card


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: str) -> str:
    """Markdown-escape: a backslash before each of \\ ` * _ [ ] < > | #. Most texts have none: one
    search, no substitution (a card escapes ~10 texts; re.sub cost 6-9 us each even with nothing to do)."""
    return _MD_SPECIAL.sub(r"\\\1", text) if _MD_SPECIAL.search(text) else text


def _uuid4() -> str:
    """A random UUID string as uuid.uuid4() gives, without building a UUID object (~4x faster; several per card)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _detail(f: Finding, unknowns: list[str] | None = None) -> str:
    """Rationale, advice, the patient's data, citations, and what the record did not say (every card, since a
    clinician may read only one)."""
    lines = [_md(f.explanation or f.rationale)]
    if f.likelihood:
        lines.append(f"\n**Likelihood:** {f.likelihood}")
    if f.advice:
        lines.append(f"\n**What to do:** {_md(f.advice)}")
    if f.evidence:
        lines.append("\n**From this patient's record:**")
        for e in f.evidence[:12]:
            bits = [_md(e.what)]
            if e.value:
                bits.append(_md(e.value))
            j = e.as_json()
            if "date" in j:
                bits.append(j["date"])
            said = f': "{_md(e.quote)}"' if e.quote else ""
            lines.append(f"- {', '.join(bits)} ({_md(e.resource)}){said}")
        if len(f.evidence) > 12:
            lines.append(f"- and {len(f.evidence) - 12} more")
    if unknowns:
        lines.append("\n**Not known from the record (not checked):**")
        lines.extend(f"- {_md(u)}" for u in unknowns[:UNKNOWNS_SHOWN])
        if len(unknowns) > UNKNOWNS_SHOWN:
            lines.append(f"- and {len(unknowns) - UNKNOWNS_SHOWN} more")
    if f.citations:
        lines.append("\n**Evidence:**")
        for c in f.citations:
            link = f"https://doi.org/{c['doi']}" if c.get("doi") else c.get("url")
            label = _md(c.get("label", c.get("id", "")))
            conf = f" (confidence {c['confidence']})" if c.get("confidence") else ""
            lines.append(f"- [{label}]({link}){conf}" if link else f"- {label}{conf}")
    lines.append(f"\n_Rule {f.rule['id']} v{f.rule['version']}_")
    return "\n".join(lines)


# ---- suggestions ------------------------------------------------------------------------
def _drafts_of(drafts: list[dict[str, Any]], rtype: str) -> list[dict[str, Any]]:
    return [r for r in drafts if r.get("resourceType") == rtype and r.get("id")]


def _cancel_actions(drafts: list[dict[str, Any]], applies_to: str | None = None) -> list[dict[str, Any]]:
    """Delete actions for the draft orders: all of them, or (a finding about one of several drafts) that order
    and the medication requests that give it as their reason."""
    chosen = drafts
    if applies_to:
        ref = applies_to if "/" in applies_to else f"ServiceRequest/{applies_to}"
        chosen = [r for r in drafts if f"{r.get('resourceType')}/{r.get('id')}" == ref
                  or any(isinstance(x, dict) and x.get("reference") == ref for x in r.get("reasonReference") or [])]
        chosen = chosen or drafts
    return [{"type": "delete", "description": f"Cancel the draft {r['resourceType']} order",
             "resourceId": f"{r['resourceType']}/{r['id']}"}
            for r in chosen if r.get("resourceType") in ("ServiceRequest", "MedicationRequest") and r.get("id")]


def _suggestions(f: Finding, result: Result, kb: Knowledge, drafts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    action = (f.suggestion or {}).get("action")
    if not action or not drafts:
        return []
    label, actions = "", []
    if action == "cancel-draft":
        label, actions = "Cancel the injection order", _cancel_actions(drafts, f.applies_to)
    elif action == "create-pt-referral":
        pid = result.patient["id"]
        target = result.subject.get("target_label", "the painful region")
        sr = {"resourceType": "ServiceRequest", "status": "draft", "intent": "order",
              "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "386053000",
                                        "display": "Evaluation procedure"}]}],
              "code": {"coding": [PT_CODE], "text": f"Physical therapy: structured exercise programme, {target}"},
              "subject": {"reference": pid if "/" in pid else f"Patient/{pid}"},
              "note": [{"text": "Suggested by injectwise: exercise therapy before a corticosteroid injection."}]}
        label = "Refer to physical therapy instead of injecting now"
        actions = [{"type": "create", "description": "Create a physical therapy referral", "resource": sr},
                   *_cancel_actions(drafts)]
    elif action == "switch-to-ultrasound":
        updated = [_to_ultrasound(r) for r in _drafts_of(drafts, "ServiceRequest")]
        label = "Switch the order to ultrasound guidance"
        actions = [{"type": "update", "description": "Order the injection under ultrasound guidance", "resource": r}
                   for r in updated]
    elif action == "lower-dose":
        actions = _lower_dose(result, kb, drafts)
        label = actions[0]["description"] if actions else ""
    if not actions:
        return []
    return [{"label": label, "uuid": _uuid4(), "isRecommended": True, "actions": actions}]


def _to_ultrasound(sr: dict[str, Any]) -> dict[str, Any]:
    """The draft with ultrasound guidance; fields of an unexpected JSON type are replaced, not crashed on."""
    r = copy.deepcopy(sr)
    code = r.get("code")
    if not isinstance(code, dict):
        code = r["code"] = {}
    codings = code.get("coding")
    for c in codings if isinstance(codings, list) else []:
        if not isinstance(c, dict):
            continue
        if c.get("system") == CPT and isinstance(c.get("code"), str) and c["code"] in CPT_TO_ULTRASOUND:
            c["code"] = CPT_TO_ULTRASOUND[c["code"]]
        if isinstance(c.get("display"), str) and c["display"]:
            c["display"] = _ultrasound_text(c["display"])
    text = code.get("text")
    code["text"] = _ultrasound_text(text if isinstance(text, str) and text else "Corticosteroid injection")
    details = r.get("orderDetail")
    r["orderDetail"] = [*(details if isinstance(details, list) else []),
                        {"coding": [{"system": CPT, "code": "76942", "display": "Ultrasonic guidance for needle placement"}],
                         "text": "ultrasound guidance"}]
    return r


def _ultrasound_text(text: str) -> str:
    return LANDMARK_WORDS.sub("", text).rstrip(" ,") + ", ultrasound-guided"


def _lower_dose(result: Result, kb: Knowledge, drafts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    steroid = result.subject.get("steroid") or {}
    ref, target = steroid.get("resource"), kb.target(result.subject.get("target", ""))
    drug = kb.drugs.get(str(steroid.get("drug")))
    if not ref or target is None or drug is None or not drug.equivalent_mg:
        return []
    mg = round(target.dose.usual * drug.equivalent_mg / kb.equivalence_reference_mg, 1)
    mg_text = f"{mg:g}"
    for r in _drafts_of(drafts, "MedicationRequest"):
        if f"MedicationRequest/{r['id']}" != ref:
            continue
        new = copy.deepcopy(r)
        dosages = new.get("dosageInstruction")
        for d in dosages if isinstance(dosages, list) else []:
            if not isinstance(d, dict):
                continue
            rates = d.get("doseAndRate")
            for dr in rates if isinstance(rates, list) else []:
                if isinstance(dr, dict) and isinstance(dr.get("doseQuantity"), dict):
                    dr["doseQuantity"].update({"value": mg, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"})
            if isinstance(d.get("text"), str) and d["text"]:
                d["text"] = re.sub(r"\d+(\.\d+)?\s*mg", f"{mg_text} mg", d["text"], count=1)
        return [{"type": "update", "description": f"Lower the {drug.label} dose to {mg_text} mg (usual for the {target.label})",
                 "resource": new}]
    return []
