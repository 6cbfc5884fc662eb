"""Traces: list, get one, delete one or many (contract 4.1)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ...store import traces as q
from ...store.db import Conn
from ...store.filters import parse_filter, parse_time
from ..auth import ProjectKey
from ..errors import ApiError, not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import observation_json, score_json, trace_json
from .body import read_json_object
from .params import field_groups, order_by, page_of

router = APIRouter()

FIELD_GROUPS = ("core", "io", "scores", "observations", "metrics")
MAX_DELETE = 1000

OptStr = Annotated[str | None, Query()]
OptList = Annotated[list[str] | None, Query()]


def _blank_io(item: dict[str, Any]) -> None:
    item["input"] = item["output"] = item["metadata"] = None


def _list_items(
    conn: Conn, project_id: str, rows: list[dict[str, Any]], groups: frozenset[str]
) -> list[dict[str, Any]]:
    """TraceWithDetails for a page of rows: one query per aggregate for the whole page."""
    ids = [r["id"] for r in rows]
    metrics = q.trace_metrics(conn, project_id, ids) if "metrics" in groups else {}
    obs = q.observation_ids(conn, project_id, ids) if "observations" in groups else {}
    scores = q.score_ids(conn, project_id, ids) if "scores" in groups else {}
    items = []
    for row in rows:
        item = trace_json(conn.dialect, row, project_id)
        if "io" not in groups:
            _blank_io(item)
        item["observations"] = obs.get(row["id"], [])
        item["scores"] = scores.get(row["id"], [])
        if "metrics" in groups:
            item["latency"], item["totalCost"] = metrics.get(row["id"], (0.0, 0.0))
        else:
            item["latency"] = item["totalCost"] = -1
        items.append(item)
    return items


@router.get("/api/public/traces")
def list_traces(
    request: Request,
    principal: ProjectKey,
    page: int | None = None,
    limit: int | None = None,
    user_id: Annotated[str | None, Query(alias="userId")] = None,
    name: OptStr = None,
    session_id: Annotated[str | None, Query(alias="sessionId")] = None,
    from_timestamp: Annotated[str | None, Query(alias="fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, Query(alias="toTimestamp")] = None,
    order: Annotated[str | None, Query(alias="orderBy")] = None,
    tags: OptList = None,
    version: OptStr = None,
    release: OptStr = None,
    environment: OptList = None,
    fields: OptStr = None,
    filter_json: Annotated[str | None, Query(alias="filter")] = None,
) -> JSON:
    """A page of the project's traces, newest first, with ids of their observations/scores."""
    paging = page_of(page, limit)
    groups = field_groups(fields, FIELD_GROUPS, FIELD_GROUPS)
    order_field, order_desc = order_by(order, ("timestamp", True))
    query = q.TraceQuery(
        user_id=user_id,
        name=name,
        session_id=session_id,
        from_timestamp=parse_time(from_timestamp, "fromTimestamp"),
        to_timestamp=parse_time(to_timestamp, "toTimestamp"),
        tags=tags or (),
        version=version,
        release=release,
        environments=environment or (),
        filters=parse_filter(filter_json),
        order_field=order_field,
        order_desc=order_desc,
    )
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any]:
        rows, total = q.list_traces(
            conn,
            project_id,
            query,
            limit=paging.limit,
            offset=paging.offset,
            with_io="io" in groups,
        )
        return paging.envelope(_list_items(conn, project_id, rows, groups), total)

    return JSON(runtime(request).read_sync(read))


@router.delete("/api/public/traces")
async def delete_traces(request: Request, principal: ProjectKey) -> JSON:
    """Delete up to 1000 traces (with their observations and scores) by id."""
    body = await read_json_object(request)
    ids = body.get("traceIds")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise ApiError(400, "Invalid request data", "traceIds: required, a list of trace ids")
    if not 1 <= len(ids) <= MAX_DELETE:
        raise ApiError(
            400, "Invalid request data", f"traceIds: give between 1 and {MAX_DELETE} ids"
        )
    project_id = principal.project_id
    await runtime(request).write(lambda conn: q.delete_traces(conn, project_id, ids))
    return JSON({"message": "Traces deleted successfully"})


def _full_trace(
    conn: Conn, project_id: str, trace_id: str, groups: frozenset[str]
) -> dict[str, Any] | None:
    row = q.get_trace(conn, project_id, trace_id)
    if row is None:
        return None
    d = conn.dialect
    out = trace_json(d, row, project_id)
    if "io" not in groups:
        _blank_io(out)
    out["observations"] = []
    out["scores"] = []
    if "observations" in groups:
        rows = q.observations_of(conn, project_id, trace_id)
        out["observations"] = [observation_json(d, o) for o in rows]
    if "scores" in groups:
        out["scores"] = [score_json(d, s) for s in q.scores_of(conn, project_id, trace_id)]
    if "metrics" in groups:
        metrics = q.trace_metrics(conn, project_id, [trace_id])
        out["latency"], out["totalCost"] = metrics.get(trace_id, (0.0, 0.0))
    else:
        out["latency"] = out["totalCost"] = -1
    return out


@router.get("/api/public/traces/{trace_id:path}")
def get_trace(
    request: Request, trace_id: str, principal: ProjectKey, fields: OptStr = None
) -> JSON:
    """A trace with its observations and scores; 404 when the project has no such trace."""
    groups = field_groups(fields, FIELD_GROUPS, FIELD_GROUPS)
    project_id = principal.project_id
    found = runtime(request).read_sync(lambda c: _full_trace(c, project_id, trace_id, groups))
    if found is None:
        raise not_found(f"Trace {trace_id}")
    return JSON(found)


@router.delete("/api/public/traces/{trace_id:path}")
async def delete_trace(request: Request, trace_id: str, principal: ProjectKey) -> JSON:
    """Delete one trace with its observations and scores.

    Answers 200 whether or not the trace existed (deleting is idempotent, as in
    Langfuse); a trace of another project is never touched.
    """
    project_id = principal.project_id
    await runtime(request).write(lambda conn: q.delete_traces(conn, project_id, [trace_id]))
    return JSON({"message": "Trace deleted successfully"})
