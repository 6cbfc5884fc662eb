"""The metrics query: Langfuse's query JSON parsed and checked into a :class:`Query`.

:func:`parse_query` takes the ``query`` parameter's text (or an already decoded
object, as a stored dashboard widget holds it) and the API version, and refuses
anything it cannot answer with a :class:`QueryError` (400) that names the offending
view, dimension, measure, aggregation, filter column or operator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ... import _json
from ...errors import InvalidInput
from ...store.dialect import SQLITE
from ...store.filters import Condition, FilterError, compile_conditions, conditions_of
from ...timeutil import parse_ts
from .views import AGGREGATIONS, PERCENTILES, View, views_for

GRANULARITIES = ("minute", "hour", "day", "week", "month")
#: The approximate length of each granularity's bucket (``auto`` picks by it).
STEPS = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=30.44),
}
#: ``auto``: the granularity whose bucket count for the range is nearest this.
AUTO_BUCKETS = 50
BINS_DEFAULT, BINS_MAX = 10, 100
ROW_LIMIT_MAX = 1000
#: Rows when ``config.row_limit`` is not given: v2 as Langfuse; v1 (unbounded there)
#: capped at the most a query may ask for.
ROW_LIMIT_DEFAULT = {1: ROW_LIMIT_MAX, 2: 100}
#: The column of the time bucket in each row.
TIME_DIMENSION = "time_dimension"


class QueryError(InvalidInput):
    """400: a metrics query the server cannot answer; the message says what and why."""


@dataclass(frozen=True, slots=True)
class Metric:
    """One requested metric: a measure and how to aggregate it."""

    measure: str
    aggregation: str

    @property
    def column(self) -> str:
        """Its column in the answer: ``<aggregation>_<measure>``."""
        return f"{self.aggregation}_{self.measure}"


@dataclass(frozen=True, slots=True)
class Query:
    """A checked metrics query over one view of one API version.

    ``granularity`` is resolved (``auto`` already replaced by a granularity) or None
    for no time dimension; the range is ``[start, end)``."""

    version: int
    view: View
    dimensions: tuple[str, ...]
    metrics: tuple[Metric, ...]
    filters: tuple[Condition, ...]
    granularity: str | None
    start: datetime
    end: datetime
    order_by: tuple[tuple[str, str], ...]
    bins: int
    row_limit: int

    @property
    def columns(self) -> tuple[str, ...]:
        """The answer's columns in order: dimensions, time bucket, metrics."""
        time = (TIME_DIMENSION,) if self.granularity else ()
        return (*self.dimensions, *time, *(m.column for m in self.metrics))


def parse_query(raw: str | dict[str, Any] | None, *, version: int) -> Query:
    """Parse and check a query (JSON text or its decoded object) for API ``version``
    (1: ``/api/public/metrics``, 2: ``/api/public/v2/metrics``)."""
    body = _decode(raw)
    view = _view(body.get("view"), version)
    dimensions = _dimension_list(body.get("dimensions"), view, version)
    metrics = _metric_list(body.get("metrics"), view)
    filters = _filter_list(body.get("filters"), view, version)
    start = _timestamp(body, "fromTimestamp")
    end = _timestamp(body, "toTimestamp")
    if end <= start:
        raise QueryError("toTimestamp must be after fromTimestamp")
    granularity = _granularity(body.get("timeDimension"), start, end)
    bins, row_limit = _config(body.get("config"), version)
    query = Query(
        version=version,
        view=view,
        dimensions=dimensions,
        metrics=metrics,
        filters=filters,
        granularity=granularity,
        start=start,
        end=end,
        order_by=(),
        bins=bins,
        row_limit=row_limit,
    )
    return replace(query, order_by=_order_list(body.get("orderBy"), query))


def _decode(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise QueryError("query: required, a JSON object")
    body: Any = raw
    if isinstance(raw, str):
        try:
            body = _json.loads(raw)
        except _json.JSONDecodeError as exc:
            raise QueryError(f"query: malformed JSON ({exc})") from None
    if not isinstance(body, dict):
        raise QueryError("query: expected a JSON object")
    return body


def _names(items: Any) -> str:
    return ", ".join(sorted(items))


def _view(name: Any, version: int) -> View:
    views = views_for(version)
    if not isinstance(name, str):
        raise QueryError(f"view: required, one of {_names(views)}")
    view = views.get(name)
    if view is None:
        raise QueryError(
            f"Unknown view {name!r} for the v{version} metrics API; use one of {_names(views)}"
        )
    return view


def _objects(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise QueryError(f"{where}: expected an array of objects")
    return value


def _string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise QueryError(f"{where}.{key}: required, a string")
    return value


def _dimension_list(value: Any, view: View, version: int) -> tuple[str, ...]:
    known = view.dimensions_for(version)
    out: list[str] = []
    for index, item in enumerate(_objects(value, "dimensions")):
        name = _string(item, "field", f"dimensions[{index}]")
        dim = known.get(name)
        if dim is None:
            raise QueryError(
                f"Unknown dimension {name!r} for view {view.name!r}; use one of {_names(known)}"
            )
        if version == 2 and dim.high_cardinality:
            raise QueryError(
                f"Dimension {name!r} has too many distinct values to group by in the v2"
                f" metrics API; filter on it instead"
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def _metric_list(value: Any, view: View) -> tuple[Metric, ...]:
    items = _objects(value, "metrics")
    if not items:
        raise QueryError("metrics: at least one {measure, aggregation} is required")
    out: list[Metric] = []
    for index, item in enumerate(items):
        where = f"metrics[{index}]"
        measure = _string(item, "measure", where)
        aggregation = _string(item, "aggregation", where)
        found = view.measures.get(measure)
        if found is None:
            raise QueryError(
                f"Unknown measure {measure!r} for view {view.name!r};"
                f" use one of {_names(view.measures)}"
            )
        if aggregation not in AGGREGATIONS:
            raise QueryError(
                f"Unknown aggregation {aggregation!r}; use one of {', '.join(AGGREGATIONS)}"
            )
        if not found.allows(aggregation):
            raise QueryError(
                f"Measure {measure!r} counts distinct values: use aggregation count or sum,"
                f" not {aggregation!r}"
            )
        metric = Metric(measure, aggregation)
        if metric not in out:
            out.append(metric)
    return tuple(out)


def _filter_list(value: Any, view: View, version: int) -> tuple[Condition, ...]:
    try:  # parsed, then column, type, operator and value checked as they will be compiled
        out = conditions_of([] if value is None else value, "filters")
        compile_conditions(
            out, view.filter_columns(SQLITE, version), SQLITE, resource=f"view {view.name!r}"
        )
    except FilterError as exc:
        raise QueryError(str(exc)) from None
    return tuple(out)


def _timestamp(body: dict[str, Any], key: str) -> datetime:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise QueryError(f"{key}: required, an ISO-8601 timestamp")
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise QueryError(f"{key}: {exc}") from None


def _granularity(value: Any, start: datetime, end: datetime) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise QueryError("timeDimension: expected an object {granularity}")
    granularity = value.get("granularity")
    if granularity == "auto":
        return auto_granularity(start, end)
    if granularity not in GRANULARITIES:
        raise QueryError(
            f"Unknown timeDimension.granularity {granularity!r};"
            f" use one of auto, {', '.join(GRANULARITIES)}"
        )
    return str(granularity)


def auto_granularity(start: datetime, end: datetime) -> str:
    """The granularity whose number of buckets in ``[start, end)`` is nearest
    :data:`AUTO_BUCKETS` (on a log scale)."""
    span = (end - start).total_seconds()
    return min(
        GRANULARITIES,
        key=lambda g: abs(math.log(max(span / STEPS[g].total_seconds(), 1e-9) / AUTO_BUCKETS)),
    )


def _bounded(config: dict[str, Any], key: str, default: int, most: int) -> int:
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise QueryError(f"config.{key}: expected an integer from 1 to {most}")
    return value


def _config(value: Any, version: int) -> tuple[int, int]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise QueryError("config: expected an object {bins, row_limit}")
    bins = _bounded(value, "bins", BINS_DEFAULT, BINS_MAX)
    row_limit = _bounded(value, "row_limit", ROW_LIMIT_DEFAULT[version], ROW_LIMIT_MAX)
    return bins, row_limit


def _order_list(value: Any, query: Query) -> tuple[tuple[str, str], ...]:
    columns = query.columns
    histograms = {m.column for m in query.metrics if m.aggregation == "histogram"}
    out: list[tuple[str, str]] = []
    for index, item in enumerate(_objects(value, "orderBy")):
        where = f"orderBy[{index}]"
        name = _string(item, "field", where)
        direction = item.get("direction", "asc")
        if name not in columns or name in histograms:
            usable = [c for c in columns if c not in histograms]
            raise QueryError(
                f"Cannot order by {name!r}: use a dimension, {TIME_DIMENSION} or a metric of"
                f" the query ({', '.join(usable)})"
            )
        if direction not in ("asc", "desc"):
            raise QueryError(f"{where}.direction: use asc or desc, not {direction!r}")
        out.append((name, direction))
    return tuple(out)


__all__ = [
    "GRANULARITIES",
    "PERCENTILES",
    "TIME_DIMENSION",
    "Metric",
    "Query",
    "QueryError",
    "auto_granularity",
    "parse_query",
]
