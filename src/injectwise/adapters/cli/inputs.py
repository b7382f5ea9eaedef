"""What the CLI reads for one evaluation: bundle files (with their notes) and/or a free-text note."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from injectwise.core.errors import InputError
from injectwise.core.record import PatientRecord
from injectwise.knowledge.model import Knowledge


def load_records(files: list[Path] | None, note: Path | None, kb: Knowledge, as_of: date) -> list[PatientRecord]:
    """One record per bundle file, each with its DocumentReference notes read and the --note added;
    or one record from the note alone."""
    from injectwise.adapters.fhir import read_bundle_file
    from injectwise.adapters.notes import add_bundle_notes, add_note_file, note_only_record

    if not files:
        if note is None:
            raise InputError("no input: give one or more FHIR Bundle files, or --note FILE")
        return [note_only_record(note, kb, as_of)]
    out = []
    for p in files:
        rec = read_bundle_file(p)
        rec.sources.append(str(p))
        add_bundle_notes(rec, kb, as_of)
        if note is not None:
            add_note_file(rec, note, kb, as_of)
        out.append(rec)
    return out
