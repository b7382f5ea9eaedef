"""What the CLI reads for one evaluation beside the bundle: its own DocumentReference notes and a
free-text note given with --note (alone, or added to each bundle)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from injectwise.core.record import PatientRecord
from injectwise.knowledge.model import Knowledge


def with_notes(rec: PatientRecord, note: Path | None, kb: Knowledge, as_of: date) -> PatientRecord:
    """A bundle's record with its DocumentReference notes read and the --note (if any) added."""
    from injectwise.adapters.notes import add_bundle_notes, add_note_file

    if rec.source:
        rec.sources.append(rec.source)
    add_bundle_notes(rec, kb, as_of)
    if note is not None:
        add_note_file(rec, note, kb, as_of)
    return rec


def note_only_record(note: Path, kb: Knowledge, as_of: date) -> PatientRecord:
    """One record from a note alone (no bundle)."""
    from injectwise.adapters.notes import note_only_record as from_note

    return from_note(note, kb, as_of)
