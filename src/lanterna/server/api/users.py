"""Users: per ``userId`` of traces, requests (traces), tokens, cost, first and last seen.

Langfuse has no public users API (its users are the distinct ``userId`` values of
traces); these endpoints are Lanterna's, documented in docs/api-cost.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ...analytics.metrics import Scope
from ...queries.users import user_list, user_totals
from ...store.db import Conn
from ...store.filters import parse_time
from ..auth import ProjectKey
from ..errors import not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import user_json
from .body import ok
from .core_models import UserTotals, UserTotalsList, time_param
from .params import LimitParam, PageParam, page_of

router = APIRouter()


def _scope(
    project_id: str,
    from_timestamp: str | None,
    to_timestamp: str | None,
    environment: list[str] | None,
) -> Scope:
    return Scope(
        project_id,
        start=parse_time(from_timestamp, "fromTimestamp"),
        end=parse_time(to_timestamp, "toTimestamp"),
        environments=environment or (),
    )


@router.get("/api/public/users", responses=ok(UserTotalsList))
def list_users(
    request: Request,
    principal: ProjectKey,
    page: PageParam = None,
    limit: LimitParam = None,
    from_timestamp: Annotated[str | None, time_param("fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, time_param("toTimestamp")] = None,
    environment: Annotated[list[str] | None, Query()] = None,
) -> JSON:
    """A page of users, most recently seen first."""
    paging = page_of(page, limit)
    scope = _scope(principal.project_id, from_timestamp, to_timestamp, environment)
    rt = runtime(request)

    def read(conn: Conn) -> dict[str, Any]:
        items, total = user_list(rt.store, conn, scope, limit=paging.limit, offset=paging.offset)
        return paging.envelope([user_json(i.totals) for i in items], total)

    return JSON(rt.read_sync(read))


@router.get("/api/public/users/{user_id:path}", responses=ok(UserTotals))
def get_user(
    request: Request,
    user_id: str,
    principal: ProjectKey,
    from_timestamp: Annotated[str | None, time_param("fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, time_param("toTimestamp")] = None,
    environment: Annotated[list[str] | None, Query()] = None,
) -> JSON:
    """One user's totals; 404 when no trace (in the time range) has that ``userId``."""
    scope = _scope(principal.project_id, from_timestamp, to_timestamp, environment)
    rt = runtime(request)
    found = rt.read_sync(lambda conn: user_totals(rt.store, conn, scope, user_id))
    if found is None:
        raise not_found(f"User {user_id}")
    return JSON(user_json(found))
