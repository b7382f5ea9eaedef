"""Several input files in one run: each is read (within a size limit) and evaluated on its own, so one
bad file never loses the others. With more than one input every JSON Lines object names its `source`;
a failing file gives an error object and one stderr line naming it, and the exit code is 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from injectwise.core.errors import InjectwiseError, InputError

DEFAULT_MAX_INPUT_BYTES = 64 * 1024 * 1024
STDIN = "-"


def max_input_bytes() -> int:
    """The input size limit: INJECTWISE_MAX_INPUT_BYTES, or 64 MiB (far above any real patient record)."""
    raw = os.environ.get("INJECTWISE_MAX_INPUT_BYTES", "")
    if not raw:
        return DEFAULT_MAX_INPUT_BYTES
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(f"INJECTWISE_MAX_INPUT_BYTES must be a positive number of bytes, not {raw!r}")
    return int(raw)


def read_limited(stream: BinaryIO, limit: int, name: str) -> bytes:
    """Read at most `limit` bytes; an endless or oversized input (/dev/zero) is refused, not swallowed."""
    chunks, size = [], 0
    while True:
        chunk = stream.read(min(1 << 20, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise InputError(f"{name}: input larger than the limit of {limit} bytes (INJECTWISE_MAX_INPUT_BYTES)")
        chunks.append(chunk)


def read_input(path: Path, limit: int) -> bytes:
    name = str(path)
    if name == STDIN:
        return read_limited(sys.stdin.buffer, limit, "standard input")
    try:
        with path.open("rb") as f:
            return read_limited(f, limit, name)
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a FHIR Bundle file") from None
    except OSError as e:
        raise InputError(f"{name}: cannot read file ({e.strerror or e})") from None


def evaluate_file(path: Path, limit: int, evaluate: Callable[[Any], Any]) -> Any:
    """One input to one result; every failure is an InputError naming the input."""
    from injectwise.adapters.fhir import read_bundle

    name = "standard input" if str(path) == STDIN else str(path)
    data = read_input(path, limit)
    try:
        return evaluate(read_bundle(data, source=name))
    except InputError as e:
        msg = str(e)
        raise InputError(msg if msg.startswith(name) else f"{name}: {msg}") from None


def run_batch(paths: list[Path], evaluate: Callable[[Any], Any], as_json: bool,
              render: Callable[[Any], None]) -> int:
    """Evaluate each input; returns the exit code (2 when any input failed). A single input keeps the
    one-line error of the plain CLI (raised); several inputs go on past a bad one."""
    limit = max_input_bytes()
    if len(paths) == 1:
        result = evaluate_file(paths[0], limit, evaluate)
        _emit_one(result.as_json() if as_json else result, None, as_json, render)
        return 0
    failed = 0
    for p in paths:
        source = str(p)
        try:
            result = evaluate_file(p, limit, evaluate)
        except InjectwiseError as e:
            failed += 1
            print(f"injectwise: error: {e}", file=sys.stderr)
            if as_json:
                _write({"source": source, "error": str(e)})
            continue
        _emit_one(result.as_json() if as_json else result, source, as_json, render)
    return 2 if failed else 0


def _emit_one(result: Any, source: str | None, as_json: bool, render: Callable[[Any], None]) -> None:
    if as_json:
        _write({"source": source, **result} if source is not None else result)
    else:
        render(result)


def _write(doc: dict[str, Any]) -> None:
    out = sys.stdout.buffer
    out.write(orjson.dumps(doc) + b"\n")
    out.flush()
