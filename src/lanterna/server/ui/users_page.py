"""Users (the ``userId`` of traces): the list with requests, tokens, cost, score
averages, main features; one user's totals, traces and sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...analytics.metrics import user_features, user_score_averages
from ...analytics.sessions import session_summaries, sessions_of_user
from ...store import costs
from ...store import traces as trace_store
from ...store.db import Conn
from .listing import PAGE_SIZE, list_query
from .traces_page import list_rows
from .web import not_found, project_page, render, rt_of

router = APIRouter()


@router.get("/project/{project_id}/users")
async def users_list(request: Request, project_id: str) -> Response:
    """A page of users, most recently seen first."""
    page = await project_page(request, project_id)
    lq = list_query(request)
    scope = costs.TraceScope(from_timestamp=lq.start, to_timestamp=lq.end)

    def read(c: Conn) -> tuple[list[dict[str, Any]], int]:
        rows, total = costs.list_users(c, page.pid, scope, limit=PAGE_SIZE, offset=lq.offset)
        ids = [r["userId"] for r in rows]
        scores = user_score_averages(c, page.pid, ids)
        features = user_features(c, page.pid, ids)
        for r in rows:
            r["scores"] = scores.get(r["userId"], {})
            r["features"] = features.get(r["userId"], [])
        return rows, total

    rows, total = await rt_of(request).read(read)
    return render(request, "users.html", lq.context(rows, total), page=page)


@router.get("/project/{project_id}/users/{user_id:path}")
async def user_page(request: Request, project_id: str, user_id: str) -> Response:
    """One user: totals, score averages, recent traces and sessions."""
    page = await project_page(request, project_id)

    def read(c: Conn) -> dict[str, Any] | None:
        user = costs.get_user(c, page.pid, user_id, costs.TraceScope())
        if user is None:
            return None
        traces, _ = list_rows(
            c, page.pid, trace_store.TraceQuery(user_id=user_id), limit=25, offset=0
        )
        session_ids = sessions_of_user(c, page.pid, user_id)
        return {
            "user": user,
            "scores": user_score_averages(c, page.pid, [user_id]).get(user_id, {}),
            "features": user_features(c, page.pid, [user_id], limit=10).get(user_id, []),
            "traces": traces,
            "sessions": [
                (sid, s) for sid, s in session_summaries(c, page.pid, session_ids).items()
            ],
        }

    found = await rt_of(request).read(read)
    if found is None:
        raise not_found("User")
    return render(request, "user.html", {"u": found}, page=page)
