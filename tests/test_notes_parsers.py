"""The note parsers: dates in many formats resolve against the note's date, markup is stripped, word
numbers read, and random notes never crash the extractor or the engine (property-based)."""

from __future__ import annotations

import contextlib
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from injectwise.adapters.notes.extract import NoteExtractor, NoteInput, unwrap
from injectwise.adapters.notes.markup import to_plain
from injectwise.adapters.notes.numbers import to_number
from injectwise.adapters.notes.when import find_dates, note_date
from injectwise.core.errors import InputError, NotApplicable
from injectwise.core.record import Patient, PatientRecord
from injectwise.engine.evaluate import PlanOverrides, assess, review
from injectwise.knowledge import load_knowledge

KB = load_knowledge()
EX = NoteExtractor(KB)
REF = date(2026, 6, 8)


@pytest.mark.parametrize(("text", "want"), [
    ("injection 6/3", ["2026-06-03"]),
    ("injection 9/10/2025", ["2025-09-10"]),
    ("on 2025-12-01", ["2025-12-01"]),
    ("12 March 2026 and March 3, 2025", ["2026-03-12", "2025-03-03"]),
    ("twice (Aug and Nov 2025)", ["2025-08-01", "2025-11-01"]),
    ("3 weeks ago", ["2026-05-18"]),
    ("two weeks ago", ["2026-05-25"]),
    ("yesterday", ["2026-06-07"]),
    ("12/10 injection", ["2025-12-10"]),  # a year-less date after the note day is last year
    ("31.12.2025", ["2025-12-31"]),
    ("repair 2019", ["2019-01-01"]),
    ("3 Mar 26", ["2026-03-03"]),  # day, month, two-digit year
    ("on the 3rd of March", ["2026-03-03"]),
    ("in March", ["2026-03-01"]), ("mid-Feb", ["2026-02-15"]), ("end of July", ["2025-07-25"]),
    ("Dec ROM, she may need it", []),  # decreased range of motion; "may" the verb
    ("6/52 ago", ["2026-04-27"]), ("3/12 ago", ["2026-03-09"]), ("10d ago", ["2026-05-29"]),  # weeks, months, days
    ("on Monday", ["2026-06-01"]), ("3/12", ["2026-03-12"]),  # REF is a Monday: the Monday before
    ("last dose Sunday evening", ["2026-06-07"]), ("held since Friday", ["2026-06-05"]),  # when last taken
    ("Sunday roast", []), ("Friday clinic", []),  # a weekday word with no 'when' word before it
])
def test_dates_resolve_against_the_note_date(text, want):
    assert [h.when.date().isoformat() for h in find_dates(text, REF)] == want


def test_pain_scores_are_not_dates():
    assert find_dates("Pain 6/10 before, 5/10 at 6 weeks, 6/10 today", REF)[-1].when.date() == REF
    assert len(find_dates("Pain 6/10 before, 5/10 at 6 weeks", REF)) == 0


def test_future_dates_for_plans():
    (h,) = find_dates("surgery booked in 6 weeks", REF)
    assert h.when.date() == date(2026, 7, 20)


@pytest.mark.parametrize(("text", "future", "want"), [
    ("TKA booked on Friday", True, "2026-06-12"),  # REF is a Monday: a plan's "on Friday" is this week's
    ("TKA booked on Friday", False, "2026-06-05"),  # read as history, the Friday before
    ("surgery next Monday", False, "2026-06-15"), ("this coming Wednesday", False, "2026-06-10"),
    ("last Friday", True, "2026-06-05"), ("held since Friday", True, "2026-06-05"),  # past words win in a plan
])
def test_weekdays_ahead_and_behind(text, future, want):
    (h,) = find_dates(text, REF, future=future)
    assert h.when.date().isoformat() == want


def test_note_date_line():
    assert note_date("Date: 03/05/2026\nText", REF) == date(2026, 3, 5)
    assert note_date("Visit date: 5 Mar 2026\n", REF) == date(2026, 3, 5)
    assert note_date("no date line", REF) is None


def test_word_numbers():
    assert (to_number("five"), to_number("twelve"), to_number("3.5"), to_number("several")) == (5, 12, 3.5, None)


def test_markup_stripped():
    assert to_plain("<p>Temp 38.7 &deg;C</p><p>INR 3.8</p>") == "Temp 38.7 °C\n\nINR 3.8"
    assert to_plain(r"{\rtf1\ansi{\fonttbl{\f0 Arial;}}\f0 Hives after Kenalog.\par INR 3.8\par}") == \
        "Hives after Kenalog.\nINR 3.8"
    assert to_plain("plain text < 5 and > 3") == "plain text < 5 and > 3"


def test_unwrap_keeps_offsets_and_lists():
    text = "Twelve injections over the past\n4 years.\n- item one\nPlan: rest"
    out = unwrap(text)
    assert len(out) == len(text) and "past 4 years" in out and "\n- item" in out and "\nPlan:" in out


WORDS = st.sampled_from([
    "no", "denies", "fever", "38.9", "C", "F", "INR", "3.8", "pain", "7/10", "6/3", "injection", "R", "L", "hip",
    "knee", "Kenalog", "hives", "allergic", "to", "triamcinolone", "40", "mg", "weeks", "ago", "five", "twelve",
    "injections", "since", "2022", "PT", "completed", "plan:", "US-guided", "booked", "in", "6", "TKA", "pregnant",
    "21", "hx", "of", "r/o", "septic", "arthritis", "mother", "had", "if", ".", ",", ";", "\n", "went", "from",
    "back", "by", "the", "evening", "blockade", "twice", "(Aug", "and", "Nov", "2025)", "WBC", "68,000", "aspirate",
    "Date:", "2026-03-05", "saddle", "numbness", "foot", "drop", "absent", "pulses", "boil", "<p>", "{\\rtf1", "\\par",
])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(WORDS, max_size=60).map(" ".join), st.text(max_size=400)))
def test_random_notes_never_crash(text):
    rec = PatientRecord(Patient("Patient/fz"))
    EX.add(rec, NoteInput(to_plain(text), "note:fz", REF))
    for fn in (lambda: assess(rec, KB, REF, PlanOverrides(target="hip-intra-articular", side="right",
                                                              steroid="triamcinolone", dose=40)),
               lambda: review(rec, KB, REF)):
        with contextlib.suppress(InputError, NotApplicable):
            fn()


_PIECES = ["she", "He", "her", "HERS", "him", "his", "this", "shes", "hee", "she's", "_he", "he1", " ", "  ", "\t",
           "\n", "\n\n", " \n", ".", ":", "?", ";", "- ", "1. ", "Pain: ", "Date: 2026-01-01", "B", "x", "\u00a0", "é",
           "\r", "\f", "\v"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=16))
def test_fast_forms_of_the_wrap_and_pronoun_patterns_match_as_the_plain_ones(pieces):
    """The soft-wrap pattern opening on its character class, the pronoun count on lower-cased text and the
    substring test for odd spacing: the matches and counts of the plain patterns they replace."""
    import re

    from injectwise.adapters.notes.extract import _ODD_SPACING, _SOFT_WRAP, _pronouns, normalize_spacing
    text = "".join(pieces)
    plain = re.compile(r"(?<=[^\s.!?:;])[ \t]*\n(?=[ \t]*(?![-*•]\s|\d+[.)]\s)(?![A-Z][\w /]{0,30}:)\S)")
    assert [m.span() for m in _SOFT_WRAP.finditer(text)] == [m.span() for m in plain.finditer(text)]
    assert _pronouns(text) == (len(re.findall(r"\b(she|her|hers)\b", text, re.I)),
                               len(re.findall(r"\b(he|him|his)\b", text, re.I)))
    assert (normalize_spacing(text)[1] is None) == (_ODD_SPACING.search(text) is None)
