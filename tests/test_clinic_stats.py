"""Registry statistics against hand-computed and textbook values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from injectwise.adapters.web.stats import kaplan_meier, km_median, median, median_ci, wilson


def test_wilson_known_values():
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)
    assert wilson(0, 0) is None


@given(st.integers(1, 500), st.data())
def test_wilson_contains_estimate(n, data):
    k = data.draw(st.integers(0, n))
    lo, hi = wilson(k, n)
    assert 0 <= lo <= k / n + 1e-12 and k / n - 1e-12 <= hi <= 1


def test_median_and_interval():
    assert median([3, 1, 2]) == 2 and median([1, 2, 3, 4]) == 2.5 and median([]) is None
    assert median_ci([1, 2, 3, 4, 5]) is None
    # n = 10: the 95% interval is the 2nd to the 9th order statistic (coverage 97.9%)
    assert median_ci(list(range(1, 11))) == (2, 9)


def test_kaplan_meier_textbook():
    # times 6,6,6,7,10 with 6 censored once; survival 1 - 3/... hand computed
    steps = kaplan_meier([6, 6, 6, 7, 10, 13], [True, True, False, True, False, True])
    assert [(s.time, s.at_risk, s.events) for s in steps] == [(6, 6, 2), (7, 3, 1), (13, 1, 1)]
    assert steps[0].survival == pytest.approx(4 / 6)
    assert steps[1].survival == pytest.approx(4 / 6 * 2 / 3)
    assert steps[2].survival == 0
    assert km_median(steps) == 7


def test_kaplan_meier_all_censored():
    assert kaplan_meier([5, 9], [False, False]) == []
    assert km_median([]) is None
