"""Sessions: a page of sessions, one session with its traces (contract 4.1)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ...queries.sessions import session_detail, session_list
from ...store.db import Conn
from ...store.filters import parse_time
from ..auth import ProjectKey
from ..errors import not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import session_json, trace_json, usage_json
from .body import ok
from .core_models import PaginatedSessions, SessionWithTraces, time_param
from .params import LimitParam, PageParam, page_of

router = APIRouter()


@router.get("/api/public/sessions", responses=ok(PaginatedSessions))
def list_sessions(
    request: Request,
    principal: ProjectKey,
    page: PageParam = None,
    limit: LimitParam = None,
    from_timestamp: Annotated[str | None, time_param("fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, time_param("toTimestamp")] = None,
    environment: Annotated[list[str] | None, Query()] = None,
) -> JSON:
    """A page of the project's sessions, newest first."""
    paging = page_of(page, limit)
    start = parse_time(from_timestamp, "fromTimestamp")
    end = parse_time(to_timestamp, "toTimestamp")
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any]:
        items, total = session_list(
            rt.store,
            conn,
            project_id,
            start=start,
            end=end,
            environments=environment or (),
            limit=paging.limit,
            offset=paging.offset,
        )
        return paging.envelope([session_json(conn.dialect, i.row) for i in items], total)

    return JSON(rt.read_sync(read))


@router.get(
    "/api/public/sessions/{session_id:path}",
    responses=ok(SessionWithTraces),
)
def get_session(request: Request, session_id: str, principal: ProjectKey) -> JSON:
    """A session with all its traces (oldest first); 404 when the project has none."""
    project_id = principal.project_id
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any] | None:
        found = session_detail(rt.store, conn, project_id, session_id)
        if found is None:
            return None
        d = conn.dialect
        out = session_json(d, found.row)
        out["traces"] = [trace_json(d, t, project_id) for t in found.traces]
        out.update(usage_json(found.totals))  # cost and token totals
        return out

    found = rt.read_sync(read)
    if found is None:
        raise not_found(f"Session {session_id}")
    return JSON(found)
