"""Traces: list, get one, delete one or many (contract 4.1)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from ...queries.traces import TraceDetail, TraceItem, TraceParts, trace_detail, trace_list
from ...store.db import Conn
from ...store.dialect import Dialect
from ...store.filters import parse_filter, parse_time
from ...store.interface import TRACE_ORDER_FIELDS, Store, TraceQuery
from ..audit import audit
from ..auth import ProjectAdminKey, ProjectKey
from ..doc_models import DocModel
from ..errors import ApiError, not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import observation_json, score_json, trace_json
from .body import Deleted, json_body, ok, read_json_object
from .core_models import V1_SCORE_TYPES, Traces, TraceWithFullDetails, time_param
from .params import LimitParam, PageParam, field_groups, order_by, page_of

router = APIRouter()

FIELD_GROUPS = ("core", "io", "scores", "observations", "metrics")
MAX_DELETE = 1000

OptStr = Annotated[str | None, Query()]
OptList = Annotated[list[str] | None, Query()]
#: ``field.asc`` or ``field.desc`` (the direction in any case), as :func:`order_by` and
#: the store's ``TRACE_ORDER_FIELDS`` read it; empty for the default (newest first).
ORDER_BY = rf"^(({'|'.join(TRACE_ORDER_FIELDS)})\.([aA][sS][cC]|[dD][eE][sS][cC]))?$"
#: The ``fields`` parameter of the trace list and the trace.
FIELDS_DOC = (
    "Comma-separated field groups: core (always), io, scores, observations, metrics;"
    " all when absent. Unknown names are ignored."
)


class DeleteTracesRequest(DocModel):
    """The ids of the traces to delete (1 to 1,000, each a non-empty string)."""

    traceIds: list[Annotated[str, Field(min_length=1, pattern=r"^[^\x00]*$")]] = Field(
        min_length=1, max_length=MAX_DELETE
    )


def _blank_io(item: dict[str, Any]) -> None:
    item["input"] = item["output"] = item["metadata"] = None


def _metrics(out: dict[str, Any], found: TraceItem | TraceDetail, groups: frozenset[str]) -> None:
    """``latency`` and ``totalCost``: 0 for a trace without observations, -1 when the
    ``metrics`` group was left out."""
    if "metrics" in groups:
        out["latency"] = 0.0 if found.latency is None else found.latency
        out["totalCost"] = 0.0 if found.cost is None else found.cost
    else:
        out["latency"] = out["totalCost"] = -1


def _list_item(
    d: Dialect, project_id: str, found: TraceItem, groups: frozenset[str]
) -> dict[str, Any]:
    """A TraceWithDetails of the list."""
    item = trace_json(d, found.row, project_id)
    if "io" not in groups:
        _blank_io(item)
    item["observations"] = found.observation_ids
    item["scores"] = found.score_ids
    _metrics(item, found, groups)
    return item


# ``filter`` is a JSON document inside a string (store/filters.py reads it): not stated
# in JSON Schema, so requests valid by the document may still get a 400 for it.
@router.get("/api/public/traces", responses=ok(Traces))
def list_traces(
    request: Request,
    principal: ProjectKey,
    page: PageParam = None,
    limit: LimitParam = None,
    user_id: Annotated[str | None, Query(alias="userId")] = None,
    name: OptStr = None,
    session_id: Annotated[str | None, Query(alias="sessionId")] = None,
    from_timestamp: Annotated[str | None, time_param("fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, time_param("toTimestamp")] = None,
    order: Annotated[
        str | None, Query(alias="orderBy", json_schema_extra={"pattern": ORDER_BY})
    ] = None,
    tags: OptList = None,
    version: OptStr = None,
    release: OptStr = None,
    environment: OptList = None,
    fields: Annotated[str | None, Query(description=FIELDS_DOC)] = None,
    filter_json: Annotated[str | None, Query(alias="filter")] = None,
) -> JSON:
    """A page of the project's traces, newest first, with ids of their observations/scores."""
    paging = page_of(page, limit)
    groups = field_groups(fields, FIELD_GROUPS, FIELD_GROUPS)
    order_field, order_desc = order_by(order, ("timestamp", True))
    query = TraceQuery(
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
    parts = TraceParts(
        io="io" in groups,
        metrics="metrics" in groups,
        observation_ids="observations" in groups,
        score_ids="scores" in groups,
    )

    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any]:
        items, total = trace_list(
            rt.store, conn, project_id, query, limit=paging.limit, offset=paging.offset, parts=parts
        )
        d = conn.dialect
        return paging.envelope([_list_item(d, project_id, i, groups) for i in items], total)

    return JSON(rt.read_sync(read))


@router.delete(
    "/api/public/traces", responses=ok(Deleted), openapi_extra=json_body(DeleteTracesRequest)
)
async def delete_traces(request: Request, principal: ProjectAdminKey) -> JSON:
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
    rt = runtime(request)
    gone = await rt.write(lambda conn: rt.store.traces.delete_traces(conn, project_id, ids))
    await audit(rt, principal, "trace.delete", None, {"traceIds": ids[:100], "deleted": gone})
    await run_in_threadpool(rt.purge_media_sync)  # media whose last trace went
    return JSON({"message": "Traces deleted successfully"})


def _full_trace(
    store: Store, conn: Conn, project_id: str, trace_id: str, groups: frozenset[str]
) -> dict[str, Any] | None:
    found = trace_detail(
        store,
        conn,
        project_id,
        trace_id,
        observations="observations" in groups,
        scores="scores" in groups,
        metrics="metrics" in groups,
    )
    if found is None:
        return None
    d = conn.dialect
    out = trace_json(d, found.row, project_id)
    if "io" not in groups:
        _blank_io(out)
    out["observations"] = [observation_json(d, o) for o in found.observations]
    # Langfuse's ScoreV1, what its clients parse here, has no CORRECTION type: such
    # scores are read through the scores API.
    out["scores"] = [score_json(d, s) for s in found.scores if s["data_type"] in V1_SCORE_TYPES]
    _metrics(out, found, groups)
    return out


@router.get("/api/public/traces/{trace_id:path}", responses=ok(TraceWithFullDetails))
def get_trace(
    request: Request,
    trace_id: str,
    principal: ProjectKey,
    fields: Annotated[str | None, Query(description=FIELDS_DOC)] = None,
) -> JSON:
    """A trace with its observations and scores; 404 when the project has no such trace."""
    groups = field_groups(fields, FIELD_GROUPS, FIELD_GROUPS)
    project_id = principal.project_id
    rt = runtime(request)
    found = rt.read_sync(lambda c: _full_trace(rt.store, c, project_id, trace_id, groups))
    if found is None:
        raise not_found(f"Trace {trace_id}")
    return JSON(found)


@router.delete("/api/public/traces/{trace_id:path}", responses=ok(Deleted))
async def delete_trace(request: Request, trace_id: str, principal: ProjectAdminKey) -> JSON:
    """Delete one trace with its observations and scores.

    Answers 200 whether or not the trace existed (deleting is idempotent, as in
    Langfuse); a trace of another project is never touched.
    """
    project_id = principal.project_id
    rt = runtime(request)
    gone = await rt.write(lambda c: rt.store.traces.delete_traces(c, project_id, [trace_id]))
    if gone:
        await audit(rt, principal, "trace.delete", trace_id)
    await run_in_threadpool(rt.purge_media_sync)  # media whose last trace went
    return JSON({"message": "Trace deleted successfully"})
