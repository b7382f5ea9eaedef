"""Look-back periods count calendar days with the first day included; leap years do not move them."""
from datetime import date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from injectwise.adapters.web.chart import out_of_year
from injectwise.core.dates import parse_fhir_datetime, period_start, year_before


def test_twelve_months_start_on_the_same_day_a_year_earlier() -> None:
    assert period_start(date(2026, 3, 10), 365) == date(2025, 3, 10)
    assert period_start(date(2024, 5, 20), 365) == date(2023, 5, 20)  # 366 days: a leap day lies between
    assert period_start(date(2024, 2, 29), 365) == date(2023, 2, 28)
    assert period_start(date(2026, 3, 10), 84) == date(2025, 12, 16)


@given(st.dates(min_value=date(1901, 1, 1), max_value=date(2199, 12, 31)))
def test_an_injection_leaves_the_year_the_day_after_its_anniversary(day: date) -> None:
    first_out = out_of_year(day)
    assert year_before(first_out) > day  # no longer counted
    assert year_before(first_out - timedelta(days=1)) <= day  # counted up to the day before


def test_the_day_before_a_leap_day_counts_through_the_leap_day() -> None:
    """28 Feb 2023 is inside "12 months" as of 29 Feb 2024 (that day's year-ago start is 28 Feb 2023)."""
    assert out_of_year(date(2023, 2, 28)) == date(2024, 3, 1)
    assert out_of_year(date(2024, 2, 29)) == date(2025, 3, 1)
    assert out_of_year(date(2025, 3, 10)) == date(2026, 3, 11)


def test_a_time_with_an_offset_keeps_its_local_calendar_day() -> None:
    """An evening injection in New York is on the day its clinic wrote, not the next UTC day."""
    assert parse_fhir_datetime("2026-03-10T19:30:00-05:00") == datetime(2026, 3, 10, 19, 30)
    assert parse_fhir_datetime("2026-03-11T00:30:00+01:00").date() == date(2026, 3, 11)
    assert parse_fhir_datetime("2026-03-10T19:30:00Z") == datetime(2026, 3, 10, 19, 30)
