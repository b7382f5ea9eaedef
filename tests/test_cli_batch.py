"""CLI batches and hostile input: one bad file among several loses nothing, `-` is standard input,
an endless input is refused quickly, and absurd doses are an error or an explicit unknown."""

from __future__ import annotations

import json
import time

import pytest
from conftest import run_cli

from injectwise.adapters.fhir import read_bundle
from injectwise.core.errors import InputError


def _first(vignette_dir):
    return next(d for d in sorted(vignette_dir.iterdir()))


def test_one_bad_file_does_not_lose_the_others(vignette_dir, tmp_path):
    d = _first(vignette_dir)
    good = d / "bundle.json"
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "Bundle", "type": "collection", "entry": [')
    p = run_cli("review", str(good), str(bad), "-", str(tmp_path / "missing.json"), "--on", "2026-06-01",
                "--format", "json", stdin=good.read_bytes())
    assert p.returncode == 2
    lines = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert [x["source"] for x in lines] == [str(good), str(bad), "-", str(tmp_path / "missing.json")]
    assert lines[0]["mode"] == "review" and lines[2]["mode"] == "review"
    assert "error" in lines[1] and str(bad) in lines[1]["error"] and "error" in lines[3]
    err = p.stderr.decode().splitlines()
    assert len(err) == 2 and str(bad) in err[0] and "missing.json" in err[1]
    assert b"Traceback" not in p.stderr


def test_all_good_files_exit_0_with_sources(vignette_dir):
    files = [str(d / "bundle.json") for d in sorted(vignette_dir.iterdir())[:2]]
    p = run_cli("review", *files, "--format", "json")
    assert p.returncode == 0, p.stderr
    assert [json.loads(x)["source"] for x in p.stdout.decode().splitlines()] == files


def test_dev_zero_is_a_clear_error_quickly():
    t0 = time.monotonic()
    p = run_cli("review", "/dev/zero")
    assert p.returncode == 2 and time.monotonic() - t0 < 20
    err = p.stderr.decode()
    assert err.count("\n") == 1 and "larger than the limit" in err and "/dev/zero" in err


def test_input_limit_is_configurable(vignette_dir):
    import os
    import subprocess

    from conftest import cli_path
    p = subprocess.run([cli_path(), "review", str(_first(vignette_dir) / "bundle.json")], capture_output=True,
                       env={**os.environ, "INJECTWISE_MAX_INPUT_BYTES": "100"}, timeout=60)
    assert p.returncode == 2 and b"limit of 100 bytes" in p.stderr


@pytest.mark.parametrize("dose", ["inf", "-inf", "nan", "1e308", "0", "-0", "-5"])
def test_absurd_cli_doses_are_refused(vignette_dir, dose):
    p = run_cli("assess", str(_first(vignette_dir) / "bundle.json"), "--target", "hip-intra-articular",
                "--steroid", "triamcinolone", f"--dose={dose}", "--format", "json")
    assert p.returncode == 2, p.stdout[:200]
    assert p.stderr.decode().count("\n") == 1 and b"Traceback" not in p.stderr
    assert b"inf mg" not in p.stdout and b"null" not in p.stdout


def _bundle(raw: str) -> bytes:
    return ('{"resourceType":"Bundle","type":"collection","entry":['
              '{"resource":{"resourceType":"Patient","id":"p","birthDate":"1960-01-01"}},'
              '{"resource":{"resourceType":"MedicationAdministration","id":"m","status":"completed",'
              '"subject":{"reference":"Patient/p"},"effectiveDateTime":"2026-01-01",'
              '"medicationCodeableConcept":{"text":"triamcinolone"},'
              '"dosage":{"dose":{"value":' + raw + ',"unit":"mg"}}}}]}').encode()


@pytest.mark.parametrize("raw", ["1e308", "-1e308", "0", "-0", "-0.0", "-3"])
def test_absurd_bundle_doses_read_as_unknown(raw):
    rec = read_bundle(_bundle(raw))
    assert all(a.dose_value is None for a in rec.administrations)  # not recorded: never inf, 0 or 1e308 mg


@pytest.mark.parametrize("raw", ["1e400", "Infinity", "NaN"])
def test_non_numbers_in_a_bundle_are_a_clear_error(raw):
    with pytest.raises(InputError, match="not valid JSON"):
        read_bundle(_bundle(raw))
