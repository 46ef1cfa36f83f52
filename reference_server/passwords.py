"""Password hashing: salted scrypt from the standard library, deliberately slow."""

from __future__ import annotations

import hashlib
import hmac
import secrets

# n=2**14, r=8: about 16 MiB and a few tens of milliseconds per hash, as OWASP suggests.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
HASH_LEN = 32


def hash_password(password: str) -> tuple[bytes, bytes]:
    """A fresh random salt and the scrypt hash of ``password`` with it."""
    salt = secrets.token_bytes(16)
    return salt, _scrypt(password, salt)


def verify_password(password: str, salt: bytes, expected: bytes) -> bool:
    """Whether ``password`` hashes to ``expected`` with ``salt`` (constant-time compare)."""
    return hmac.compare_digest(_scrypt(password, salt), expected)


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=HASH_LEN
    )
