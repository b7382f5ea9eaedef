"""FHIR Bulk Data export input: NDJSON files (plain or gzip), one resource a line, references `Type/id`.

Lines are routed to their patient without building the resource where a cheap byte scan can tell
(the compartment reference), falling back to a full parse; every routed line is parsed in full later,
except the Observations the reader would skip (`gate`). Lines of resource types the reader never reads
(Encounter, Immunization ...) are left unparsed, as a Bulk client asking `_type=` for the types it reads
would never have fetched them. A line is placed by its byte offset; its number is counted for messages."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from injectwise.adapters.fhir.reader import READ_TYPES
from injectwise.core.errors import InputError

SUFFIXES = (".ndjson", ".ndjson.gz")
# The patient compartment link of the resource types the engine reads (and most others).
PATIENT_KEYS = ("subject", "patient", "beneficiary")
_REF = re.compile(rb'"(?:subject|patient|beneficiary)"\s*:\s*\{[^{}]*?"reference"\s*:\s*"(?:[^"]*/)?Patient/([^"/]+)"')
_TYPE = re.compile(rb'^\s*\{\s*"resourceType"\s*:\s*"([A-Za-z]+)"')  # plain letters only: no escapes
_PATIENT = re.compile(rb'^\s*\{\s*"resourceType"\s*:\s*"Patient"\s*,\s*"id"\s*:\s*"([^"]+)"')


def export_files(directory: str | Path) -> list[Path]:
    d = Path(directory)
    if not d.exists():
        raise InputError(f"{d}: no such directory")
    if not d.is_dir():
        raise InputError(f"{d}: not a directory (give the folder of a Bulk Data export)")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))
    if not files:
        raise InputError(f"{d}: no .ndjson or .ndjson.gz files (expected a FHIR Bulk Data export)")
    return files


def open_ndjson(path: Path) -> IO[bytes]:
    try:
        return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None


def lines_of(path: Path) -> Iterator[tuple[int, bytes]]:
    """Numbered non-blank lines; a damaged gzip stream is one clear error."""
    with open_ndjson(path) as f:
        try:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield n, line.rstrip(b"\r\n")
        except (OSError, EOFError) as e:
            raise InputError(f"{path}: cannot read ({e})") from None


def lines_in(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(byte offset, line) of the non-blank lines that start in [start, end) of a plain file (offsets in the
    decompressed stream of a gzip file, read whole): the ranges of one file share its lines out exactly."""
    with open_ndjson(path) as f:
        try:
            pos = start
            if start:
                f.seek(start - 1)
                pos += len(f.readline()) - 1  # the line holding byte start-1 is the previous range's
            for line in f:
                if end is not None and pos >= end:
                    break
                if line.strip():
                    yield pos, line.rstrip(b"\r\n")
                pos += len(line)
        except (OSError, EOFError) as e:
            raise InputError(f"{path}: cannot read ({e})") from None


def lines_at(path: Path, offsets: set[int]) -> dict[int, bytes]:
    """The lines that start at these offsets (from `lines_in`)."""
    if path.name.endswith(".gz"):  # no seeking in a gzip stream: one pass
        return {pos: line for pos, line in lines_in(path) if pos in offsets}
    with open_ndjson(path) as f:
        out = {}
        for pos in sorted(offsets):
            f.seek(pos)
            out[pos] = f.readline().rstrip(b"\r\n")
        return out


def place(path: Path, offset: int) -> str:
    """`name:line` of the line at a byte offset, for messages (counts the newlines before it)."""
    newlines = 0
    with open_ndjson(path) as f:
        while offset > 0:
            block = f.read(min(offset, 1 << 20))
            if not block:
                break
            newlines += block.count(b"\n")
            offset -= len(block)
    return f"{path.name}:{newlines + 1}"


def parse_line(line: bytes, where: str) -> dict[str, Any]:
    try:
        r = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({str(e).splitlines()[0][:80]})") from None
    if not isinstance(r, dict) or not isinstance(r.get("resourceType"), str):
        raise InputError(f"{where}: not a FHIR resource (no resourceType)")
    return r


def patient_of(r: dict[str, Any]) -> str | None:
    """The patient id a resource belongs to, or None (Practitioner, Organization, Medication ...)."""
    if r.get("resourceType") == "Patient":
        rid = r.get("id")
        return rid if isinstance(rid, str) and rid else None
    for key in PATIENT_KEYS:
        v = r.get(key)
        ref = v.get("reference") if isinstance(v, dict) else None
        if isinstance(ref, str) and "Patient/" in ref:
            return ref.rsplit("Patient/", 1)[1].split("/", 1)[0] or None
    return None


def raw_patient_key(line: bytes) -> bytes | None:
    """The patient id as the line spells it, when a byte scan finds it; None: parse to tell."""
    m = _PATIENT.match(line) or _REF.search(line)
    return m.group(1) if m else None


def patient_key(line: bytes, where: str) -> str | None:
    """Fast path on the raw bytes; otherwise parse (which also reports a bad line, naming file and line)."""
    raw = raw_patient_key(line)
    if raw is not None:
        return raw.decode()
    return patient_of(parse_line(line, where))


def unread_type(line: bytes) -> bool:
    """A line whose leading resourceType is one the reader never reads; anything unsure is read."""
    m = _TYPE.match(line)
    return m is not None and m.group(1).decode() not in READ_TYPES
