"""Dashboard accounts: users with argon2 password hashes, roles per project, login
sessions, the login rate limit, and the owner account made at first start.

API keys (``pk-lf``/``sk-lf``) are a different thing: they authenticate SDKs, live in
``store/projects.py`` and grant one project; accounts authenticate people in the UI.
"""

from __future__ import annotations

from .passwords import generate_password, hash_password, verify_password
from .ratelimit import LoginThrottle
from .roles import ROLES, Permission, allowed, assignable_roles

__all__ = [
    "ROLES",
    "LoginThrottle",
    "Permission",
    "allowed",
    "assignable_roles",
    "generate_password",
    "hash_password",
    "verify_password",
]
