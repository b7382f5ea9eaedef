"""Benchmark: parse vs. full in-process evaluation (process CPU time), and CLI start-up (wall time).

Prints figures beside their targets; never asserts, always exits 0.
Run: python bench/bench_engine.py
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import orjson
import timing  # bench/timing.py: run as `python bench/<script>.py`

from injectwise.adapters.fhir import read_bundle
from injectwise.engine.evaluate import PlanOverrides, assess, review
from injectwise.knowledge import load_knowledge

SHARED = timing.SHARED
SYNTHEA = SHARED / "data" / "fhir" / "synthea"

RUNS = 5
LOOPS = 200
SYNTHEA_LOOPS = 5
STARTUP_RUNS = 5


def best_per_call(fn: Callable[[], object], loops: int, runs: int = RUNS) -> float:
    """Process CPU time per call (since 2026-12-04): on a shared machine wall time mostly measures the others."""
    return timing.best_per_call(fn, loops, runs, time.process_time)


def best_wall(cmd: list[str], runs: int = STARTUP_RUNS) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        best = min(best, time.perf_counter() - t0)
    return best


def verdict(ok: bool) -> str:
    return "target met" if ok else "target missed"


def main() -> int:
    kb = load_knowledge()
    rows: list[tuple[str, str, str, str]] = []

    # 1. Vignette bundles
    for vc in timing.vignette_cases():
        evaluate = review if vc.mode == "review" else assess

        def full(data: bytes = vc.bundle, evaluate=evaluate, as_of: date = vc.as_of) -> object:
            return evaluate(read_bundle(data), kb, as_of)

        parse = best_per_call(lambda data=vc.bundle: orjson.loads(data), LOOPS)
        case = best_per_call(full, LOOPS)
        ratio = case / parse
        us = case * 1e6
        rows.append((f"vignette {vc.name} ({vc.mode})",
                     f"{us:8.1f} us  parse {parse * 1e6:7.1f} us  x{ratio:5.1f}",
                     "<= 1 ms | <= 2x parse",
                     f"{'met' if us <= 1000 else 'missed'} | {'met' if ratio <= 2 else 'missed'}"))

    # 2. Largest Synthea bundle
    largest = max(SYNTHEA.glob("*.json"), key=lambda p: p.stat().st_size)
    data = largest.read_bytes()
    overrides = PlanOverrides(target="hip-intra-articular", side="right", guidance="ultrasound",
                              steroid="triamcinolone", dose=40)
    as_of = date(2021, 6, 1)
    parse = best_per_call(lambda: orjson.loads(data), SYNTHEA_LOOPS)
    case = best_per_call(lambda: assess(read_bundle(data), kb, as_of, overrides), SYNTHEA_LOOPS)
    ratio = case / parse
    rows.append((f"synthea {largest.name[:40]} ({len(data) / 1e6:.2f} MB)",
                 f"{case * 1e3:8.2f} ms  parse {parse * 1e3:7.2f} ms  x{ratio:5.1f}",
                 "<= 2x parse", verdict(ratio <= 2)))

    # 3. CLI start-up
    cmds = {"python -m injectwise.adapters.cli.app --help":
            [sys.executable, "-m", "injectwise.adapters.cli.app", "--help"]}
    script = Path(sys.executable).parent / "injectwise"
    if script.exists():
        cmds["injectwise --help"] = [str(script), "--help"]
    for label, cmd in cmds.items():
        secs = best_wall(cmd)
        rows.append((f"start-up: {label}", f"{secs:8.3f} s", "<= 0.3 s", verdict(secs <= 0.3)))

    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    print(f"{'case':<{w0}}  {'figure':<{w1}}  {'target':<{w2}}  result")
    print("-" * (w0 + w1 + w2 + 20))
    for name, fig, target, res in rows:
        print(f"{name:<{w0}}  {fig:<{w1}}  {target:<{w2}}  {res}")

    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kib = rss / 1024 if sys.platform == "darwin" else rss
    print(f"\npeak RSS (this process): {kib / 1024:.1f} MiB")
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    kids_kib = kids / 1024 if sys.platform == "darwin" else kids
    print(f"peak RSS (largest child process): {kids_kib / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    main()
    sys.exit(0)
