"""Sessions: a page of sessions, one session with its traces (contract 4.1)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ...store import sessions as q
from ...store.costs import session_totals
from ...store.db import Conn
from ...store.filters import parse_time
from ..auth import ProjectKey
from ..errors import not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import session_json, trace_json
from .params import page_of

router = APIRouter()


@router.get("/api/public/sessions")
def list_sessions(
    request: Request,
    principal: ProjectKey,
    page: int | None = None,
    limit: int | None = None,
    from_timestamp: Annotated[str | None, Query(alias="fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, Query(alias="toTimestamp")] = None,
    environment: Annotated[list[str] | None, Query()] = None,
) -> JSON:
    """A page of the project's sessions, newest first."""
    paging = page_of(page, limit)
    start = parse_time(from_timestamp, "fromTimestamp")
    end = parse_time(to_timestamp, "toTimestamp")
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any]:
        rows, total = q.list_sessions(
            conn,
            project_id,
            from_timestamp=start,
            to_timestamp=end,
            environments=environment or (),
            limit=paging.limit,
            offset=paging.offset,
        )
        return paging.envelope([session_json(conn.dialect, r) for r in rows], total)

    return JSON(runtime(request).read_sync(read))


@router.get("/api/public/sessions/{session_id:path}")
def get_session(request: Request, session_id: str, principal: ProjectKey) -> JSON:
    """A session with all its traces (oldest first); 404 when the project has none."""
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any] | None:
        row = q.get_session(conn, project_id, session_id)
        if row is None:
            return None
        d = conn.dialect
        out = session_json(d, row)
        out["traces"] = [
            trace_json(d, t, project_id) for t in q.traces_of_session(conn, project_id, session_id)
        ]
        out.update(session_totals(conn, project_id, session_id))  # cost and token totals
        return out

    found = runtime(request).read_sync(read)
    if found is None:
        raise not_found(f"Session {session_id}")
    return JSON(found)
