"""The data lifecycle, Lanterna's own routes (docs/api.md, docs/operations.md):

- ``DELETE /api/public/users/{userId}``: every trace of the user with its observations
  and scores, and the sessions left empty; ``DELETE /api/public/sessions/{sessionId}``:
  the session's traces and its own scores. Both answer the deleted counts and are
  audited;
- ``GET``/``PUT /api/public/retention``: the project's retention in days (null: keep
  everything);
- ``GET``/``PUT /api/public/masking-rules``: the project's redaction rules;
- ``GET /api/public/export``: traces, observations and scores (the trace list's
  filters) as JSONL, CSV or Parquet, streamed;
- ``GET /api/public/audit-log``: who changed what, newest first.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from ..._json import integral
from ...errors import InvalidRequestData
from ...ingest.masking import BUILTINS, MAX_PATTERN, MAX_RULES, PATH_ROOTS, REDACTED, check_rules
from ...lifecycle.deletion import delete_session, delete_user
from ...store.interface import Deleted
from ..audit import audit
from ..auth import ProjectAdminKey, ProjectKey
from ..doc_models import DocModel
from ..export import FORMATS as EXPORT_FORMATS
from ..export import KINDS as EXPORT_KINDS
from ..export import MEDIA_TYPES as EXPORT_MEDIA_TYPES
from ..export import streamed
from ..responses import JSON
from ..runtime import Runtime, runtime
from .body import json_body, ok, read_json
from .params import LimitParam, Meta, PageParam, one_of, page_of

router = APIRouter(tags=["Data lifecycle"])

MAX_RETENTION_DAYS = 36500
OptStr = Annotated[str | None, Query()]
OptList = Annotated[list[str] | None, Query()]
#: Any string without a NUL (every body string: ``read_json``).
NO_NUL_TEXT = r"^[^\x00]*$"
#: A masking rule's ``path`` (``ingest.masking._path``): a root, then non-empty keys.
MASK_PATH = rf"^(\$\.)?({'|'.join(PATH_ROOTS)})(\.[^.\x00]+)+$"


class DeletedCounts(DocModel):
    """What a deletion removed."""

    message: str
    deleted: dict[str, int]


class Retention(DocModel):
    """``retentionDays``: data older than this many days is deleted by the retention job
    (traces by their timestamp, with their observations and scores); null keeps
    everything. From 1 to 36500."""

    retentionDays: int | None = None


class RetentionBody(DocModel):
    """Set the retention: ``retentionDays`` (required) from 1 to 36500, or null to keep
    everything."""

    retentionDays: Annotated[int | None, Field(ge=1, le=MAX_RETENTION_DAYS)]


#: A masking rule's ``replacement`` (default ``[REDACTED]``).
_REPLACEMENT = Field(default=REDACTED, max_length=100, pattern=NO_NUL_TEXT)


class BuiltinRule(DocModel):
    """Redact what a built-in pattern finds."""

    type: Literal["builtin"]
    name: Literal[tuple(BUILTINS)]  # type: ignore[valid-type]
    replacement: str = _REPLACEMENT


class RegexRule(DocModel):
    """Redact what an RE2 ``pattern`` finds (it must compile: a 400 otherwise, which
    JSON Schema cannot state)."""

    type: Literal["regex"]
    pattern: Annotated[str, Field(min_length=1, max_length=MAX_PATTERN, pattern=NO_NUL_TEXT)]
    replacement: str = _REPLACEMENT


class PathRule(DocModel):
    """Replace the value at a path: ``input``, ``output`` or ``metadata`` (``$.``
    may lead), then keys separated by dots."""

    type: Literal["path"]
    path: Annotated[str, Field(max_length=200, pattern=MASK_PATH)]
    replacement: str = _REPLACEMENT


class MaskingRulesBody(DocModel):
    """Replace the project's redaction rules: ``rules`` (required, at most 50)."""

    rules: Annotated[list[BuiltinRule | RegexRule | PathRule], Field(max_length=MAX_RULES)]


class MaskingRules(DocModel):
    """``rules``: the project's redaction rules, applied to every event before it is
    stored (see docs/operations.md#masking): ``{"type": "builtin", "name": "email" |
    "credit_card" | "api_key" | "bearer_token"}``, ``{"type": "regex", "pattern": RE2,
    "replacement": "[REDACTED]"}``, ``{"type": "path", "path": "input.password"}``."""

    rules: list[dict[str, Any]]


class AuditEntry(DocModel):
    """One change: when, who (``user:EMAIL`` or ``key:PUBLIC_KEY``), what."""

    id: str
    at: str
    actor: str
    action: str
    target: str | None = None
    detail: dict[str, Any] | None = None


class AuditLog(DocModel):
    """A page of the audit log, newest first."""

    data: list[AuditEntry]
    meta: Meta


async def _deleted(rt: Runtime, principal: Any, what: str, target: str, gone: Deleted) -> JSON:
    await audit(rt, principal, f"{what}.delete", target, gone.as_json())
    return JSON({"message": f"{what.capitalize()} data deleted", "deleted": gone.as_json()})


@router.delete("/api/public/users/{user_id:path}", responses=ok(DeletedCounts))
async def delete_user_data(request: Request, user_id: str, principal: ProjectAdminKey) -> JSON:
    """Delete every trace of ``user_id`` with its observations and scores, and the
    sessions that become empty (with their scores); rollups follow. Audited."""
    rt = runtime(request)
    pid = principal.project_id
    gone = await run_in_threadpool(
        delete_user, rt.store, rt.read_sync, rt.writer.run_sync, pid, user_id
    )
    await run_in_threadpool(rt.purge_media_sync)  # media whose last trace went
    return await _deleted(rt, principal, "user", user_id, gone)


@router.delete("/api/public/sessions/{session_id:path}", responses=ok(DeletedCounts))
async def delete_session_data(
    request: Request, session_id: str, principal: ProjectAdminKey
) -> JSON:
    """Delete the session's traces with their observations and scores, its own scores
    and the session. Audited."""
    rt = runtime(request)
    pid = principal.project_id
    gone = await run_in_threadpool(
        delete_session, rt.store, rt.read_sync, rt.writer.run_sync, pid, session_id
    )
    await run_in_threadpool(rt.purge_media_sync)  # media whose last trace went
    return await _deleted(rt, principal, "session", session_id, gone)


def retention_days(raw: Any) -> int | None:
    """A retention in days as given (an integer from 1 to 36500, or None)."""
    if raw is None:
        return None
    raw = integral(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_RETENTION_DAYS:
        raise InvalidRequestData(
            f"retentionDays: an integer from 1 to {MAX_RETENTION_DAYS}, or null to keep everything"
        )
    return raw


@router.get("/api/public/retention", responses=ok(Retention))
def get_retention(request: Request, principal: ProjectKey) -> JSON:
    """The project's retention (``retentionDays``; null: data is kept forever)."""
    rt = runtime(request)
    row = rt.read_sync(lambda c: rt.store.projects.get_project(c, principal.project_id))
    return JSON({"retentionDays": (row or {}).get("retention_days")})


@router.put(
    "/api/public/retention", responses=ok(Retention), openapi_extra=json_body(RetentionBody)
)
async def put_retention(request: Request, principal: ProjectAdminKey) -> JSON:
    """Set the project's retention (audited as ``retention.update``)."""
    body = await read_json(request)
    if not isinstance(body, dict) or "retentionDays" not in body:
        raise InvalidRequestData("body: an object with retentionDays")
    days = retention_days(body["retentionDays"])
    rt = runtime(request)
    projects = rt.store.projects

    def update(c: Any) -> int | None:
        row = projects.get_project(c, principal.project_id)
        assert row is not None
        projects.update_project(c, principal.project_id, row["name"], days)
        return row["retention_days"]

    before = await rt.write(update)
    await audit(rt, principal, "retention.update", None, {"from": before, "to": days})
    return JSON({"retentionDays": days})


@router.get("/api/public/masking-rules", responses=ok(MaskingRules))
def get_masking_rules(request: Request, principal: ProjectKey) -> JSON:
    """The project's redaction rules (empty: events are stored as sent)."""
    rt = runtime(request)
    rules = rt.read_sync(lambda c: rt.store.masking.get_rules(c, principal.project_id))
    return JSON({"rules": rules})


@router.put(
    "/api/public/masking-rules",
    responses=ok(MaskingRules),
    openapi_extra=json_body(MaskingRulesBody),
)
async def put_masking_rules(request: Request, principal: ProjectAdminKey) -> JSON:
    """Replace the project's redaction rules (checked: a 400 names the first bad rule;
    audited as ``masking.update``). They apply to events received from now on."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequestData("body: an object with rules")
    rules = check_rules(body.get("rules"))
    rt = runtime(request)
    pid = principal.project_id
    await rt.write(lambda c: rt.store.masking.set_rules(c, pid, rules))
    rt.store.masking.forget(pid)
    await audit(rt, principal, "masking.update", None, {"rules": len(rules)})
    return JSON({"rules": rules})


@router.get(
    "/api/public/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The export (JSONL, CSV or Parquet), streamed",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in EXPORT_MEDIA_TYPES.values()
            },
        }
    },
)
def export(
    request: Request,
    principal: ProjectKey,
    format: Annotated[str | None, one_of(EXPORT_FORMATS)] = None,
    kind: Annotated[str | None, one_of(EXPORT_KINDS)] = None,
    userId: OptStr = None,
    name: OptStr = None,
    sessionId: OptStr = None,
    fromTimestamp: OptStr = None,
    toTimestamp: OptStr = None,
    tags: OptList = None,
    version: OptStr = None,
    release: OptStr = None,
    environment: OptList = None,
    filter: OptStr = None,
) -> StreamingResponse:
    """The project's traces matching the trace list's filters, oldest first, with their
    observations and scores: ``format=jsonl`` (default; every kind, one record per
    line, what ``lanterna import`` reads), ``csv`` or ``parquet`` (one ``kind``:
    ``trace`` (default), ``observation`` or ``score``). Streamed in constant memory."""
    rt = runtime(request)
    return streamed(
        rt.store, rt.read_sync, principal.project_id, request.query_params, rt.blobs.read
    )


@router.get("/api/public/audit-log", responses=ok(AuditLog))
def audit_log(
    request: Request,
    principal: ProjectAdminKey,
    page: PageParam = None,
    limit: LimitParam = None,
    action: OptStr = None,
) -> JSON:
    """The project's audit log, newest first: who (``actor``) changed what (``action``,
    ``target``, ``detail``) when. ``action`` keeps one action (``api_key.create``) or a
    family (``api_key``)."""
    paging = page_of(page, limit)
    rt = runtime(request)

    def read(c: Any) -> dict[str, Any]:
        rows, total = rt.store.audit.page_entries(
            c, principal.project_id, limit=paging.limit, offset=paging.offset, action=action
        )
        d = c.dialect
        for r in rows:
            r["at"] = d.ts_out(r["at"])
        return paging.envelope(rows, total)

    return JSON(rt.read_sync(read))
