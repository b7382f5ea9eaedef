"""A plain-data description of the knowledge base, shared by the CLI and the REST API."""

from __future__ import annotations

from typing import Any

from injectwise.knowledge.model import Knowledge


def describe_knowledge(kb: Knowledge) -> dict[str, Any]:
    return {
        "name": kb.name, "version": kb.version,
        "rules": [{"id": r.id, "version": r.version, "mode": r.mode, "severity": r.severity, "title": r.title,
                   "citations": list(r.citations)} for r in kb.rules],
        "citations": {cid: _citation(kb, cid) for cid in kb.citations},
        "policy": {k: {"value": v.value, "unit": v.unit, "basis": v.basis} for k, v in kb.policy.items()},
    }


def describe_rule(kb: Knowledge, finding_id: str) -> dict[str, Any] | None:
    """Every rule (one per mode) that can report this finding id, with its full citations."""
    rules = [r for r in kb.rules if r.id == finding_id]
    if not rules:
        return None
    meaning = kb.vocabulary.get(finding_id) or kb.vocabulary.get(finding_id.split(".", 1)[0], "")
    return {"id": finding_id, "meaning": meaning, "knowledge_version": kb.version, "rules": [
        {"mode": r.mode, "version": r.version, "severity": r.severity, "title": r.title, "rationale": r.rationale,
         "advice": r.advice, "file": r.source,
         "citations": [_citation(kb, c) for c in r.citations]}
        for r in rules]}


def _citation(kb: Knowledge, cid: str) -> dict[str, Any]:
    c = kb.citations[cid]
    return {**c.as_json(), "reference": c.reference}
