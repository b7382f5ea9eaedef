"""Run a screening with either engine, stream the rows to the output and gather the summary."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from injectwise.adapters.population.local import ShardStats, run_local
from injectwise.adapters.population.output import Accuracy, RowWriter, Summary, accuracy, load_truth
from injectwise.adapters.population.patient import columns
from injectwise.knowledge import load_knowledge
from injectwise.knowledge.measures import MeasureSet, load_measures


@dataclass(slots=True)
class ScreenResult:
    engine: str
    as_of: date
    ms: MeasureSet
    summary: Summary
    seconds: float
    workers: int
    stats: ShardStats | None = None
    accuracy: dict[str, Accuracy] = field(default_factory=dict)
    out: str | None = None

    def as_json(self) -> dict[str, Any]:
        out = {"engine": self.engine, "as_of": self.as_of.isoformat(), "seconds": round(self.seconds, 3),
               "workers": self.workers, "output": self.out, **self.summary.as_json()}
        if self.stats:
            s = self.stats
            out["partition"] = {"shards": s.shards, "files": s.files, "lines": s.lines, "unlinked": s.unlinked,
                                "unread": s.unread, "skipped": s.skipped, "input_bytes": s.input_bytes,
                                "max_shard_bytes": s.max_shard_bytes}
        if self.accuracy:
            out["accuracy"] = {k: {"tp": a.tp, "fp": a.fp, "fn": a.fn, "precision": round(a.precision, 4),
                                   "recall": round(a.recall, 4)} for k, a in sorted(self.accuracy.items())}
        return out


def screen_export(directory: str | Path, as_of: date, engine: str = "local", workers: int | None = None,
                  out: str | Path | None = None, truth: str | Path | None = None, policy: str | None = None,
                  shard_bytes: int = 32 * 1024 * 1024, show_progress: bool = False) -> ScreenResult:
    kb = load_knowledge(policy)
    ms = load_measures(kb)
    truth_map = load_truth(truth) if truth else None
    summary = Summary(ms)
    hits: list[dict[str, Any]] = []  # only what accuracy needs: patient and measure flags
    flag_cols = ["patient", *(m.column for m in ms.measures)]
    t0 = time.perf_counter()
    stats = None
    if engine == "spark":
        from injectwise.adapters.population.spark import run_spark
        n_workers = workers or os.cpu_count() or 1
        for rows in run_spark(directory, as_of, out, policy, workers):
            summary.add(rows)
            if truth_map is not None:
                hits.extend({k: r[k] for k in flag_cols} for r in rows)
    else:
        n_workers = max(1, workers or os.cpu_count() or 1)
        writer = RowWriter(out, columns(ms)) if out else None
        with _progress(show_progress) as advance:
            try:
                for item in run_local(directory, as_of, n_workers, policy, shard_bytes, progress=advance):
                    if isinstance(item, ShardStats):
                        stats = item
                        continue
                    if writer:
                        writer.write(item)
                    summary.add(item)
                    if truth_map is not None:
                        hits.extend({k: r[k] for k in flag_cols} for r in item)
            finally:
                if writer:
                    writer.close()
    res = ScreenResult(engine, as_of, ms, summary, time.perf_counter() - t0, n_workers, stats,
                       out=str(out) if out else None)
    if truth_map is not None:
        res.accuracy = accuracy(hits, truth_map, ms)
    return res


class _progress:
    """A Rich progress bar over shards on stderr (a no-op when not asked for)."""

    def __init__(self, show: bool) -> None:
        self.show = show
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Any:
        if not self.show:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self.bar = Progress(TextColumn("screening shards"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=Console(stderr=True), transient=True)
        self.bar.__enter__()

        def advance(done: int, total: int) -> None:
            if self.task is None:
                self.task = self.bar.add_task("shards", total=total)
            self.bar.update(self.task, completed=done, total=total)
        return advance

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
