"""Equivalence harness for note reading: serialises everything reading a note produces, for a large corpus,
so a performance change can be checked byte for byte against the code before it.

Why: the notes fast paths must not change one fact, modifier or offset (a missed negation is the worst
bug). Corpus: the notes `bench_notes.py` builds, every `note:` of the shared and own vignettes, note-like
strings from the test suite, random recombinations of their sentences, and upper-case, non-ASCII and
hard-wrapped variants. Each note is read into an empty record and into a vignette bundle's record (coded
items the note may repeat); `analyze()` output (sentences, mentions with modifiers and offsets) is dumped
too, and each vignette bundle is read with its DocumentReference notes.

Run: python bench/notes_equivalence.py OUT.txt, once per version, then `cmp` the two outputs. An older
version from its own source tree: git archive <commit> src | tar -x -C /tmp/old, then
PYTHONPATH=/tmp/old/src python bench/notes_equivalence.py /tmp/old.txt
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
import sys
from datetime import date
from pathlib import Path

import bench_notes
import timing
import yaml

from injectwise.adapters.fhir import read_bundle
from injectwise.adapters.notes import add_bundle_notes
from injectwise.adapters.notes.extract import unwrap
from injectwise.adapters.notes.reader import _add
from injectwise.core.record import Patient, PatientRecord
from injectwise.knowledge import load_knowledge
from injectwise.language import analyze

ROOT = Path(__file__).resolve().parents[1]
_SPLIT = re.compile(r"(?<=[.;!?])\s+|\n+")


def _vignette_notes() -> list[str]:
    out = []
    for p in sorted([*timing.VIGNETTES.glob("*.yaml"), *(ROOT / "tests" / "vignettes").glob("*.yaml")]):
        doc = yaml.safe_load(p.read_text())
        if isinstance(doc, dict) and isinstance(doc.get("note"), str):
            out.append(doc["note"])
    return out


def _fixture_strings() -> list[str]:
    """String constants in tests/ that read like note text (several words)."""
    out: set[str] = set()
    for p in sorted((ROOT / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                s = node.value
                if len(s.split()) >= 3 and len(s) < 20000 and not s.lstrip().startswith(("{", "<", "def ", "import")):
                    out.add(s)
    return sorted(out)


def _variants(notes: list[str], rng: random.Random) -> list[str]:
    out = []
    for n in notes:
        r = rng.random()
        if r < 0.2:
            out.append(n.upper())
        elif r < 0.4:
            out.append(n.replace("->", "→").replace(" C,", " °C,").replace("about", "abóut").replace("I ", "İ ", 1))
        elif r < 0.6:  # hard-wrapped at ~60 columns
            words, lines, cur = n.split(" "), [], ""
            for w in words:
                if len(cur) + len(w) > 60:
                    lines.append(cur)
                    cur = w
                else:
                    cur = f"{cur} {w}" if cur else w
            out.append("\n".join([*lines, cur]))
        elif r < 0.8:
            out.append(n.lower())
        else:
            out.append(n.replace(". ", ".\n- ").replace(", ", " , "))
    return out


def corpus(bench_count: int = 600, mixes: int = 700) -> list[str]:
    rng = random.Random(2026)
    bench = bench_notes._notes(bench_count)
    vign = _vignette_notes()
    fixtures = _fixture_strings()
    sentences = sorted({s.strip() for t in [*vign, *fixtures, *bench[:50], *bench_notes.EXTRA]
                        for s in _SPLIT.split(t) if len(s.split()) >= 2})
    mixed = [" ".join(rng.choice(sentences) for _ in range(rng.randint(2, 25))) for _ in range(mixes)]
    base = [*bench, *vign, *fixtures, *mixed]
    return base + _variants(rng.sample(base, 500), rng)


def _dump_analysis(text: str, kb) -> str:
    a = analyze(unwrap(text), kb)
    return repr((a.truncated, [(s.start, s.end) for s in a.sentences], a.mentions))


def _dump_record(rec: PatientRecord) -> str:
    return repr(rec)


def run(out_path: Path) -> int:
    kb = load_knowledge()
    cases = list(timing.vignette_cases())
    bundles = [c.bundle for c in cases]
    notes = corpus()
    with out_path.open("w") as f:
        for i, n in enumerate(notes):
            f.write(f"== note {i} {hashlib.sha1(n.encode()).hexdigest()[:12]}\n")
            f.write(_dump_analysis(n, kb) + "\n")
            rec = PatientRecord(Patient("Patient/eq"))
            stated = _add(rec, kb, n, "note:eq", date(2026, 6, 1))
            f.write(f"{stated}\n{_dump_record(rec)}\n")
            rec = read_bundle(bundles[i % len(bundles)])
            rec.documents = []
            stated = _add(rec, kb, n, "note:eq2", cases[i % len(cases)].as_of)
            f.write(f"{stated}\n{_dump_record(rec)}\n")
        for c in cases:
            rec = read_bundle(c.bundle)
            add_bundle_notes(rec, kb, c.as_of)
            f.write(f"== bundle {c.name}\n{_dump_record(rec)}\n")
    print(f"{len(notes)} notes, {len(cases)} bundles -> {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/notes_equivalence.txt")))
