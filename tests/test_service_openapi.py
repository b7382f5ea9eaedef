"""The OpenAPI document is honest: schemathesis (every check) runs against the live service with a
bounded example count and finds nothing; every endpoint declares its answer schemas and errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from servicekit import REPLAY, server_fixture

api = server_fixture("openapi", *REPLAY)

# A FHIR Bundle or hook request that matches the schema can still be clinically unusable (no Patient,
# another hook's name, no injection): the service then answers 400/412 with an OperationOutcome, which
# the spec allows. Everything else is schemathesis' default.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "404", "409", "412"]
"""


def test_schemathesis_all_checks_find_nothing(api, tmp_path):
    cfg = tmp_path / "schemathesis.toml"
    cfg.write_text(CONFIG)
    st = Path(sys.executable).parent / "st"
    p = subprocess.run([str(st), "--config-file", str(cfg), "run", api.url + "/openapi.json", "--checks", "all",
                        "--max-examples", "25", "--seed", "20261122", "--no-color"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache stays out of the tree
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert " passed" in p.stdout and "failure" not in p.stdout.split("SUMMARY")[-1].lower()
    assert "internal-error" not in api.log_text()


def test_every_operation_declares_json_answers_and_errors(api):
    doc = httpx.get(api.url + "/openapi.json").json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                for ctype, media in (resp.get("content") or {}).items():
                    if ctype == "application/json":
                        assert media["schema"] != {"type": "string"}, f"{method} {path} {status}"
    hook = doc["paths"]["/cds-services/{service_id}"]["post"]
    assert {"200", "400", "401", "404", "412", "413", "503"} <= set(hook["responses"])
    assert hook["requestBody"]["content"]["application/json"]["schema"]["properties"]["hookInstance"]
    assert "Retry-After" in hook["responses"]["503"]["headers"]
    fb = doc["paths"]["/cds-services/{service_id}/feedback"]["post"]
    assert fb["requestBody"]["content"]["application/json"]["schema"]["properties"]["feedback"]["maxItems"] == 100
