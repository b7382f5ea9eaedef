"""Outcome instruments: score HOOS JR / KOOS JR raw totals by their published interval tables (data in
knowledge/data/outcome_measures.yaml), and turn a recorded outcome into FHIR Observations so the
engine's `review` reads it like any other pain score."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from injectwise.core.errors import InputError

PAIN_LOINC = "72514-3"


@lru_cache(maxsize=1)
def instruments() -> dict[str, Any]:
    text = resources.files("injectwise.knowledge").joinpath("data/outcome_measures.yaml").read_text("utf-8")
    doc: dict[str, Any] = yaml.safe_load(text)
    for name in ("hoos-jr", "koos-jr"):
        m = doc[name]
        if len(m["interval"]) != 4 * m["items"] + 1:
            raise ValueError(f"outcome_measures.yaml: {name} needs {4 * m['items'] + 1} interval scores")
    return doc


def interval_score(instrument: str, raw: int) -> float:
    """Published interval score (0-100, 100 = best) for a raw item total; bad input is an InputError."""
    m = instruments().get(instrument)
    if m is None or "interval" not in m:
        raise InputError(f"unknown instrument {instrument!r}; one of hoos-jr, koos-jr")
    top = 4 * m["items"]
    if not 0 <= raw <= top:
        raise InputError(f"{m['label']} raw score must be 0 to {top} (sum of {m['items']} items, each 0-4)")
    return float(m["interval"][raw])


def observations(patient_ref: str, outcome: dict[str, Any], oid: int) -> list[dict[str, Any]]:
    """FHIR Observations for one recorded outcome (pain NRS coded with LOINC so `review` uses it)."""
    when: date = outcome["measured_on"]
    subject = {"reference": patient_ref}
    base = {"resourceType": "Observation", "status": "final", "subject": subject,
            "effectiveDateTime": f"{when.isoformat()}T12:00:00Z"}
    out = []
    if outcome.get("nrs") is not None:
        out.append(base | {"id": f"registry-{oid}-nrs", "code": {"coding": [
            {"system": "http://loinc.org", "code": PAIN_LOINC,
             "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported"}], "text": "Pain NRS (clinic)"},
            "valueDecimal": float(outcome["nrs"])})
    if outcome.get("instrument") and outcome.get("instrument_score") is not None:
        label = instruments()[outcome["instrument"]]["label"]
        out.append(base | {"id": f"registry-{oid}-{outcome['instrument']}", "code": {"text": f"{label} interval score"},
                           "valueQuantity": {"value": outcome["instrument_score"], "unit": "score"}})
    if outcome.get("pgic") is not None:
        answer = instruments()["pgic"]["answers"][int(outcome["pgic"])]
        out.append(base | {"id": f"registry-{oid}-pgic", "code": {"text": "Patient Global Impression of Change"},
                           "valueString": answer})
    return out
