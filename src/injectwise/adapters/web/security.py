"""Passwords (argon2id), session tokens (random; only their SHA-256 is stored) and CSRF tokens bound
to the session (HMAC of the session token with a server secret; compared in constant time)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist, so timing does not reveal names.
_DUMMY = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    """A one-time password a person can type: 4 groups of 4 from an unambiguous alphabet."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret: str, bound_to: str) -> str:
    return hmac.new(secret.encode(), b"csrf:" + bound_to.encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: str, bound_to: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(secret, bound_to), given or "")
