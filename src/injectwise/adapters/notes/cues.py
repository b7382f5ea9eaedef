"""The note cues (knowledge/data/notes.yaml) compiled once per knowledge base."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

try:  # Python 3.11+
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

from injectwise.core.errors import KnowledgeError
from injectwise.language.phrases import Screen

CUES_FILE = Path(__file__).resolve().parents[2] / "knowledge" / "data" / "notes.yaml"


def _rx(where: str, items: Any) -> tuple[re.Pattern[str], ...]:
    try:
        return tuple(re.compile(p, re.I) for p in (items or []))
    except re.error as e:
        raise KnowledgeError(f"notes.yaml: {where}: bad pattern: {e}") from None


def _one(where: str, items: Any) -> re.Pattern[str] | None:
    """All patterns of one cue as a single alternation: one scan of the text per cue."""
    pats = [p.pattern for p in _rx(where, items)]
    return re.compile("|".join(f"(?:{p})" for p in pats), re.I) if pats else None


def _exists(items: list[str]) -> re.Pattern[str]:
    """A pattern that matches somewhere exactly when one of `items` does (for yes/no checks, not spans):
    the word boundary most cue patterns begin with is tested once for all of them, which `re` cannot do
    for an alternation by itself (it tries every branch at every position)."""
    bounded, rest = [], []
    for p in items:
        first = list(sre_parse.parse(p, re.I))[:1]
        if p.startswith("\\b") and first and str(first[0][0]) == "AT" and str(first[0][1]) == "AT_BOUNDARY":
            bounded.append(p[2:])  # p is \b followed by the rest (a top-level | would parse as a BRANCH)
        else:
            rest.append(p)
    alts = ([r"\b(?:" + "|".join(f"(?:{p})" for p in bounded) + ")"] if bounded else []) + [f"(?:{p})" for p in rest]
    return re.compile("|".join(alts), re.I)


@dataclass(frozen=True, slots=True)
class Cues:
    version: str
    plan: tuple[re.Pattern[str], ...]
    future: tuple[re.Pattern[str], ...]
    injection: tuple[re.Pattern[str], ...]
    no_injection: tuple[re.Pattern[str], ...]
    no_benefit: tuple[re.Pattern[str], ...]
    risk_discussion: tuple[re.Pattern[str], ...]
    benefit: tuple[re.Pattern[str], ...]
    outside: tuple[re.Pattern[str], ...]
    allergy: tuple[re.Pattern[str], ...]
    allergy_negated: tuple[re.Pattern[str], ...]
    allergy_classes: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]
    excipients: dict[str, tuple[str, ...]]
    therapy_completed: tuple[re.Pattern[str], ...]
    therapy_ongoing: tuple[re.Pattern[str], ...]
    therapy_not_done: tuple[re.Pattern[str], ...]
    therapy_ordered: tuple[re.Pattern[str], ...]
    course_done: tuple[re.Pattern[str], ...]
    last_dose: tuple[re.Pattern[str], ...]
    all_of_them: tuple[re.Pattern[str], ...]
    no_treatment: tuple[re.Pattern[str], ...]
    labs: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]
    joint_fluid: tuple[re.Pattern[str], ...]
    joint_fluid_wbc_infection: float
    gram_positive: tuple[re.Pattern[str], ...]
    gram_negative: tuple[re.Pattern[str], ...]
    culture_positive: tuple[re.Pattern[str], ...]
    culture_negative: tuple[re.Pattern[str], ...]
    imaging_not_done: tuple[re.Pattern[str], ...]
    allergy_other_person: tuple[re.Pattern[str], ...]
    allergy_self: tuple[re.Pattern[str], ...]
    persistent: frozenset[str]
    resolvable: frozenset[str]
    medication_concepts: frozenset[str]
    handled_elsewhere: frozenset[str]
    arthroplasty_concepts: frozenset[str]
    imaging_concepts: frozenset[str]
    range_labs: frozenset[str]
    joined: dict[str, re.Pattern[str] | None]
    screens: dict[str, Screen]  # for `has`: each cue as one yes/no pattern behind its literal screen

    def has(self, name: str, text: str, low: str | None = None) -> bool:
        """Does the cue match in `text`? (`low`: text.lower(), when the caller has it)"""
        scr = self.screens.get(name)
        return scr is not None and scr.found(text, low)

    def first(self, name: str, text: str) -> re.Match[str] | None:
        """The earliest match of the cue in `text` (for where it is), or None."""
        found = [m for p in getattr(self, name) if (m := p.search(text))]
        return min(found, key=lambda m: m.start()) if found else None


@lru_cache(maxsize=1)
def load_cues(path: Path = CUES_FILE) -> Cues:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise KnowledgeError(f"notes.yaml: cannot be read: {e}") from None
    simple = ("plan", "future", "injection", "no_injection", "no_benefit", "risk_discussion", "benefit", "outside",
              "allergy", "allergy_negated", "therapy_completed", "therapy_ongoing", "therapy_not_done", "therapy_ordered",
              "course_done", "last_dose", "all_of_them", "no_treatment", "joint_fluid", "gram_positive", "gram_negative",
              "culture_positive", "culture_negative", "imaging_not_done", "allergy_other_person", "allergy_self")
    kw: dict[str, Any] = {k: _rx(k, doc.get(k)) for k in simple}
    kw["joined"] = {k: _one(k, doc.get(k)) for k in simple}
    kw["screens"] = {k: Screen(_exists([p.pattern for p in kw[k]])) for k in simple if kw[k]}
    kw["allergy_classes"] = tuple((label, _rx(f"allergy_classes.{label}", pats))
                                  for label, pats in (doc.get("allergy_classes") or {}).items())
    kw["excipients"] = {k: tuple(v) for k, v in (doc.get("excipients") or {}).items()}
    kw["labs"] = tuple((c, _rx(f"labs.{c}", pats)) for c, pats in (doc.get("labs") or {}).items() if pats)
    kw["joint_fluid_wbc_infection"] = float(doc.get("joint_fluid_wbc_infection", 50000))
    for k in ("persistent", "resolvable", "medication_concepts", "handled_elsewhere", "arthroplasty_concepts",
              "imaging_concepts", "range_labs"):
        kw[k] = frozenset(doc.get(k) or [])
    return Cues(version=str(doc.get("version", "0")), **kw)
