"""The service parses and checks a JWT itself (one parse instead of PyJWT's three): it must accept and
refuse exactly what PyJWT's decode does with the same key, audience, issuer, leeway and required claims,
except where it is stricter on purpose (any `crit` header, JSON that only Python's json module reads)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from injectwise.adapters.service.outcome import ServiceError
from injectwise.adapters.service.trust import REQUIRED_CLAIMS, Issuer, Trust

ISS = "https://ehr.example.test"
AUD = "http://127.0.0.1:8000/cds-services/injectwise-order-select"
LEEWAY = 60
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP384R1())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwk(kid: str, key: Any, alg: str) -> jwt.PyJWK:
    cls = jwt.algorithms.RSAAlgorithm if alg.startswith("RS") else jwt.algorithms.ECAlgorithm
    d = cls.to_jwk(key.public_key(), as_dict=True)
    d.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwt.PyJWK(d)


KEYS = {"r": _jwk("r", RSA_KEY, "RS384"), "e": _jwk("e", EC_KEY, "ES384")}


def _trust() -> Trust:
    issuer = Issuer(ISS, keys=dict(KEYS), loaded_at=time.monotonic())
    return Trust({ISS: issuer}, {}, LEEWAY, 3600, 3600, 2.0)


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    c: dict[str, Any] = {"iss": ISS, "aud": AUD, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def _signed(claims: dict[str, Any] | None = None, alg: str | None = "RS384", kid: Any = "r", **head: Any) -> str:
    """A token signed by hand, so header and claims can hold anything JSON can."""
    header = {"alg": alg, "typ": "JWT", "kid": kid, **head}
    header = {k: v for k, v in header.items() if v is not None}
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims or _claims()).encode())}"
    signer = "ES384" if alg and alg.startswith("ES") else "RS384"
    sig = jwt.algorithms.get_default_algorithms()[signer].sign(signing.encode(), EC_KEY if signer == "ES384" else RSA_KEY)
    return f"{signing}.{_b64(sig)}"


def _pyjwt_accepts(tok: str) -> bool:
    """What the service did before: PyJWT's decode with the key named by kid, for the token's algorithm."""
    try:
        header = jwt.get_unverified_header(tok)
        key = KEYS[header["kid"]]
        jwt.decode(tok, key=key.key, algorithms=[header["alg"]], audience=AUD, issuer=ISS, leeway=LEEWAY,
                   options={"require": REQUIRED_CLAIMS})
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return False
    return True


def _ours_accepts(tok: str) -> bool:
    try:
        asyncio.run(_trust().verify_jwt(tok, AUD))
    except ServiceError as e:
        assert e.status == 401 and e.message.startswith("authentication failed")
        return False
    return True


def _tamper_last(tok: str) -> str:
    head, _, last = tok.rpartition(".")
    return f"{head}.{last[:-2]}{'A' if last[-2] != 'A' else 'B'}{last[-1]}"


NOW = int(time.time())
SAME = {
    "valid RS384": lambda: _signed(),
    "valid ES384": lambda: _signed(alg="ES384", kid="e"),
    "ES384 header on the RSA key": lambda: _signed(alg="ES384", kid="r"),
    "RS384 header on the EC key": lambda: _signed(kid="e"),
    "RS512 header, RS384 signature": lambda: _signed(alg="RS512"),
    "tampered signature": lambda: _tamper_last(_signed()),
    "tampered claims": lambda: (lambda t: f"{t.split('.')[0]}.{_b64(json.dumps(_claims(jti='x')).encode())}."
                                          f"{t.split('.')[2]}")(_signed()),
    "padded signature": lambda: (lambda t: t + "=" * (-len(t.split(".")[2]) % 4))(_signed()),
    "over-padded signature": lambda: _signed() + "===",
    "non-canonical last character": lambda: (lambda t: t[:-1] + chr(ord(t[-1]) + 1) if t[-1] not in "z9_-"
                                             else t[:-1] + "A")(_signed()),
    "junk in a segment": lambda: (lambda t: t.replace(".", ".!", 1))(_signed()),
    "four segments": lambda: _signed() + ".AAAA",
    "two segments": lambda: _signed().rsplit(".", 1)[0],
    "empty": lambda: "..",
    "garbage": lambda: "not.a.jwt",
    "non-ASCII": lambda: _signed().replace("e", "é", 1),
    "expired": lambda: _signed(_claims(iat=NOW - 1000, exp=NOW - 600)),
    "expired within the leeway": lambda: _signed(_claims(iat=NOW - 1000, exp=NOW - 30)),
    "exp as a numeric string": lambda: _signed(_claims(exp=str(NOW + 300))),
    "exp as a float": lambda: _signed(_claims(exp=NOW + 300.5)),
    "exp not a number": lambda: _signed(_claims(exp="soon")),
    "iat in the future": lambda: _signed(_claims(iat=NOW + 3600, exp=NOW + 3900)),
    "iat not a number": lambda: _signed(_claims(iat=[1])),
    "nbf in the future": lambda: _signed(_claims(nbf=NOW + 3600)),
    "nbf not a number": lambda: _signed(_claims(nbf={"a": 1})),
    "aud a list with ours": lambda: _signed(_claims(aud=["https://other", AUD])),
    "aud a list without ours": lambda: _signed(_claims(aud=["https://other"])),
    "aud a list with a number": lambda: _signed(_claims(aud=[AUD, 3])),
    "aud empty": lambda: _signed(_claims(aud="")),
    "aud an object": lambda: _signed(_claims(aud={"a": AUD})),
    "aud missing": lambda: _signed(_claims(aud=None)),
    "wrong aud": lambda: _signed(_claims(aud=AUD + "x")),
    "unknown iss": lambda: _signed(_claims(iss="https://evil.example")),
    "iss a number": lambda: _signed(_claims(iss=7)),
    "no jti": lambda: _signed(_claims(jti=None)),
    "jti a number": lambda: _signed(_claims(jti=12)),
    "sub a number": lambda: _signed(_claims(sub=12)),
    "sub a string": lambda: _signed(_claims(sub="me")),
    "no exp": lambda: _signed(_claims(exp=None)),
    "no iat": lambda: _signed(_claims(iat=None)),
    "unknown kid": lambda: _signed(kid="nope"),
    "kid a number": lambda: _signed(kid=5),
    "alg none": lambda: _b64(b'{"alg":"none","kid":"r"}') + "." + _b64(json.dumps(_claims()).encode()) + ".",
    "alg missing": lambda: _signed(alg=None),
    "header a list": lambda: _b64(b'["RS384"]') + "." + _signed().split(".", 1)[1],
    "claims a list": lambda: (lambda t: f"{t.split('.')[0]}.{_b64(b'[1]')}.{t.split('.')[2]}")(_signed()),
    "header not JSON": lambda: _b64(b"{alg") + "." + _signed().split(".", 1)[1],
}


@pytest.mark.parametrize("case", list(SAME))
def test_the_service_decides_as_pyjwt_does(case):
    tok = SAME[case]()
    assert _ours_accepts(tok) == _pyjwt_accepts(tok), case


@pytest.mark.parametrize("case", ["crit exp", "crit b64", "b64 false"])
def test_critical_header_extensions_are_refused(case):
    head = {"crit exp": {"crit": ["exp"]}, "crit b64": {"crit": ["b64"], "b64": True},
            "b64 false": {"crit": ["b64"], "b64": False}}[case]
    assert not _ours_accepts(_signed(**head))


def test_parsing_once_is_cheaper_than_pyjwt():
    tok = _signed()
    trust = _trust()

    async def ours() -> None:
        for _ in range(200):
            trust._seen_jti.clear()
            await trust.verify_jwt(tok, AUD)

    def theirs() -> None:
        for _ in range(200):
            jwt.get_unverified_header(tok)
            jwt.decode(tok, options={"verify_signature": False})
            jwt.decode(tok, key=KEYS["r"].key, algorithms=["RS384"], audience=AUD, issuer=ISS, leeway=LEEWAY,
                       options={"require": REQUIRED_CLAIMS})

    t0 = time.process_time()
    asyncio.run(ours())
    t1 = time.process_time()
    theirs()
    t2 = time.process_time()
    assert t1 - t0 < t2 - t1
