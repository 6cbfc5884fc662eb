"""A dashboard widget's answer as a chart: plotly figure specs (drawn by
``static/charts.js``, as on the metrics page) or, for tables and numbers, rows the
template renders. Every user-written text (dimension values, names) reaches plotly
escaped (:func:`label`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...analytics.query import TIME_DIMENSION, Query
from .metrics_page import COLORS, label

#: A row's value of a dimension that has none.
NONE_LABEL = "(none)"


def _text(value: Any) -> str:
    if value is None:
        return NONE_LABEL
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or NONE_LABEL
    return str(value)


def _group(row: dict[str, Any], query: Query) -> str:
    return " / ".join(_text(row.get(d)) for d in query.dimensions)


def _time(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def metric_label(column: str) -> str:
    """A metric column (``p95_latency``) as a legend text (``p95 latency``)."""
    return column.replace("_", " ", 1)


def _series_name(group: str, column: str, query: Query) -> str:
    parts = [group] if group else []
    if len(query.metrics) > 1 or not group:
        parts.append(metric_label(column))
    return label(" · ".join(parts))


def _time_series(chart_type: str, query: Query, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One trace per dimension group and metric over the query's whole range."""
    series: dict[tuple[str, str], tuple[list[str], list[Any]]] = {}
    for row in rows:
        group = _group(row, query)
        for metric in query.metrics:
            xs, ys = series.setdefault((group, metric.column), ([], []))
            xs.append(_time(row[TIME_DIMENSION]))
            ys.append(row[metric.column])
    data = []
    for i, ((group, column), (xs, ys)) in enumerate(series.items()):
        trace: dict[str, Any] = {"name": _series_name(group, column, query), "x": xs, "y": ys}
        color = COLORS[i % len(COLORS)]
        if chart_type == "BAR_TIME_SERIES":
            trace |= {"type": "bar", "marker": {"color": color}}
        else:
            trace |= {"type": "scatter", "mode": "lines+markers", "line": {"color": color}}
            if chart_type == "AREA_TIME_SERIES":
                trace |= {"stackgroup": "one"}
        data.append(trace)
    span = [query.start.isoformat(), query.end.isoformat()]
    layout = {
        "barmode": "stack",
        "xaxis": {"type": "date", "range": span},
        "yaxis": {"rangemode": "tozero"},
    }
    return {"data": data, "layout": layout}


def _totals(chart_type: str, query: Query, rows: list[dict[str, Any]]) -> dict[str, Any]:
    groups = [label(_group(row, query)) or "total" for row in rows]
    if chart_type == "PIE":
        column = query.metrics[0].column
        return {
            "data": [
                {
                    "type": "pie",
                    "labels": groups,
                    "values": [row[column] for row in rows],
                    "name": metric_label(column),
                    "hole": 0.4,
                }
            ],
            "layout": {},
        }
    horizontal = chart_type == "HORIZONTAL_BAR"
    data = []
    for i, metric in enumerate(query.metrics):
        values = [row[metric.column] for row in rows]
        cats, vals = (groups[::-1], values[::-1]) if horizontal else (groups, values)
        data.append(
            {
                "type": "bar",
                "name": metric_label(metric.column),
                "orientation": "h" if horizontal else "v",
                "x": vals if horizontal else cats,
                "y": cats if horizontal else vals,
                "marker": {"color": COLORS[i % len(COLORS)]},
            }
        )
    layout: dict[str, Any] = {"margin": {"l": 140}} if horizontal else {}
    # Categories stay categories even when they look like numbers.
    layout["yaxis" if horizontal else "xaxis"] = {"type": "category"}
    return {"data": data, "layout": layout}


def _histogram(query: Query, rows: list[dict[str, Any]]) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for i, metric in enumerate(query.metrics):
        for row in rows:
            bins = row[metric.column] or []
            group = _group(row, query)
            data.append(
                {
                    "type": "bar",
                    "name": _series_name(group, metric.column, query),
                    "x": [(low + high) / 2 for low, high, _ in bins],
                    "y": [height for _, _, height in bins],
                    "width": [(high - low) or 1 for low, high, _ in bins],
                    "marker": {"color": COLORS[(i + len(data)) % len(COLORS)]},
                }
            )
    return {"data": data, "layout": {"bargap": 0.02, "barmode": "overlay"}}


def figure(
    chart_id: str, chart_type: str, query: Query, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """The plotly spec (``id``, ``data``, ``layout``) of a widget's rows (its title is
    the tile's heading)."""
    if chart_type in ("LINE_TIME_SERIES", "AREA_TIME_SERIES", "BAR_TIME_SERIES"):
        spec = _time_series(chart_type, query, rows)
    elif chart_type == "HISTOGRAM":
        spec = _histogram(query, rows)
    else:
        spec = _totals(chart_type, query, rows)
    spec["layout"]["margin"] = {
        "l": 56,
        "r": 16,
        "t": 12,
        "b": 40,
        **spec["layout"].get("margin", {}),
    }
    return {"id": chart_id, **spec}


def table(query: Query, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A PIVOT_TABLE or NUMBER widget's rows as ``{columns, rows}`` of plain values
    (the template escapes them)."""
    dims = list(query.dimensions)
    metrics = [m.column for m in query.metrics]
    return {
        "columns": [*dims, *(metric_label(c) for c in metrics)],
        "numeric": [False] * len(dims) + [True] * len(metrics),
        "rows": [[*(_text(r.get(d)) for d in dims), *(r.get(c) for c in metrics)] for r in rows],
    }
