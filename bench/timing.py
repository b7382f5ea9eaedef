"""Timing helper and the public vignette cases, shared by the benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

# ../shared beside the project (the vignettes, their converter and the Synthea bundles)
SHARED = Path(__file__).resolve().parents[2] / "shared"
VIGNETTES = SHARED / "examples" / "vignettes"
CONVERTER = SHARED / "tools" / "vignette2fhir.py"


@dataclass(frozen=True)
class VignetteCase:
    name: str
    bundle: bytes
    mode: str  # assess or review
    as_of: date


def vignette_cases() -> Iterator[VignetteCase]:
    """The public vignettes converted to FHIR bundles, one case each, in name order."""
    with tempfile.TemporaryDirectory() as tmp:
        files = sorted(str(p) for p in VIGNETTES.glob("*.yaml"))
        subprocess.run([sys.executable, str(CONVERTER), *files, "--out", tmp], check=True, capture_output=True)
        for d in sorted(p for p in Path(tmp).iterdir() if p.is_dir()):
            expected = json.loads((d / "expected.json").read_text())
            yield VignetteCase(d.name, (d / "bundle.json").read_bytes(), expected["mode"],
                               date.fromisoformat(expected["as_of"]))


def best_per_call(fn: Callable[[], object], loops: int, runs: int,
                  clock: Callable[[], float] = time.perf_counter) -> float:
    """Best-of-`runs` mean seconds per call over `loops` calls: the least disturbed estimate on a busy machine.
    `clock=time.process_time` counts this process's CPU time only (a shared machine's other load is left out)."""
    best = float("inf")
    for _ in range(runs):
        t0 = clock()
        for _ in range(loops):
            fn()
        best = min(best, (clock() - t0) / loops)
    return best
