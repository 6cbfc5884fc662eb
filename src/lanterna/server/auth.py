"""API-key authentication (contract 1.1).

``Authorization: Basic base64(publicKey:secretKey)`` gives full access to the key's
project. ``Authorization: Bearer <publicKey>`` gives the ``scores`` scope, accepted only
by the ingestion route (score events) and ``POST /api/public/scores``.

An organisation key (``server/org_auth.py``) is refused here with 403: it opens only
the organisation-level routes.

A key has a role (``lanterna keys create --role``; ``admin`` by default and for keys
made before roles existed), checked as the dashboard checks its users' roles: a
``viewer`` key only reads (403 on any other method); routes that change alert rules,
channels, budgets, the project's settings or delete its data take
:data:`AlertsAdminKey` / :data:`BudgetsAdminKey` / :data:`ProjectAdminKey`, which answer
403 to a ``member`` key too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Request

from ..accounts.roles import Permission, allowed
from .errors import ApiError
from .runtime import Runtime, runtime

HINT = "Confirm that you've configured the correct host."
_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a project and the scope the credentials give."""

    project_id: str
    public_key: str
    scope: Literal["all", "scores"]
    #: The key's project role (what it may change where a route checks it).
    role: str = "admin"


P = TypeVar("P")


class KeyCache(Generic[P]):
    """Recently verified credentials, keyed by a hash (no secret is kept in clear)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[bytes, tuple[float, P]] = {}

    def get(self, token: bytes) -> P | None:
        with self._lock:
            hit = self._entries.get(token)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, token: bytes, principal: P) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[token] = (time.monotonic() + _CACHE_SECONDS, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


key_cache: KeyCache[Principal] = KeyCache()


def unauthorized(reason: str) -> ApiError:
    return ApiError(401, f"{reason}. {HINT}", "UnauthorizedError")


def basic_pair(credentials: str) -> tuple[str, str]:
    """``(public key, secret key)`` of Basic credentials (base64), or 401."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized("Invalid basic auth credentials") from None
    public_key, sep, secret_key = decoded.partition(":")
    if not sep or not public_key or not secret_key:
        raise unauthorized("Invalid basic auth credentials")
    return public_key, secret_key


def _refuse_org_key(rt: Runtime, public_key: str, secret_key: str | None) -> None:
    """403 when the credentials are an organisation key's (valid, but not for a
    project's routes); nothing when they are no organisation key."""
    projects = rt.store.projects
    row = rt.read_sync(lambda c: projects.find_org_key(c, public_key))
    if row is not None and (secret_key is None or projects.secret_matches(row, secret_key)):
        raise ApiError(
            403,
            "Organization API keys are accepted only by organization-level routes"
            " (projects, API keys, memberships, SCIM); use a project API key here",
        )


def authenticate(request: Request) -> Principal:
    """Resolve the request's credentials to a :class:`Principal` or raise 401."""
    return authenticate_header(runtime(request), request.headers.get("authorization"))


def authenticate_header(rt: Runtime, header: str | None) -> Principal:
    """Resolve an ``Authorization`` value (an HTTP header, or the gRPC receiver's
    ``authorization`` metadata) to a :class:`Principal` or raise 401."""
    if not header:
        raise unauthorized("No authorization header")
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    token = hashlib.sha256(header.encode()).digest()
    cached = key_cache.get(token)
    if cached is not None:
        return cached
    projects = rt.store.projects
    if scheme.lower() == "basic":
        public_key, secret_key = basic_pair(credentials)
        row = rt.read_sync(lambda c: projects.find_key(c, public_key))
        if row is None:
            _refuse_org_key(rt, public_key, secret_key)
        if row is None or not projects.secret_matches(row, secret_key):
            raise unauthorized("Invalid credentials")
        principal = Principal(row["project_id"], public_key, "all", row["role"])
    elif scheme.lower() == "bearer":
        row = rt.read_sync(lambda c: projects.find_key(c, credentials))
        if row is None:
            _refuse_org_key(rt, credentials, None)
            raise unauthorized("Invalid public key")
        principal = Principal(row["project_id"], credentials, "scores", row["role"])
    else:
        raise unauthorized("Unsupported authorization scheme")
    key_cache.put(token, principal)
    return principal


def _count_read(request: Request, principal: Principal) -> None:
    """A ``GET`` counts against the project's read rate limit (429 when used up)."""
    if request.method == "GET":
        rt = runtime(request)
        if rt.quota.limits:
            rt.quota.take(principal.project_id, "read")
            rt.share_quota_sync()


#: Methods that only read: a key of any role may use them.
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def refuse_read_only_writes(method: str, principal: Principal) -> None:
    """A ``viewer`` key reads only: 403 on any other method (changes need ``member``,
    the routes of project settings and data deletion ``admin``)."""
    if method not in _READS and not allowed(principal.role, "write"):
        raise ApiError(
            403,
            f"This API key's role ({principal.role}) may only read; sending or changing"
            " data needs a key with the member role or above",
        )


def require_project(request: Request) -> Principal:
    """Dependency: a full-access project key (Basic auth) whose role may use the
    request's method (see :func:`refuse_read_only_writes`)."""
    principal = authenticate(request)
    if principal.scope != "all":
        raise ApiError(403, "Access denied - insufficient permissions for this endpoint")
    refuse_read_only_writes(request.method, principal)
    _count_read(request, principal)
    return principal


def allow_public_key(request: Request) -> Principal:
    """Dependency: a Basic project key, or a Bearer public key (scores scope), of a role
    that may use the request's method."""
    principal = authenticate(request)
    refuse_read_only_writes(request.method, principal)
    _count_read(request, principal)
    return principal


def _may(permission: Permission) -> Any:
    """Dependency: a full-access project key whose role holds ``permission``."""

    def dependency(request: Request) -> Principal:
        principal = require_project(request)
        if not allowed(principal.role, permission):
            raise ApiError(
                403,
                f"This API key's role ({principal.role}) may only read here;"
                " changes need a key with the admin or owner role",
            )
        return principal

    return dependency


ProjectKey = Annotated[Principal, Depends(require_project)]
#: A project key that may change alert rules and channels (role admin or owner).
AlertsAdminKey = Annotated[Principal, Depends(_may("edit_alerts"))]
#: A project key that may change budgets (role admin or owner).
BudgetsAdminKey = Annotated[Principal, Depends(_may("manage_project"))]
#: A project key that may change the project's settings and delete its data: retention,
#: masking rules, model prices, LLM connections, evaluators, deletions (admin or owner),
#: as the web UI's settings and data pages.
ProjectAdminKey = Annotated[Principal, Depends(_may("manage_project"))]
AnyKey = Annotated[Principal, Depends(allow_public_key)]
