"""The embedded engine: partition the export by patient into temporary shard files, then screen shard by
shard in a process pool. Memory holds one shard per worker, whatever the size of the export.

Observation lines the reader would skip (`gate`) are not copied into the shards (`partition`); the shard
worker reads them back for a patient they could count for (`shard`). Knowledge is loaded once, in the
parent, before the workers fork."""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from injectwise.adapters.population.bulk import export_files
from injectwise.adapters.population.gate import ObservationGate
from injectwise.adapters.population.partition import Counts, partition_range, ranges
from injectwise.adapters.population.patient import unused_observations
from injectwise.adapters.population.shard import screen_shard

DEFAULT_SHARD_BYTES = 32 * 1024 * 1024
GC_YOUNG = 20_000  # a worker's young-generation threshold (Python's default 700 runs it every few lines)
GZIP_RATIO = 8  # a rough guess of how much a .ndjson.gz expands, to size the shards
SHARDS_PER_WORKER = 8  # at least: the last shards to finish keep fewer workers waiting


@dataclass(slots=True)
class ShardStats:
    """What the partition did: evidence that memory is bounded by the shard size, not the export."""

    shards: int
    files: int
    lines: int
    unlinked: int  # resources that belong to no patient (e.g. Practitioner), skipped
    input_bytes: int
    max_shard_bytes: int
    unread: int = 0  # lines of resource types the reader never reads (Encounter ...), left unparsed
    skipped: int = 0  # Observation lines the reader would skip, left unparsed (see `gate`)


def _expanded(f: Path) -> int:
    return f.stat().st_size * (GZIP_RATIO if f.name.endswith(".gz") else 1)


def shard_count(files: list[Path], workers: int, shard_bytes: int) -> int:
    size = sum(_expanded(f) for f in files)
    return max(workers * SHARDS_PER_WORKER, -(-size // max(shard_bytes, 1)))


_STATE: dict[str, Any] = {}


def _init(policy: str | None, as_of: date) -> None:
    """Knowledge, measures and the gate: in the parent before the workers fork (they inherit them), or in
    each worker where processes are spawned."""
    from injectwise.knowledge import load_knowledge
    from injectwise.knowledge.measures import load_measures
    kb = load_knowledge(policy)
    _STATE.update(kb=kb, ms=load_measures(kb), as_of=as_of, gate=ObservationGate(unused_observations(kb)))


def _start(policy: str | None, as_of: date) -> None:
    _init(policy, as_of)
    _worker_gc()


def _worker_gc() -> None:
    """A worker allocates many short-lived dicts per line and per patient; collecting them less often
    saves ~5% of its time, and memory stays bounded by a patient's objects."""
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])


def _partition(job: tuple[int, str, int, int | None, str, int]) -> Counts:
    index, path, start, end, tmp, shards = job
    return partition_range(index, Path(path), start, end, tmp, shards, _STATE["gate"])


def _screen_shard(job: tuple[int, str, list[str]]) -> tuple[list[dict[str, Any]], int]:
    shard, tmp, files = job
    return screen_shard(tmp, shard, files, _STATE["kb"], _STATE["ms"], _STATE["as_of"])


def run_local(directory: str | Path, as_of: date, workers: int | None = None, policy: str | None = None,
              shard_bytes: int = DEFAULT_SHARD_BYTES, tmp_dir: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> Iterator[list[dict[str, Any]] | ShardStats]:
    """Yield lists of rows (one list per shard, patients sorted within it), then the ShardStats."""
    files = export_files(directory)
    workers = max(1, workers or os.cpu_count() or 1)
    shards = shard_count(files, workers, shard_bytes)
    names = [str(f) for f in files]
    with tempfile.TemporaryDirectory(prefix="injectwise-screen-", dir=tmp_dir) as tmp:
        if hasattr(os, "fork"):
            _init(policy, as_of)
            gc.freeze()  # what the workers inherit stays out of their collections (and shared with the parent)
            try:
                pool = mp.get_context("fork").Pool(workers, initializer=_worker_gc)
            finally:
                gc.unfreeze()
        else:
            pool = mp.get_context().Pool(workers, initializer=_start, initargs=(policy, as_of))
        with pool:
            total = Counts()
            sizes = [_expanded(f) for f in files]
            jobs = [(i, name, a, b, tmp, shards) for i, (name, f) in enumerate(zip(names, files, strict=True))
                    for a, b in ranges(f)]
            jobs.sort(key=lambda j: j[2] - (sizes[j[0]] if j[3] is None else j[3]))  # the largest ranges first
            for c in pool.imap_unordered(_partition, jobs):
                total.lines += c.lines
                total.unlinked += c.unlinked
                total.unread += c.unread
                total.skipped += c.skipped
            max_shard = 0
            screened = pool.imap_unordered(_screen_shard, [(s, tmp, names) for s in range(shards)])
            for done, (rows, size) in enumerate(screened, 1):
                max_shard = max(max_shard, size)
                if progress:
                    progress(done, shards)
                yield rows
        yield ShardStats(shards, len(files), total.lines, total.unlinked, sum(f.stat().st_size for f in files),
                         max_shard, total.unread, total.skipped)
