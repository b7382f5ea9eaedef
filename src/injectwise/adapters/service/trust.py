"""Who may call: CDS clients by signed JWT (CDS Hooks 2.0 "Trusting CDS Clients"), REST callers by
the same JWT or an API key kept only as a SHA-256 hash. Every refusal is a ServiceError(401)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
from jwt import PyJWK, PyJWKSet
from jwt.algorithms import Algorithm, get_default_algorithms

from injectwise.adapters.service.outcome import ServiceError
from injectwise.core.errors import InputError

# The spec forbids "none" and symmetric (HMAC) algorithms: a shared secret cannot prove who signed.
ASYMMETRIC_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
ALGORITHMS: dict[str, Algorithm] = {k: v for k, v in get_default_algorithms().items() if k in ASYMMETRIC_ALGS}
_B64URL = re.compile(rb"[A-Za-z0-9_-]*")


def _refuse(why: str) -> ServiceError:
    return ServiceError(401, f"authentication failed: {why}", {"WWW-Authenticate": 'Bearer error="invalid_token"'})


@dataclass(slots=True)
class Issuer:
    iss: str
    jwks_file: Path | None = None
    jwks_url: str | None = None
    keys: dict[str, PyJWK] = field(default_factory=dict)  # kid (or "" for a single unnamed key) -> key
    loaded_at: float = 0.0


def _parse_jwks(raw: bytes, where: str) -> dict[str, PyJWK]:
    try:
        doc = orjson.loads(raw)
        keys = PyJWKSet.from_dict(doc).keys
    except Exception as e:  # any malformed key set is one clear line
        raise InputError(f"{where}: not a valid JWKS ({type(e).__name__}: {e})") from None
    out: dict[str, PyJWK] = {}
    for k in keys:
        if k.key_type == "oct":
            continue  # a symmetric key can never verify a CDS client
        out[k.key_id or ""] = k
    if not out:
        raise InputError(f"{where}: the JWKS holds no asymmetric key")
    return out


def load_issuers(path: Path) -> dict[str, Issuer]:
    """The trusted-issuers file: {"issuers": [{"iss": ..., "jwks_file": ...} or {"iss": ..., "jwks_url": ...}]}."""
    try:
        doc = orjson.loads(path.read_bytes())
    except OSError as e:
        raise InputError(f"{path}: cannot read the trusted-issuers file ({e.strerror})") from None
    except orjson.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e})") from None
    entries = doc.get("issuers") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise InputError(f'{path}: expected {{"issuers": [...]}}')
    out: dict[str, Issuer] = {}
    for n, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("iss"), str) or not e["iss"]:
            raise InputError(f"{path}: issuers[{n}] needs an iss string")
        has_file, has_url = isinstance(e.get("jwks_file"), str), isinstance(e.get("jwks_url"), str)
        if has_file == has_url:
            raise InputError(f"{path}: issuers[{n}] ({e['iss']}) needs exactly one of jwks_file or jwks_url")
        iss = Issuer(e["iss"])
        if has_file:
            f = Path(e["jwks_file"])
            iss.jwks_file = f if f.is_absolute() else path.parent / f
            try:
                iss.keys = _parse_jwks(iss.jwks_file.read_bytes(), str(iss.jwks_file))
            except OSError as err:
                raise InputError(f"{iss.jwks_file}: cannot read the JWKS ({err.strerror})") from None
            iss.loaded_at = time.monotonic()
        else:
            if not e["jwks_url"].startswith(("https://", "http://")):
                raise InputError(f"{path}: issuers[{n}] jwks_url must be an http(s) URL")
            iss.jwks_url = e["jwks_url"]
        out[iss.iss] = iss
    return out


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return "iwk_" + secrets.token_urlsafe(32)


def load_api_keys(path: Path) -> dict[str, str]:
    """Lines of `<name> <sha256-hex>`; '#' starts a comment. Returns hash -> name."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"{path}: cannot read the API key file ({e.strerror})") from None
    out: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[1]) != 64 or any(c not in "0123456789abcdef" for c in parts[1]):
            raise InputError(f"{path}:{n}: expected '<name> <sha256 hex of the key>'")
        out[parts[1]] = parts[0]
    return out


def _segment(seg: bytes) -> bytes:
    """One base64url segment, as strictly as PyJWT reads it (at most two '=' and only on a whole
    quantum, the URL-safe alphabet, canonical trailing bits), with C-speed checks."""
    data = seg.rstrip(b"=")
    pad = len(seg) - len(data)
    if pad > 2 or (pad and len(seg) % 4) or len(data) % 4 == 1 or not _B64URL.fullmatch(data):
        raise _refuse("the bearer token is not a well-formed JWT")
    try:
        raw = base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        raise _refuse("the bearer token is not a well-formed JWT") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != data:
        raise _refuse("the bearer token is not a well-formed JWT")
    return raw


def _parse(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, claims (unverified), signing input and signature of a compact JWS; a 401 if malformed."""
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise _refuse("the bearer token is not a well-formed JWT") from None
    parts = raw.split(b".")
    if len(parts) != 3:
        raise _refuse("the bearer token is not a well-formed JWT")
    try:
        header = orjson.loads(_segment(parts[0]))
        claims = orjson.loads(_segment(parts[1]))
    except orjson.JSONDecodeError:
        raise _refuse("the bearer token is not a well-formed JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _refuse("the bearer token is not a well-formed JWT")
    if "kid" in header and not isinstance(header["kid"], str):
        raise _refuse("token rejected (InvalidTokenError)")
    if "crit" in header or header.get("b64", True) is False:  # no critical extension is supported here
        raise _refuse("token rejected (InvalidTokenError)")
    return header, claims, parts[0] + b"." + parts[1], _segment(parts[2])


def _numeric(claims: dict[str, Any], name: str) -> int:
    try:
        return int(claims[name])
    except (ValueError, TypeError, OverflowError):
        raise _refuse(f"token rejected (the {name} claim is not a number)") from None


def _check_claims(claims: dict[str, Any], audience: str, issuer: str, now: float, leeway: float) -> None:
    """PyJWT's claim checks for decode(audience=, issuer=, leeway=, options={"require": REQUIRED_CLAIMS})."""
    for name in REQUIRED_CLAIMS:
        if claims.get(name) is None:
            raise _refuse(f"token lacks the {name} claim")
    if _numeric(claims, "iat") > now + leeway:
        raise _refuse("token issued in the future")
    if "nbf" in claims and _numeric(claims, "nbf") > now + leeway:
        raise _refuse("token issued in the future")
    if _numeric(claims, "exp") <= now - leeway:
        raise _refuse("token expired")
    if claims["iss"] != issuer:
        raise _refuse("token rejected (InvalidIssuerError)")
    aud = claims["aud"]
    if not aud:
        raise _refuse("token lacks the aud claim")
    auds = [aud] if isinstance(aud, str) else aud
    if not isinstance(auds, list) or any(not isinstance(a, str) for a in auds) or audience not in auds:
        raise _refuse("token audience is not this endpoint")
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise _refuse("token rejected (InvalidSubjectError)")
    if not isinstance(claims["jti"], str):
        raise _refuse("token rejected (InvalidJTIError)")


class Trust:
    """Verifies callers. Holds the JWKS cache and a local memory of token ids already used; `claim`, when
    given, records each new jti in the shared store (database) so other workers and restarts refuse it too."""

    def __init__(self, issuers: dict[str, Issuer], api_keys: dict[str, str], leeway_s: int, max_lifetime_s: int,
                 jwks_cache_s: int, http_timeout_s: float,
                 claim: Callable[[str, str, float], Awaitable[bool]] | None = None) -> None:
        self.claim = claim
        self.issuers = issuers
        self.api_keys = api_keys
        self.leeway = leeway_s
        self.max_lifetime = max_lifetime_s
        self.jwks_cache_s = jwks_cache_s
        self.http_timeout = http_timeout_s
        self._seen_jti: dict[tuple[str, str], float] = {}  # (iss, jti) -> exp

    async def _key(self, issuer: Issuer, kid: str | None, jku: str | None) -> PyJWK:
        if jku is not None and jku != issuer.jwks_url:
            raise _refuse("jku is not the JWKS URL registered for this issuer")
        stale = time.monotonic() - issuer.loaded_at > self.jwks_cache_s
        if issuer.jwks_url and (stale or (kid or "") not in issuer.keys):
            await self._refresh(issuer, force=not stale)
        if kid is None:
            if len(issuer.keys) == 1:
                return next(iter(issuer.keys.values()))
            raise _refuse("token has no kid and the issuer has several keys")
        key = issuer.keys.get(kid)
        if key is None:
            raise _refuse("no key with this kid for the issuer")
        return key

    async def _refresh(self, issuer: Issuer, force: bool) -> None:
        # An unknown kid may mean key rotation; refetch, but at most every 30 s to resist floods.
        if force and time.monotonic() - issuer.loaded_at < 30:
            return
        assert issuer.jwks_url is not None
        try:
            async with httpx.AsyncClient(timeout=self.http_timeout) as client:
                r = await client.get(issuer.jwks_url)
            r.raise_for_status()
            issuer.keys = _parse_jwks(r.content, issuer.jwks_url)
        except (httpx.HTTPError, InputError) as e:
            issuer.loaded_at = time.monotonic()
            if not issuer.keys:
                raise _refuse(f"the issuer's JWKS could not be fetched ({type(e).__name__})") from None
            return
        issuer.loaded_at = time.monotonic()

    async def verify_jwt(self, token: str, audience: str, defer_claim: bool = False) -> dict[str, Any]:
        """The verified claims. With defer_claim the shared store is not asked here: the caller commits
        `claim_key(claims)` with its own writes and refuses the call if that finds the id used.

        The token is parsed once here (PyJWT's decode parses every segment again, checking the base64
        alphabet a character at a time: three parses cost ~0.35 ms a call); the signature is checked by
        PyJWT's algorithm objects and the claims as PyJWT's decode checks them (tests compare the two)."""
        header, claims, signing_input, signature = _parse(token)
        alg = header.get("alg")
        if alg not in ASYMMETRIC_ALGS:
            raise _refuse(f"algorithm {alg!r} is not allowed (asymmetric algorithms only)")
        iss = claims.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise _refuse("issuer is not trusted")
        key = await self._key(issuer, header.get("kid"), header.get("jku"))
        algorithm = ALGORITHMS.get(alg)
        if algorithm is None:
            raise _refuse("token rejected (InvalidAlgorithmError)")
        try:
            prepared = algorithm.prepare_key(key.key)  # refuses a key of another type (RSA key, ES alg, ...)
            good = algorithm.verify(signing_input, prepared, signature)
        except (jwt.PyJWTError, ValueError, TypeError) as e:
            raise _refuse(f"token rejected ({type(e).__name__})") from None
        if not good:
            raise _refuse("signature does not verify")
        now = time.time()
        _check_claims(claims, audience, issuer.iss, now, self.leeway)
        if float(claims["exp"]) - float(claims["iat"]) > self.max_lifetime:
            raise _refuse("token lifetime too long")
        jti = str(claims["jti"])
        self._prune(now)
        if (issuer.iss, jti) in self._seen_jti:
            raise _refuse("token already used (jti replay)")
        expires_at = float(claims["exp"]) + self.leeway
        if not defer_claim and self.claim is not None and not await self.claim(issuer.iss, jti[:300], expires_at):
            raise _refuse("token already used (jti replay)")
        self._seen_jti[(issuer.iss, jti)] = expires_at
        return claims

    def claim_key(self, claims: dict[str, Any]) -> tuple[str, str, float]:
        return str(claims["iss"]), str(claims["jti"])[:300], float(claims["exp"]) + self.leeway

    def _prune(self, now: float) -> None:
        if len(self._seen_jti) > 10_000:
            for k in [k for k, exp in self._seen_jti.items() if exp < now]:
                del self._seen_jti[k]
        while len(self._seen_jti) > 10_000:  # bounded: the shared store still refuses what is forgotten here
            del self._seen_jti[next(iter(self._seen_jti))]

    def verify_api_key(self, key: str) -> str:
        h = hash_key(key)
        for stored, name in self.api_keys.items():
            if hmac.compare_digest(stored, h):
                return name
        raise _refuse("API key not recognised")
