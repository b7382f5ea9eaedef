"""The partition changes no row. Observation lines left unparsed by the byte-level gate: each line it lets
through is valid JSON that the reader would skip for the patient it is routed to, and the shard worker
reads skipped lines back whenever the patient's other lines could make them count (a shared reference, a
Patient whose id is not the reference, no other line, a resource only the general path resolves). Byte
ranges: the ranges of a file share its lines out exactly, and a bad line is still named by its number."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import SHARED

from injectwise.adapters.fhir.reader import bulk_reference
from injectwise.adapters.population import partition
from injectwise.adapters.population.bulk import export_files, lines_in, lines_of, parse_line, patient_key, place
from injectwise.adapters.population.gate import ObservationGate
from injectwise.adapters.population.local import ShardStats, run_local
from injectwise.adapters.population.patient import screen_resources
from injectwise.adapters.population.relevance import UnusedObservations
from injectwise.adapters.population.synth import generate
from injectwise.core.errors import InputError
from injectwise.knowledge.measures import load_measures

ON = date(2026, 6, 30)
HEIGHT = {"coding": [{"system": "http://loinc.org", "code": "8302-2", "display": "Body Height"}], "text": "Body Height"}
CULTURE = {"coding": [{"system": "http://loinc.org", "code": "6463-4",
                       "display": "Bacteria identified in Specimen by Culture"}]}


def _obs(oid: str, pid: str, code: dict[str, Any] = HEIGHT, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "code": code,
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-06-01T10:00:00+00:00",
            "valueQuantity": {"value": 180.5, "unit": "cm"}, **more}


def test_every_line_let_through_is_one_the_reader_skips(tmp_path, kb):
    synthea = SHARED / "data" / "fhir" / "synthea"
    generate(tmp_path / "pop", 30, 4, ON, synthea if synthea.is_dir() else None, overuse_share=0.5)
    gate, unused = ObservationGate(UnusedObservations(kb)), UnusedObservations(kb)
    passed = with_components = 0
    for f in export_files(tmp_path / "pop"):
        for n, line in lines_of(f):
            hit = gate(line)
            if hit is None:
                continue
            passed += 1
            r = parse_line(line, f"{f.name}:{n}")
            assert patient_key(line, "t:1") == hit[0].decode()
            assert bulk_reference(r) == f"Observation/{hit[1].decode()}"
            assert r["subject"] == {"reference": f"Patient/{hit[0].decode()}"}
            assert unused(r)
            with_components += "component" in r
    assert passed > 1000 and with_components > 0


@pytest.mark.parametrize("line", [
    orjson.dumps(_obs("o", "p", CULTURE)),  # a code a rule can use
    orjson.dumps(_obs("o", "p", component=[{"code": HEIGHT}, {"code": CULTURE}])),  # a component a rule can use
    orjson.dumps(_obs("o", "p", component=[{"code": HEIGHT, "code2": 1}, {"valueString": "x", "code": HEIGHT}])),
    orjson.dumps(_obs("o", "p", component=[])),
    orjson.dumps(_obs("o", "p", component=[{"code": HEIGHT, "x": {"code": CULTURE}}])),
    orjson.dumps({"resourceType": "Observation", "id": "o", "code": HEIGHT, "component": [{"code": HEIGHT}],
                  "subject": {"reference": "Patient/p"}}),  # a component list before the subject
    orjson.dumps(_obs("o", "p", patient={"reference": "Patient/q"})),  # routing could differ
    orjson.dumps(_obs("o", "p"))[:-1] + b',"code":{"text":"culture"}}',  # a second code: the last one counts
    orjson.dumps(_obs("o", "p"), option=orjson.OPT_INDENT_2).replace(b"\n", b""),  # whitespace
    orjson.dumps(_obs("o", "p", note=[{"text": "caf\u00e9"}])),  # not ASCII
    orjson.dumps(_obs("o", "p", note=[{"text": "a \\\"quote\\\""}])),  # an escape
    orjson.dumps(_obs("o", "p")).replace(b"180.5", b"0180.5"),  # not JSON
    orjson.dumps(_obs("o", "p")).replace(b"180.5", b"1e400"),  # not a finite double
    orjson.dumps(_obs("o/x", "p")),  # an id the general path resolves
    orjson.dumps(_obs("o", "p", subject={"reference": "Patient/p", "display": "P"})),
])
def test_lines_the_gate_must_not_let_through(kb, line):
    assert ObservationGate(UnusedObservations(kb))(line) is None


def test_the_gate_lets_a_plain_vital_sign_through(kb):
    gate = ObservationGate(UnusedObservations(kb))
    assert gate(orjson.dumps(_obs("o", "p"))) == (b"p", b"o")
    assert gate(orjson.dumps(_obs("o", "p", component=[{"code": HEIGHT, "valueQuantity": {"value": 1}},
                                                       {"code": HEIGHT}]))) == (b"p", b"o")


def _write(d: Path, lines: dict[str, list[dict[str, Any] | bytes]]) -> Path:
    d.mkdir()
    for name, rs in lines.items():
        (d / f"{name}.ndjson").write_bytes(b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n"
                                                    for r in rs))
    return d


def test_skipped_lines_are_read_back_when_they_could_count(tmp_path, kb):
    """Each patient here needs its skipped lines; the rows are those of reading every line."""
    cond = {"resourceType": "Condition", "id": "c", "code": {"text": "hip osteoarthritis"},
            "subject": {"reference": "Patient/slash"}, "onsetDateTime": "2020-01-01"}
    d = _write(tmp_path / "exp", {
        "Patient": [{"resourceType": "Patient", "id": p, "birthDate": "1950-01-01"} for p in
                    ("ok", "dup", "shared", "slash")]
                   + [b'{"resourceType":"Patient","id":"twin","birthDate":"1950-01-01","id":"other"}'],
        "Observation": [_obs("a", "ok"), _obs("b", "ok"),
                        _obs("d1", "dup"), _obs("d1", "dup"),  # one reference twice: every one is read
                        _obs("s1", "shared"), _obs("s1", "shared", CULTURE, valueString="no growth"),
                        _obs("t", "twin"),  # the Patient line says id twin, then other
                        _obs("lone", "orphan"),  # no other line at all
                        _obs("x", "slash")],
        "Condition": [{**cond, "id": "c/1"}],
    })
    ms = load_measures(kb)
    expected: dict[str, list[dict[str, Any]]] = {}
    for f in export_files(d):
        for n, line in lines_of(f):
            expected.setdefault(patient_key(line, "t:1") or "", []).append(parse_line(line, f"{f.name}:{n}"))
    items = list(run_local(d, ON, workers=1))
    stats = items[-1]
    assert isinstance(stats, ShardStats) and stats.skipped == 8
    rows = sorted((r for batch in items[:-1] for r in batch), key=lambda r: r["patient"])  # type: ignore[union-attr]
    assert rows == [screen_resources(pid, rs, kb, ms, ON) for pid, rs in sorted(expected.items())]
    errors = {r["patient"]: r["error"] for r in rows}
    assert "no Patient resource" in errors["orphan"] and "belongs to Patient/twin" in errors["twin"]


@pytest.mark.parametrize("size", [1, 7, 64, 1000, 10**6])
def test_ranges_share_a_file_out_line_by_line(tmp_path, size):
    f = tmp_path / "Observation.ndjson"
    f.write_bytes(b'{"a":1}\n\n  \n{"b":22}\r\n{"c":333}\n\n{"d":4}')
    got = [it for a, b in partition.ranges(f, size) for it in lines_in(f, a, b)]
    assert [line for _, line in got] == [line for _, line in lines_of(f)]
    assert [place(f, pos) for pos, _ in got] == [f"{f.name}:{n}" for n, _ in lines_of(f)]


def test_small_ranges_give_the_same_rows_and_name_a_bad_line(tmp_path, kb, monkeypatch):
    synthea = SHARED / "data" / "fhir" / "synthea"
    d = tmp_path / "pop"
    generate(d, 12, 9, ON, synthea if synthea.is_dir() else None, overuse_share=0.5)

    def rows() -> list[dict[str, Any]]:
        return sorted((r for batch in list(run_local(d, ON, workers=2))[:-1] for r in batch),  # type: ignore[union-attr]
                      key=lambda r: r["patient"])
    whole = rows()
    monkeypatch.setattr(partition, "RANGE_BYTES", 4096)
    monkeypatch.setattr(partition, "MAX_RUN", 2)
    assert rows() == whole and len(whole) == 12
    obs = d / "Observation.ndjson"
    lines = obs.read_bytes().splitlines(keepends=True)
    obs.write_bytes(b"".join([*lines[:200], b'{"resourceType":"Observation","id":"x","subject":{"refer\n', *lines[200:]]))
    with pytest.raises(InputError, match=r"Observation.ndjson:201: not valid JSON"):
        rows()
    pid = orjson.loads(lines[0])["subject"]["reference"]  # routed by the byte scan, so found bad when parsed
    obs.write_bytes(b"".join([*lines[:300], b'{"resourceType":"Condition","subject":{"reference":"%s"},"x":\n'
                              % pid.encode(), *lines[300:]]))
    with pytest.raises(InputError, match=r"Observation.ndjson:301: not valid JSON"):
        rows()
