"""Population screening throughput: patients/s/core for the local engine (1 and 2 workers) and Spark,
beside the raw orjson parse rate of the same NDJSON files (all of them, and those of the resource types
the screen reads), and each run's peak memory.

    .venv/bin/python bench/bench_screen.py [--patients 10000] [--seed 1] [--dir DIR] [--no-spark]

Generates the population with `synth-population` (kept in --dir if given, reused when already there),
then runs each engine as its own `injectwise screen` process (so peak RSS is that run's alone, workers and
the Spark JVM included). Targets: local >= 50% of the raw parse rate per core, near-linear in workers.
Always exits 0."""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from injectwise.adapters.fhir.reader import READ_TYPES

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "injectwise")
ON = "2026-06-30"


def raw_parse(d: Path, only_read: bool = False) -> tuple[float, int]:
    """CPU seconds to read and orjson-parse every line once (one core), and the line count. With
    `only_read`, just the files of resource types the screen reads (Bulk files are named by type; the
    screen leaves the others' lines unparsed)."""
    t0 = time.process_time()
    n = 0
    for f in sorted(d.iterdir()):
        if not f.name.endswith((".ndjson", ".ndjson.gz")):
            continue
        if only_read and f.name.split(".", 1)[0] not in READ_TYPES:
            continue
        with gzip.open(f, "rb") if f.name.endswith(".gz") else f.open("rb") as fh:
            for line in fh:
                orjson.loads(line)
                n += 1
    return time.process_time() - t0, n


def run(args: list[str]) -> tuple[float, float, float, dict]:
    """Wall seconds, CPU seconds (all processes of the run), peak RSS (MiB, its largest process) and the
    summary JSON of one screening. CPU time is the robust figure on a shared machine; wall time shows
    contention as much as the code."""
    with tempfile.NamedTemporaryFile(suffix=".json") as js:
        t0 = time.perf_counter()
        p = subprocess.Popen([CLI, "screen", *args, "--summary-json", js.name], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        _, status, usage = os.wait4(p.pid, 0)
        secs = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        err = p.stderr.read().decode() if p.stderr else ""
        cpu = usage.ru_utime + usage.ru_stime
        if p.returncode:
            print(f"  run failed ({p.returncode}): {err.strip().splitlines()[-1] if err.strip() else ''}")
            return secs, cpu, usage.ru_maxrss / 1024, {}
        return secs, cpu, usage.ru_maxrss / 1024, orjson.loads(Path(js.name).read_bytes())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--no-spark", action="store_true")
    a = ap.parse_args()
    d = a.dir or Path(tempfile.mkdtemp(prefix="injectwise-bench-pop-"))
    if not (d / "ground-truth.jsonl").exists():
        t0 = time.perf_counter()
        synthea = ROOT.parent / "shared" / "data" / "fhir" / "synthea"
        cmd = [CLI, "synth-population", "--patients", str(a.patients), "--seed", str(a.seed), "--out", str(d),
               "--on", ON] + (["--synthea", str(synthea)] if synthea.is_dir() else [])
        subprocess.run(cmd, check=True, capture_output=True)
        print(f"generated {a.patients} patients in {time.perf_counter() - t0:.1f} s into {d}")
    size = sum(f.stat().st_size for f in d.iterdir()) / 1e6
    n = sum(1 for _ in (d / "ground-truth.jsonl").open("rb"))
    parse_s, lines = raw_parse(d)
    read_s, read_lines = raw_parse(d, only_read=True)
    base = n / parse_s
    base_read = n / read_s
    print(f"export: {n} patients, {lines} resources, {size:.0f} MB; cores here: {os.cpu_count()}")
    print(f"raw orjson parse (1 core), every file: {parse_s:.2f} CPU s = {base:,.0f} patients/s, "
          f"{lines / parse_s:,.0f} lines/s; load average now {os.getloadavg()[0]:.1f}")
    print(f"raw orjson parse (1 core), files the screen reads ({read_lines} lines): {read_s:.2f} CPU s = "
          f"{base_read:,.0f} patients/s")
    print(f"{'engine':<18}{'wall s':>8}{'patients/s':>12}{'/core':>9}{'CPU s':>8}{'patients/CPU-s':>16}"
          f"{'vs parse':>10}{'vs read':>9}{'peak RSS MiB':>14}{'recall':>8}")
    runs = [("local, 1 worker", ["--workers", "1"]), ("local, 2 workers", ["--workers", "2"])]
    if not a.no_spark:
        runs.append(("spark local[2]", ["--engine", "spark", "--workers", "2"]))
    per_core, per_cpu = {}, {}
    for name, extra in runs:
        secs, cpu, rss, summary = run([str(d), "--on", ON, *extra])
        cores = int(extra[-1])
        rate = n / secs
        per_core[name] = rate / cores
        per_cpu[name] = n / cpu if cpu else float("nan")
        rec = summary.get("accuracy", {}).get("any", {}).get("recall", float("nan"))
        if "spark" in extra:  # the JVM is not a waited child: its CPU and memory are not in wait4's figures
            print(f"{name:<18}{secs:>8.1f}{rate:>12,.0f}{rate / cores:>9,.0f}{'n/a':>8}{'n/a':>16}{'n/a':>10}"
                  f"{'n/a':>9}{'n/a':>14}{rec:>8.3f}")
            continue
        print(f"{name:<18}{secs:>8.1f}{rate:>12,.0f}{rate / cores:>9,.0f}{cpu:>8.1f}{per_cpu[name]:>16,.0f}"
              f"{per_cpu[name] / base:>10.0%}{per_cpu[name] / base_read:>9.0%}{rss:>14,.0f}{rec:>8.3f}")
        part = summary.get("partition", {})
        if part:
            print(f"{'':<18}lines {part['lines']:,}: left unparsed {part['unread']:,} of unread types and "
                  f"{part.get('skipped', 0):,} Observations the reader would skip; {part['shards']} shards")
    if "local, 2 workers" in per_core:
        sc = per_core["local, 2 workers"] * 2 / per_core["local, 1 worker"]
        eff = per_cpu["local, 2 workers"] / per_cpu["local, 1 worker"]
        print(f"scaling 1 -> 2 workers: wall x{sc:.2f} (linear = x2.00); CPU work per patient x{1 / eff:.2f} "
              f"(1.00 = no parallel overhead); target local >= 50% of parse: "
              f"{'MET' if per_cpu['local, 1 worker'] >= 0.5 * base else 'NOT MET'} against every file, "
              f"{'MET' if per_cpu['local, 1 worker'] >= 0.5 * base_read else 'NOT MET'} against the files read")
    if "spark local[2]" in per_core:
        print(f"spark overhead vs local (2 workers): wall x{per_core['local, 2 workers'] / per_core['spark local[2]']:.2f}"
              " slower (JVM start, Python worker pipes, shuffle of raw lines)")


if __name__ == "__main__":
    main()
