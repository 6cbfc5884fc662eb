"""Organisation API keys on the organisation-level routes.

``Authorization: Basic base64(publicKey:secretKey)`` with an organisation key (made by
an owner on a project's settings page or with ``lanterna keys create --org``) resolves
to an :class:`OrgPrincipal`. A route takes it with the :data:`OrgKey` dependency:

.. code-block:: python

    @router.get("/api/public/organizations/projects")
    def org_projects(request: Request, org: OrgKey) -> JSON: ...

A project key gets 403 there (it is valid, but for one project's data only), and an
organisation key gets 403 on a project's routes (``auth.py``). Verified keys are cached
for 5 seconds, as project keys are; revoking one clears :data:`org_key_cache`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .auth import KeyCache, basic_pair, unauthorized
from .errors import ApiError
from .runtime import Runtime, runtime


@dataclass(frozen=True, slots=True)
class OrgPrincipal:
    """Who is calling an organisation-level route: an organisation's key."""

    org_id: str
    public_key: str
    #: The key's id (``org_api_keys.id``).
    key_id: str


org_key_cache: KeyCache[OrgPrincipal] = KeyCache()


def _basic(header: str | None) -> tuple[str, str]:
    """``(public key, secret key)`` of a Basic ``Authorization`` value, or 401."""
    if not header:
        raise unauthorized("No authorization header")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        raise unauthorized("Organization-level routes take Basic auth with an organization key")
    return basic_pair(credentials.strip())


def authenticate_org_header(rt: Runtime, header: str | None) -> OrgPrincipal:
    """Resolve an ``Authorization`` value to an :class:`OrgPrincipal`: 401 for missing
    or wrong credentials, 403 for a (valid) project key."""
    public_key, secret_key = _basic(header)
    token = hashlib.sha256(str(header).encode()).digest()
    cached = org_key_cache.get(token)
    if cached is not None:
        return cached
    projects = rt.store.projects
    row = rt.read_sync(lambda c: projects.find_org_key(c, public_key))
    if row is None:
        project_key = rt.read_sync(lambda c: projects.find_key(c, public_key))
        if project_key is not None and projects.secret_matches(project_key, secret_key):
            raise ApiError(
                403,
                "Access denied: this route needs an organization-scoped API key;"
                " a project API key only opens its project's routes",
            )
        raise unauthorized("Invalid credentials")
    if not projects.secret_matches(row, secret_key):
        raise unauthorized("Invalid credentials")
    principal = OrgPrincipal(str(row["org_id"]), public_key, str(row["id"]))
    org_key_cache.put(token, principal)
    return principal


def require_org(request: Request) -> OrgPrincipal:
    """Dependency: an organisation key (Basic auth)."""
    return authenticate_org_header(runtime(request), request.headers.get("authorization"))


#: A route parameter typed ``OrgKey`` takes the calling organisation key.
OrgKey = Annotated[OrgPrincipal, Depends(require_org)]
