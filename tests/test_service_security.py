"""Trust: only signed JWTs from allow-listed issuers, for this endpoint, fresh and used once; API keys
for the REST API only; every refusal a 401 OperationOutcome. Bad input: 4xx, never a 500."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from servicekit import ISS, check_cards, complete_prefetch, is_outcome, make_keys, post, start_server, token, write_trust

from injectwise.adapters.service.trust import hash_key

HOOK = "/cds-services/injectwise-order-select"


@pytest.fixture(scope="module")
def keys():
    return make_keys("k1")


@pytest.fixture(scope="module")
def secure(tmp_path_factory, keys):
    tmp = tmp_path_factory.mktemp("secure")
    trust = write_trust(tmp, keys)
    (tmp / "api-keys").write_text(f"# name sha256\nregistry {hash_key('iwk_test_secret')}\n")
    s = start_server(tmp, "--trusted-issuers", str(trust), "--api-keys", str(tmp / "api-keys"), "--clock", "record",
                     "--missing-prefetch", "explain", "--max-body-bytes", "200000", name="secure")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def request_body(vignette_dir):
    d = next(d for d in sorted(vignette_dir.iterdir()) if "ex08" in d.name)
    return complete_prefetch(json.loads((d / "cds-request.json").read_text()))


def _b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def test_a_valid_token_is_accepted_once(secure, keys, request_body):
    tok = token(keys, secure.url + HOOK)
    r = post(secure.url + HOOK, request_body, tok)
    assert r.status_code == 200, r.text
    assert check_cards(r.json())
    assert "replay" in is_outcome(post(secure.url + HOOK, request_body, tok), 401)


@pytest.mark.parametrize("case", ["missing", "none", "hs256-with-public-key", "expired", "wrong-aud", "unknown-iss",
                                  "wrong-key", "no-jti", "future-iat", "too-long-lived", "garbage", "jku-elsewhere"])
def test_forged_or_unfit_tokens_are_refused(secure, keys, request_body, case):
    aud = secure.url + HOOK
    now = int(time.time())
    if case == "missing":
        tok = None
    elif case == "none":
        tok = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(
            {"iss": ISS, "aud": aud, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}) + "."
    elif case == "hs256-with-public-key":  # the classic key-confusion attack
        pem = keys.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        header = _b64({"alg": "HS256", "typ": "JWT", "kid": "k1"})
        payload = _b64({"iss": ISS, "aud": aud, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())})
        import hashlib
        import hmac
        sig = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        tok = f"{header}.{payload}." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    elif case == "expired":
        tok = token(keys, aud, iat=now - 1000, exp=now - 600)
    elif case == "wrong-aud":
        tok = token(keys, secure.url + "/cds-services/injectwise-patient-view")
    elif case == "unknown-iss":
        tok = token(keys, aud, iss="https://evil.example")
    elif case == "wrong-key":
        tok = token(make_keys("k1"), aud)  # same kid, another key
    elif case == "no-jti":
        tok = token(keys, aud, jti=None)
    elif case == "future-iat":
        tok = token(keys, aud, iat=now + 3600, exp=now + 3900)
    elif case == "too-long-lived":
        tok = token(keys, aud, exp=now + 30 * 86400)
    elif case == "garbage":
        tok = "not.a.jwt"
    else:  # a jku header pointing at a key set the issuer never registered
        tok = jwt.encode({"iss": ISS, "aud": aud, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())},
                         keys.private, algorithm="ES384", headers={"kid": "k1", "jku": "https://evil.example/jwks"})
    diag = is_outcome(post(secure.url + HOOK, request_body, tok), 401)
    assert diag.startswith(("authentication", "authentication failed"))


def test_feedback_needs_a_token_too(secure, keys):
    url = secure.url + "/cds-services/injectwise-order-select/feedback"
    is_outcome(post(url, {"feedback": []}), 401)


def test_api_key_opens_the_rest_api_but_not_the_hooks(secure, request_body):
    ok = httpx.get(secure.url + "/api/knowledge", headers={"X-API-Key": "iwk_test_secret"})
    assert ok.status_code == 200 and ok.json()["rules"]
    is_outcome(httpx.get(secure.url + "/api/knowledge", headers={"X-API-Key": "iwk_wrong"}), 401)
    is_outcome(httpx.get(secure.url + "/api/knowledge"), 401)
    is_outcome(post(secure.url + HOOK, request_body, headers={"X-API-Key": "iwk_test_secret"}), 401)


def test_rest_api_accepts_a_jwt_for_its_own_url(secure, keys, vignette_dir):
    d = next(d for d in sorted(vignette_dir.iterdir()) if "ex08" in d.name)
    bundle = json.loads((d / "bundle.json").read_text())
    r = post(secure.url + "/api/assess", {"bundle": bundle, "on": "2026-08-17"}, token(keys, secure.url + "/api/assess"))
    assert r.status_code == 200 and r.json()["verdict"] == "defer"
    is_outcome(post(secure.url + "/api/assess", {"bundle": bundle}, token(keys, secure.url + "/api/review")), 401)


def test_issuer_keys_can_come_from_a_jwks_url(tmp_path, vignette_dir):
    keys = make_keys("url-key")
    body = json.dumps(keys.jwks).encode()

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    jwks_url = f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json"
    (tmp_path / "issuers.json").write_text(json.dumps({"issuers": [{"iss": "https://url.example", "jwks_url": jwks_url}]}))
    s = start_server(tmp_path, "--trusted-issuers", str(tmp_path / "issuers.json"), "--clock", "record",
                     "--missing-prefetch", "explain", name="jwks-url")
    try:
        d = next(d for d in sorted(vignette_dir.iterdir()) if "ex08" in d.name)
        req = json.loads((d / "cds-request.json").read_text())
        tok = token(keys, s.url + HOOK, iss="https://url.example")
        assert post(s.url + HOOK, req, tok).status_code == 200
        forged = token(make_keys("url-key"), s.url + HOOK, iss="https://url.example")
        is_outcome(post(s.url + HOOK, req, forged), 401)
    finally:
        s.stop()
        httpd.shutdown()


# ---- bad input: 4xx with an OperationOutcome, never a 500 -----------------------------------
def test_bad_requests_get_a_clear_4xx(secure, keys, request_body):
    url = secure.url + HOOK

    def t() -> str:
        return token(keys, url)

    assert "malformed JSON" in is_outcome(post(url, b"{not json", t()), 400)
    is_outcome(post(url, b"", t()), 400)
    is_outcome(post(url, b"[1, 2]", t()), 400)
    is_outcome(post(url, b"x" * 300_000, t()), 413)
    is_outcome(post(url, request_body, t(), headers={"Content-Type": "text/plain"}), 415)
    is_outcome(post(url, dict(request_body, hook="patient-view"), t()), 400)
    is_outcome(post(url, {k: v for k, v in request_body.items() if k != "hookInstance"}, t()), 400)
    ctx = {k: v for k, v in request_body["context"].items() if k != "draftOrders"}
    assert "draftOrders" in is_outcome(post(url, dict(request_body, context=ctx), t()), 400)
    bad_prefetch = dict(request_body, prefetch=dict(request_body["prefetch"], conditions=[1, 2]))
    is_outcome(post(url, bad_prefetch, t()), 400)
    other = dict(request_body, context=dict(request_body["context"], patientId="someone-else"))
    is_outcome(post(url, other, t()), 400)
    broken = dict(request_body, prefetch=dict(request_body["prefetch"], observations={
        "resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Observation", "id": "o1",
                                                          "subject": {"reference": "Patient/someone-else"}}}]}))
    is_outcome(post(url, broken, t()), 400)
    is_outcome(post(url, dict(request_body, fhirAuthorization={"access_token": "x"}), t()), 400)
    is_outcome(post(secure.url + "/cds-services/no-such-service", request_body, t()), 404)
    is_outcome(httpx.get(secure.url + "/no/such/path"), 404)
    is_outcome(httpx.delete(secure.url + "/cds-services"), 405)


def test_bad_rest_bodies_get_a_clear_400(secure, vignette_dir):
    h = {"X-API-Key": "iwk_test_secret"}
    d = next(d for d in sorted(vignette_dir.iterdir()) if "ex08" in d.name)
    bundle = json.loads((d / "bundle.json").read_text())
    assert "date" in is_outcome(post(secure.url + "/api/assess", {"bundle": bundle, "on": "17/08/2026"}, headers=h), 400)
    is_outcome(post(secure.url + "/api/assess", {"bundle": bundle, "planned": {"guidance": "psychic"}}, headers=h), 400)
    is_outcome(post(secure.url + "/api/assess", {"bundle": bundle, "planned": {"target": "elbow-of-doom"}}, headers=h), 400)
    is_outcome(post(secure.url + "/api/assess", {"bundle": bundle, "surprise": 1}, headers=h), 400)
    is_outcome(post(secure.url + "/api/review", {"resourceType": "Bundle", "entry": "nope"}, headers=h), 400)
    is_outcome(post(secure.url + "/api/review", {"bundle": bundle, "on": "2026-08-17", "injection": "Procedure/none"},
                    headers=h), 400)
    ok = post(secure.url + "/api/assess", bundle | {}, headers=h)  # a bare Bundle is accepted too
    assert ok.status_code == 200 and ok.json()["mode"] == "assess"
    assert httpx.get(secure.url + "/healthz").status_code == 200  # still serving after all that
