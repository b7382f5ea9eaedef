"""Coded data and a note that disagree: the more recent statement wins and says what it overrode."""

from __future__ import annotations

from datetime import datetime

import pytest

from injectwise.adapters.notes.merge import reconcile_medications
from injectwise.core.record import Coded, MedicationUse, Patient, PatientRecord


def _rec(listed: str, start: str, said: str, stopped: str) -> tuple[PatientRecord, MedicationUse]:
    coded = MedicationUse(ref="MedicationStatement/1", medication=Coded((), listed), status="active",
                          start=datetime.fromisoformat(start))
    note = MedicationUse(ref="note#m1", medication=Coded((), said), status="stopped", end=datetime.fromisoformat(stopped))
    return PatientRecord(patient=Patient(ref="Patient/p"), medications=[coded, note]), coded


def test_a_note_that_stops_the_listed_drug_ends_it_and_says_so():
    rec, coded = _rec("warfarin 5 mg daily", "2024-01-01", "Warfarin", "2026-08-05")
    reconcile_medications(rec, ["note#m1"])
    assert coded.status == "stopped" and coded.end == datetime(2026, 8, 5)
    assert "per note#m1" in coded.medication.text


@pytest.mark.parametrize("listed,start,said,stopped", [
    ("warfarin 5 mg daily", "2024-01-01", "Apixaban", "2026-08-05"),  # another drug
    ("warfarin 5 mg daily", "2025-01-01", "Warfarin", "2023-06-01"),  # stopped before this course began
])
def test_a_stop_of_another_drug_or_an_earlier_course_leaves_the_list_entry(listed, start, said, stopped):
    rec, coded = _rec(listed, start, said, stopped)
    reconcile_medications(rec, ["note#m1"])
    assert coded.status == "active" and coded.end is None


def _held(listed: str, start: str, said: str, last_dose: str) -> tuple[PatientRecord, MedicationUse]:
    rec, coded = _rec(listed, start, said, last_dose)
    rec.medications[1].status = "on-hold"
    return rec, coded


@pytest.mark.parametrize("listed,said", [
    ("Eliquis 5 mg BID", "Eliquis"),  # the same name
    ("apixaban 5 mg twice daily", "Eliquis"),  # generic on the list, brand in the note: the same drug
    ("Coumadin 5 mg daily", "warfarin"),
])
def test_a_note_that_dates_a_hold_puts_the_listed_drug_on_hold(kb, listed, said):
    rec, coded = _held(listed, "2021-02-01", said, "2026-04-06")
    reconcile_medications(rec, ["note#m1"], kb)
    assert coded.status == "on-hold" and coded.end == datetime(2026, 4, 6)
    assert "held" in coded.medication.text and "per note#m1" in coded.medication.text


@pytest.mark.parametrize("listed,said", [
    ("Xarelto 20 mg daily", "Eliquis"),  # another anticoagulant
    ("metformin 1000 mg", "Eliquis"),  # not an anticoagulant at all
])
def test_a_hold_of_another_drug_leaves_the_list_entry(kb, listed, said):
    rec, coded = _held(listed, "2021-02-01", said, "2026-04-06")
    reconcile_medications(rec, ["note#m1"], kb)
    assert coded.status == "active" and coded.end is None


def test_a_later_sentence_of_the_note_holds_its_earlier_on_x(kb):
    """'On aspirin and Plavix. Plavix held, last dose 6/3': the hold is the note's more recent word."""
    said = MedicationUse(ref="note#m1", medication=Coded((), "Plavix"), status="active")
    held = MedicationUse(ref="note#m2", medication=Coded((), "Plavix"), status="on-hold", end=datetime(2026, 6, 3))
    rec = PatientRecord(patient=Patient(ref="Patient/p"), medications=[said, held])
    reconcile_medications(rec, ["note#m1", "note#m2"], kb)
    assert said.status == "on-hold" and said.end == datetime(2026, 6, 3)


def test_a_restart_later_in_the_note_stays_current(kb):
    """'Warfarin stopped in May for the bleed. Restarted warfarin last week': the later word is the restart."""
    stopped = MedicationUse(ref="note#m1", medication=Coded((), "warfarin"), status="stopped", end=datetime(2026, 5, 1))
    again = MedicationUse(ref="note#m2", medication=Coded((), "warfarin"), status="active")
    rec = PatientRecord(patient=Patient(ref="Patient/p"), medications=[stopped, again])
    reconcile_medications(rec, ["note#m1", "note#m2"], kb)
    assert again.status == "active" and again.end is None
