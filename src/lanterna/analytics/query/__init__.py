"""The metrics query layer: Langfuse's metrics query JSON (views, dimensions, measures,
aggregations, filters, time buckets) parsed into a typed :class:`Query` and answered
from raw rows.

The metrics API (``/api/public/metrics``, ``/api/public/v2/metrics``) and later the
custom dashboards call the same two functions below HTTP::

    query = parse_query(text_or_object, version=2)     # QueryError (400) when wrong
    rows = run_query(conn, project_id, query, timeout=30.0)

``views`` declares what each view offers, ``model`` parses and checks, ``run``
compiles to SQL for SQLite or PostgreSQL and reads the rows.
"""

from .model import TIME_DIMENSION, Metric, Query, QueryError, auto_granularity, parse_query
from .run import compile_query, histogram, run_query
from .views import AGGREGATIONS, VIEWS, View, views_for

__all__ = [
    "AGGREGATIONS",
    "TIME_DIMENSION",
    "VIEWS",
    "Metric",
    "Query",
    "QueryError",
    "View",
    "auto_granularity",
    "compile_query",
    "histogram",
    "parse_query",
    "run_query",
    "views_for",
]
