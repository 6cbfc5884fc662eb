"""Metrics (contract 4.6): the daily metrics (per day, traces, observations, cost and
usage by model, as :mod:`lanterna.analytics` defines each metric for the dashboard too)
and the metrics query API, v1 and v2 (:mod:`lanterna.analytics.query` answers it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from ...analytics.metrics import Scope
from ...analytics.query import AGGREGATIONS, parse_query, run_query, views_for
from ...analytics.query.model import BINS_MAX, GRANULARITIES, ROW_LIMIT_MAX
from ...analytics.usage import daily_usage
from ...store.db import Conn
from ...store.filters import OPERATORS, parse_time
from ..auth import ProjectKey
from ..doc_models import DocModel, answer
from ..responses import JSON
from ..runtime import runtime
from ..shapes import daily_json
from .body import ok
from .core_models import DailyMetrics, time_param
from .params import LimitParam, PageParam, page_of

router = APIRouter()


@router.get("/api/public/metrics/daily", responses=ok(DailyMetrics))
def daily_metrics(
    request: Request,
    principal: ProjectKey,
    page: PageParam = None,
    limit: LimitParam = None,
    trace_name: Annotated[str | None, Query(alias="traceName")] = None,
    user_id: Annotated[str | None, Query(alias="userId")] = None,
    tags: Annotated[list[str] | None, Query()] = None,
    environment: Annotated[list[str] | None, Query()] = None,
    from_timestamp: Annotated[str | None, time_param("fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, time_param("toTimestamp")] = None,
) -> JSON:
    """Days with traces, newest first (Langfuse's deprecated daily metrics shape)."""
    store = runtime(request).store
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
        days, total = daily_usage(
            store.events_conn(conn),
            scope,
            limit=paging.limit,
            offset=paging.offset,
        )
        return paging.envelope([daily_json(day) for day in days], total)

    return JSON(runtime(request).read_sync(read))


class MetricsResponse(DocModel):
    """The answer of both metrics query routes."""

    data: list[dict[str, Any]] = Field(
        description="One object per group: each dimension by its field name, the time bucket"
        " as `time_dimension` (ISO-8601, UTC), each metric as `<aggregation>_<measure>`;"
        " a histogram is a list of `[lower, upper, height]`."
    )


def _query_schema(version: int) -> dict[str, Any]:
    """JSON Schema of the ``query`` parameter's JSON for API ``version`` (views, and so
    dimensions and measures, per :mod:`lanterna.analytics.query.views`)."""
    views = views_for(version)
    names = sorted({n for v in views.values() for n in v.dimensions_for(version)})
    measures = sorted({m for v in views.values() for m in v.measures})
    field = {"type": "object", "required": ["field"], "properties": {"field": {"type": "string"}}}
    return {
        "type": "object",
        "required": ["view", "metrics", "fromTimestamp", "toTimestamp"],
        "properties": {
            "view": {"enum": sorted(views)},
            "dimensions": {"type": "array", "items": field, "description": ", ".join(names)},
            "metrics": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["measure", "aggregation"],
                    "properties": {
                        "measure": {"type": "string", "description": ", ".join(measures)},
                        "aggregation": {"enum": list(AGGREGATIONS)},
                    },
                },
            },
            "filters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["column", "operator", "type"],
                    "properties": {
                        "column": {"type": "string"},
                        "operator": {
                            "enum": sorted({op for ops in OPERATORS.values() for op in ops})
                        },
                        "value": {},
                        "type": {"enum": list(OPERATORS)},
                        "key": {"type": "string"},
                    },
                },
            },
            "timeDimension": {
                "type": ["object", "null"],
                "properties": {"granularity": {"enum": ["auto", *GRANULARITIES]}},
            },
            "fromTimestamp": {"type": "string", "format": "date-time"},
            "toTimestamp": {"type": "string", "format": "date-time"},
            "orderBy": {
                "type": ["array", "null"],
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string"},
                        "direction": {"enum": ["asc", "desc"]},
                    },
                },
            },
            "config": {
                "type": "object",
                "properties": {
                    "bins": {"type": "integer", "minimum": 1, "maximum": BINS_MAX},
                    "row_limit": {"type": "integer", "minimum": 1, "maximum": ROW_LIMIT_MAX},
                },
            },
        },
    }


def _query_param(version: int) -> Any:
    return Query(
        description="The metrics query as a JSON string (docs/metrics.md).",
        json_schema_extra={
            "contentMediaType": "application/json",
            "contentSchema": _query_schema(version),
        },
    )


def _answer(request: Request, project_id: str, text: str | None, version: int) -> JSON:
    store = runtime(request).store
    query = parse_query(text, version=version)
    millis = runtime(request).settings.query_timeout_ms
    timeout = millis / 1000 if millis > 0 else None

    def read(conn: Conn) -> dict[str, Any]:
        # Percentiles over large ranges from the histograms (docs/metrics.md). The
        # events' connection: ClickHouse's rollups and raw rows on that backend.
        events = store.events_conn(conn)
        return {"data": run_query(events, project_id, query, timeout=timeout, approximate=None)}

    return JSON(runtime(request).read_sync(read))


_ANSWER: dict[int | str, dict[str, Any]] = {
    200: answer(MetricsResponse, "The query's rows"),
}


# Both query routes stay in the fuzz test's LOOSE set: ``query`` is a JSON document
# inside a string (its JSON Schema is given as ``contentSchema``, which generators do not
# follow), and rules between its fields (a measure's aggregations, the view's dimensions)
# are not stated in JSON Schema.
@router.get("/api/public/metrics", responses=_ANSWER, deprecated=True)
def metrics_v1(
    request: Request,
    principal: ProjectKey,
    query: Annotated[str | None, _query_param(1)] = None,
) -> JSON:
    """The metrics query API, v1: views traces, observations, scores-numeric,
    scores-categorical (Langfuse's deprecated version; v2 is the current one)."""
    return _answer(request, principal.project_id, query, 1)


@router.get("/api/public/v2/metrics", responses=_ANSWER)
def metrics_v2(
    request: Request,
    principal: ProjectKey,
    query: Annotated[str | None, _query_param(2)] = None,
) -> JSON:
    """The metrics query API, v2: views observations, scores-numeric, scores-boolean,
    scores-categorical; ids and users cannot be grouped by (filter on them instead)."""
    return _answer(request, principal.project_id, query, 2)
