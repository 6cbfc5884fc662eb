"""The organisation-level read routes, for an organisation API key (``OrgKey``):
``GET /api/public/organizations/projects`` and ``GET /api/public/organizations/apiKeys``
(the organisation's own keys, never their secrets). A project key gets 403 here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from ..org_auth import OrgKey
from ..responses import JSON
from ..runtime import runtime
from .body import ok

router = APIRouter(tags=["Organizations"])


class OrganizationProject(BaseModel):
    """A project of the organisation."""

    id: str
    name: str
    metadata: dict[str, Any] | None = None
    createdAt: str
    updatedAt: str


class OrganizationProjectsResponse(BaseModel):
    """The organisation's projects, oldest first."""

    projects: list[OrganizationProject]


class OrganizationApiKey(BaseModel):
    """An organisation key: its public key and masked secret (``sk-lf-...abcd``)."""

    id: str
    createdAt: str
    expiresAt: str | None = None
    lastUsedAt: str | None = None
    note: str | None = None
    publicKey: str
    displaySecretKey: str


class OrganizationApiKeysResponse(BaseModel):
    """The organisation's active keys, oldest first."""

    apiKeys: list[OrganizationApiKey]


def org_project_json(row: dict[str, Any]) -> dict[str, Any]:
    """An ``OrganizationProject`` (projects record no change time: ``updatedAt`` is
    their creation time)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "metadata": row["metadata"],
        "createdAt": row["created_at"],
        "updatedAt": row["created_at"],
    }


def key_summary_json(row: dict[str, Any]) -> dict[str, Any]:
    """A key (project or organisation) as ``ApiKeySummary``/``OrganizationApiKey``."""
    return {
        "id": row["id"],
        "createdAt": row["created_at"],
        "expiresAt": None,
        "lastUsedAt": row.get("last_used_at"),
        "note": row["note"],
        "publicKey": row["public_key"],
        "displaySecretKey": row["display_secret"],
    }


@router.get("/api/public/organizations/projects", responses=ok(OrganizationProjectsResponse))
async def organization_projects(request: Request, org: OrgKey) -> JSON:
    """Every project of the key's organisation."""
    rt = runtime(request)
    rows = await rt.read(lambda c: rt.store.projects.org_projects(c, org.org_id))
    return JSON({"projects": [org_project_json(r) for r in rows]})


@router.get("/api/public/organizations/apiKeys", responses=ok(OrganizationApiKeysResponse))
async def organization_api_keys(request: Request, org: OrgKey) -> JSON:
    """The organisation's active keys (public key and masked secret)."""
    rt = runtime(request)
    rows = await rt.read(lambda c: rt.store.projects.list_org_keys(c, org.org_id))
    return JSON({"apiKeys": [key_summary_json(r) for r in rows if r["revoked_at"] is None]})
