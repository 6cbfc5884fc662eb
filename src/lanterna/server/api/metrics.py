"""Daily metrics (contract 4.6): per day, traces, observations, cost and usage by model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ...store import costs
from ...store.db import Conn
from ...store.filters import parse_time
from ..auth import ProjectKey
from ..responses import JSON
from ..runtime import runtime
from .params import page_of

router = APIRouter()


@router.get("/api/public/metrics/daily")
def daily_metrics(
    request: Request,
    principal: ProjectKey,
    page: int | None = None,
    limit: int | None = None,
    trace_name: Annotated[str | None, Query(alias="traceName")] = None,
    user_id: Annotated[str | None, Query(alias="userId")] = None,
    tags: Annotated[list[str] | None, Query()] = None,
    environment: Annotated[list[str] | None, Query()] = None,
    from_timestamp: Annotated[str | None, Query(alias="fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, Query(alias="toTimestamp")] = None,
) -> JSON:
    """Days with traces, newest first (Langfuse's deprecated daily metrics shape)."""
    paging = page_of(page, limit)
    scope = costs.TraceScope(
        from_timestamp=parse_time(from_timestamp, "fromTimestamp"),
        to_timestamp=parse_time(to_timestamp, "toTimestamp"),
        environments=environment or (),
        user_id=user_id,
        trace_name=trace_name,
        tags=tags or (),
    )
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any]:
        rows, total = costs.daily_metrics(
            conn, project_id, scope, limit=paging.limit, offset=paging.offset
        )
        return paging.envelope(rows, total)

    return JSON(runtime(request).read_sync(read))
