"""Coded data and note facts in one view: where they disagree about the same finding, the more recent
(and, on the same day, the coded, more specific) statement wins, and the winner says what it overrode."""

from __future__ import annotations

from datetime import datetime

from injectwise.core.dates import fmt_date
from injectwise.core.record import Condition, PatientRecord
from injectwise.engine.clinical import side_of, sides_compatible
from injectwise.knowledge.model import Knowledge
from injectwise.knowledge.terminology import CONCEPT_SYSTEM


def _when(c: Condition) -> datetime | None:
    return c.recorded or c.onset


def reconcile(rec: PatientRecord, kb: Knowledge, added: list[str]) -> None:
    new = set(added)
    notes = [c for c in rec.conditions if c.ref in new and c.code.codings and c.code.codings[0].system == CONCEPT_SYSTEM]
    if not notes:
        return
    others = [c for c in rec.conditions if c.ref not in new]
    if not others:
        return
    term = kb.terminology
    # what each coded condition names and which side it is on, worked out once per condition (not once per
    # note finding): both are pure functions of the condition's code and text, which the loop never changes
    concepts: dict[int, frozenset[str]] = {}
    sides: dict[int, str | None] = {}
    for n in notes:
        concept = n.code.codings[0].code
        n_when = _when(n)
        for i, o in enumerate(others):
            if i not in concepts:
                concepts[i] = term.concepts_of(o.code, o.body_site)
            if concept not in concepts[i]:
                continue
            if i not in sides:
                sides[i] = side_of(f"{o.code.all_text()} {o.body_site}")
            if not sides_compatible(side_of(n.body_site), sides[i]):
                continue
            if n.present == o.present:
                continue
            o_when = _when(o)
            note_newer = n_when is not None and (o_when is None or n_when.date() > o_when.date())
            if note_newer:
                said = f"{o.ref}, {fmt_date(o_when) or 'undated'}"
                n.code.text = f"{n.code.text} (note of {fmt_date(n_when)} supersedes {said})"
                if not n.present and o.present and o.clinical_status not in ("resolved", "inactive"):
                    o.abated = n_when
            elif o_when is not None and n.present and not o.present:
                n.verification = "refuted"
                n.code.text = f"{n.code.text} (superseded by {o.ref}, {fmt_date(o_when)})"
