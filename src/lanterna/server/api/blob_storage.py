"""Blob-storage integrations (``/api/public/integrations/blob-storage``), as in
Langfuse's OpenAPI spec, for an organisation API key (``OrgKey``; a project key gets
403): list the organisation's integrations, create or replace a project's (checked by a
test upload), read one's sync status, delete one. The secret access key is sealed with
the server key before it is stored and never returned. The exports themselves run in
the background (``server/scheduled_exports.py``); docs/administration.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from ...alerts.stored import outbound_policy
from ...store.db import Conn
from ...store.filters import parse_time
from ...timeutil import now
from ..audit import audit
from ..doc_models import DocModel
from ..errors import ApiError, not_found
from ..org_auth import OrgKey, OrgPrincipal
from ..responses import JSON
from ..runtime import Runtime, runtime
from ..scheduled_exports import FREQUENCIES, check_upload, context_of
from .body import Deleted, json_body, ok, read_json_object

router = APIRouter(tags=["BlobStorageIntegrations"])

PATH = "/api/public/integrations/blob-storage"
Type = Literal["S3", "S3_COMPATIBLE", "AZURE_BLOB_STORAGE"]
FileType = Literal["JSON", "CSV", "JSONL", "PARQUET"]
Frequency = Literal["every_20_minutes", "hourly", "daily", "weekly"]
Mode = Literal["FULL_HISTORY", "FROM_TODAY", "FROM_CUSTOM_DATE"]
Source = Literal[
    "LEGACY_TRACES_OBSERVATIONS", "OBSERVATIONS_V2", "LEGACY_TRACES_AND_ENRICHED_OBSERVATIONS"
]  # fmt: skip
FieldGroup = Literal[
    "core", "basic", "time", "io", "metadata", "model", "usage", "prompt", "metrics", "tools",
    "trace_context",
]  # fmt: skip
SyncStatus = Literal["idle", "running", "queued", "up_to_date", "disabled", "error"]


class CreateBlobStorageIntegrationRequest(DocModel):
    """The body of ``PUT``: a project's integration."""

    projectId: str = Field(min_length=1)
    type: Type
    bucketName: str
    endpoint: str | None = None
    region: str
    accessKeyId: str | None = None
    secretAccessKey: str | None = None
    prefix: str | None = None
    exportFrequency: Frequency
    enabled: bool
    forcePathStyle: bool
    fileType: FileType
    exportMode: Mode
    exportStartDate: datetime | None = None
    compressed: bool | None = None
    exportSource: Source | None = None
    exportFieldGroups: list[FieldGroup] | None = None


class BlobStorageIntegrationResponse(DocModel):
    """An integration (the secret access key never appears)."""

    id: str
    projectId: str
    type: Type
    bucketName: str
    endpoint: str | None
    region: str
    accessKeyId: str | None
    prefix: str
    exportFrequency: Frequency
    enabled: bool
    forcePathStyle: bool
    fileType: FileType
    exportMode: Mode
    exportStartDate: datetime | None
    compressed: bool
    exportSource: Source
    exportFieldGroups: list[FieldGroup] | None
    nextSyncAt: datetime | None
    lastSyncAt: datetime | None
    lastError: str | None
    lastErrorAt: datetime | None
    createdAt: datetime
    updatedAt: datetime


class BlobStorageIntegrationsResponse(DocModel):
    """The organisation's integrations."""

    data: list[BlobStorageIntegrationResponse]


class BlobStorageIntegrationStatusResponse(DocModel):
    """An integration's sync status; ``lastSyncAt`` is the end of the last exported
    window (compare it with an ETL bookmark)."""

    id: str
    projectId: str
    syncStatus: SyncStatus
    enabled: bool
    lastSyncAt: datetime | None
    nextSyncAt: datetime | None
    lastError: str | None
    lastErrorAt: datetime | None


_REQUIRED = tuple(
    n for n, f in CreateBlobStorageIntegrationRequest.model_fields.items() if f.is_required()
)
_CHOICES = {
    "type": ("S3", "S3_COMPATIBLE", "AZURE_BLOB_STORAGE"),
    "fileType": ("JSON", "CSV", "JSONL", "PARQUET"),
    "exportFrequency": tuple(FREQUENCIES),
    "exportMode": ("FULL_HISTORY", "FROM_TODAY", "FROM_CUSTOM_DATE"),
}
_GROUPS = FieldGroup.__args__  # type: ignore[attr-defined]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _text(body: dict[str, Any], name: str, *, optional: bool = False) -> str | None:
    value = body.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not value.strip() and not optional):
        raise ApiError(400, "Invalid request data", f"{name}: a non-empty string")
    return value.strip() or None


def check_body(
    body: dict[str, Any], existing: dict[str, Any] | None, at: datetime
) -> dict[str, Any]:
    """The stored fields of a ``PUT`` body (the secret still in clear), or a 400
    naming the field. Omitted ``exportSource``/``exportFieldGroups``/``secretAccessKey``
    keep the existing values."""
    missing = [n for n in _REQUIRED if body.get(n) is None]
    if missing:
        raise ApiError(400, "Invalid request data", f"missing: {', '.join(missing)}")
    for name, choices in _CHOICES.items():
        if body[name] not in choices:
            raise ApiError(400, "Invalid request data", f"{name}: one of {', '.join(choices)}")
    for name in ("enabled", "forcePathStyle"):
        if not isinstance(body[name], bool):
            raise ApiError(400, "Invalid request data", f"{name}: true or false")
    if body["type"] == "AZURE_BLOB_STORAGE":
        raise ApiError(
            400,
            "Invalid request data",
            "type: Lanterna exports to S3 and S3_COMPATIBLE storage only",
        )
    endpoint = _text(body, "endpoint", optional=True)
    if body["type"] == "S3_COMPATIBLE" and not endpoint:
        raise ApiError(400, "Invalid request data", "endpoint: required for S3_COMPATIBLE")
    prefix = _text(body, "prefix", optional=True) or ""
    if prefix and not prefix.endswith("/"):
        raise ApiError(400, "Invalid request data", "prefix: must end with a forward slash")
    source = (
        body.get("exportSource")
        or (existing or {}).get("export_source")
        or "LEGACY_TRACES_OBSERVATIONS"
    )
    if source != "LEGACY_TRACES_OBSERVATIONS":
        raise ApiError(
            400,
            "Invalid request data",
            "exportSource: this server exports LEGACY_TRACES_OBSERVATIONS"
            " (traces, observations and scores)",
        )
    groups = body.get("exportFieldGroups")
    if groups is not None:
        if body.get("exportSource") is None:
            raise ApiError(
                400,
                "Invalid request data",
                "exportFieldGroups: requires exportSource in the same request",
            )
        if (
            not isinstance(groups, list)
            or any(g not in _GROUPS for g in groups)
            or "core" not in groups
        ):
            raise ApiError(
                400,
                "Invalid request data",
                f"exportFieldGroups: a list of {', '.join(_GROUPS)} including core",
            )
    elif existing is not None:
        groups = existing["export_field_groups"]
    start = None
    if body["exportMode"] == "FROM_CUSTOM_DATE":
        if not isinstance(body.get("exportStartDate"), str):
            raise ApiError(
                400, "Invalid request data", "exportStartDate: required for FROM_CUSTOM_DATE"
            )
        start = parse_time(body["exportStartDate"], "exportStartDate")
        assert start is not None
        if start > at + timedelta(hours=27):
            raise ApiError(
                400, "Invalid request data", "exportStartDate: must not be in the future"
            )
    key_id = _text(body, "accessKeyId", optional=True)
    secret = _text(body, "secretAccessKey", optional=True)
    if body["type"] == "S3_COMPATIBLE" and not key_id:
        raise ApiError(400, "Invalid request data", "accessKeyId: required for S3_COMPATIBLE")
    compressed = body.get("compressed")
    if compressed is not None and not isinstance(compressed, bool):
        raise ApiError(400, "Invalid request data", "compressed: true or false")
    return {
        "type": body["type"],
        "bucket_name": _text(body, "bucketName"),
        "endpoint": endpoint,
        "region": _text(body, "region"),
        "access_key_id": key_id,
        "secret": secret,
        "prefix": prefix,
        "export_frequency": body["exportFrequency"],
        "enabled": body["enabled"],
        "force_path_style": body["forcePathStyle"],
        "file_type": body["fileType"],
        "export_mode": body["exportMode"],
        "export_start_date": start,
        "compressed": True if compressed is None else compressed,
        "export_source": source,
        "export_field_groups": groups,
    }


def integration_json(row: dict[str, Any]) -> dict[str, Any]:
    """A ``BlobStorageIntegrationResponse`` (never the secret)."""
    return {
        "id": row["id"],
        "projectId": row["project_id"],
        "type": row["type"],
        "bucketName": row["bucket_name"],
        "endpoint": row["endpoint"],
        "region": row["region"],
        "accessKeyId": row["access_key_id"],
        "prefix": row["prefix"],
        "exportFrequency": row["export_frequency"],
        "enabled": row["enabled"],
        "forcePathStyle": row["force_path_style"],
        "fileType": row["file_type"],
        "exportMode": row["export_mode"],
        "exportStartDate": _iso(row["export_start_date"]),
        "compressed": row["compressed"],
        "exportSource": row["export_source"],
        "exportFieldGroups": row["export_field_groups"],
        "nextSyncAt": _iso(row["next_sync_at"]),
        "lastSyncAt": _iso(row["last_sync_at"]),
        "lastError": row["last_error"],
        "lastErrorAt": _iso(row["last_error_at"]),
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
    }


def sync_status(row: dict[str, Any], at: datetime) -> str:
    """``BlobStorageSyncStatus`` of an integration at ``at``."""
    if not row["enabled"]:
        return "disabled"
    if row["lease_until"] is not None and row["lease_until"] > at:
        return "running"
    if row["last_error"]:
        return "error"
    if row["next_sync_at"] is None:
        return "idle" if row["last_sync_at"] is None else "queued"
    return "queued" if row["next_sync_at"] <= at else "up_to_date"


def status_json(row: dict[str, Any], at: datetime) -> dict[str, Any]:
    """A ``BlobStorageIntegrationStatusResponse``."""
    full = integration_json(row)
    return {
        "id": row["id"],
        "projectId": row["project_id"],
        "syncStatus": sync_status(row, at),
        "enabled": row["enabled"],
        **{k: full[k] for k in ("lastSyncAt", "nextSyncAt", "lastError", "lastErrorAt")},
    }


async def _of_org(rt: Runtime, org: OrgPrincipal, integration_id: str) -> dict[str, Any]:
    def read(c: Conn) -> dict[str, Any] | None:
        row = rt.store.blob_exports.get(c, integration_id)
        if row is None:
            return None
        project = rt.store.projects.get_project(c, row["project_id"])
        return row if project is not None and project["org_id"] == org.org_id else None

    row = await rt.read(read)
    if row is None:
        raise not_found("Blob storage integration")
    return row


@router.get(PATH, responses=ok(BlobStorageIntegrationsResponse))
async def list_integrations(request: Request, org: OrgKey) -> JSON:
    """The integrations of the organisation's projects."""
    rt = runtime(request)

    def read(c: Conn) -> list[dict[str, Any]]:
        ids = [p["id"] for p in rt.store.projects.org_projects(c, org.org_id)]
        return rt.store.blob_exports.of_projects(c, ids)

    return JSON({"data": [integration_json(r) for r in await rt.read(read)]})


@router.put(
    PATH,
    responses=ok(BlobStorageIntegrationResponse),
    openapi_extra=json_body(CreateBlobStorageIntegrationRequest),
)
async def upsert_integration(request: Request, org: OrgKey) -> JSON:
    """Create or replace a project's integration after a test upload to the bucket."""
    rt = runtime(request)
    body = await read_json_object(request)
    project_id = body.get("projectId")
    if not isinstance(project_id, str) or not project_id:
        raise ApiError(400, "Invalid request data", "projectId: a project id")
    project = await rt.read(lambda c: rt.store.projects.get_project(c, project_id))
    if project is None or project["org_id"] != org.org_id:
        raise not_found("Project")
    existing = await rt.read(lambda c: rt.store.blob_exports.of_project(c, project_id))
    at = now()
    fields = check_body(body, existing, at)
    secret = fields.pop("secret")
    box = rt.secret_box()
    if secret is not None:
        fields["secret_access_key_sealed"] = box.seal(secret, context_of(project_id))
    elif existing is not None and existing["access_key_id"] == fields["access_key_id"]:
        fields["secret_access_key_sealed"] = existing["secret_access_key_sealed"]
    else:
        fields["secret_access_key_sealed"] = None
    if fields["access_key_id"] and not fields["secret_access_key_sealed"]:
        raise ApiError(400, "Invalid request data", "secretAccessKey: required with accessKeyId")
    policy = outbound_policy(rt.settings.outbound_allow)
    try:
        await run_in_threadpool(check_upload, {**fields, "project_id": project_id}, box, policy)
    except Exception as exc:
        raise ApiError(
            400, "The test upload to the bucket failed", f"{type(exc).__name__}: {exc}"[:500]
        ) from None
    row = await rt.write(lambda c: rt.store.blob_exports.upsert(c, project_id, fields, at))
    detail = {
        "bucket": fields["bucket_name"],
        "fileType": fields["file_type"],
        "exportFrequency": fields["export_frequency"],
        "enabled": fields["enabled"],
    }
    action = "blob_storage.create" if existing is None else "blob_storage.update"
    await audit(rt, org, action, row["id"], detail, project_id=project_id)
    return JSON(integration_json(row))


@router.get(PATH + "/{id}", responses=ok(BlobStorageIntegrationStatusResponse))
async def integration_status(request: Request, id: str, org: OrgKey) -> JSON:
    """An integration's sync status (``lastSyncAt``: the end of the last export)."""
    row = await _of_org(runtime(request), org, id)
    return JSON(status_json(row, now()))


@router.delete(PATH + "/{id}", responses=ok(Deleted))
async def delete_integration(request: Request, id: str, org: OrgKey) -> JSON:
    """Delete an integration (files already exported stay in the bucket)."""
    rt = runtime(request)
    row = await _of_org(rt, org, id)
    await rt.write(lambda c: rt.store.blob_exports.delete(c, id))
    await audit(rt, org, "blob_storage.delete", id, None, project_id=row["project_id"])
    return JSON({"message": "Blob storage integration deleted"})
