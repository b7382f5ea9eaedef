"""Helpers for the service tests: a real `injectwise serve` process on a free port, signing keys and
tokens, a stub FHIR server over real HTTP, and a checker for the CDS Hooks response invariants."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
from conftest import cli_path
from cryptography.hazmat.primitives.asymmetric import ec

ISS = "https://ehr.example.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(tmp: Path, *args: str, name: str = "server") -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / f"{name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [cli_path(), "serve", "--port", str(port), "--public-base-url", url, *args]
    if not any(a.startswith("--database-url") for a in args):
        argv += ["--database-url", f"sqlite:///{tmp / (name + '.db')}"]
    proc = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-800:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return Server(proc, url, log)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start in 30 s")


REPLAY = ("--insecure-no-auth", "--clock", "record", "--missing-prefetch", "explain")  # vignette replay mode


def server_fixture(name: str, *args: str, doc: str = ""):
    """A module-scoped pytest fixture running one server for the module's tests."""
    import pytest

    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory):
        s = start_server(tmp_path_factory.mktemp(name), *args, name=name)
        yield s
        s.stop()
    fixture.__doc__ = doc
    return fixture


@dataclass
class Keys:
    private: ec.EllipticCurvePrivateKey
    kid: str
    jwks: dict[str, Any]


def make_keys(kid: str = "k1") -> Keys:
    priv = ec.generate_private_key(ec.SECP384R1())
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(priv.public_key(), as_dict=True)
    jwk.update({"kid": kid, "use": "sig", "alg": "ES384"})
    return Keys(priv, kid, {"keys": [jwk]})


def write_trust(tmp: Path, keys: Keys, iss: str = ISS) -> Path:
    (tmp / "jwks.json").write_text(json.dumps(keys.jwks))
    f = tmp / "trusted-issuers.json"
    f.write_text(json.dumps({"issuers": [{"iss": iss, "jwks_file": "jwks.json"}]}))
    return f


def token(keys: Keys, aud: str, iss: str = ISS, **over: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": iss, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    claims.update(over)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, keys.private, algorithm="ES384", headers={"kid": keys.kid})


def post(url: str, body: Any, tok: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    h = {"Content-Type": "application/json", **(headers or {})}
    if tok:
        h["Authorization"] = f"Bearer {tok}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=data, headers=h, timeout=30)


def is_outcome(r: httpx.Response, status: int) -> str:
    """Assert an HTTP error with a FHIR OperationOutcome; returns its diagnostics."""
    assert r.status_code == status, (r.status_code, r.text[:300])
    doc = r.json()
    assert doc["resourceType"] == "OperationOutcome"
    assert doc["issue"][0]["severity"] in ("error", "fatal")
    diag = doc["issue"][0]["diagnostics"]
    assert diag and "\n" not in diag and "Traceback" not in diag
    return diag


# ---- CDS Hooks response invariants (cds-resp-1..7) plus the spec's JSON rules ------------
def _no_empty(node: Any, where: str) -> None:
    if node is None or node == "" or node == [] or node == {}:
        raise AssertionError(f"{where}: null or empty value")
    if isinstance(node, dict):
        for k, v in node.items():
            _no_empty(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _no_empty(v, f"{where}[{i}]")


def check_cards(doc: dict[str, Any]) -> list[dict[str, Any]]:
    assert set(doc) <= {"cards", "systemActions"} and isinstance(doc["cards"], list)
    for n, c in enumerate(doc["cards"]):
        w = f"cards[{n}]"
        _no_empty(c, w)
        assert isinstance(c["summary"], str) and len(c["summary"]) < 140, w
        assert c["indicator"] in ("info", "warning", "critical"), w
        assert c["source"]["label"], w
        topic = c["source"]["topic"]
        assert topic["system"].startswith("https://") and topic["code"], w
        sugg = c.get("suggestions", [])
        if sugg:
            assert c["selectionBehavior"] in ("at-most-one", "any"), f"{w}: cds-resp-6"
            if c["selectionBehavior"] == "at-most-one":
                assert sum(bool(s.get("isRecommended")) for s in sugg) <= 1, f"{w}: cds-resp-1"
        for s in sugg:
            assert s["label"], w
            if "actionSelectionBehavior" in s:
                assert s["actionSelectionBehavior"] in ("all", "any", "at-most-one"), f"{w}: cds-resp-7"
            for a in s.get("actions", []):
                assert a["type"] in ("create", "update", "delete"), w
                assert a.get("description"), f"{w}: cds-resp-5"
                if a["type"] == "delete":
                    assert "resourceId" in a and "resource" not in a, f"{w}: cds-resp-2"
                else:
                    assert isinstance(a.get("resource"), dict) and a["resource"].get("resourceType"), w
                    assert not any(k.startswith("__") for k in a["resource"]), f"{w}: internal keys leaked"
        for r in c.get("overrideReasons", []):
            assert r["code"] and r["system"] and r.get("display"), f"{w}: cds-resp-4"
        for ln in c.get("links", []):
            assert ln["label"] and ln["url"] and ln["type"] in ("absolute", "smart"), w
            if "appContext" in ln:
                assert ln["type"] == "smart", f"{w}: cds-resp-3"
    return doc["cards"]


# ---- a stub EHR FHIR server over real HTTP --------------------------------------------------
class FhirStub:
    """Serves `Type?patient=...` searches and `Patient/id` reads from a dict of resources; records
    the Authorization headers it saw; can be made slow."""

    def __init__(self, resources: list[dict[str, Any]], token: str, delay_s: float = 0.0) -> None:
        self.resources, self.token, self.delay = resources, token, delay_s
        self.seen_auth: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.seen_auth.append(self.headers.get("Authorization", ""))
                time.sleep(stub.delay)
                if self.headers.get("Authorization") != f"Bearer {stub.token}":
                    return self._send(401, {"resourceType": "OperationOutcome", "issue": []})
                path = self.path.lstrip("/").split("/", 1)[-1] if self.path.startswith("/fhir/") else self.path.lstrip("/")
                rtype, _, rest = path.partition("?") if "?" in path else path.partition("/")
                if "?" not in path:
                    hit = [r for r in stub.resources if r["resourceType"] == rtype and r.get("id") == rest]
                    return self._send(200, hit[0]) if hit else self._send(404, {"resourceType": "OperationOutcome"})
                entries = [{"resource": r} for r in stub.resources if r["resourceType"] == rtype]
                return self._send(200, {"resourceType": "Bundle", "type": "searchset", "entry": entries})

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        class Httpd(ThreadingHTTPServer):
            request_queue_size = 64  # the service asks for every missing key at once

        self.httpd = Httpd(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


PREFETCH_KEYS = ("patient", "conditions", "procedures", "medicationAdministrations", "medicationStatements",
                 "observations", "allergyIntolerances", "documentReferences", "serviceRequests")


def complete_prefetch(request: dict[str, Any]) -> dict[str, Any]:
    """The request with every prefetch key present: null where the client had no data (as the spec says)."""
    out = json.loads(json.dumps(request))
    for k in PREFETCH_KEYS:
        out["prefetch"].setdefault(k, None)
    return out


def all_resources(request: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for v in request["prefetch"].values():
        if v and v.get("resourceType") == "Bundle":
            out += [e["resource"] for e in v.get("entry", [])]
        elif v:
            out.append(v)
    return out


def python() -> str:
    return sys.executable
