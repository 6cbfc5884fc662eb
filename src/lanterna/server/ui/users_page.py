"""Users (the ``userId`` of traces): the list with requests, tokens, cost, score
averages, main features; one user's totals, traces and sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...analytics.metrics import Scope
from ...analytics.usage import USER_ORDERS
from ...queries.users import user_detail, user_list
from ...store.db import Conn
from ..shapes import user_json
from .listing import PAGE_SIZE, list_query
from .traces_page import list_row
from .web import not_found, project_page, render, rt_of

router = APIRouter()


@router.get("/project/{project_id}/users")
async def users_list(request: Request, project_id: str) -> Response:
    """A page of users, most recently seen first."""
    page = await project_page(request, project_id)
    lq = list_query(request)
    scope = Scope(page.pid, start=lq.start, end=lq.end)
    rt = rt_of(request)
    sort = request.query_params.get("sort", "")
    sort = sort if sort in USER_ORDERS else "lastSeen"
    # Names read best from A; every number, largest first.
    default_desc = sort != "userId"
    direction = request.query_params.get("dir", "")
    desc = default_desc if direction not in ("asc", "desc") else direction == "desc"

    def read(c: Conn) -> tuple[list[dict[str, Any]], int]:
        items, total = user_list(
            rt.store,
            c,
            scope,
            limit=PAGE_SIZE,
            offset=lq.offset,
            details=True,
            order=sort,
            desc=desc,
        )
        rows = [{**user_json(i.totals), "scores": i.scores, "features": i.features} for i in items]
        return rows, total

    rows, total = await rt.read(read)
    context = lq.context(rows, total)
    context["p"] = {
        **context["p"],
        "sort": "" if sort == "lastSeen" else sort,
        "dir": "" if desc == default_desc else ("desc" if desc else "asc"),
    }
    context.update(sort=sort, desc=desc)
    return render(request, "users.html", context, page=page)


@router.get("/project/{project_id}/users/{user_id:path}")
async def user_page(request: Request, project_id: str, user_id: str) -> Response:
    """One user: totals, score averages, recent traces and sessions."""
    page = await project_page(request, project_id)
    rt = rt_of(request)

    def read(c: Conn) -> dict[str, Any] | None:
        found = user_detail(rt.store, c, page.pid, user_id)
        if found is None:
            return None
        return {
            "user": user_json(found.totals),
            "scores": found.scores,
            "features": found.features,
            "traces": [list_row(c.dialect, page.pid, t) for t in found.traces],
            "sessions": found.sessions,
        }

    found = await rt.read(read)
    if found is None:
        raise not_found("User")
    return render(request, "user.html", {"u": found}, page=page)
