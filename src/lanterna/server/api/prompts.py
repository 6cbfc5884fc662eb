"""Prompts (Langfuse v2 prompt API, contract 4.3) and per-version comparison metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from ...prompts import references
from ...prompts.validate import check_create, check_labels, check_name
from ...store.db import Conn
from ...store.interface import Prompts
from ...timeutil import parse_ts
from .. import shapes
from ..audit import audit
from ..auth import ProjectKey
from ..errors import ApiError
from ..responses import JSON
from ..runtime import runtime
from .body import read_json, read_json_object
from .params import MAX_PAGE, MAX_VERSION, VersionParam

router = APIRouter()


def prompt_json(
    prompts: Prompts, conn: Conn, row: dict[str, Any], *, resolve: bool = True
) -> dict[str, Any]:
    """A Prompt; references resolved unless ``resolve`` is false (a reference that
    cannot be resolved raises a 400 ``PromptReferenceError``)."""
    body, graph = row["prompt"], None
    if resolve:

        def lookup(name: str, version: int | None, label: str | None) -> dict[str, Any] | None:
            return prompts.get(conn, row["project_id"], name, version=version, label=label)

        body, graph = references.resolve(body, lookup, root=(row["name"], row["version"]))
    return shapes.prompt_json(conn.dialect, row, body, graph)


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise ApiError(400, f"{name}: {exc}") from None


#: A version in a path: 1 to :data:`MAX_VERSION`.
StoredVersion = Annotated[int, Path(ge=1, le=MAX_VERSION)]


@router.post("/api/public/v2/prompts")
async def create_prompt(request: Request, principal: ProjectKey) -> JSON:
    """Create a new version of a prompt (version = previous + 1; ``latest`` moves to it)."""
    new = check_create(await read_json(request))
    rt = runtime(request)
    prompts = rt.store.prompts

    def work(conn: Conn) -> dict[str, Any]:
        row = prompts.create(conn, principal.project_id, new)
        return prompt_json(prompts, conn, row, resolve=False)

    created = await rt.write(work)
    detail = {"version": created["version"], "labels": created["labels"]}
    await audit(rt, principal, "prompt.create", created["name"], detail)
    return JSON(created)


@router.get("/api/public/v2/prompts")
def list_prompts(
    request: Request,
    principal: ProjectKey,
    name: str | None = None,
    label: str | None = None,
    tag: str | None = None,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    limit: int = Query(10, ge=1, le=100),
    fromUpdatedAt: str | None = None,
    toUpdatedAt: str | None = None,
) -> JSON:
    """Prompt names with their versions, labels and tags (PromptMeta), newest first."""
    start, end = _time(fromUpdatedAt, "fromUpdatedAt"), _time(toUpdatedAt, "toUpdatedAt")
    rt = runtime(request)

    def query(conn: Conn) -> tuple[list[dict[str, Any]], int]:
        groups, total = rt.store.prompts.list_names(
            conn,
            principal.project_id,
            name=name,
            label=label,
            tag=tag,
            from_updated=start,
            to_updated=end,
            page=page,
            limit=limit,
        )
        return [shapes.prompt_meta_json(conn.dialect, g) for g in groups], total

    items, total = rt.read_sync(query)
    meta = {"page": page, "limit": limit, "totalItems": total, "totalPages": -(-total // limit)}
    return JSON({"data": items, "meta": meta})


@router.get("/api/public/prompts/metrics")
def prompt_metrics(
    request: Request,
    principal: ProjectKey,
    name: str,
    fromTimestamp: str | None = None,
    toTimestamp: str | None = None,
) -> JSON:
    """Per version of a prompt: generations, average latency and cost, tokens, scores."""
    start, end = _time(fromTimestamp, "fromTimestamp"), _time(toTimestamp, "toTimestamp")
    rt = runtime(request)
    stats = rt.read_sync(
        lambda c: rt.store.prompts.version_metrics(
            c, principal.project_id, name, from_ts=start, to_ts=end
        )
    )
    return JSON({"name": name, "data": [shapes.version_stats_json(s) for s in stats]})


@router.patch("/api/public/v2/prompts/{name:path}/versions/{version}")
async def update_labels(
    request: Request, name: str, version: StoredVersion, principal: ProjectKey
) -> JSON:
    """Add labels to one version (they move off every other version)."""
    body = await read_json_object(request)
    labels = check_labels(body.get("newLabels"))
    rt = runtime(request)
    prompts = rt.store.prompts

    def work(conn: Conn) -> dict[str, Any] | None:
        row = prompts.add_labels(conn, principal.project_id, name, version, labels)
        return None if row is None else prompt_json(prompts, conn, row, resolve=False)

    found = await rt.write(work)
    if found is None:
        raise ApiError(404, f"Prompt not found: '{name}' with version {version}")
    await audit(rt, principal, "prompt.labels", name, {"version": version, "labels": labels})
    return JSON(found)


def _selector(version: int | None, label: str | None) -> None:
    if version is not None and label is not None:
        raise ApiError(400, "Give either version or label, not both")


@router.get("/api/public/v2/prompts/{name:path}")
def get_prompt(
    request: Request,
    name: str,
    principal: ProjectKey,
    version: VersionParam = None,
    label: str | None = None,
    resolve: bool = True,
) -> JSON:
    """One version: by ``version``, by ``label``, or the ``production`` one."""
    _selector(version, label)
    rt = runtime(request)
    prompts = rt.store.prompts

    def query(conn: Conn) -> dict[str, Any] | None:
        row = prompts.get(conn, principal.project_id, name, version=version, label=label)
        return None if row is None else prompt_json(prompts, conn, row, resolve=resolve)

    found = rt.read_sync(query)
    if found is None:
        which = f"version {version}" if version is not None else f"label '{label or 'production'}'"
        raise ApiError(404, f"Prompt not found: '{name}' with {which}")
    return JSON(found)


@router.delete("/api/public/v2/prompts/{name:path}")
async def delete_prompt(
    request: Request,
    name: str,
    principal: ProjectKey,
    version: VersionParam = None,
    label: str | None = None,
) -> Response:
    """Delete every version, or the one given by ``version`` or ``label``."""
    _selector(version, label)
    check_name(name)
    rt = runtime(request)
    deleted = await rt.write(
        lambda c: rt.store.prompts.delete(
            c, principal.project_id, name, version=version, label=label
        )
    )
    if not deleted:
        raise ApiError(404, f"Prompt not found: '{name}'")
    which = {"version": version, "label": label, "versions": deleted}
    await audit(rt, principal, "prompt.delete", name, which)
    return Response(status_code=204)
