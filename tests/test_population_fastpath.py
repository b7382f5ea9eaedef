"""The screening's shortcuts change no row: Observations left unread, the Bulk reader without a Bundle and
one clinical view shared by measures, review and assess give the rows of the full path, patient by patient,
on a generated population; observations a rule can use (free-text results included) are still read, and
only lines of resource types the reader never reads are left unparsed."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from conftest import SHARED

from injectwise.adapters.fhir import read_bundle
from injectwise.adapters.fhir.reader import HANDLERS, READ_TYPES, read_resources
from injectwise.adapters.population.bulk import export_files, lines_of, parse_line, patient_key, unread_type
from injectwise.adapters.population.patient import screen_record, screen_resources
from injectwise.adapters.population.relevance import UnusedObservations
from injectwise.adapters.population.synth import generate
from injectwise.engine import clinical, evaluate
from injectwise.knowledge.measures import load_measures

ON = date(2026, 6, 30)


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The collection Bundle a Bulk patient stands for (fullUrls are the `Type/id` references)."""
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r, "fullUrl": f"{r['resourceType']}/{r['id']}"} for r in resources]}


def _by_patient(d: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in export_files(d):
        for n, line in lines_of(f):
            pid = patient_key(line, f"{f.name}:{n}")
            if pid is not None:
                out.setdefault(pid, []).append(parse_line(line, f"{f.name}:{n}"))
    return out


def _full_row(pid: str, resources: list[dict[str, Any]], kb: Any, ms: Any, monkeypatch: Any) -> dict[str, Any]:
    """The full path: every resource read from a Bundle, and no view shared between days."""
    with monkeypatch.context() as m:
        m.setattr(clinical.RecordCache, "shared", classmethod(lambda cls, record, kb: None))
        m.setattr(evaluate, "_view", lambda record, kb, as_of, view: clinical.ClinicalView(record, kb, as_of))
        return screen_record(pid, read_bundle(_bundle(resources), source=pid), kb, ms, ON)


def test_shortcuts_give_the_rows_of_the_full_path(tmp_path, kb, monkeypatch):
    synthea = SHARED / "data" / "fhir" / "synthea"
    generate(tmp_path / "pop", 60, 7, ON, synthea if synthea.is_dir() else None, overuse_share=0.5)
    ms = load_measures(kb)
    patients = _by_patient(tmp_path / "pop")
    skipped = 0
    for pid, resources in sorted(patients.items()):
        fast = screen_resources(pid, resources, kb, ms, ON)
        assert fast == _full_row(pid, resources, kb, ms, monkeypatch), pid
        full = read_bundle(_bundle(resources), source=pid)
        lean = read_resources(resources, source=pid, skip_observation=UnusedObservations(kb))
        skipped += len(full.observations) - len(lean.observations)
    assert len(patients) == 60 and skipped > 0  # the shortcut is taken, and changes nothing


def test_bulk_reader_without_skipping_reads_what_the_bundle_reader_reads(tmp_path, kb):
    synthea = SHARED / "data" / "fhir" / "synthea"
    generate(tmp_path / "pop", 8, 3, ON, synthea if synthea.is_dir() else None)
    for pid, resources in _by_patient(tmp_path / "pop").items():
        assert read_resources(resources, source=pid) == read_bundle(_bundle(resources), source=pid)


def _obs(code: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "o", "status": "final", "code": code,
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2026-06-01", **more}


def test_observations_a_rule_can_use_are_read(kb):
    unused = UnusedObservations(kb)
    culture = _obs({"text": "Synovial fluid culture"}, valueString="Staphylococcus aureus grown")
    loinc_culture = _obs({"coding": [{"system": "http://loinc.org", "code": "6463-4",
                                      "display": "Bacteria identified in Specimen by Culture"}]},
                         valueString="no growth")
    height = _obs({"coding": [{"system": "http://loinc.org", "code": "8302-2", "display": "Body Height"}],
                   "text": "Body Height"}, valueQuantity={"value": 180, "unit": "cm"})
    weight_part = _obs({"text": "Vital signs panel"},
                       component=[{"code": {"text": "Body Height"}},
                                  {"code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}],
                                            "text": "Body Weight"}, "valueQuantity": {"value": 80, "unit": "kg"}}])
    assert not unused(culture) and not unused(loinc_culture) and not unused(weight_part)
    assert unused(height)
    rec = read_resources([{"resourceType": "Patient", "id": "p"}, culture, {**height, "id": "h"}],
                         skip_observation=unused)
    assert [o.ref for o in rec.observations] == ["Observation/o"]
    assert orjson.dumps(rec.observations[0].value_text) == b'"Staphylococcus aureus grown"'


def test_only_types_the_reader_never_reads_are_left_unparsed():
    assert {"Patient", "Medication", "Binary", *HANDLERS} == READ_TYPES  # Binary: notes held by reference
    assert unread_type(b'{"resourceType":"Encounter","id":"e","subject":{"reference":"Patient/p"}}')
    assert unread_type(b' { "resourceType" : "Immunization", "id":"i"}')
    for rtype in READ_TYPES:
        assert not unread_type(b'{"resourceType":"%s","id":"x"}' % rtype.encode())
    assert not unread_type(b'{"id":"x","resourceType":"Encounter"}')  # not first: unsure, so read
    assert not unread_type(b'{"resourceType":"Obs\\u0065rvation","id":"x"}')  # an escape: unsure, so read
