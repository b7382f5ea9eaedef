"""The public vignettes, scored by the shared evaluator through the real CLI."""

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import SHARED, cli_path


def test_public_vignettes_pass_via_fhir_bundle():
    vignettes = sorted(str(p) for p in (SHARED / "examples" / "vignettes").glob("*.yaml"))
    p = subprocess.run([sys.executable, str(SHARED / "tools" / "eval_vignettes.py"), *vignettes, "--cmd", cli_path()],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{len(vignettes)} passed, 0 failed" in p.stdout


OWN = Path(__file__).parent / "vignettes"


def _score(vignettes: list[str], *via: str) -> str:
    """Score the vignettes in as many slices as there are cores, each through the shared evaluator; the
    combined summary line reads like the evaluator's own ("N passed, M failed")."""
    workers = max(1, min(4, os.cpu_count() or 1))
    slices = [vignettes[i::workers] for i in range(workers) if vignettes[i::workers]]

    def run(part: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(SHARED / "tools" / "eval_vignettes.py"), *part, "--cmd", cli_path(),
                               *via], capture_output=True, text=True, timeout=1200)

    with ThreadPoolExecutor(len(slices)) as pool:
        done = list(pool.map(run, slices))
    passed = failed = 0
    for p in done:
        m = re.search(r"(\d+) passed, (\d+) failed", p.stdout)
        if m:
            passed, failed = passed + int(m[1]), failed + int(m[2])
    detail = "\n".join(line for p in done for line in (p.stdout + p.stderr).splitlines() if not line.startswith("ok "))
    return f"{passed} passed, {failed} failed\n{detail}"


def test_own_unseen_style_vignettes_pass_via_fhir_bundle():
    vignettes = sorted(str(p) for p in OWN.glob("*.yaml"))
    out = _score(vignettes)
    assert out.startswith(f"{len(vignettes)} passed, 0 failed"), out


def test_own_vignettes_with_a_note_pass_via_the_note_alone():
    vignettes = sorted(str(p) for p in OWN.glob("*.yaml") if "\nnote:" in p.read_text())
    out = _score(vignettes, "--via", "note")
    assert out.startswith(f"{len(vignettes)} passed, 0 failed"), out
