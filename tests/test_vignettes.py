"""The public vignettes, scored by the shared evaluator through the real CLI."""

import subprocess
import sys

from conftest import SHARED, cli_path


def test_public_vignettes_pass_via_fhir_bundle():
    vignettes = sorted(str(p) for p in (SHARED / "examples" / "vignettes").glob("*.yaml"))
    p = subprocess.run([sys.executable, str(SHARED / "tools" / "eval_vignettes.py"), *vignettes, "--cmd", cli_path()],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{len(vignettes)} passed, 0 failed" in p.stdout
