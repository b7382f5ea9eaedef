"""What an evaluation returns: findings with their patient evidence and literature."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from injectwise.core.dates import fmt_date

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
LIKELIHOOD_ORDER = {"high": 0, "moderate": 1, "low": 2}


@dataclass(slots=True, frozen=True)
class Evidence:
    """One piece of the patient's own data: which resource, what it says, its value and date."""

    resource: str
    what: str
    value: str | None = None
    when: datetime | None = None
    quote: str | None = None  # the note sentence a fact read from free text rests on

    def as_json(self) -> dict[str, str]:
        out = {"resource": self.resource, "what": self.what}
        if self.value is not None:
            out["value"] = self.value
        d = fmt_date(self.when)
        if d:
            out["date"] = d
        if self.quote:
            out["quote"] = self.quote
        return out

    def sentence(self) -> str:
        inner = self.what if self.value is None else f"{self.what}, {self.value}"
        d = fmt_date(self.when)
        if d:
            inner = f"{inner}, {d}"
        if self.quote:
            return f'{self.resource} ({inner}) "{self.quote}"'
        return f"{self.resource} ({inner})"


@dataclass(slots=True)
class Finding:
    id: str
    severity: str
    title: str
    rationale: str
    advice: str
    evidence: list[Evidence]
    citations: list[dict[str, str]]
    rule: dict[str, str]
    likelihood: str | None = None
    suggestion: dict[str, Any] | None = None
    explanation: str = ""  # the rationale without the appended patient data, for renderers that list it
    applies_to: str | None = None  # with several draft injections: the one this finding is about (its order id)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "severity": self.severity, "title": self.title,
                               "rationale": self.rationale}
        if self.applies_to:
            out["applies_to"] = self.applies_to
        if self.likelihood:
            out["likelihood"] = self.likelihood
        if self.advice:
            out["advice"] = self.advice
        out["evidence"] = [e.as_json() for e in self.evidence]
        out["citations"] = self.citations
        out["rule"] = self.rule
        return out


@dataclass(slots=True)
class Result:
    mode: str
    as_of: str
    knowledge_version: str
    patient: dict[str, Any]
    subject: dict[str, Any]  # the planned injection (assess) or the reviewed one (review)
    outcome: str  # verdict or response
    findings: list[Finding] = field(default_factory=list)
    unknowns: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        key_subject, key_outcome = ("planned", "verdict") if self.mode == "assess" else ("injection", "response")
        out: dict[str, Any] = {
            "mode": self.mode, "as_of": self.as_of, "knowledge_version": self.knowledge_version,
            "patient": self.patient, key_subject: self.subject, key_outcome: self.outcome,
            "findings": [f.as_json() for f in self.findings],
        }
        if self.detail:
            out["detail"] = self.detail
        if self.unknowns:
            out["unknowns"] = self.unknowns
        if self.sources:
            out["sources"] = self.sources
        return out
