"""The embedded engine: partition the export by patient into temporary shard files, then screen shard by
shard in a process pool. Memory holds one shard per worker, whatever the size of the export."""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from injectwise.adapters.population.bulk import export_files, lines_of, parse_line, patient_key, unread_type
from injectwise.adapters.population.patient import screen_resources

DEFAULT_SHARD_BYTES = 32 * 1024 * 1024
GZIP_RATIO = 8  # a rough guess of how much a .ndjson.gz expands, to size the shards


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


def shard_count(files: list[Path], workers: int, shard_bytes: int) -> int:
    size = sum(f.stat().st_size * (GZIP_RATIO if f.name.endswith(".gz") else 1) for f in files)
    return max(workers * 2, -(-size // max(shard_bytes, 1)))


def shard_of(pid: str, shards: int) -> int:
    return zlib.crc32(pid.encode()) % shards


_STATE: dict[str, Any] = {}


def _init(policy: str | None, as_of: date) -> None:
    from injectwise.knowledge import load_knowledge
    from injectwise.knowledge.measures import load_measures
    kb = load_knowledge(policy)
    _STATE.update(kb=kb, ms=load_measures(kb), as_of=as_of)


def _partition(job: tuple[int, str, str, int]) -> tuple[int, int, int, int]:
    """Copy one export file's lines into per-shard part files, each line prefixed with its patient and origin."""
    index, path, tmp, shards = job
    outs: dict[int, Any] = {}
    n = unlinked = unread = 0
    name = Path(path).name
    try:
        for lineno, line in lines_of(Path(path)):
            n += 1
            if unread_type(line):
                unread += 1
                continue
            where = f"{name}:{lineno}"
            pid = patient_key(line, where)
            if pid is None:
                unlinked += 1
                continue
            s = shard_of(pid, shards)
            f = outs.get(s)
            if f is None:
                f = outs[s] = open(os.path.join(tmp, f"shard-{s:05d}-{index:05d}.part"), "wb", buffering=1 << 16)  # noqa: SIM115
            f.write(b"%s\t%s\t%s\n" % (pid.encode(), where.encode(), line))
    finally:
        for f in outs.values():
            f.close()
    return index, n, unlinked, unread


def _screen_shard(job: tuple[int, str]) -> tuple[int, list[dict[str, Any]], int]:
    """Group one shard's lines by patient and screen each patient."""
    shard, tmp = job
    # by the patient's id as bytes (UTF-8, written by _partition): sorted alike, decoded once per patient
    by_patient: dict[bytes, list[tuple[bytes, bytes]]] = {}
    size = 0
    for part in sorted(Path(tmp).glob(f"shard-{shard:05d}-*.part")):
        with part.open("rb") as f:
            for raw in f:
                size += len(raw)
                pid, where, line = raw.rstrip(b"\n").split(b"\t", 2)
                items = by_patient.get(pid)
                if items is None:
                    items = by_patient[pid] = []
                items.append((where, line))
    rows = []
    kb, ms, as_of = _STATE["kb"], _STATE["ms"], _STATE["as_of"]
    for pid in sorted(by_patient):
        rows.append(screen_resources(pid.decode(), _parse_all(by_patient[pid]), kb, ms, as_of))
    return shard, rows, size


def _parse_all(items: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    """`parse_line` of each line; its file and line number are decoded only to report a bad line."""
    out = []
    loads = orjson.loads
    for where, line in items:
        try:
            r = loads(line)
        except orjson.JSONDecodeError:
            r = None
        if type(r) is not dict or not isinstance(r.get("resourceType"), str):
            r = parse_line(line, where.decode())  # raises the error, naming file and line
        out.append(r)
    return out


def run_local(directory: str | Path, as_of: date, workers: int | None = None, policy: str | None = None,
              shard_bytes: int = DEFAULT_SHARD_BYTES, tmp_dir: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> Iterator[list[dict[str, Any]] | ShardStats]:
    """Yield lists of rows (one list per shard, patients sorted within it), then the ShardStats."""
    files = export_files(directory)
    workers = max(1, workers or os.cpu_count() or 1)
    shards = shard_count(files, workers, shard_bytes)
    with tempfile.TemporaryDirectory(prefix="injectwise-screen-", dir=tmp_dir) as tmp:
        ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
        with ctx.Pool(workers, initializer=_init, initargs=(policy, as_of)) as pool:
            lines = unlinked = unread = 0
            jobs = [(i, str(f), tmp, shards) for i, f in enumerate(files)]
            for _, n, u, skipped in pool.imap_unordered(_partition, jobs):
                lines += n
                unlinked += u
                unread += skipped
            max_shard = 0
            for done, (_, rows, size) in enumerate(pool.imap_unordered(_screen_shard, [(s, tmp) for s in range(shards)]), 1):
                max_shard = max(max_shard, size)
                if progress:
                    progress(done, shards)
                yield rows
        yield ShardStats(shards, len(files), lines, unlinked, sum(f.stat().st_size for f in files), max_shard, unread)
