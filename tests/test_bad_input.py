"""Every kind of bad input is one line on stderr with exit code 2, never a traceback."""

import json

import pytest
from conftest import run_cli

from injectwise.demo.builder import BundleBuilder


def _bundle(tmp_path, doc, name="b.json"):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(p)


def _planned():
    b = BundleBuilder("bad", birth="1960-01-01")
    b.condition("M16.11", "Primary osteoarthritis, right hip", "2020-01-01")
    b.therapy("2024-01-01", "2024-03-01")
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    return b


def assert_clean_error(p, fragment):
    err = p.stderr.decode()
    assert p.returncode == 2, (p.returncode, err, p.stdout[:300])
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert fragment.lower() in err.lower(), err


@pytest.mark.parametrize("content,fragment", [
    ("this is not json", "not valid JSON"),
    ("", "empty"),
    ('{"resourceType": "Bundle", "type": "collection", "entry": [', "not valid JSON"),
    ('{"resourceType": "Patient", "id": "x"}', "not a FHIR Bundle"),
    ('[1, 2, 3]', "not a FHIR Bundle"),
    ('{"resourceType": "Bundle", "type": "collection", "entry": []}', "empty Bundle"),
    ('{"resourceType": "Bundle", "type": "document", "entry": [{}]}', "unsupported Bundle type"),
])
def test_malformed_files(tmp_path, content, fragment):
    assert_clean_error(run_cli("assess", _bundle(tmp_path, content), "--on", "2026-01-01"), fragment)


def test_missing_file():
    assert_clean_error(run_cli("review", "/nonexistent/bundle.json"), "cannot read")


def test_missing_subject(tmp_path):
    doc = _planned().bundle()
    del doc["entry"][1]["resource"]["subject"]
    assert_clean_error(run_cli("assess", _bundle(tmp_path, doc), "--on", "2026-01-01"), "has no subject")


def test_no_patient(tmp_path):
    doc = _planned().bundle()
    doc["entry"] = doc["entry"][1:]
    assert_clean_error(run_cli("assess", _bundle(tmp_path, doc), "--on", "2026-01-01"), "no Patient")


def test_bad_units(tmp_path):
    b = _planned()
    b.lab("4548-4", "HbA1c", 7.0, "furlongs", "2025-12-01")
    assert_clean_error(run_cli("assess", _bundle(tmp_path, b.bundle()), "--on", "2026-01-01"), "unit")


def test_bad_dose_unit(tmp_path):
    b = BundleBuilder("u")
    b.condition("M16.11", "Primary osteoarthritis, right hip", "2020-01-01")
    proc = b.injection("2025-10-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    doc = b.bundle()
    for e in doc["entry"]:
        if e["resource"]["resourceType"] == "MedicationAdministration":
            e["resource"]["dosage"]["dose"]["unit"] = "mL"
            e["resource"]["dosage"]["dose"]["code"] = "mL"
    assert proc
    assert_clean_error(run_cli("review", _bundle(tmp_path, doc), "--on", "2026-01-01"), "unit")


def test_missing_injection_date(tmp_path):
    b = BundleBuilder("d")
    b.injection("2025-10-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    doc = b.bundle()
    for e in doc["entry"]:
        e["resource"].pop("performedDateTime", None)
    assert_clean_error(run_cli("review", _bundle(tmp_path, doc), "--on", "2026-01-01"), "no performed date")


def test_no_planned_injection(tmp_path):
    b = BundleBuilder("n")
    b.condition("M16.11", "Primary osteoarthritis, right hip", "2020-01-01")
    assert_clean_error(run_cli("assess", _bundle(tmp_path, b.bundle()), "--on", "2026-01-01"), "no planned injection")


def test_no_injection_to_review(tmp_path):
    b = BundleBuilder("n")
    b.condition("M16.11", "Primary osteoarthritis, right hip", "2020-01-01")
    assert_clean_error(run_cli("review", _bundle(tmp_path, b.bundle()), "--on", "2026-01-01"), "no completed injection")


def test_unknown_target(tmp_path):
    p = _bundle(tmp_path, _planned().bundle())
    assert_clean_error(run_cli("assess", p, "--target", "left-ear", "--on", "2026-01-01"), "unknown target")


@pytest.mark.parametrize("bad", ["2026-13-01", "yesterday", "01/02/2026"])
def test_bad_date(tmp_path, bad):
    p = _bundle(tmp_path, _planned().bundle())
    assert_clean_error(run_cli("assess", p, "--on", bad), "bad date")


def test_deceased_patient(tmp_path):
    b = BundleBuilder("dec", deceased="2024-05-01")
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    assert_clean_error(run_cli("assess", _bundle(tmp_path, b.bundle()), "--on", "2026-01-01"), "deceased")


def test_deceased_later_is_fine_earlier(tmp_path):
    b = BundleBuilder("dec", deceased="2024-05-01")
    b.condition("M16.11", "Primary osteoarthritis, right hip", "2020-01-01")
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    p = run_cli("assess", _bundle(tmp_path, b.bundle()), "--on", "2023-01-01", "--format", "json")
    assert p.returncode == 0, p.stderr


def test_unknown_option_is_one_line(tmp_path):
    p = _bundle(tmp_path, _planned().bundle())
    assert_clean_error(run_cli("assess", p, "--frobnicate"), "frobnicate")


def test_a_note_dated_after_the_as_of_day_is_refused_not_silently_unread(tmp_path):
    note = tmp_path / "late.txt"
    note.write_text("Date: 2026-04-10\nR knee hot and swollen, temp 38.6 C. Plan R knee IA triamcinolone 40 mg.")
    assert_clean_error(run_cli("assess", "--note", str(note), "--on", "2026-04-01"), "after the as-of date")
    ok = run_cli("assess", "--note", str(note), "--on", "2026-04-10", "--format", "json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["verdict"] == "do-not-inject"


def test_note_without_a_planned_injection(tmp_path):
    note = tmp_path / "n.txt"
    note.write_text("hip pain")
    assert_clean_error(run_cli("assess", "--note", str(note), "--on", "2026-01-01"), "no planned injection")


def test_several_files_give_json_lines(tmp_path):
    p1 = _bundle(tmp_path, _planned().bundle(), "a.json")
    p2 = _bundle(tmp_path, _planned().bundle(), "b.json")
    p = run_cli("assess", p1, p2, "--on", "2026-01-01", "--format", "json")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        doc = json.loads(line)
        assert doc["mode"] == "assess" and doc["as_of"] == "2026-01-01"
        assert doc["verdict"] in ("do-not-inject", "defer", "proceed-with-caution", "proceed")
        assert {"knowledge_version", "patient", "planned", "findings"} <= set(doc)
