"""Screen one shard: group its lines by patient, parse each line once, and read back a patient's skipped
Observation lines only when they could count for it (`gate.skipped_lines_matter`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson

from injectwise.adapters.population.bulk import lines_at, parse_line, place
from injectwise.adapters.population.gate import skipped_lines_matter
from injectwise.adapters.population.patient import screen_resources
from injectwise.knowledge.measures import MeasureSet
from injectwise.knowledge.model import Knowledge

Items = list[tuple[bytes, bytes]]  # (origin `file:offset`, line), or (b"", marker) for skipped lines


def group(tmp: str, shard: int) -> tuple[dict[bytes, Items], int]:
    """The shard's lines by patient id (bytes, UTF-8: sorted alike), in export order; and the bytes read."""
    by_patient: dict[bytes, Items] = {}
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
    return by_patient, size


def screen_shard(tmp: str, shard: int, files: list[str], kb: Knowledge, ms: MeasureSet,
                 as_of: date) -> tuple[list[dict[str, Any]], int]:
    """Rows of the shard's patients, sorted by patient; and the shard's size in bytes."""
    by_patient, size = group(tmp, shard)
    rows: dict[bytes, dict[str, Any]] = {}
    back: list[bytes] = []  # patients whose skipped lines must be read back
    for pid, items in by_patient.items():
        kept = [it for it in items if it[0]]
        resources = parse_all(kept, files)
        if len(kept) < len(items):
            skipped = [ref.split(b":", 1)[1].decode() for where, marker in items if not where
                       for ref in marker.split(b" ")[1:]]
            if skipped_lines_matter(pid.decode(), resources, skipped):
                back.append(pid)
                continue
        rows[pid] = screen_resources(pid.decode(), resources, kb, ms, as_of)
    if back:
        found = read_back([by_patient[pid] for pid in back], files)
        for pid in back:
            items = [it for where, line in by_patient[pid] for it in
                     ([(where, line)] if where else unmark(line, found))]
            rows[pid] = screen_resources(pid.decode(), parse_all(items, files), kb, ms, as_of)
    return [rows[pid] for pid in sorted(rows)], size


def unmark(marker: bytes, found: dict[tuple[int, int], bytes]) -> Items:
    """The (origin, line) pairs a marker stands for, in export order."""
    index, *refs = marker.split(b" ")
    offsets = (ref.split(b":", 1)[0] for ref in refs)
    return [(b"%s:%s" % (index, off), found[int(index), int(off)]) for off in offsets]


def read_back(groups: list[Items], files: list[str]) -> dict[tuple[int, int], bytes]:
    """The skipped lines the markers of these patients stand for, by (file, offset)."""
    wanted: dict[int, set[int]] = {}
    for items in groups:
        for where, marker in items:
            if not where:
                index, *refs = marker.split(b" ")
                wanted.setdefault(int(index), set()).update(int(ref.split(b":", 1)[0]) for ref in refs)
    return {(index, pos): line for index, offsets in wanted.items()
            for pos, line in lines_at(Path(files[index]), offsets).items()}


def parse_all(items: Items, files: list[str]) -> list[dict[str, Any]]:
    """`parse_line` of each line; its file and line number are worked out only to report a bad line."""
    out = []
    loads = orjson.loads
    for where, line in items:
        try:
            r = loads(line)
        except orjson.JSONDecodeError:
            r = None
        if type(r) is not dict or not isinstance(r.get("resourceType"), str):
            index, offset = where.split(b":")
            r = parse_line(line, place(Path(files[int(index)]), int(offset)))  # raises, naming file and line
        out.append(r)
    return out
