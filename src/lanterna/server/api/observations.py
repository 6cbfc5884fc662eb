"""Observations: v1 list and get (page envelope), v2 list (cursor, field groups)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from ...ingest.events import LEVELS, OBSERVATION_TYPES
from ...store.db import Conn
from ...store.filters import parse_filter, parse_time
from ...store.interface import ObservationQuery
from ..auth import ProjectKey
from ..errors import ApiError, not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import observation_json, observation_v2_json
from .body import ok
from .core_models import ObservationsV2Response, ObservationsView, ObservationsViews, time_param
from .params import (
    LimitParam,
    PageParam,
    decode_cursor,
    encode_cursor,
    field_groups,
    one_of,
    page_of,
)

router = APIRouter()

V2_GROUPS = (
    "core", "basic", "time", "io", "metadata", "model", "usage", "prompt", "metrics",
    "trace_context",
)  # fmt: skip
V2_DEFAULT_GROUPS = ("core", "basic")
V2_MAX_LIMIT = 1000
V2Limit = Annotated[int | None, Query(json_schema_extra={"minimum": 1, "maximum": V2_MAX_LIMIT})]

OptStr = Annotated[str | None, Query()]
OptList = Annotated[list[str] | None, Query()]


def _check_enum(value: str | None, allowed: tuple[str, ...], name: str) -> None:
    if value is not None and value not in allowed:
        raise ApiError(400, "Invalid request data", f"{name}: must be one of {', '.join(allowed)}")


def _query(
    *,
    name: str | None,
    user_id: str | None,
    type_: str | None,
    trace_id: str | None,
    level: str | None,
    parent_observation_id: str | None,
    environment: list[str] | None,
    from_start_time: str | None,
    to_start_time: str | None,
    version: str | None,
    filter_json: str | None,
    session_id: str | None = None,
    is_root: bool | None = None,
) -> ObservationQuery:
    _check_enum(type_, OBSERVATION_TYPES, "type")
    _check_enum(level, LEVELS, "level")
    return ObservationQuery(
        name=name,
        user_id=user_id,
        session_id=session_id,
        type=type_,
        trace_id=trace_id,
        level=level,
        parent_observation_id=parent_observation_id,
        is_root=is_root,
        environments=environment or (),
        from_start_time=parse_time(from_start_time, "fromStartTime"),
        to_start_time=parse_time(to_start_time, "toStartTime"),
        version=version,
        filters=parse_filter(filter_json),
    )


def _filters(
    name: OptStr = None,
    user_id: Annotated[str | None, Query(alias="userId")] = None,
    type_: Annotated[str | None, one_of(OBSERVATION_TYPES, "type")] = None,
    trace_id: Annotated[str | None, Query(alias="traceId")] = None,
    level: Annotated[str | None, one_of(LEVELS)] = None,
    parent_observation_id: Annotated[str | None, Query(alias="parentObservationId")] = None,
    environment: OptList = None,
    from_start_time: Annotated[str | None, time_param("fromStartTime")] = None,
    to_start_time: Annotated[str | None, time_param("toStartTime")] = None,
    version: OptStr = None,
    filter_json: Annotated[str | None, Query(alias="filter")] = None,
) -> dict[str, Any]:
    """The filter parameters the v1 and v2 lists share, as keywords of :func:`_query`.

    Only collected here: checking them is left to ``_query`` so that each endpoint's own
    checks keep coming first.
    """
    return dict(locals())


#: The shared filter parameters of the observation lists, by name for ``_query``.
Filters = Annotated[dict[str, Any], Depends(_filters)]


@router.get("/api/public/observations", responses=ok(ObservationsViews))
def list_observations(
    request: Request,
    principal: ProjectKey,
    filters: Filters,
    page: PageParam = None,
    limit: LimitParam = None,
) -> JSON:
    """A page of the project's observations (v1 shape), newest start first."""
    paging = page_of(page, limit)
    query = _query(**filters)
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any]:
        rows, total = rt.store.observations.list_observations(
            conn, project_id, query, limit=paging.limit, offset=paging.offset
        )
        return paging.envelope([observation_json(conn.dialect, r) for r in rows], total)

    return JSON(rt.read_sync(read))


@router.get("/api/public/observations/{observation_id:path}", responses=ok(ObservationsView))
def get_observation(request: Request, observation_id: str, principal: ProjectKey) -> JSON:
    """One observation (v1 shape); 404 when the project has none with this id."""
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any] | None:
        row = rt.store.observations.get_observation(conn, project_id, observation_id)
        return None if row is None else observation_json(conn.dialect, row)

    found = rt.read_sync(read)
    if found is None:
        raise not_found(f"Observation {observation_id}")
    return JSON(found)


# --- v2 ------------------------------------------------------------------------------


#: ``true`` or ``false`` in any case (or empty: not given), as :func:`_bool_param` reads it.
BOOL_TEXT = "^([tT][rR][uU][eE]|[fF][aA][lL][sS][eE])?$"


def _bool_param(value: str | None, name: str) -> bool | None:
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ApiError(400, "Invalid request data", f"{name}: must be true or false")
    return lowered == "true"


@router.get("/api/public/v2/observations", responses=ok(ObservationsV2Response))
def list_observations_v2(
    request: Request,
    principal: ProjectKey,
    filters: Filters,
    fields: OptStr = None,
    expand_metadata: Annotated[str | None, Query(alias="expandMetadata")] = None,
    limit: V2Limit = None,
    cursor: OptStr = None,
    parse_io_as_json: Annotated[str | None, one_of(("false",), "parseIoAsJson")] = None,
    session_id: Annotated[str | None, Query(alias="sessionId")] = None,
    is_root: Annotated[str | None, Query(alias="isRootObservation", pattern=BOOL_TEXT)] = None,
) -> JSON:
    """Observations newest start first, a cursor page at a time, with chosen field groups."""
    if _bool_param(parse_io_as_json, "parseIoAsJson"):
        raise ApiError(
            400,
            "Invalid request data",
            "parseIoAsJson=true is not supported: input and output are always returned as"
            " raw strings. Remove the parameter or set it to false.",
        )
    limit = 50 if limit is None else limit
    if not 1 <= limit <= V2_MAX_LIMIT:
        raise ApiError(400, "Invalid request data", f"limit: must be between 1 and {V2_MAX_LIMIT}")
    groups = field_groups(fields, V2_GROUPS, V2_DEFAULT_GROUPS)
    expand = frozenset(k.strip() for k in (expand_metadata or "").split(",") if k.strip())
    query = _query(
        **filters, session_id=session_id, is_root=_bool_param(is_root, "isRootObservation")
    )
    after = decode_cursor(cursor) if cursor else None
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any]:
        rows, more = rt.store.observations.observations_after(
            conn,
            project_id,
            query,
            limit=limit,
            after=after,
            with_trace=bool(groups & {"basic", "trace_context"}),
            with_io="io" in groups,
            with_metadata="metadata" in groups,
        )
        d = conn.dialect
        meta: dict[str, Any] = {}
        if more:
            last = rows[-1]
            meta["cursor"] = encode_cursor(d.ts_out(last["start_time"]) or "", last["id"])
        return {"data": [observation_v2_json(d, r, groups, expand) for r in rows], "meta": meta}

    return JSON(rt.read_sync(read))
