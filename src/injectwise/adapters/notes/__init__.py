"""Free-text clinical notes as input: a note alone, a note beside a bundle, or DocumentReference notes
inside a bundle, all become items of the same PatientRecord the rules read."""

from injectwise.adapters.notes.reader import add_bundle_notes, add_note_file, note_only_record, read_note_text

__all__ = ["add_bundle_notes", "add_note_file", "note_only_record", "read_note_text"]
