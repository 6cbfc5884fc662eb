"""Projects and their API keys through an organisation API key (``OrgKey``):
``POST /api/public/projects``, ``PUT|DELETE /api/public/projects/{projectId}`` and
``GET|POST /api/public/projects/{projectId}/apiKeys``,
``DELETE /api/public/projects/{projectId}/apiKeys/{apiKeyId}``, as Langfuse's spec
has them. Only the key's organisation's projects are reachable (404 for any other).
A project key gets 403 on each (``GET /api/public/projects`` stays the project key's).

Deleting a project deletes its data: its traces a batch per transaction (the lifecycle
deletion of users and sessions), then every other row of it, before the 202 answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field, WithJsonSchema
from starlette.concurrency import run_in_threadpool

from ...errors import Conflict
from ...lifecycle.deletion import delete_project
from ...store.db import Conn
from ...timeutil import format_ts, now
from ..audit import audit, audit_org
from ..auth import key_cache
from ..doc_models import DocModel, answer
from ..errors import ApiError, not_found
from ..org_auth import OrgKey
from ..responses import JSON
from ..runtime import runtime
from ..shapes import project_json
from .body import NOT_BLANK, json_body, ok, read_json_object
from .organizations import OrganizationApiKey, key_summary_json, org_project

router = APIRouter(tags=["Projects"])

PROJECTS = "/api/public/projects"


class ProjectBody(DocModel):
    """Create (``name`` required; ``retention``: days to keep data, 0 or at least 3,
    0 or absent keeps everything) or update a project (``retention`` absent keeps the
    current setting, ``metadata`` absent keeps the current metadata)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Checkout", "metadata": {"team": "payments"}, "retention": 30}]
        }
    )

    name: str = Field(max_length=200, pattern=NOT_BLANK)
    metadata: dict[str, Any] | None = None
    retention: int | None = Field(
        None,
        json_schema_extra={
            "anyOf": [
                {"type": "integer", "const": 0},
                {"type": "integer", "minimum": 3, "maximum": 36500},
                {"type": "null"},
            ]
        },
    )


class Organization(DocModel):
    """The organisation of a project."""

    id: str
    name: str


class Project(DocModel):
    """A project (``retentionDays`` omitted when it keeps everything)."""

    id: str
    name: str
    organization: Organization
    metadata: dict[str, Any]
    retentionDays: int | None = None


class ProjectDeletionResponse(DocModel):
    """A deleted project."""

    success: bool
    message: str


class ApiKeyBody(DocModel):
    """A new project key: an optional ``note``, and optionally a predefined pair
    (``publicKey`` starting ``pk-lf-`` and ``secretKey`` starting ``sk-lf-``, both or
    neither)."""

    #: Both or neither: a pair given in full, or no part of it.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["publicKey", "secretKey"]},
                {"not": {"anyOf": [{"required": ["publicKey"]}, {"required": ["secretKey"]}]}},
            ]
        }
    )

    note: str | None = Field(None, max_length=500)
    #: Documented as a string (``null`` is taken as absent, but then so must the other be)
    publicKey: Annotated[
        str | None,
        WithJsonSchema({"type": "string", "pattern": "^pk-lf-[^\\x00]{6,}$", "maxLength": 500}),
    ] = None
    secretKey: Annotated[
        str | None,
        WithJsonSchema({"type": "string", "pattern": "^sk-lf-[^\\x00]{6,}$", "maxLength": 500}),
    ] = None


class ApiKeySummary(OrganizationApiKey):
    """A project key (secret masked): the fields an organisation key has."""


class ApiKeyList(DocModel):
    """The project's active keys, oldest first."""

    apiKeys: list[ApiKeySummary]


class ApiKeyResponse(DocModel):
    """A new key: the only answer that holds its secret."""

    id: str
    createdAt: str
    publicKey: str
    secretKey: str
    displaySecretKey: str
    note: str | None = None


class ApiKeyDeletionResponse(DocModel):
    """A revoked key."""

    success: bool


def _invalid(detail: str) -> ApiError:
    return ApiError(400, "Invalid request data", detail)


def _project_fields(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """``name``, ``metadata`` and ``retention`` checked (400 naming the field)."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        raise _invalid("name: a string of 1 to 200 characters is required")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _invalid("metadata: an object or null")
    retention = body.get("retention", 0 if creating else None)
    if retention is not None:
        if isinstance(retention, float) and retention.is_integer():
            retention = int(retention)  # 30.0 is an integer to JSON Schema
        if isinstance(retention, bool) or not isinstance(retention, int):
            raise _invalid("retention: an integer number of days")
        if retention != 0 and not 3 <= retention <= 36500:
            raise _invalid("retention: 0 (keep everything) or 3 to 36500 days")
    return {"name": name.strip(), "metadata": metadata, "retention": retention}


@router.post(PROJECTS, responses=ok(Project), openapi_extra=json_body(ProjectBody))
async def create_project(request: Request, org: OrgKey) -> JSON:
    """Create a project in the key's organisation."""
    fields = _project_fields(await read_json_object(request), creating=True)
    rt = runtime(request)
    projects = rt.store.projects

    def work(c: Conn) -> dict[str, Any]:
        project_id = projects.create_project(c, org.org_id, fields["name"])
        days = fields["retention"] or None
        projects.update_project(c, project_id, fields["name"], days, fields["metadata"] or {})
        return org_project(rt, c, org, project_id)

    row = await rt.write(work)
    await audit(rt, org, "project.create", row["id"], {"name": row["name"]}, project_id=row["id"])
    return JSON(project_json(row))


@router.put(PROJECTS + "/{projectId}", responses=ok(Project), openapi_extra=json_body(ProjectBody))
async def update_project(request: Request, org: OrgKey, projectId: str) -> JSON:
    """Rename a project; set its metadata and retention (absent: kept as they are)."""
    fields = _project_fields(await read_json_object(request), creating=False)
    rt = runtime(request)

    def work(c: Conn) -> tuple[dict[str, Any], Any]:
        before = org_project(rt, c, org, projectId)
        days = before["retention_days"] if fields["retention"] is None else fields["retention"]
        rt.store.projects.update_project(
            c, projectId, fields["name"], days or None, fields["metadata"]
        )
        return org_project(rt, c, org, projectId), before["retention_days"]

    row, days_before = await rt.write(work)
    await audit(rt, org, "project.update", projectId, {"name": row["name"]}, project_id=projectId)
    if days_before != row["retention_days"]:
        detail = {"from": days_before, "to": row["retention_days"]}
        await audit(rt, org, "retention.update", None, detail, project_id=projectId)
    return JSON(project_json(row))


@router.delete(
    PROJECTS + "/{projectId}",
    status_code=202,
    responses={202: answer(ProjectDeletionResponse, "Deleted")},
)
async def remove_project(request: Request, org: OrgKey, projectId: str) -> JSON:
    """Delete a project with all its data (traces, observations, scores, sessions,
    prompts, datasets, settings, keys, members, audit log)."""
    rt = runtime(request)
    row = await rt.read(lambda c: org_project(rt, c, org, projectId))
    # Keys first: nothing new arrives while the data goes.
    await rt.write(lambda c: rt.store.projects.revoke_project_keys(c, projectId))
    key_cache.clear()
    gone = await run_in_threadpool(
        delete_project, rt.store, rt.read_sync, rt.writer.run_sync, projectId
    )
    await run_in_threadpool(rt.purge_media_sync)  # media whose last trace went
    await audit_org(
        rt, org, org.org_id, "project.delete", projectId, {"name": row["name"], **gone.as_json()}
    )
    return JSON(
        {"success": True, "message": f"Project {projectId} and its data deleted"}, status_code=202
    )


# --- a project's API keys -------------------------------------------------------------------


@router.get(PROJECTS + "/{projectId}/apiKeys", responses=ok(ApiKeyList))
async def list_api_keys(request: Request, org: OrgKey, projectId: str) -> JSON:
    """The project's active keys (public key and masked secret)."""
    rt = runtime(request)

    def read(c: Conn) -> list[dict[str, Any]]:
        org_project(rt, c, org, projectId)
        return rt.store.projects.list_keys(c, projectId)

    rows = await rt.read(read)
    return JSON({"apiKeys": [key_summary_json(r) for r in rows if r["revoked_at"] is None]})


def _key_fields(body: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    note, public, secret = body.get("note"), body.get("publicKey"), body.get("secretKey")
    for name, value in (("note", note), ("publicKey", public), ("secretKey", secret)):
        if value is not None and (not isinstance(value, str) or len(value) > 500):
            raise _invalid(f"{name}: a string of at most 500 characters, or null")
    if (public is None) != (secret is None):
        raise _invalid("publicKey and secretKey: give both or neither")
    if public is not None and secret is not None:
        if not public.startswith("pk-lf-") or len(public) < 12:
            raise _invalid("publicKey: must start with 'pk-lf-' (and hold more than that)")
        if not secret.startswith("sk-lf-") or len(secret) < 12:
            raise _invalid("secretKey: must start with 'sk-lf-' (and hold more than that)")
    return note, public, secret


@router.post(
    PROJECTS + "/{projectId}/apiKeys",
    responses=ok(ApiKeyResponse),
    openapi_extra=json_body(ApiKeyBody),
)
async def create_api_key(request: Request, org: OrgKey, projectId: str) -> JSON:
    """Make a key pair for the project (its secret in this answer only); 409 when a
    predefined ``publicKey`` is taken."""
    note, public, secret = _key_fields(await read_json_object(request))
    rt = runtime(request)
    projects = rt.store.projects

    def work(c: Conn) -> Any:
        org_project(rt, c, org, projectId)
        if public is not None and projects.public_key_taken(c, public):
            raise Conflict("An API key with this publicKey exists already")
        return projects.create_key(c, projectId, note, public_key=public, secret_key=secret)

    key = await rt.write(work)
    await audit(rt, org, "api_key.create", key.public_key, {"note": note}, project_id=projectId)
    return JSON(
        {
            "id": key.id,
            "createdAt": format_ts(now()),
            "publicKey": key.public_key,
            "secretKey": key.secret_key,
            "displaySecretKey": f"sk-lf-...{key.secret_key[-4:]}",
            "note": note,
        }
    )


@router.delete(PROJECTS + "/{projectId}/apiKeys/{apiKeyId}", responses=ok(ApiKeyDeletionResponse))
async def delete_api_key(request: Request, org: OrgKey, projectId: str, apiKeyId: str) -> JSON:
    """Revoke one of the project's keys (it stops working at once on this server)."""
    rt = runtime(request)
    projects = rt.store.projects

    def work(c: Conn) -> bool:
        org_project(rt, c, org, projectId)
        mine = {k["id"] for k in projects.list_keys(c, projectId) if k["revoked_at"] is None}
        return apiKeyId in mine and projects.revoke_key(c, apiKeyId)

    if not await rt.write(work):
        raise not_found("API key")
    key_cache.clear()
    await audit(rt, org, "api_key.revoke", apiKeyId, project_id=projectId)
    return JSON({"success": True})
