"""Password hashing with argon2id (argon2-cffi's defaults: RFC 9106 low-memory profile)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

#: A stored hash that no password matches (accounts that cannot log in with a password).
UNUSABLE = "!"
MIN_LENGTH = 8


def hash_password(password: str) -> str:
    """The argon2id hash (with its salt and parameters) to store for ``password``."""
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches the stored hash (never raises on a bad hash)."""
    if not stored or stored == UNUSABLE:
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when the hash was made with weaker parameters than today's defaults."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return False


def generate_password() -> str:
    """A one-time password: 20 URL-safe characters (~120 bits)."""
    return secrets.token_urlsafe(15)


def check_new_password(password: str) -> str | None:
    """Why ``password`` cannot be used, or None when it can."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > 1024:
        return "Use at most 1024 characters."
    return None
