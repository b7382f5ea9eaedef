"""The public vignettes, scored by the shared evaluator through the real CLI."""

import subprocess
import sys
from pathlib import Path

from conftest import SHARED, cli_path


def test_public_vignettes_pass_via_fhir_bundle():
    vignettes = sorted(str(p) for p in (SHARED / "examples" / "vignettes").glob("*.yaml"))
    p = subprocess.run([sys.executable, str(SHARED / "tools" / "eval_vignettes.py"), *vignettes, "--cmd", cli_path()],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{len(vignettes)} passed, 0 failed" in p.stdout


OWN = Path(__file__).parent / "vignettes"


def _score(vignettes: list[str], *via: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SHARED / "tools" / "eval_vignettes.py"), *vignettes, "--cmd", cli_path(),
                           *via], capture_output=True, text=True, timeout=300)


def test_own_unseen_style_vignettes_pass_via_fhir_bundle():
    vignettes = sorted(str(p) for p in OWN.glob("*.yaml"))
    p = _score(vignettes)
    assert f"{len(vignettes)} passed, 0 failed" in p.stdout, p.stdout + p.stderr


def test_own_vignettes_with_a_note_pass_via_the_note_alone():
    vignettes = sorted(str(p) for p in OWN.glob("*.yaml") if "\nnote:" in p.read_text())
    p = _score(vignettes, "--via", "note")
    assert f"{len(vignettes)} passed, 0 failed" in p.stdout, p.stdout + p.stderr
