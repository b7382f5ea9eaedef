"""Timing helper shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_per_call(fn: Callable[[], object], loops: int, runs: int) -> float:
    """Best-of-`runs` mean seconds per call over `loops` calls: the least disturbed estimate on a busy machine."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - t0) / loops)
    return best
