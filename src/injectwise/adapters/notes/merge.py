"""Coded data and note facts in one view: where they disagree about the same finding, the more recent
(and, on the same day, the coded, more specific) statement wins, and the winner says what it overrode."""

from __future__ import annotations

import re
from datetime import datetime

from injectwise.core.dates import fmt_date
from injectwise.core.record import Coded, Condition, MedicationUse, PatientRecord
from injectwise.engine.clinical import side_of, sides_compatible
from injectwise.knowledge.model import Knowledge
from injectwise.knowledge.terminology import CONCEPT_SYSTEM


def _when(c: Condition) -> datetime | None:
    return c.recorded or c.onset


def _resolved(c: Condition) -> bool:
    return c.clinical_status in ("resolved", "inactive", "remission") or c.abated is not None


def _newer(n: Condition, o: Condition) -> bool:
    n_when, o_when = _when(n), _when(o)
    return n_when is not None and (o_when is None or n_when.date() > o_when.date())


def _drug_words(m: MedicationUse) -> set[str]:
    """The drug names a note's medication was read from ("Warfarin" -> {"warfarin"})."""
    return {w for w in re.findall(r"[a-z][a-z-]{3,}", m.medication.text.lower())}


def _antithrombotic(kb: Knowledge | None, m: MedicationUse) -> str | None:
    """Which anticoagulant or antiplatelet a statement names (RxNorm code or name, brand or generic)."""
    if kb is None:
        return None
    codes = {c.code for c in m.medication.codings}
    text = m.medication.all_text()
    for aid, a in kb.antithrombotics.items():
        if codes & a.rxnorm or any(p.search(text) for p in a.text):
            return aid
    return None


def reconcile_medications(rec: PatientRecord, added: list[str], kb: Knowledge | None = None) -> None:
    """A note that says a listed drug was stopped ("warfarin was stopped two months ago") ends the coded
    statement when it stopped after the statement began, and a note that dates a hold before the procedure
    ("Eliquis held, last dose 4/6") puts it on hold from that day: the more recent word wins, and says so. The
    same drug is recognised by its name in both texts, or, for an anticoagulant or antiplatelet, by the
    knowledge base (a brand in one and the generic in the other). Otherwise the list entry stays current, the
    safe side. Within one note a later sentence's stop or hold likewise ends an earlier "on X"."""
    new = set(added)
    stops = [m for m in rec.medications if m.ref in new and m.status in ("stopped", "completed", "on-hold")
             and m.end is not None]
    if not stops:
        return
    order = {m.ref: i for i, m in enumerate(rec.medications)}
    for o in rec.medications:
        if o.status not in ("active", "on-hold", "", None) or (o.ref in new and o.end is not None):
            continue
        text = o.medication.all_text().lower()
        for n in stops:
            assert n.end is not None
            # the note's own earlier word ("on aspirin and Plavix. Plavix held, last dose 6/3"): its later
            # sentence is the more recent; a later "on X" (a restart) is left as it is
            if o.ref in new and (n.ref == o.ref or order[n.ref] < order[o.ref]):
                continue
            same = any(re.search(rf"\b{re.escape(w)}", text) for w in _drug_words(n))
            if not same:
                aid = _antithrombotic(kb, n)
                same = aid is not None and aid == _antithrombotic(kb, o)
            if not same:
                continue
            if o.start is not None and n.end <= o.start:
                continue  # stopped before this course began: the list entry is a later restart
            word = "held" if n.status == "on-hold" else "stopped"
            o.status, o.end = ("on-hold" if word == "held" else "stopped"), n.end
            # a new Coded: the reader may share one between resources with the same JSON
            o.medication = Coded(o.medication.codings, f"{o.medication.text} ({word} {fmt_date(n.end)} per {n.ref})")
            break


def reconcile(rec: PatientRecord, kb: Knowledge, added: list[str]) -> None:
    reconcile_medications(rec, added, kb)
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
                if n.present and _resolved(n) and not _resolved(o) and _newer(n, o):
                    # "the cellulitis from September has fully resolved": the active problem ended by the note
                    o.abated = n_when
                    n.code.text = f"{n.code.text} (note of {fmt_date(n_when)}: resolved; supersedes {o.ref})"
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
