"""Small, tested statistics for the registry: Wilson score interval for a proportion, a
distribution-free confidence interval for a median, and the Kaplan-Meier estimator."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95% Wilson score interval; None when there is nothing to estimate."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def median(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def _binom_cdf(k: int, n: int) -> float:
    return sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n


def median_ci(values: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """Order-statistic interval for the median (binomial, no distributional assumption): the widest
    symmetric pair of order statistics whose coverage is at least `level`; None below 6 values, where
    even the full range covers less than 95%."""
    n = len(values)
    if n < 6:
        return None
    s = sorted(values)
    alpha = 1 - level
    k = 0
    while _binom_cdf(k + 1, n) <= alpha / 2:
        k += 1
    return s[k], s[n - 1 - k]


@dataclass(frozen=True, slots=True)
class KMStep:
    time: float
    at_risk: int
    events: int
    survival: float


def kaplan_meier(times: list[float], events: list[bool]) -> list[KMStep]:
    """Survival after each distinct event time; censored observations (event False) leave the risk set
    after ties with events at the same time, the usual convention."""
    if len(times) != len(events):
        raise ValueError("times and events differ in length")
    pairs = sorted(zip(times, events, strict=True))
    at_risk, s, out, i = len(pairs), 1.0, [], 0
    while i < len(pairs):
        t = pairs[i][0]
        d = c = 0
        while i < len(pairs) and pairs[i][0] == t:
            d += pairs[i][1]
            c += not pairs[i][1]
            i += 1
        if d:
            s *= 1 - d / at_risk
            out.append(KMStep(t, at_risk, d, s))
        at_risk -= d + c
    return out


def km_median(steps: list[KMStep]) -> float | None:
    for st in steps:
        if st.survival <= 0.5:
            return st.time
    return None
