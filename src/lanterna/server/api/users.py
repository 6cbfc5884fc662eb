"""Users: per ``userId`` of traces, requests (traces), tokens, cost, first and last seen.

Langfuse has no public users API (its users are the distinct ``userId`` values of
traces); these endpoints are Lanterna's, documented in docs/api-cost.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ...store import costs
from ...store.db import Conn
from ...store.filters import parse_time
from ..auth import ProjectKey
from ..errors import not_found
from ..responses import JSON
from ..runtime import runtime
from .params import page_of

router = APIRouter()


def _scope(
    from_timestamp: str | None, to_timestamp: str | None, environment: list[str] | None
) -> costs.TraceScope:
    return costs.TraceScope(
        from_timestamp=parse_time(from_timestamp, "fromTimestamp"),
        to_timestamp=parse_time(to_timestamp, "toTimestamp"),
        environments=environment or (),
    )


@router.get("/api/public/users")
def list_users(
    request: Request,
    principal: ProjectKey,
    page: int | None = None,
    limit: int | None = None,
    from_timestamp: Annotated[str | None, Query(alias="fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, Query(alias="toTimestamp")] = None,
    environment: Annotated[list[str] | None, Query()] = None,
) -> JSON:
    """A page of users, most recently seen first."""
    paging = page_of(page, limit)
    scope = _scope(from_timestamp, to_timestamp, environment)
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any]:
        rows, total = costs.list_users(
            conn, project_id, scope, limit=paging.limit, offset=paging.offset
        )
        return paging.envelope(rows, total)

    return JSON(runtime(request).read_sync(read))


@router.get("/api/public/users/{user_id:path}")
def get_user(
    request: Request,
    user_id: str,
    principal: ProjectKey,
    from_timestamp: Annotated[str | None, Query(alias="fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, Query(alias="toTimestamp")] = None,
    environment: Annotated[list[str] | None, Query()] = None,
) -> JSON:
    """One user's totals; 404 when no trace (in the time range) has that ``userId``."""
    scope = _scope(from_timestamp, to_timestamp, environment)
    project_id = principal.project_id
    found = runtime(request).read_sync(
        lambda conn: costs.get_user(conn, project_id, user_id, scope)
    )
    if found is None:
        raise not_found(f"User {user_id}")
    return JSON(found)
