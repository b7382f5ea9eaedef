"""Equivalence harness: every result a performance change could alter, serialised, to diff before and after.

Writes one text file (a line per case: the case name, then the full result JSON or the error) covering
- every vignette in ../shared/examples/vignettes and tests/vignettes, through its FHIR bundle
  (vignette2fhir.py): the record as read (repr), `assess` and `review` without the bundle's notes, with
  its DocumentReference notes, with note.txt given as --note, the note alone, and `assess` with overrides;
- every Synthea bundle in ../shared/data/fhir/synthea: the record, `assess` (overrides) and `review` on
  several dates;
- with --population DIR: the rows `injectwise screen` writes for that export (sorted by patient).

Run it at two commits with the same PYTHONHASHSEED and compare the files byte for byte:

    PYTHONHASHSEED=0 .venv/bin/python bench/equivalence.py OUT.txt [--population DIR]
    cmp BEFORE.txt AFTER.txt
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import timing

from injectwise.adapters.cli.inputs import with_notes
from injectwise.adapters.fhir import read_bundle
from injectwise.adapters.notes import note_only_record
from injectwise.core.errors import InjectwiseError
from injectwise.engine.evaluate import PlanOverrides, assess, review
from injectwise.knowledge import load_knowledge

ROOT = Path(__file__).resolve().parents[1]
OWN_VIGNETTES = ROOT / "tests" / "vignettes"
SYNTHEA = timing.SHARED / "data" / "fhir" / "synthea"
SYNTHEA_DATES = ("2012-03-15", "2015-01-01", "2019-07-01", "2021-06-01", "2026-06-30")
OVERRIDES = (
    PlanOverrides(target="hip-intra-articular", side="right", guidance="ultrasound", steroid="triamcinolone", dose=40),
    PlanOverrides(target="knee-intra-articular", side="left", guidance="landmark", steroid="methylprednisolone",
                  dose=80, anesthetic="lidocaine", anesthetic_dose=40),
    PlanOverrides(target="lumbar-epidural", guidance="fluoroscopy", steroid="dexamethasone", dose=10),
)


def outcome(evaluate: Callable[..., Any], record: Callable[[], Any], kb: Any, as_of: date, *more: Any) -> str:
    """The result JSON of `evaluate` on a freshly read record, or the error it gives."""
    try:
        r = evaluate(record(), kb, as_of, *more)
    except InjectwiseError as e:
        return f"{type(e).__name__}: {e}"
    return orjson.dumps(r.as_json(), option=orjson.OPT_SORT_KEYS).decode()


def without_notes(bundle: dict[str, Any]) -> dict[str, Any]:
    b = copy.deepcopy(bundle)
    b["entry"] = [e for e in b["entry"] if e.get("resource", {}).get("resourceType") != "DocumentReference"]
    return b


def vignette_lines(kb: Any, out: list[str]) -> None:
    files = sorted(str(p) for p in (*timing.VIGNETTES.glob("*.yaml"), *OWN_VIGNETTES.glob("*.yaml")))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(timing.CONVERTER), *files, "--out", tmp], check=True, capture_output=True)
        for d in sorted(p for p in Path(tmp).iterdir() if p.is_dir()):
            exp = json.loads((d / "expected.json").read_text())
            as_of = date.fromisoformat(exp["as_of"])
            raw = orjson.loads((d / "bundle.json").read_bytes())
            note = d / "note.txt"
            bare = without_notes(raw)
            name = d.name
            plain = partial(read_bundle, bare)
            notes = partial(_with_notes, raw, None, kb, as_of)
            out.append(f"{name} record {plain()!r}")
            for mode, fn in (("assess", assess), ("review", review)):
                out.append(f"{name} {mode} no-note " + outcome(fn, plain, kb, as_of))
                out.append(f"{name} {mode} bundle-notes " + outcome(fn, notes, kb, as_of))
                if note.exists():
                    out.append(f"{name} {mode} --note " + outcome(fn, partial(_with_notes, bare, note, kb, as_of),
                                                                  kb, as_of))
                    out.append(f"{name} {mode} note-only " + outcome(fn, partial(note_only_record, note, kb, as_of),
                                                                     kb, as_of))
            for i, ov in enumerate(OVERRIDES):
                out.append(f"{name} assess overrides{i} " + outcome(assess, plain, kb, as_of, ov))
            out.append(f"{name} record+notes {notes()!r}")
        out[:] = [line.replace(tmp, "TMP") for line in out]  # the same lines whatever the folder's name


def _with_notes(bundle: dict[str, Any], note: Path | None, kb: Any, as_of: date) -> Any:
    return with_notes(read_bundle(bundle, source="bundle.json"), note, kb, as_of)


def synthea_lines(kb: Any, out: list[str]) -> None:
    for f in sorted(SYNTHEA.glob("*.json")):
        read = partial(read_bundle, f.read_bytes())
        out.append(f"{f.name} record {read()!r}")
        for on in SYNTHEA_DATES:
            as_of = date.fromisoformat(on)
            for i, ov in enumerate(OVERRIDES):
                out.append(f"{f.name} {on} assess{i} " + outcome(assess, read, kb, as_of, ov))
            out.append(f"{f.name} {on} assess " + outcome(assess, read, kb, as_of))
            out.append(f"{f.name} {on} review " + outcome(review, read, kb, as_of))


def population_lines(directory: str, out: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.ndjson"
        exe = Path(sys.executable).parent / "injectwise"
        subprocess.run([str(exe), "screen", directory, "--on", "2026-06-30", "--workers", "2", "--out", str(rows)],
                       check=True, capture_output=True, env=os.environ)
        lines = [orjson.loads(x) for x in rows.read_bytes().splitlines() if x.strip()]
    lines.sort(key=lambda r: r["patient"])
    out.extend("row " + orjson.dumps(r, option=orjson.OPT_SORT_KEYS).decode() for r in lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--population", help="a Bulk export folder to screen")
    args = ap.parse_args()
    kb = load_knowledge()
    out: list[str] = []
    vignette_lines(kb, out)
    synthea_lines(kb, out)
    if args.population:
        population_lines(args.population, out)
    Path(args.out).write_text("\n".join(out) + "\n")
    print(f"{len(out)} lines to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
