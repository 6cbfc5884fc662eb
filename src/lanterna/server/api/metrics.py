"""Daily metrics (contract 4.6): per day, traces, observations, cost and usage by model,
as :mod:`lanterna.analytics` defines each metric for the dashboard too."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ...analytics.metrics import Scope
from ...analytics.usage import daily_usage
from ...store.db import Conn
from ...store.filters import parse_time
from ..auth import ProjectKey
from ..responses import JSON
from ..runtime import runtime
from ..shapes import daily_json
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
    scope = Scope(
        principal.project_id,
        start=parse_time(from_timestamp, "fromTimestamp"),
        end=parse_time(to_timestamp, "toTimestamp"),
        environments=environment or (),
        user_id=user_id,
        trace_name=trace_name,
        tags=tags or (),
    )

    def read(conn: Conn) -> dict[str, Any]:
        days, total = daily_usage(conn, scope, limit=paging.limit, offset=paging.offset)
        return paging.envelope([daily_json(day) for day in days], total)

    return JSON(runtime(request).read_sync(read))
