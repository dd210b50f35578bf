"""Passwords (argon2id), random tokens stored as SHA-256, and email normalisation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from email_validator import EmailNotValidError, validate_email

from core.errors import InvalidInput

# OWASP's argon2id baseline: m=19 MiB, t=2, p=1.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# Verified against when the email is unknown, so both answers take the same time.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256
COMMON_PASSWORDS_CHECKED = 10_000


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"][:COMMON_PASSWORDS_CHECKED])


def check_password_policy(password: str, *, email: str = "") -> None:
    """Length 8–256 and not a common password; no composition rules (NIST 800-63B)."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidInput(
            f"the password must have at least {PASSWORD_MIN_LENGTH} characters",
            details={"field": "password"},
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InvalidInput(
            f"the password must have at most {PASSWORD_MAX_LENGTH} characters",
            details={"field": "password"},
        )
    lowered = password.lower()
    if lowered in _common_passwords() or (email and lowered == email.lower()):
        raise InvalidInput(
            "this password is too common; choose another", details={"field": "password"}
        )


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-ish time: an unknown user (``None``) is checked against a dummy hash."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


def normalise_email(email: str) -> str:
    """Syntax-checked, lower-cased email (no DNS look-up)."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(
            f"the email address is not valid: {exc}", details={"field": "email"}
        ) from None
    return result.normalized.lower()


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token(prefix: str, nbytes: int = 32) -> tuple[str, bytes, str]:
    """A fresh secret token: (token shown once, SHA-256 to store, short preview)."""
    token = f"{prefix}{secrets.token_urlsafe(nbytes)}"
    return token, token_hash(token), f"{token[: len(prefix) + 4]}…"


def hashes_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
