"""The embedded engine: partition the export by patient into temporary shard files, then screen shard by
shard in a process pool. Memory holds one shard per worker, whatever the size of the export.

Observation lines the reader would skip (`gate`) are not copied into the shards: a short marker per run of
them keeps their ids and line numbers, so that the shard worker can check that leaving them out changes
nothing for their patient, and read them back from the export when it could."""

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
from injectwise.adapters.population.gate import ObservationGate, skipped_lines_matter
from injectwise.adapters.population.patient import screen_resources, unused_observations

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
    skipped: int = 0  # Observation lines the reader would skip, left unparsed (see `gate`)


def shard_count(files: list[Path], workers: int, shard_bytes: int) -> int:
    size = sum(f.stat().st_size * (GZIP_RATIO if f.name.endswith(".gz") else 1) for f in files)
    return max(workers * 2, -(-size // max(shard_bytes, 1)))


def shard_of(pid: bytes, shards: int) -> int:
    """The shard of a patient id (UTF-8)."""
    return zlib.crc32(pid) % shards


_STATE: dict[str, Any] = {}


def _init(policy: str | None, as_of: date) -> None:
    """Knowledge, measures and the gate, in the parent before the workers fork (they inherit them) or in
    each worker where processes are spawned."""
    from injectwise.knowledge import load_knowledge
    from injectwise.knowledge.measures import load_measures
    kb = load_knowledge(policy)
    _STATE.update(kb=kb, ms=load_measures(kb), as_of=as_of, gate=ObservationGate(unused_observations(kb)))


def _partition(job: tuple[int, str, str, int]) -> tuple[int, int, int, int, int]:
    """Copy one export file's lines into per-shard part files, each line prefixed with its patient and origin;
    a run of one patient's skipped Observation lines becomes one marker line (an empty origin)."""
    index, path, tmp, shards = job
    outs: dict[int, Any] = {}
    n = unlinked = unread = skipped = 0
    name = Path(path).name
    gate = _STATE["gate"]
    run_pid: bytes | None = None
    run: list[bytes] = []

    def out(pid: bytes) -> Any:
        s = shard_of(pid, shards)
        f = outs.get(s)
        if f is None:
            f = outs[s] = open(os.path.join(tmp, f"shard-{s:05d}-{index:05d}.part"), "wb", buffering=1 << 16)  # noqa: SIM115
        return f

    def flush() -> None:
        if run_pid is not None:
            out(run_pid).write(b"%s\t\t%d %s\n" % (run_pid, index, b" ".join(run)))
            run.clear()

    try:
        for lineno, line in lines_of(Path(path)):
            n += 1
            hit = gate(line)
            if hit is not None:
                skipped += 1
                if hit[0] != run_pid:
                    flush()
                    run_pid = hit[0]
                run.append(b"%d:%s" % (lineno, hit[1]))
                continue
            if unread_type(line):
                unread += 1
                continue
            where = f"{name}:{lineno}"
            pid = patient_key(line, where)
            if pid is None:
                unlinked += 1
                continue
            flush()
            run_pid = None
            key = pid.encode()
            out(key).write(b"%s\t%s\t%s\n" % (key, where.encode(), line))
        flush()
    finally:
        for f in outs.values():
            f.close()
    return index, n, unlinked, unread, skipped


def _screen_shard(job: tuple[int, str, list[str]]) -> tuple[int, list[dict[str, Any]], int]:
    """Group one shard's lines by patient and screen each patient."""
    shard, tmp, files = job
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
    rows: dict[bytes, dict[str, Any]] = {}
    kb, ms, as_of = _STATE["kb"], _STATE["ms"], _STATE["as_of"]
    back: list[bytes] = []  # patients whose skipped lines must be read back
    for pid, items in by_patient.items():
        kept = [it for it in items if it[0]]
        resources = _parse_all(kept)
        if len(kept) < len(items):
            skipped = [oid.split(b":", 1)[1].decode() for where, marker in items if not where
                       for oid in marker.split(b" ")[1:]]
            if skipped_lines_matter(pid.decode(), resources, skipped):
                back.append(pid)
                continue
        rows[pid] = screen_resources(pid.decode(), resources, kb, ms, as_of)
    if back:
        lines = _read_back([by_patient[pid] for pid in back], files)
        for pid in back:
            items = [(w, line) for w, marker in by_patient[pid] for w, line in
                     ([(w, marker)] if w else _unmark(marker, files, lines))]
            rows[pid] = screen_resources(pid.decode(), _parse_all(items), kb, ms, as_of)
    return shard, [rows[pid] for pid in sorted(rows)], size


def _unmark(marker: bytes, files: list[str], lines: dict[tuple[int, int], bytes]) -> list[tuple[bytes, bytes]]:
    """The (origin, line) pairs a marker stands for, in their order."""
    index, *refs = marker.split(b" ")
    name = Path(files[int(index)]).name
    return [(f"{name}:{int(no)}".encode(), lines[int(index), int(no)]) for no, _ in (r.split(b":", 1) for r in refs)]


def _read_back(groups: list[list[tuple[bytes, bytes]]], files: list[str]) -> dict[tuple[int, int], bytes]:
    """The skipped lines the markers of these patients stand for: one pass over each file concerned."""
    wanted: dict[int, set[int]] = {}
    for items in groups:
        for where, marker in items:
            if not where:
                index, *refs = marker.split(b" ")
                wanted.setdefault(int(index), set()).update(int(r.split(b":", 1)[0]) for r in refs)
    found: dict[tuple[int, int], bytes] = {}
    for index, numbers in wanted.items():
        for lineno, line in lines_of(Path(files[index])):
            if lineno in numbers:
                found[index, lineno] = line
    return found


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
        if hasattr(os, "fork"):  # the workers inherit what the parent loaded: no start-up of their own
            _init(policy, as_of)
            pool = mp.get_context("fork").Pool(workers)
        else:
            pool = mp.get_context().Pool(workers, initializer=_init, initargs=(policy, as_of))
        with pool:
            lines = unlinked = unread = skipped = 0
            jobs = [(i, str(f), tmp, shards) for i, f in enumerate(files)]
            for _, n, u, unparsed, gated in pool.imap_unordered(_partition, jobs):
                lines += n
                unlinked += u
                unread += unparsed
                skipped += gated
            max_shard = 0
            names = [str(f) for f in files]
            screened = pool.imap_unordered(_screen_shard, [(s, tmp, names) for s in range(shards)])
            for done, (_, rows, size) in enumerate(screened, 1):
                max_shard = max(max_shard, size)
                if progress:
                    progress(done, shards)
                yield rows
        yield ShardStats(shards, len(files), lines, unlinked, sum(f.stat().st_size for f in files), max_shard, unread,
                         skipped)
