"""Sessions: the list (turns, duration, cost, users) and one session turn by turn."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...queries.sessions import session_detail, session_list
from ...store.db import Conn
from ...store.dialect import Dialect
from ...timeutil import format_ts
from ..shapes import trace_json
from .annotate_page import comments_of
from .io_view import io_view
from .listing import PAGE_SIZE, list_query
from .web import not_found, project_page, render, rt_of

router = APIRouter()


def created(d: Dialect, row: dict[str, Any], first_trace: datetime | None) -> str | None:
    """When a session began as the pages show it: its first trace's time (so data sent
    later, e.g. back-filled, shows when it happened), else when it was stored."""
    if first_trace is not None:
        return format_ts(first_trace)
    return d.ts_out(row["created_at"])


@router.get("/project/{project_id}/sessions")
async def sessions_list(request: Request, project_id: str) -> Response:
    """A page of sessions, newest first."""
    page = await project_page(request, project_id)
    lq = list_query(request)
    rt = rt_of(request)

    def read(c: Conn) -> tuple[list[dict[str, Any]], int]:
        items, total = session_list(
            rt.store,
            c,
            page.pid,
            start=lq.start,
            end=lq.end,
            limit=PAGE_SIZE,
            offset=lq.offset,
            summaries=True,
        )
        d = c.dialect
        out = [
            {
                "id": i.row["id"],
                "created": created(d, i.row, i.summary.first if i.summary else None),
                "environment": i.row["environment"],
                "s": i.summary,
            }
            for i in items
        ]
        return out, total

    rows, total = await rt.read(read)
    return render(request, "sessions.html", lq.context(rows, total), page=page)


@router.get("/project/{project_id}/sessions/{session_id:path}")
async def session_page(request: Request, project_id: str, session_id: str) -> Response:
    """One session: each turn's input and output in order, cumulative cost, latency."""
    page = await project_page(request, project_id)
    rt = rt_of(request)

    def read(c: Conn) -> dict[str, Any] | None:
        found = session_detail(rt.store, c, page.pid, session_id, turns=True)
        if found is None:
            return None
        d = c.dialect
        return {
            "id": found.row["id"],
            "created": created(
                d, found.row, d.ts_parse(found.traces[0]["timestamp"]) if found.traces else None
            ),
            "environment": found.row["environment"],
            "turns": [replace(t, trace=trace_json(d, t.trace, page.pid)) for t in found.turns],
            "avg_latency": found.average_latency,
            "totals": found.totals,
            "users": found.users,
            "comments": comments_of(rt.store, c, page.pid, "SESSION", found.row["id"]),
        }

    found = await rt.read(read)
    if found is None:
        raise not_found("Session")
    views = [(t, io_view(t.trace["input"]), io_view(t.trace["output"])) for t in found["turns"]]
    return render(request, "session.html", {"s": found, "views": views}, page=page)
