"""Real Synthea bundles (written by nobody here): every one reads, and assesses with correct
anticoagulant and diabetes findings (as listed in the data's README)."""

from datetime import date
from pathlib import Path

import pytest
from conftest import SHARED

from injectwise.adapters.fhir import read_bundle_file
from injectwise.core.errors import InputError
from injectwise.engine.evaluate import PlanOverrides, assess

FILES = sorted((SHARED / "data" / "fhir" / "synthea").glob("*.json"))
ANTICOAGULATED = {"Mafalda", "Derek", "Max", "Cruz", "Gayla"}
DIABETIC = {"Renea", "Louis", "Danae", "Dirk"}
DECEASED = {"Jonah", "Laticia"}
PLAN = PlanOverrides(target="hip-intra-articular", side="right", guidance="ultrasound", steroid="triamcinolone", dose=40)


@pytest.mark.parametrize("path", FILES, ids=lambda p: Path(p).name.split("_")[0])
def test_synthea_bundle_reads_and_assesses(path, kb):
    first = path.name.split("_")[0]
    rec = read_bundle_file(path)
    assert rec.patient.ref.startswith("Patient/")
    if first in DECEASED:
        with pytest.raises(InputError, match="deceased"):
            assess(rec, kb, date(2021, 6, 1), PLAN)
        return
    result = assess(rec, kb, date(2021, 6, 1), PLAN)
    ids = {f.id for f in result.findings}
    assert ("caution.anticoagulant" in ids) == (first in ANTICOAGULATED), ids
    assert ("caution.diabetes" in ids) == (first in DIABETIC), ids
    for f in result.findings:
        assert f.citations and f.rationale and f.rule["version"]


def test_floyd_prediabetes_is_not_diabetes(kb):
    rec = read_bundle_file(next(p for p in FILES if p.name.startswith("Floyd")))
    ids = {f.id for f in assess(rec, kb, date(2021, 6, 1), PLAN).findings}
    assert "caution.diabetes" not in ids and "defer.uncontrolled-diabetes" not in ids


def test_as_of_hides_the_future(kb):
    """Mafalda's warfarin was started in the record's later years; long before, it is not visible."""
    rec = read_bundle_file(next(p for p in FILES if p.name.startswith("Mafalda")))
    ids = {f.id for f in assess(rec, kb, date(1990, 1, 1), PLAN).findings}
    assert "caution.anticoagulant" not in ids
