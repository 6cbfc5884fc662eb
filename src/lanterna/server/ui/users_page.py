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
from ...store.filters import FilterError
from .traces_page import RANGES, list_rows, time_range
from .web import not_found, project_page, render, rt_of

router = APIRouter()
PAGE_SIZE = 50


@router.get("/project/{project_id}/users")
async def users_list(request: Request, project_id: str) -> Response:
    """A page of users, most recently seen first."""
    page = await project_page(request, project_id)
    q = request.query_params
    params = {k: q.get(k, "") for k in ("range", "from", "to")}
    try:
        number = max(1, int(q.get("page") or 1))
    except ValueError:
        number = 1
    error = ""
    try:
        start, end = time_range(params)
    except FilterError as exc:
        error, start, end = str(exc), None, None
    scope = costs.TraceScope(from_timestamp=start, to_timestamp=end)

    def read(c: Conn) -> tuple[list[dict[str, Any]], int]:
        rows, total = costs.list_users(
            c, page.pid, scope, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
        ids = [r["userId"] for r in rows]
        scores = user_score_averages(c, page.pid, ids)
        features = user_features(c, page.pid, ids)
        for r in rows:
            r["scores"] = scores.get(r["userId"], {})
            r["features"] = features.get(r["userId"], [])
        return rows, total

    rows, total = await rt_of(request).read(read)
    return render(
        request,
        "users.html",
        {
            "rows": rows,
            "total": total,
            "p": {**params, "page": number},
            "current": number,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "ranges": tuple(RANGES),
            "error": error,
        },
        page=page,
    )


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
