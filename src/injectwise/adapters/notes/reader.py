"""Where notes come from (a file, a DocumentReference) and how their facts join the record."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

from injectwise.adapters.notes.extract import NoteExtractor, NoteInput
from injectwise.adapters.notes.markup import to_plain
from injectwise.adapters.notes.merge import reconcile
from injectwise.adapters.notes.when import note_date
from injectwise.core.errors import InputError
from injectwise.core.record import THERAPY_UNSTATED, Patient, PatientRecord
from injectwise.knowledge.model import Knowledge

MAX_NOTE_BYTES = 1_000_000


@lru_cache(maxsize=4)
def extractor(kb: Knowledge) -> NoteExtractor:
    return NoteExtractor(kb)


def read_note_text(path: str | Path) -> str:
    """The text of a note file (plain, HTML or RTF); a bad file is one clear input error."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(f"{p}: cannot read note: {e.strerror or e}") from None
    if len(data) > MAX_NOTE_BYTES:
        raise InputError(f"{p}: note is larger than {MAX_NOTE_BYTES} bytes")
    if b"\x00" in data[:4096]:
        raise InputError(f"{p}: not a text note (binary data)")
    text = data.decode("utf-8", errors="replace")
    plain = to_plain(text, "rtf" if p.suffix.lower() == ".rtf" else ("html" if p.suffix.lower() in (".html", ".htm") else ""))
    if not plain.strip():
        raise InputError(f"{p}: the note is empty")
    return plain



def _add(rec: PatientRecord, kb: Knowledge, text: str, source: str, dated: date, given: bool = False,
         horizon: date | None = None) -> bool:
    """Add one note; True when it says whether conservative care was tried. A note file given on the command line
    and dated after the as-of day is refused: none of it could be seen, and silence would read as 'nothing'."""
    when = note_date(text, dated) or dated
    if given and when > dated:
        raise InputError(f"{source.removeprefix('note:')}: the note is dated {when.isoformat()}, after the as-of date "
                         f"{dated.isoformat()}; nothing in it can be seen then (check --on)")
    st = extractor(kb).add(rec, NoteInput(text, source, when, horizon or (dated if given else None)))
    reconcile(rec, kb, st.added)
    return st.therapy_stated


def note_only_record(path: str | Path, kb: Knowledge, as_of: date) -> PatientRecord:
    """A record from one note alone (no bundle): the note's date is its 'Date:' line, else the as-of date."""
    name = Path(path).name
    rec = PatientRecord(patient=Patient(ref="Patient/note"), source=str(path))
    if not _add(rec, kb, read_note_text(path), f"note:{name}", as_of, given=True):
        rec.unavailable = (*rec.unavailable, THERAPY_UNSTATED)  # unmentioned is unknown, not "none"
    rec.sources.append(f"note:{path}")
    return rec


def add_note_file(rec: PatientRecord, path: str | Path, kb: Knowledge, as_of: date) -> None:
    """A note given beside a bundle adds its facts to the bundle's record."""
    _add(rec, kb, read_note_text(path), f"note:{Path(path).name}", as_of, given=True)
    rec.sources.append(f"note:{path}")


def _narrative(value: str) -> bool:
    """A result written as a sentence ("Full-thickness tear of the gluteus medius"), not a code-like word."""
    return sum(1 for w in value.split() if any(ch.isalpha() for ch in w)) >= 3


def add_narrative_results(rec: PatientRecord, kb: Knowledge, as_of: date) -> None:
    """Observations whose value is narrative text (an MRI or ultrasound report line) are read like a short note
    dated by the observation, so a tear or an effusion found there is a finding like any other."""
    for o in list(rec.observations):
        text = (o.value_text or "").strip()
        if not o.narrative or not _narrative(text) or o.when is None or o.when.date() > as_of:
            continue
        label = o.code.label()
        _add(rec, kb, f"{label}: {text}" if label else text, f"{o.ref}#text", o.when.date())


def add_bundle_notes(rec: PatientRecord, kb: Knowledge, as_of: date) -> None:
    """DocumentReference notes inside a bundle: dated by their own 'Date:' line, else the document date,
    else the as-of date. Notes dated after the as-of day are not read (not yet written). Narrative results
    in observations are read the same way."""
    add_narrative_results(rec, kb, as_of)
    for d in list(rec.documents):
        if not d.text.strip():
            continue
        dated = d.when.date() if d.when is not None else as_of
        if dated > as_of:
            continue
        _add(rec, kb, to_plain(d.text, d.content_type), d.ref, dated, horizon=as_of)
        rec.sources.append(d.ref)
