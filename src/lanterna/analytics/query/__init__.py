"""The metrics query layer: Langfuse's metrics query JSON (views, dimensions, measures,
aggregations, filters, time buckets) parsed into a typed :class:`Query` and answered
from the hourly rollups where they hold the answer exactly, from raw rows otherwise.

The metrics API (``/api/public/metrics``, ``/api/public/v2/metrics``) and later the
custom dashboards call the same two functions below HTTP::

    query = parse_query(text_or_object, version=2)     # QueryError (400) when wrong
    rows = run_query(conn, project_id, query, timeout=30.0)
    explain(query).path                                # "rollup" or "raw"

``views`` declares what each view offers, ``model`` parses and checks, ``plan`` picks
rollups or raw rows (and adds the partial hours at the range's ends), ``run`` compiles
to SQL for SQLite or PostgreSQL and reads the raw rows.
"""

from .model import TIME_DIMENSION, Metric, Query, QueryError, auto_granularity, parse_query
from .plan import Plan, explain, run_query
from .run import compile_query, histogram, run_raw
from .views import AGGREGATIONS, VIEWS, View, views_for

__all__ = [
    "AGGREGATIONS",
    "TIME_DIMENSION",
    "VIEWS",
    "Metric",
    "Plan",
    "Query",
    "QueryError",
    "View",
    "auto_granularity",
    "compile_query",
    "explain",
    "histogram",
    "parse_query",
    "run_query",
    "run_raw",
    "views_for",
]
