"""Password hashing with argon2id (argon2-cffi's defaults: RFC 9106 low-memory profile)."""

from __future__ import annotations

import secrets
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

#: A stored hash that no password matches (accounts that cannot log in with a password).
UNUSABLE = "!"
MIN_LENGTH = 12


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


@cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords, lower case (``common_passwords.txt``, from
    zxcvbn's frequency list; its header states the origin and licence)."""
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("# "))


def check_new_password(password: str) -> str | None:
    """Why ``password`` cannot be used, or None when it can: at least ``MIN_LENGTH``
    characters, at most 1024, and not one of the common passwords (in any case)."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > 1024:
        return "Use at most 1024 characters."
    if password.strip().lower() in common_passwords():
        return "This is one of the most common passwords: choose another."
    return None
