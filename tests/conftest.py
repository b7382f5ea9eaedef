"""Shared fixtures: the knowledge base, paths to ../shared, and the vignette bundles."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from injectwise.adapters.fhir import read_bundle
from injectwise.knowledge import load_knowledge

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def cli_path() -> str:
    exe = Path(sys.executable).parent / "injectwise"
    return str(exe) if exe.exists() else (shutil.which("injectwise") or "injectwise")


@pytest.fixture(scope="session")
def kb():
    return load_knowledge()


@pytest.fixture(scope="session")
def vignette_dir(tmp_path_factory) -> Path:
    if not (SHARED / "examples" / "vignettes").is_dir():
        pytest.skip("../shared is not beside the project")
    out = tmp_path_factory.mktemp("vignettes")
    vignettes = sorted((SHARED / "examples" / "vignettes").glob("*.yaml"))
    subprocess.run([sys.executable, str(SHARED / "tools" / "vignette2fhir.py"), *map(str, vignettes), "--out",
                    str(out)], check=True, capture_output=True)
    return out


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([cli_path(), *args], capture_output=True, input=stdin, timeout=120)


def record_of(builder):
    return read_bundle(builder.bundle())


def as_json(result) -> dict:
    return json.loads(json.dumps(result.as_json()))


def ids(result) -> list[str]:
    return [f.id for f in result.findings]


D = date.fromisoformat
