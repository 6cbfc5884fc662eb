"""Sessions: the list (turns, duration, cost, users) and one session turn by turn."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...analytics.sessions import session_summaries, session_turns
from ...store import sessions as session_store
from ...store.costs import session_totals
from ...store.db import Conn
from ..shapes import trace_json
from .io_view import io_view
from .listing import PAGE_SIZE, list_query
from .web import not_found, project_page, render, rt_of

router = APIRouter()


@router.get("/project/{project_id}/sessions")
async def sessions_list(request: Request, project_id: str) -> Response:
    """A page of sessions, newest first."""
    page = await project_page(request, project_id)
    lq = list_query(request)

    def read(c: Conn) -> tuple[list[dict[str, Any]], int]:
        rows, total = session_store.list_sessions(
            c,
            page.pid,
            from_timestamp=lq.start,
            to_timestamp=lq.end,
            limit=PAGE_SIZE,
            offset=lq.offset,
        )
        summaries = session_summaries(c, page.pid, [r["id"] for r in rows])
        d = c.dialect
        out = [
            {
                "id": r["id"],
                "created": d.ts_out(r["created_at"]),
                "environment": r["environment"],
                "s": summaries[r["id"]],
            }
            for r in rows
        ]
        return out, total

    rows, total = await rt_of(request).read(read)
    return render(request, "sessions.html", lq.context(rows, total), page=page)


@router.get("/project/{project_id}/sessions/{session_id:path}")
async def session_page(request: Request, project_id: str, session_id: str) -> Response:
    """One session: each turn's input and output in order, cumulative cost, latency."""
    page = await project_page(request, project_id)

    def read(c: Conn) -> dict[str, Any] | None:
        row = session_store.get_session(c, page.pid, session_id)
        if row is None:
            return None
        d = c.dialect
        traces = [
            trace_json(d, t, page.pid)
            for t in session_store.traces_of_session(c, page.pid, session_id)
        ]
        turns, avg_latency = session_turns(c, page.pid, traces)
        return {
            "id": row["id"],
            "created": d.ts_out(row["created_at"]),
            "environment": row["environment"],
            "turns": turns,
            "avg_latency": avg_latency,
            "totals": session_totals(c, page.pid, session_id),
            "users": sorted({t["userId"] for t in traces if t["userId"]}),
        }

    found = await rt_of(request).read(read)
    if found is None:
        raise not_found("Session")
    views = [(t, io_view(t.trace["input"]), io_view(t.trace["output"])) for t in found["turns"]]
    return render(request, "session.html", {"s": found, "views": views}, page=page)
