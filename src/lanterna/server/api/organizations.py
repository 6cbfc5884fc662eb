"""The organisation-level routes, for an organisation API key (``OrgKey``):
``GET /api/public/organizations/projects``, ``GET /api/public/organizations/apiKeys``
(the organisation's own keys, never their secrets), the organisation's memberships
(``GET|PUT|DELETE /api/public/organizations/memberships``) and a project's
(``GET|PUT|DELETE /api/public/projects/{projectId}/memberships``). A project key gets
403 here. Roles are spelled in capitals (``OWNER``, ``ADMIN``, ``MEMBER``, ``VIEWER``;
``NONE`` for an organisation member without a role of their own)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field

from ...accounts import orgs
from ...accounts import store as accounts
from ...errors import Conflict
from ...store.db import Conn
from ..audit import actor_of, audit, audit_org
from ..doc_models import DocModel
from ..errors import ApiError, not_found
from ..org_auth import OrgKey, OrgPrincipal
from ..responses import JSON
from ..runtime import Runtime, runtime
from .body import json_body, ok, read_json_object

router = APIRouter(tags=["Organizations"])


class OrganizationProject(DocModel):
    """A project of the organisation."""

    id: str
    name: str
    metadata: dict[str, Any] | None = None
    createdAt: str
    updatedAt: str


class OrganizationProjectsResponse(DocModel):
    """The organisation's projects, oldest first."""

    projects: list[OrganizationProject]


class OrganizationApiKey(DocModel):
    """An organisation key: its public key and masked secret (``sk-lf-...abcd``)."""

    id: str
    createdAt: str
    expiresAt: str | None = None
    lastUsedAt: str | None = None
    note: str | None = None
    publicKey: str
    displaySecretKey: str


class OrganizationApiKeysResponse(DocModel):
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


# --- memberships -------------------------------------------------------------------------

#: Roles as the API spells them (``NONE``: an organisation member without a role of
#: their own, as SCIM provisions them; never accepted in a request).
API_ROLES = ("OWNER", "ADMIN", "MEMBER", "VIEWER")


class MembershipRequest(DocModel):
    """Give ``userId`` ``role`` (``OWNER``, ``ADMIN``, ``MEMBER`` or ``VIEWER``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"userId": "u-1", "role": "VIEWER"}]})

    userId: str = Field(min_length=1)
    role: str = Field(json_schema_extra={"enum": list(API_ROLES)})


class DeleteMembershipRequest(DocModel):
    """Take ``userId`` out."""

    userId: str = Field(min_length=1)


class MembershipResponse(DocModel):
    """A member: user id, role, email and name."""

    userId: str = Field(min_length=1)
    role: str = Field(json_schema_extra={"enum": list(API_ROLES)})
    email: str
    name: str


class MembershipsResponse(DocModel):
    """Members, oldest first."""

    memberships: list[MembershipResponse]


class MembershipDeletionResponse(DocModel):
    """A removed membership."""

    message: str
    userId: str


def membership_json(row: dict[str, Any]) -> dict[str, Any]:
    """A ``MembershipResponse`` of a user row with its role."""
    return {
        "userId": row["id"],
        "role": str(row["role"]).upper(),
        "email": row["email"],
        "name": row["name"] or "",
    }


def _invalid(detail: str) -> ApiError:
    return ApiError(400, "Invalid request data", detail)


async def membership_body(request: Request, *, with_role: bool) -> tuple[str, str]:
    """``(userId, role in lower case)`` of a membership body (400 naming the field)."""
    body = await read_json_object(request)
    user_id = body.get("userId")
    if not isinstance(user_id, str) or not user_id:
        raise _invalid("userId: a user id is required")
    role = body.get("role")
    if not with_role:
        return user_id, ""
    if role not in API_ROLES:
        raise _invalid(f"role: one of {', '.join(API_ROLES)}")
    return user_id, str(role).lower()


ORG_MEMBERSHIPS = "/api/public/organizations/memberships"


@router.get(ORG_MEMBERSHIPS, responses=ok(MembershipsResponse))
async def organization_memberships(request: Request, org: OrgKey) -> JSON:
    """The organisation's members with their organisation role."""
    rt = runtime(request)
    rows = await rt.read(lambda c: orgs.org_members(c, org.org_id))
    return JSON({"memberships": [membership_json(r) for r in rows]})


@router.put(
    ORG_MEMBERSHIPS, responses=ok(MembershipResponse), openapi_extra=json_body(MembershipRequest)
)
async def put_organization_membership(request: Request, org: OrgKey) -> JSON:
    """Make an existing user a member of the organisation with a role (or change it)."""
    user_id, role = await membership_body(request, with_role=True)
    rt = runtime(request)

    def work(c: Conn) -> dict[str, Any]:
        if accounts.get_user(c, user_id) is None:
            raise not_found("User")
        if orgs.projects_left_without_owner(c, org.org_id, user_id, role):
            raise Conflict(LAST_OWNER)
        orgs.set_org_member(c, org.org_id, user_id, role)
        found = orgs.org_member(c, org.org_id, user_id)
        assert found is not None
        return found

    row = await rt.write(work)
    await audit_org(rt, org, org.org_id, "member.org_role", row["email"], {"role": role})
    return JSON(membership_json(row))


@router.delete(
    ORG_MEMBERSHIPS,
    responses=ok(MembershipDeletionResponse),
    openapi_extra=json_body(DeleteMembershipRequest),
)
async def delete_organization_membership(request: Request, org: OrgKey) -> JSON:
    """Take a user out of the organisation and its projects (refused at once; their login
    sessions end when nothing is left to them)."""
    user_id, _ = await membership_body(request, with_role=False)
    if await remove_org_member(runtime(request), org, user_id) is None:
        raise not_found("Membership")
    return JSON({"message": "Membership deleted", "userId": user_id})


async def remove_org_member(
    rt: Runtime, org: OrgPrincipal, user_id: str, detail: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Take a member out of the organisation and its projects (their login sessions end
    when nothing is left to them: ``orgs.remove_from_org``), audited in each project's
    log; the member's row, or None for no member."""

    def work(c: Conn) -> dict[str, Any] | None:
        found = orgs.org_member(c, org.org_id, user_id)
        if found is None:
            return None
        if orgs.projects_left_without_owner(c, org.org_id, user_id, None):
            raise Conflict(LAST_OWNER)
        # Logged before the removal: the organisation's logs name who went.
        actor = actor_of(org)[0]
        for project in rt.store.projects.org_projects(c, org.org_id):
            rt.store.audit.record(c, project["id"], actor, "member.remove", found["email"], detail)
        orgs.remove_from_org(c, org.org_id, user_id)
        return found

    return await rt.write(work)


def org_project(rt: Runtime, c: Conn, org: OrgPrincipal, project_id: str) -> dict[str, Any]:
    """The organisation's project, or 404 (another organisation's answers the same)."""
    row = rt.store.projects.get_project(c, project_id)
    if row is None or row["org_id"] != org.org_id:
        raise not_found("Project")
    return row


PROJECT_MEMBERSHIPS = "/api/public/projects/{projectId}/memberships"
LAST_OWNER = "A project keeps at least one owner: make another member owner first"


@router.get(PROJECT_MEMBERSHIPS, responses=ok(MembershipsResponse))
async def project_memberships(request: Request, org: OrgKey, projectId: str) -> JSON:
    """The project's members with their project role."""
    rt = runtime(request)

    def read(c: Conn) -> list[dict[str, Any]]:
        org_project(rt, c, org, projectId)
        return orgs.project_members(c, projectId)

    rows = await rt.read(read)
    return JSON({"memberships": [membership_json(r) for r in rows]})


@router.put(
    PROJECT_MEMBERSHIPS,
    responses=ok(MembershipResponse),
    openapi_extra=json_body(MembershipRequest),
)
async def put_project_membership(request: Request, org: OrgKey, projectId: str) -> JSON:
    """Give a member of the organisation a role in the project (404 for a user who is
    not one)."""
    user_id, role = await membership_body(request, with_role=True)
    rt = runtime(request)

    def work(c: Conn) -> dict[str, Any]:
        org_project(rt, c, org, projectId)
        user = accounts.get_user(c, user_id)
        if user is None or orgs.org_role(c, org.org_id, user_id) is None:
            raise not_found("User in this organization")
        if orgs.leaves_no_owner(c, projectId, user_id, role):
            raise Conflict(LAST_OWNER)
        accounts.set_member(c, user_id, projectId, role)
        return {**user, "role": role}

    row = await rt.write(work)
    detail = {"role": role}
    await audit(rt, org, "member.role", row["email"], detail, project_id=projectId)
    return JSON(membership_json(row))


@router.delete(
    PROJECT_MEMBERSHIPS,
    responses=ok(MembershipDeletionResponse),
    openapi_extra=json_body(DeleteMembershipRequest),
)
async def delete_project_membership(request: Request, org: OrgKey, projectId: str) -> JSON:
    """Take a user out of the project (they stay in the organisation)."""
    user_id, _ = await membership_body(request, with_role=False)
    rt = runtime(request)

    def work(c: Conn) -> dict[str, Any] | None:
        org_project(rt, c, org, projectId)
        user = accounts.get_user(c, user_id)
        if user is not None and orgs.leaves_no_owner(c, projectId, user_id, None):
            raise Conflict(LAST_OWNER)
        if user is None or not accounts.remove_member(c, user_id, projectId):
            return None
        return user

    user = await rt.write(work)
    if user is None:
        raise not_found("Membership")
    await audit(rt, org, "member.remove", user["email"], project_id=projectId)
    return JSON({"message": "Membership deleted", "userId": user_id})
