"""Partition one byte range of an export file into per-shard part files, by patient.

Each kept line is written as `patient \\t file:offset \\t line`; a run of one patient's Observation lines
that the gate lets through becomes one marker, `patient \\t \\t file offset:id offset:id ...` (an empty
origin), so the shard worker knows their references and where to read them back. A line's place is its
byte offset, turned into a line number only for a message."""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from injectwise.adapters.population.bulk import lines_in, parse_line, patient_of, place, raw_patient_key, unread_type

RANGE_BYTES = 16 * 1024 * 1024  # a plain file is partitioned in ranges of this size, in parallel
MAX_RUN = 1024  # skipped lines a marker stands for at most (memory stays bounded whatever a patient holds)
Gate = Callable[[bytes], "tuple[bytes, bytes] | None"]


@dataclass(slots=True)
class Counts:
    lines: int = 0
    unlinked: int = 0  # resources that belong to no patient (e.g. Practitioner), skipped
    unread: int = 0  # lines of resource types the reader never reads (Encounter ...), left unparsed
    skipped: int = 0  # Observation lines the reader would skip, left unparsed


def ranges(path: Path, range_bytes: int | None = None) -> list[tuple[int, int | None]]:
    """[start, end) byte ranges of a file for parallel partitioning; a gzip stream is read whole."""
    range_bytes = range_bytes or RANGE_BYTES
    size = path.stat().st_size
    if path.name.endswith(".gz") or size <= range_bytes:
        return [(0, None)]
    cuts = list(range(0, size, range_bytes))
    return [(a, b) for a, b in zip(cuts, [*cuts[1:], None], strict=True)]


def shard_of(pid: bytes, shards: int) -> int:
    """The shard of a patient id (UTF-8)."""
    return zlib.crc32(pid) % shards


def partition_range(index: int, path: Path, start: int, end: int | None, tmp: str, shards: int,
                    gate: Gate) -> Counts:
    """Copy the lines of one range into part files named by shard, file and range (so that sorting the
    names puts a shard's lines in export order)."""
    outs: dict[int, IO[bytes]] = {}
    c = Counts()
    run_pid: bytes | None = None  # the patient of the pending run of skipped lines
    run: list[bytes] = []

    def out(pid: bytes) -> IO[bytes]:
        s = shard_of(pid, shards)
        f = outs.get(s)
        if f is None:
            f = outs[s] = open(os.path.join(tmp, f"shard-{s:05d}-{index:05d}-{start:015d}.part"), "wb",  # noqa: SIM115
                               buffering=1 << 16)
        return f

    def flush() -> None:
        if run and run_pid is not None:
            out(run_pid).write(b"%s\t\t%d %s\n" % (run_pid, index, b" ".join(run)))
            run.clear()

    try:
        for offset, line in lines_in(path, start, end):
            c.lines += 1
            hit = gate(line)
            if hit is not None:
                c.skipped += 1
                if hit[0] != run_pid or len(run) >= MAX_RUN:
                    flush()
                    run_pid = hit[0]
                run.append(b"%d:%s" % (offset, hit[1]))
                continue
            if unread_type(line):
                c.unread += 1
                continue
            pid = raw_patient_key(line)
            if pid is None:
                key = patient_of(parse_line(line, place(path, offset)))  # a bad line fails here, named
                if key is None:
                    c.unlinked += 1
                    continue
                pid = key.encode()
            flush()  # a patient's lines stay in export order
            run_pid = None
            out(pid).write(b"%s\t%d:%d\t%s\n" % (pid, index, offset, line))
        flush()
    finally:
        for f in outs.values():
            f.close()
    return c
