"""Synthetic population for screening: Synthea patients cloned with new ids and shifted dates, written as
FHIR Bulk NDJSON, each given a corticosteroid injection history, a known share with one overuse pattern.

Public Synthea data has no musculoskeletal steroid injections, so histories are drawn here. Distributions
(parameters of `History`): targets hip intra-articular 50%, greater trochanteric bursa 25%, knee 25%;
triamcinolone 40 mg (the usual large-joint dose, facts.md §2), ultrasound-guided unless the pattern says
otherwise; physical therapy completed before the first injection; NRS pain 6-8 before, 1-3 from day 21 on
(responders; mean hip OA relief is about 6 weeks, facts.md §8) so that only the drawn pattern is overuse.
Each overuse pattern is one measure of measures.yaml and is written to `ground-truth.jsonl`:
  interval (repeat 30-70 days after the last, policy min 84), site-count (4 at one site ~90 days apart,
  policy max 3/year), cumulative-exposure (3 sites x 80 mg, policy max 200 mg/year), no-conservative-care
  (no therapy recorded), landmark-where-guidance-recommended (blind hip intra-articular; landmark accuracy
  67% vs ultrasound 92%, facts.md §5), pre-arthroplasty (hip arthroplasty 20-80 days after, EULAR 3 months),
  repeat-without-benefit (3 at one site, pain unchanged; cf. "Patient C": ten injections in three years).
Template pain scores (LOINC 72514-3) are dropped so response is known; templates that already record
physical therapy are not used for the no-conservative-care pattern."""

from __future__ import annotations

import gzip
import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from injectwise.core.errors import InputError
from injectwise.demo.builder import BundleBuilder

PATTERNS = ("interval", "site-count", "cumulative-exposure", "no-conservative-care",
            "landmark-where-guidance-recommended", "pre-arthroplasty", "repeat-without-benefit")
KEEP_TYPES = ("Patient", "Condition", "Observation", "Procedure", "MedicationRequest", "MedicationAdministration",
              "MedicationStatement", "AllergyIntolerance", "CarePlan", "ServiceRequest", "DocumentReference",
              "Encounter", "Immunization")
TARGETS = (("hip-intra-articular", 0.5), ("greater-trochanteric-bursa", 0.25), ("knee-intra-articular", 0.25))
PAIN_LOINC = b'"72514-3"'
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
URN = re.compile(rb'"urn:uuid:([0-9a-f-]{36})"')
DATE = re.compile(rb'"(\d{4})-(\d{2})-(\d{2})')

FALLBACK = [  # used when no Synthea folder is at hand: one small patient with hip osteoarthritis
    {"resourceType": "Patient", "id": "00000000-0000-4000-8000-000000000001", "gender": "female",
     "birthDate": "1958-04-02"},
    {"resourceType": "Condition", "id": "00000000-0000-4000-8000-000000000002",
     "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"},
     "clinicalStatus": {"coding": [{"code": "active"}]},
     "code": {"coding": [{"system": "http://snomed.info/sct", "code": "239872002",
                          "display": "Osteoarthritis of hip"}], "text": "Osteoarthritis of hip"},
     "onsetDateTime": "2024-01-10T09:00:00Z"},
]


@dataclass(slots=True)
class Template:
    lines: list[tuple[str, bytes]]  # (resource type, serialized resource)
    types: dict[bytes, str]  # uuid -> resource type
    last: date
    has_pt: bool


def load_templates(synthea: str | Path | None) -> list[Template]:
    """Synthea bundles from a folder; the built-in patient when the folder is absent or None."""
    bundles: list[list[dict[str, Any]]] = []
    if synthea is not None and Path(synthea).is_dir():
        for p in sorted(Path(synthea).glob("*.json")):
            try:
                doc = orjson.loads(p.read_bytes())
                bundles.append([e["resource"] for e in doc.get("entry", []) if isinstance(e.get("resource"), dict)])
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise InputError(f"{p}: not a Synthea FHIR Bundle") from None
    elif synthea is not None:
        raise InputError(f"{synthea}: no such Synthea folder")
    if not bundles:
        bundles = [FALLBACK]
    return [_template(b) for b in bundles if any(r.get("resourceType") == "Patient" for r in b)]


def _has_therapy(resources: list[dict[str, Any]]) -> bool:
    """Whether the engine would see any physical/exercise therapy in the template (then it cannot serve the
    no-conservative-care pattern); asked of the engine itself so the generator never disagrees with it."""
    from injectwise.adapters.fhir import read_bundle
    from injectwise.engine.clinical import ClinicalView
    from injectwise.knowledge import load_knowledge

    entries = [{"fullUrl": f"urn:uuid:{r.get('id')}", "resource": r} for r in resources]
    try:
        rec = read_bundle({"resourceType": "Bundle", "type": "collection", "entry": entries})
        return bool(ClinicalView(rec, load_knowledge(), date(2100, 1, 1)).therapies)
    except InputError:
        return True


def _template(resources: list[dict[str, Any]]) -> Template:
    lines, types, last = [], {}, date(1900, 1, 1)
    for r in resources:
        rt = r.get("resourceType")
        if rt not in KEEP_TYPES:
            continue
        raw = orjson.dumps(r)
        if rt == "Observation" and PAIN_LOINC in raw:
            continue
        if isinstance(r.get("id"), str):
            types[r["id"].encode()] = rt
        lines.append((rt, raw))
        for y, m, d in DATE.findall(raw):
            try:
                last = max(last, date(int(y), int(m), int(d)))
            except ValueError:
                continue
    return Template(lines, types, last, _has_therapy([r for r in resources if r.get("resourceType") in KEEP_TYPES]))


def _clone(t: Template, pid: str, shift: int) -> list[tuple[str, bytes]]:
    ids: dict[bytes, bytes] = {}
    patient = next(u for u, rt in t.types.items() if rt == "Patient")
    for n, u in enumerate(t.types):
        ids[u] = pid.encode() if u == patient else f"{pid}-s{n}".encode()
    cache: dict[bytes, bytes] = {}

    def shift_date(m: re.Match[bytes]) -> bytes:
        key = m.group(0)
        out = cache.get(key)
        if out is None:
            try:
                d = date(int(m.group(1)), int(m.group(2)), int(m.group(3))) + timedelta(days=shift)
                out = b'"' + d.isoformat().encode()
            except (ValueError, OverflowError):
                out = key
            cache[key] = out
        return out

    def urn(m: re.Match[bytes]) -> bytes:
        u = m.group(1)
        rt = t.types.get(u)
        return b'"%s/%s"' % (rt.encode(), ids[u]) if rt else m.group(0)

    out = []
    for rt, raw in t.lines:
        raw = URN.sub(urn, raw)
        raw = UUID.sub(lambda m: ids.get(m.group(0), m.group(0)), raw)
        out.append((rt, DATE.sub(shift_date, raw)))
    return out


def _history(b: BundleBuilder, pattern: str | None, on: date, rng: random.Random) -> None:
    """Injections, pain scores and therapy for one patient, ending before `on`."""
    def day(d: date) -> str:
        return d.isoformat()

    def inject(d: date, target: str, side: str, guidance: str = "ultrasound", mg: float = 40,
               responds: bool = True) -> None:
        before = level if not responds else rng.choice((6, 7, 8))
        b.pain(f"{day(d)}T08:00:00Z", before)
        b.injection(day(d), target, side, guidance, "triamcinolone", mg, "lidocaine", 40)
        for after in (21, 50):
            if d + timedelta(days=after) < on:  # non-response: the pain stays at its level or rises a point
                b.pain(f"{day(d + timedelta(days=after))}T09:00:00Z",
                       rng.choice((1, 2, 3)) if responds else min(10, level + rng.choice((0, 1))))

    def series(first: date, n: int, lo: int, hi: int) -> list[date]:
        out = [first]
        for _ in range(n - 1):
            out.append(out[-1] + timedelta(days=rng.randint(lo, hi)))
        return out

    level = rng.choice((6, 7, 8))  # a non-responder's usual pain, the same before every injection
    side = rng.choice(("right", "left"))
    target = rng.choices([t for t, _ in TARGETS], [w for _, w in TARGETS])[0]
    if pattern is None:
        n = rng.choice((0, 0, 1, 1, 2))
        dates = [on - timedelta(days=rng.randint(20, 120))]
        if n == 2:
            dates.insert(0, dates[0] - timedelta(days=rng.randint(150, 220)))
        dates = dates[:n] if n else []
    elif pattern == "interval":
        last = on - timedelta(days=rng.randint(20, 120))
        dates = [last - timedelta(days=rng.randint(30, 70)), last]
    elif pattern == "site-count":
        first = on - timedelta(days=rng.randint(300, 330))
        dates = series(first, 4, 88, 95)
    elif pattern == "repeat-without-benefit":
        first = on - timedelta(days=rng.randint(300, 330))
        dates = series(first, 3, 100, 110)
    else:
        dates = [on - timedelta(days=rng.randint(100, 200))]
    if pattern in ("landmark-where-guidance-recommended", "pre-arthroplasty"):
        target = "hip-intra-articular"
    if not dates:
        return
    if pattern != "no-conservative-care":
        end = dates[0] - timedelta(days=rng.randint(7, 60))
        b.therapy(day(end - timedelta(days=56)), day(end), "Physical therapy, hip and knee exercise programme")
    if pattern == "cumulative-exposure":
        sites = [("hip-intra-articular", "right"), ("hip-intra-articular", "left"), ("knee-intra-articular", side)]
        for k, (tgt, sd) in enumerate(sites):
            inject(dates[0] + timedelta(days=k * 30), tgt, sd, mg=80)
        return
    guidance = "landmark" if pattern == "landmark-where-guidance-recommended" else "ultrasound"
    for d in dates:
        inject(d, target, side, guidance, responds=pattern != "repeat-without-benefit")
    if pattern == "pre-arthroplasty":
        when = dates[0] + timedelta(days=rng.randint(20, 80))
        b.procedure(f"Total replacement of {side} hip joint", f"{day(when)}T08:00:00Z", "52734007")


def generate(out: str | Path, patients: int, seed: int, on: date, synthea: str | Path | None = None,
             overuse_share: float = 0.3, gz: bool = False) -> dict[str, Any]:
    """Write the export and `ground-truth.jsonl`; return counts."""
    if patients < 1:
        raise InputError("--patients must be at least 1")
    if not 0 <= overuse_share <= 1:
        raise InputError("--overuse-share must be between 0 and 1")
    templates = load_templates(synthea)
    no_pt = [t for t in templates if not t.has_pt] or templates
    rng = random.Random(seed)
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    files: dict[str, BinaryIO] = {}
    truth_lines = []
    n_overuse = 0
    try:
        for i in range(patients):
            pid = f"syn{seed}-{i:07d}"
            pattern = PATTERNS[rng.randrange(len(PATTERNS))] if rng.random() < overuse_share else None
            tpl = rng.choice(no_pt if pattern == "no-conservative-care" else templates)
            shift = (on - timedelta(days=rng.randint(0, 30)) - tpl.last).days
            lines = _clone(tpl, pid, shift)
            b = BundleBuilder(f"{pid}-g")
            b.subject = {"reference": f"Patient/{pid}"}
            _history(b, pattern, on, rng)
            lines += [(r["resourceType"], orjson.dumps(r)) for r in b.resources[1:]]
            for rt, raw in lines:
                f = files.get(rt)
                if f is None:
                    name = d / f"{rt}.ndjson{'.gz' if gz else ''}"
                    f = files[rt] = gzip.open(name, "wb", compresslevel=3) if gz else name.open("wb")  # type: ignore[assignment]  # noqa: SIM115
                f.write(raw + b"\n")
            truth_lines.append(orjson.dumps({"patient": pid, "measures": [pattern] if pattern else []}))
            n_overuse += pattern is not None
    finally:
        for f in files.values():
            f.close()
    (d / "ground-truth.jsonl").write_bytes(b"\n".join(truth_lines) + b"\n")
    return {"patients": patients, "overuse": n_overuse, "files": sorted(files), "as_of": on.isoformat()}
