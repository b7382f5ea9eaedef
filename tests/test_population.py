"""Population screening: measures on hand-made Bulk exports (each fires and does not fire), gzip input, the
bounded-memory partition, local vs Spark rows, precision/recall on a generated population, bad input."""

from __future__ import annotations

import gzip
import subprocess
from datetime import date
from pathlib import Path

import orjson
import pytest
from conftest import SHARED, cli_path
from hypothesis import given, settings
from hypothesis import strategies as st

from injectwise.adapters.population.bulk import patient_key, patient_of
from injectwise.adapters.population.local import ShardStats, run_local
from injectwise.adapters.population.output import read_rows
from injectwise.adapters.population.patient import screen_resources
from injectwise.adapters.population.run import screen_export
from injectwise.adapters.population.synth import generate
from injectwise.core.errors import InputError, KnowledgeError
from injectwise.demo.builder import BundleBuilder
from injectwise.knowledge.measures import load_measures, parse_measures

ON = date(2026, 6, 30)


def _pt(b: BundleBuilder, end: str = "2025-06-01") -> None:
    b.therapy("2025-04-01", end, "Physical therapy, hip exercise programme")


def _inj(b: BundleBuilder, d: str, target: str = "hip-intra-articular", side: str = "right",
         guidance: str = "ultrasound", mg: float = 40, steroid: str = "triamcinolone", relief: bool = True) -> None:
    b.pain(f"{d}T08:00:00Z", 7)
    b.injection(d, target, side, guidance, steroid, mg, "lidocaine", 40)
    y, m, dd = map(int, d.split("-"))
    for after in (21, 50):
        when = date.fromordinal(date(y, m, dd).toordinal() + after)
        if when < ON:
            b.pain(f"{when.isoformat()}T09:00:00Z", 2 if relief else 7)


def _patients() -> dict[str, tuple[BundleBuilder, dict[str, bool | None]]]:
    """name -> (patient, expected flags for the measures it is about)."""
    out: dict[str, tuple[BundleBuilder, dict[str, bool | None]]] = {}

    def new(name: str, expect: dict[str, bool | None], pt: bool = True) -> BundleBuilder:
        b = BundleBuilder(name)
        if pt:
            _pt(b)
        out[name] = (b, expect)
        return b

    b = new("int-yes", {"interval": True})
    _inj(b, "2026-01-20"), _inj(b, "2026-04-13")  # 83 days
    b = new("int-no", {"interval": False})
    _inj(b, "2026-01-20"), _inj(b, "2026-04-14")  # 84 days: the policy minimum itself is allowed
    b = new("int-other-side", {"interval": False})
    _inj(b, "2026-03-01"), _inj(b, "2026-03-20", side="left")
    b = new("count-yes", {"site-count": True, "interval": False})
    for d in ("2025-08-01", "2025-11-01", "2026-02-01", "2026-05-01"):
        _inj(b, d)
    b = new("count-no", {"site-count": False})
    for d in ("2025-04-28", "2025-11-01", "2026-02-01", "2026-05-01"):  # the first is over 12 months before the last
        _inj(b, d)
    b = new("cum-yes", {"cumulative-exposure": True})  # 80 + 80 + dexamethasone 8 mg (42.7 mg TAE) > 200
    _inj(b, "2025-10-01", mg=80), _inj(b, "2026-01-10", side="left", mg=80)
    _inj(b, "2026-04-01", target="knee-intra-articular", steroid="dexamethasone", mg=8)
    b = new("cum-no", {"cumulative-exposure": False})
    _inj(b, "2025-10-01", mg=80), _inj(b, "2026-01-10", side="left", mg=80)
    b = new("pt-yes", {"no-conservative-care": True}, pt=False)
    _inj(b, "2026-02-01")
    b = new("pt-no", {"no-conservative-care": False})
    _inj(b, "2026-02-01")
    b = new("pt-spine-excluded", {"no-conservative-care": None}, pt=False)
    _inj(b, "2026-02-01", target="lumbar-epidural", side="", guidance="fluoroscopy")
    b = new("blind-yes", {"landmark-where-guidance-recommended": True})
    _inj(b, "2026-02-01", guidance="landmark")
    b = new("blind-no", {"landmark-where-guidance-recommended": False})
    _inj(b, "2026-02-01", target="knee-intra-articular", guidance="landmark")  # conditional, no risk factor
    b = new("tha-yes", {"pre-arthroplasty": True})
    _inj(b, "2026-02-01")
    b.procedure("Total replacement of right hip joint", "2026-03-20T08:00:00Z", "52734007")
    b = new("tha-scheduled", {"pre-arthroplasty": True})
    _inj(b, "2026-05-01")
    b.future_order("Total hip arthroplasty, right", "2026-07-15", "52734007")
    b = new("tha-late", {"pre-arthroplasty": False})
    _inj(b, "2026-01-01")
    b.procedure("Total replacement of right hip joint", "2026-05-01T08:00:00Z", "52734007")  # 120 days later
    b = new("tha-after-asof", {"pre-arthroplasty": False})
    _inj(b, "2026-06-01")
    b.procedure("Total replacement of right hip joint", "2026-07-10T08:00:00Z", "52734007")  # after the date
    b = new("tha-bursa", {"pre-arthroplasty": None})
    _inj(b, "2026-02-01", target="greater-trochanteric-bursa")
    b.procedure("Total replacement of right hip joint", "2026-03-01T08:00:00Z", "52734007")
    b = new("rep-yes", {"repeat-without-benefit": True})
    for d in ("2025-08-01", "2025-11-15", "2026-03-01"):
        _inj(b, d, relief=False)
    b = new("rep-no", {"repeat-without-benefit": False})
    for d in ("2025-08-01", "2025-11-15", "2026-03-01"):
        _inj(b, d, relief=True)
    new("none", {m: None for m in ("interval", "site-count", "pt")} | {"site-count": False})
    return out


def _resources(b: BundleBuilder) -> list[dict]:
    for r in b.resources:
        if r["resourceType"] != "Patient" and "subject" not in r and "patient" not in r:
            r["subject"] = b.subject
    return b.resources


def write_export(d: Path, builders: list[BundleBuilder], gz: bool = False, split: int = 1) -> Path:
    """Bulk NDJSON: one file per resource type (or `split` files each), references as Type/id."""
    d.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[bytes]] = {}
    for b in builders:
        for r in _resources(b):
            by_type.setdefault(r["resourceType"], []).append(orjson.dumps(r))
    for rt, lines in by_type.items():
        for k in range(split):
            part = lines[k::split]
            name = d / f"{rt}.{k}.ndjson{'.gz' if gz else ''}"
            data = b"".join(x + b"\n" for x in part)
            name.write_bytes(gzip.compress(data) if gz else data)
    return d


@pytest.fixture(scope="module")
def cases():
    return _patients()


@pytest.fixture(scope="module")
def ms(kb):
    return load_measures(kb)


def test_each_measure_fires_and_does_not(cases, kb, ms):
    for name, (b, expect) in cases.items():
        row = screen_resources(b.patient["id"], _resources(b), kb, ms, ON)
        assert not row["error"], (name, row["error"])
        detail = orjson.loads(row["measure_detail"])
        for mid, want in expect.items():
            spec = next((m for m in ms.measures if m.id == mid), None)
            if spec is None:
                continue
            in_den = any(d["measure"] == mid for d in detail)
            if want is None:
                assert not in_den and not row[spec.column], (name, mid)
            else:
                assert row[spec.column] is want, (name, mid, detail)


def test_flags_explain_themselves(cases, kb, ms):
    b, _ = cases["tha-yes"]
    row = screen_resources(b.patient["id"], _resources(b), kb, ms, ON)
    hit = [d for d in orjson.loads(row["measure_detail"]) if d["measure"] == "pre-arthroplasty" and d["hit"]]
    assert hit and any(e.startswith("Procedure/") for e in hit[0]["evidence"])
    assert row["latest_injection"].startswith("Procedure/")
    assert row["knowledge"] == f"{kb.version} measures {ms.version}"
    assert row["review_response"] in ("responder", "partial", "non-responder", "unknown", "too-early")
    assert "defer.planned-arthroplasty" not in row["repeat_findings"]  # the arthroplasty is done, not planned
    b, _ = cases["cum-yes"]
    row = screen_resources(b.patient["id"], _resources(b), kb, ms, ON)
    assert row["cumulative_tae_mg_12m"] == pytest.approx(80 + 80 + 8 * 4 / 0.75, abs=0.01)
    assert orjson.loads(row["sites_12m"]) == {"hip-intra-articular:right": 1, "hip-intra-articular:left": 1,
                                              "knee-intra-articular:right": 1}


def test_local_engine_plain_and_gzip_agree(cases, tmp_path):
    builders = [b for b, _ in cases.values()]
    plain = write_export(tmp_path / "plain", builders)
    gz = write_export(tmp_path / "gz", builders, gz=True, split=2)
    a = screen_export(plain, ON, workers=2, out=tmp_path / "a.ndjson")
    b = screen_export(gz, ON, workers=1, out=tmp_path / "b.parquet")
    ra = sorted(read_rows(tmp_path / "a.ndjson"), key=lambda r: r["patient"])
    rb = sorted(read_rows(tmp_path / "b.parquet"), key=lambda r: r["patient"])
    assert len(ra) == len(cases) and ra == rb
    assert a.summary.patients == b.summary.patients == len(cases)
    rate = a.summary.patient_rates["interval"]
    assert rate.num == 1 and rate.den >= 4


def test_partition_bounds_memory_by_shard_size(cases, tmp_path):
    """Memory holds one shard per worker: a small shard size gives many shards, none near the export's size."""
    d = write_export(tmp_path / "exp", [b for b, _ in cases.values()], split=3)
    items = list(run_local(d, ON, workers=2, shard_bytes=4096))
    stats = items[-1]
    assert isinstance(stats, ShardStats)
    rows = [r for batch in items[:-1] for r in batch]  # type: ignore[union-attr]
    assert len(rows) == len(cases)
    assert stats.shards >= stats.input_bytes // 4096 and stats.shards > 10
    assert stats.max_shard_bytes < stats.input_bytes / 4


def test_generated_population_precision_recall(tmp_path):
    synthea = SHARED / "data" / "fhir" / "synthea"
    out = tmp_path / "pop"
    generate(out, 80, 11, ON, synthea if synthea.is_dir() else None, overuse_share=0.5)
    p = subprocess.run([cli_path(), "screen", str(out), "--on", ON.isoformat(), "--workers", "2",
                        "--out", str(tmp_path / "rows.parquet"), "--summary-json", str(tmp_path / "s.json")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "precision 1.000 recall 1.000" in p.stdout
    summary = orjson.loads((tmp_path / "s.json").read_bytes())
    assert summary["patients"] == 80
    assert all(a["precision"] == 1.0 and a["recall"] == 1.0 for a in summary["accuracy"].values())
    assert len(read_rows(tmp_path / "rows.parquet")) == 80


def test_generator_works_without_synthea(tmp_path):
    info = generate(tmp_path / "g", 12, 2, ON, None, overuse_share=1.0)
    assert info["patients"] == 12 and info["overuse"] == 12
    res = screen_export(tmp_path / "g", ON, workers=1, truth=tmp_path / "g" / "ground-truth.jsonl")
    assert res.accuracy["any"].precision == 1.0 and res.accuracy["any"].recall == 1.0


def test_local_and_spark_give_identical_rows(tmp_path):
    pytest.importorskip("pyspark")
    synthea = SHARED / "data" / "fhir" / "synthea"
    d = tmp_path / "pop"
    generate(d, 40, 5, ON, synthea if synthea.is_dir() else None, overuse_share=0.5, gz=True)
    local = screen_export(d, ON, "local", 2, tmp_path / "local.parquet", d / "ground-truth.jsonl")
    spark = screen_export(d, ON, "spark", 2, tmp_path / "spark.parquet", d / "ground-truth.jsonl")
    a = read_rows(tmp_path / "local.parquet")
    b = read_rows(tmp_path / "spark.parquet")
    assert sorted(a, key=lambda r: r["patient"]) == sorted(b, key=lambda r: r["patient"])
    assert len(a) == 40
    assert local.summary.as_json() == spark.summary.as_json()
    assert spark.accuracy["any"].recall == 1.0
    bad = tmp_path / "bad"  # a bad line on an executor is the same one clear error (the session is reused)
    bad.mkdir()
    (bad / "Patient.ndjson").write_bytes(b'{"resourceType":"Patient","id":"a"}\n\n')
    (bad / "Observation.ndjson").write_bytes(b'{"resourceType":"Observation","id":"o1","subject":{"refer\n')
    with pytest.raises(InputError, match=r"Observation.ndjson: not valid JSON"):
        screen_export(bad, ON, "spark", 2)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cli_path(), *args], capture_output=True, text=True, timeout=120)


def test_bad_input_is_one_clear_line(tmp_path):
    p = _cli("screen", str(tmp_path / "missing"), "--on", "2026-06-30")
    assert p.returncode == 2 and "no such directory" in p.stderr and "Traceback" not in p.stderr
    (tmp_path / "empty").mkdir()
    p = _cli("screen", str(tmp_path / "empty"), "--on", "2026-06-30")
    assert p.returncode == 2 and "no .ndjson" in p.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "Patient.ndjson").write_bytes(b'{"resourceType":"Patient","id":"a"}\n')
    (bad / "Observation.ndjson").write_bytes(b'{"resourceType":"Observation","id":"o1","subject":{"refer\n')
    p = _cli("screen", str(bad), "--on", "2026-06-30", "--workers", "1")
    assert p.returncode == 2 and "Observation.ndjson:1" in p.stderr and "not valid JSON" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    (bad / "Observation.ndjson").write_bytes(b'{"resourceType":"Observation","id":"o1"}\n')
    p = _cli("screen", str(bad), "--on", "2026-06-30", "--out", str(tmp_path / "rows.csv"))
    assert p.returncode == 2 and ".parquet or .ndjson" in p.stderr
    p = _cli("screen", str(bad), "--on", "30/06/2026")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    gzbad = tmp_path / "gzbad"
    gzbad.mkdir()
    (gzbad / "Patient.ndjson.gz").write_bytes(b"not gzip at all")
    p = _cli("screen", str(gzbad), "--on", "2026-06-30", "--workers", "1")
    assert p.returncode == 2 and "Patient.ndjson.gz" in p.stderr and "Traceback" not in p.stderr


def test_a_patient_record_problem_is_a_row_error_not_a_crash(kb, ms):
    b = BundleBuilder("dead", deceased="2026-01-01")
    _inj(b, "2025-12-01")
    row = screen_resources("dead-1", _resources(b), kb, ms, ON)
    assert "deceased" in row["error"]
    row = screen_resources("orphan", [{"resourceType": "Observation", "id": "x"}], kb, ms, ON)
    assert "no Patient resource" in row["error"]


def test_measures_file_is_validated(kb):
    doc = {"period_days": 365, "measures": [{"id": "x", "version": "1", "title": "t", "denominator": {},
                                              "numerator": {"rule": "defer.no-such-rule"}, "citations": []}]}
    with pytest.raises(KnowledgeError, match="unknown engine rule"):
        parse_measures(doc, kb)
    doc["measures"][0]["numerator"] = {"rule": "defer.injection-interval"}
    doc["measures"][0]["citations"] = ["nobody-2099"]
    with pytest.raises(KnowledgeError, match="unknown citation"):
        parse_measures(doc, kb)


ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(rt=st.sampled_from(["Observation", "Condition", "Procedure", "AllergyIntolerance", "Practitioner"]),
       pid=ids, key=st.sampled_from(["subject", "patient", "performer"]), extra=st.dictionaries(
           st.sampled_from(["status", "note", "code"]), st.text(max_size=30), max_size=3),
       prefix=st.sampled_from(["", "https://ehr.example.org/fhir/"]), first=st.booleans())
def test_fast_patient_key_agrees_with_full_parse(rt, pid, key, extra, prefix, first):
    r: dict = {"resourceType": rt, "id": "r1"}
    link = {key: {"reference": f"{prefix}Patient/{pid}", "display": "x"}}
    r = ({**link, **r, **extra} if first else {**r, **extra, **link})
    line = orjson.dumps(r)
    assert patient_key(line, "t:1") == patient_of(orjson.loads(line))
    pline = orjson.dumps({"resourceType": "Patient", "id": pid, **extra})
    assert patient_key(pline, "t:1") == pid
