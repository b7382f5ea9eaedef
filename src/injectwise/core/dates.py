"""FHIR date handling: every instant becomes a naive UTC datetime so comparisons never mix zones."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from injectwise.core.errors import InputError

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def parse_fhir_datetime(value: object) -> datetime | None:
    """Parse a FHIR date/dateTime/instant as local wall-clock time; partial dates take their earliest instant.
    None if unusable."""
    if not isinstance(value, str):
        return None
    return _parse(value)


@lru_cache(maxsize=65536)
def _parse(value: str) -> datetime | None:
    """Memoised: records repeat the same timestamps many times (datetimes are immutable)."""
    m = _DATE_RE.match(value.strip())
    if not m:
        return None
    try:
        dt = datetime(
            int(m["y"]), int(m["m"] or 1), int(m["d"] or 1),
            int(m["H"] or 0), int(m["M"] or 0), int(m["S"] or 0),
        )
    except ValueError:
        return None
    # The time as written where it was recorded (its offset dropped): a clinician counts days on the local
    # calendar, so "2026-03-10T19:30:00-05:00" is the 10th, not the 11th it is in UTC
    return dt


parse_fhir_str = _parse  # parse_fhir_datetime of a value known to be a str (one call less in the reader)


def parse_as_of(value: str) -> date:
    """Parse the evaluation date given by a user (YYYY-MM-DD)."""
    try:
        return date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise InputError(f"bad date {value!r}: expected YYYY-MM-DD") from None


def end_of_day(day: date) -> datetime:
    """The last instant of a day: 'as of' a date sees everything recorded on that date."""
    return datetime(day.year, day.month, day.day, 23, 59, 59)


def years_from(day: date, years: int) -> date:
    """The same calendar day `years` later (or earlier, when negative); 29 February gives 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def year_before(day: date) -> date:
    """The same calendar day a year earlier: where "12 months" starts."""
    return years_from(day, -1)


def period_start(day: date, days: int) -> date:
    """First day of a look-back period ending on `day`, that day counted: 365 days (a policy's
    "12 months") is the same calendar day a year earlier, so leap years do not move the boundary."""
    return year_before(day) if days == 365 else day - timedelta(days=days)


def today_utc() -> date:
    """Today's date; only adapters call this (the engine is always told its date)."""
    return datetime.now(UTC).date()


def fmt_date(dt: datetime | None) -> str | None:
    """ISO date, with the time only when it is not midnight (date-only data stays date-only)."""
    if dt is None:
        return None
    if type(dt) is datetime and dt.tzinfo is None:
        return _fmt_naive(dt)
    return _fmt(dt)


@lru_cache(maxsize=16384)
def _fmt_naive(dt: datetime) -> str:
    """Memoised for naive datetimes (the engine's): equal ones print alike; the same instants recur in
    many findings. (Aware datetimes equal across zones print differently, so they are never cached.)"""
    return _fmt(dt)


def _fmt(dt: datetime) -> str:
    if dt.hour == 0 and dt.minute == 0 and dt.second == 0:
        return dt.date().isoformat()
    if dt.tzinfo is None and dt.year >= 1000:  # the same text as strftime, several times cheaper
        return dt.isoformat(timespec="minutes")
    return dt.strftime("%Y-%m-%dT%H:%M")
