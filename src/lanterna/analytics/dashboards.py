"""Custom dashboards: what a widget and a dashboard may hold, the metrics query a widget
runs, and the project's default dashboard.

A widget is a metrics query (:mod:`lanterna.analytics.query`: view, dimensions, metrics,
filters) plus a chart type; the dashboard page and the API check it here, and
:func:`widget_query` turns it, with a dashboard's time range and filters, into the
:class:`~lanterna.analytics.query.Query` that ``run_query`` answers. Widgets are v2
queries, except legacy ``traces`` widgets (v1's view), which only the default
dashboard and the dashboard page create. The checks raise :class:`InvalidDashboard`
(400) naming the field; a query that does not parse keeps the query layer's message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .._json import integral
from ..errors import Conflict, InvalidInput
from ..store.filters import FilterError, conditions_of
from ..timeutil import parse_ts
from .app_traffic import app_filters
from .query import TIME_DIMENSION, Query, QueryError, parse_query
from .query.model import ROW_LIMIT_MAX, STEPS

#: The views a widget may be created with through the API (``traces`` is legacy).
VIEWS = ("observations", "scores-numeric", "scores-boolean", "scores-categorical")
LEGACY_VIEW = "traces"
TIME_SERIES = ("LINE_TIME_SERIES", "AREA_TIME_SERIES", "BAR_TIME_SERIES")
TOTALS = ("HORIZONTAL_BAR", "VERTICAL_BAR", "PIE", "NUMBER", "HISTOGRAM", "PIVOT_TABLE")
CHART_TYPES = (*TIME_SERIES, *TOTALS)
#: Chart types as the dashboard page's form names them.
CHART_LABELS = {
    "LINE_TIME_SERIES": "Line (time series)",
    "AREA_TIME_SERIES": "Area (time series)",
    "BAR_TIME_SERIES": "Bars (time series)",
    "HORIZONTAL_BAR": "Horizontal bars (total)",
    "VERTICAL_BAR": "Vertical bars (total)",
    "PIE": "Pie (total)",
    "NUMBER": "Number (total)",
    "HISTOGRAM": "Histogram",
    "PIVOT_TABLE": "Table",
}
GRID_COLUMNS = 12
#: The most placements a dashboard holds (its page runs one query per placement).
MAX_PLACEMENTS = 100
TILE = 6  # a placement's default width and height
NAME_MAX = 200
DESCRIPTION_MAX = 2000
#: A time range used to check that a widget's query parses (the range is the page's).
_CHECK_RANGE = ("2000-01-01T00:00:00Z", "2000-01-02T00:00:00Z")


class InvalidDashboard(InvalidInput):
    """400: a dashboard, widget or placement the server cannot store; the message names
    the field. The body adds the unstable API's ``code``."""

    code = "invalid_body"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        """``{message, error, code}``."""
        return {**super().body(), "code": self.code}


class PlacementConflict(Conflict):
    """409: a placement id taken on the dashboard, or a widget still placed."""

    def body(self) -> dict[str, Any]:
        """``{message, error, code}``."""
        return {**super().body(), "code": "conflict"}


# --- field checks --------------------------------------------------------------------


def _text(body: dict[str, Any], key: str, most: int, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidDashboard(f"{key}: required, a non-empty string")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidDashboard(f"{key}: expected a non-empty string")
    if len(value) > most:
        raise InvalidDashboard(f"{key}: at most {most} characters")
    return value


def _integer(value: Any, where: str, least: int, most: int | None = None) -> int:
    value = integral(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidDashboard(f"{where}: expected an integer of at least {least}")
    if most is not None and value > most:
        raise InvalidDashboard(f"{where}: expected an integer of at most {most}")
    return value


def _objects(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidDashboard(f"{where}: expected an array of objects")
    return value


def _filters(value: Any, where: str) -> list[dict[str, Any]]:
    try:
        conditions_of(value, where)
    except FilterError as exc:
        raise InvalidDashboard(str(exc)) from None
    return [dict(item) for item in value]


def _dimensions(value: Any) -> list[dict[str, str]]:
    out = []
    for index, item in enumerate(_objects(value, "dimensions")):
        field = item.get("field")
        if not isinstance(field, str) or not field:
            raise InvalidDashboard(f"dimensions[{index}].field: required, a string")
        out.append({"field": field})
    return out


def _metrics(value: Any) -> list[dict[str, str]]:
    out = []
    for index, item in enumerate(_objects(value, "metrics")):
        for key in ("measure", "agg"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise InvalidDashboard(f"metrics[{index}].{key}: required, a string")
        out.append({"measure": item["measure"], "agg": item["agg"]})
    if not out:
        raise InvalidDashboard("metrics: at least one {measure, agg} is required")
    return out


def _chart_type(value: Any) -> str:
    if value not in CHART_TYPES:
        raise InvalidDashboard(f"chartType: use one of {', '.join(CHART_TYPES)}, not {value!r}")
    return str(value)


def _chart_config(value: Any, chart_type: str) -> dict[str, Any]:
    if value is None:
        return {"type": chart_type}
    if not isinstance(value, dict):
        raise InvalidDashboard("chartConfig: expected an object")
    given = value.get("type")
    if given is not None and given != chart_type:
        raise InvalidDashboard(
            f"chartConfig.type: {given!r} does not match chartType {chart_type!r}"
        )
    out: dict[str, Any] = {"type": chart_type}
    for key in ("row_limit", "bins"):
        if value.get(key) is not None:
            out[key] = _integer(value[key], f"chartConfig.{key}", 1)
    if value.get("show_value_labels") is not None:
        if not isinstance(value["show_value_labels"], bool):
            raise InvalidDashboard("chartConfig.show_value_labels: expected true or false")
        out["show_value_labels"] = value["show_value_labels"]
    if value.get("per_minute") is not None:  # a Lanterna extension
        if not isinstance(value["per_minute"], bool):
            raise InvalidDashboard("chartConfig.per_minute: expected true or false")
        if value["per_minute"] and chart_type not in TIME_SERIES:
            raise InvalidDashboard("chartConfig.per_minute: only for a time series chart")
        out["per_minute"] = value["per_minute"]
    sort = value.get("defaultSort")
    if sort is not None:
        if not isinstance(sort, dict) or not isinstance(sort.get("column"), str):
            raise InvalidDashboard("chartConfig.defaultSort.column: required, a string")
        if sort.get("order") not in ("ASC", "DESC"):
            raise InvalidDashboard("chartConfig.defaultSort.order: use ASC or DESC")
        out["defaultSort"] = {"column": sort["column"], "order": sort["order"]}
    return out


def _view(value: Any, *, legacy: bool) -> str:
    if value == LEGACY_VIEW and legacy:
        return LEGACY_VIEW
    if value not in VIEWS:
        raise InvalidDashboard(f"view: use one of {', '.join(VIEWS)}, not {value!r}")
    return str(value)


# --- widgets -------------------------------------------------------------------------


def check_widget(body: Any, *, legacy: bool = False) -> dict[str, Any]:
    """A widget to create, checked (its query parses as a v2 metrics query, or v1 for a
    ``traces`` widget when ``legacy``): the stored fields."""
    if not isinstance(body, dict):
        raise InvalidDashboard("expected a JSON object")
    for key in ("view", "dimensions", "metrics", "filters", "chartType"):
        if key not in body:
            raise InvalidDashboard(f"{key}: required")
    chart_type = _chart_type(body["chartType"])
    fields = {
        "name": _text(body, "name", NAME_MAX, required=True),
        "description": _text(body, "description", DESCRIPTION_MAX, required=False) or "",
        "view": _view(body["view"], legacy=legacy),
        "dimensions": _dimensions(body["dimensions"]),
        "metrics": _metrics(body["metrics"]),
        "filters": _filters(body["filters"], "filters"),
        "chart_type": chart_type,
        "chart_config": _chart_config(body.get("chartConfig"), chart_type),
    }
    widget_query(fields, *_CHECK_RANGE)
    return fields


def check_widget_update(stored: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The fields a PATCH changes, checked together with the stored ones (the result
    must be a widget :func:`check_widget` accepts; a stored ``traces`` view may stay)."""
    if not isinstance(patch, dict):
        raise InvalidDashboard("expected a JSON object")
    keys = ("name", "description", "view", "dimensions", "metrics", "filters", "chartType")
    given = {k: patch[k] for k in (*keys, "chartConfig") if patch.get(k) is not None}
    if not given:
        raise InvalidDashboard(f"at least one of {', '.join(keys)}, chartConfig is required")
    if given.get("view") == LEGACY_VIEW:
        raise InvalidDashboard(f"view: use one of {', '.join(VIEWS)}, not 'traces'")
    merged = {
        "name": stored["name"],
        "description": stored["description"],
        "view": stored["view"],
        "dimensions": stored["dimensions"],
        "metrics": stored["metrics"],
        "filters": stored["filters"],
        "chartType": stored["chart_type"],
        **given,
    }
    if "chartConfig" not in given and merged["chartType"] == stored["chart_type"]:
        merged["chartConfig"] = stored["chart_config"]
    return check_widget(merged, legacy=True)


def _time_series(chart_type: str) -> bool:
    return chart_type in TIME_SERIES


def widget_query(
    widget: dict[str, Any],
    start: datetime | str,
    end: datetime | str,
    extra_filters: list[dict[str, Any]] | None = None,
) -> Query:
    """The checked metrics query of a widget (stored fields) over ``[start, end)``, with
    a dashboard's filters added; raises :class:`InvalidDashboard` with the query layer's
    message when it does not parse."""
    chart_type = widget["chart_type"]
    config = widget["chart_config"]
    metrics = [{"measure": m["measure"], "aggregation": m["agg"]} for m in widget["metrics"]]
    histogram = [m for m in metrics if m["aggregation"] == "histogram"]
    if chart_type == "HISTOGRAM" and len(histogram) != len(metrics):
        raise InvalidDashboard("metrics: a HISTOGRAM chart takes metrics with agg 'histogram'")
    if histogram and chart_type != "HISTOGRAM":
        raise InvalidDashboard("metrics: agg 'histogram' needs chartType HISTOGRAM")
    body: dict[str, Any] = {
        "view": widget["view"],
        "dimensions": widget["dimensions"],
        "metrics": metrics,
        # The judge's own traffic is left out unless a filter names an environment.
        "filters": app_filters([*widget["filters"], *(extra_filters or [])]),
        "fromTimestamp": _iso(start),
        "toTimestamp": _iso(end),
        "config": {"row_limit": config.get("row_limit") or ROW_LIMIT_MAX},
    }
    if config.get("bins"):
        body["config"]["bins"] = config["bins"]
    if _time_series(chart_type):
        body["timeDimension"] = {"granularity": "auto"}
    elif chart_type != "HISTOGRAM" and widget["dimensions"]:
        sort = config.get("defaultSort")
        if sort:
            body["orderBy"] = [{"field": sort["column"], "direction": sort["order"].lower()}]
        else:
            first = metrics[0]
            field = f"{first['aggregation']}_{first['measure']}"
            body["orderBy"] = [{"field": field, "direction": "desc"}]
    version = 1 if widget["view"] == LEGACY_VIEW else 2
    try:
        return parse_query(body, version=version)
    except QueryError as exc:
        raise InvalidDashboard(str(exc), code="invalid_query") from None


def per_minute(query: Query, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A time series' rows with each metric divided by the minutes its time bucket
    spends inside the query's range (``chartConfig.per_minute``: a count of traces
    becomes requests per minute; the partial buckets at the range's ends are divided
    by their part, not by the whole bucket)."""
    if query.granularity is None:
        return rows
    out = []
    for row in rows:
        start = parse_ts(row[TIME_DIMENSION])
        end = _bucket_end(start, query.granularity)
        minutes = (min(end, query.end) - max(start, query.start)).total_seconds() / 60
        new = dict(row)
        for metric in query.metrics:
            value = row[metric.column]
            if isinstance(value, int | float) and minutes > 0:
                new[metric.column] = value / minutes
        out.append(new)
    return out


def _bucket_end(start: datetime, granularity: str) -> datetime:
    if granularity == "month":
        year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        return start.replace(year=year, month=month)
    return start + STEPS[granularity]


def _iso(value: datetime | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


# --- dashboards and placements -------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    """Where a placement sits: its top-left cell and size on the 12-column grid."""

    x: int
    y: int
    width: int
    height: int


def _tile(item: dict[str, Any], where: str, defaults: Tile | None = None) -> Tile:
    values = {}
    for key in ("x", "y", "width", "height"):
        value = item.get(key)
        if value is None:
            if defaults is None:
                raise InvalidDashboard(f"{where}.{key}: required, an integer")
            value = getattr(defaults, key)
        least = 1 if key in ("width", "height") else 0
        most = GRID_COLUMNS if key == "width" else GRID_COLUMNS - 1 if key == "x" else None
        values[key] = _integer(value, f"{where}.{key}", least, most)
    tile = Tile(**values)
    if tile.x + tile.width > GRID_COLUMNS:
        raise InvalidDashboard(f"{where}: x + width must be at most {GRID_COLUMNS}")
    return tile


def _placement_ref(item: dict[str, Any], where: str) -> str:
    kind = item.get("type", "widget")
    if kind == "preset":
        raise InvalidDashboard(
            f"{where}.presetId: there are no Langfuse-managed widgets here; place a widget"
        )
    if kind != "widget":
        raise InvalidDashboard(f"{where}.type: use 'widget', not {kind!r}")
    widget_id = item.get("widgetId")
    if not isinstance(widget_id, str) or not widget_id:
        raise InvalidDashboard(f"{where}.widgetId: required, a string")
    return widget_id


def _placement(pid: str, widget_id: str, tile: Tile) -> dict[str, Any]:
    return {
        "type": "widget",
        "id": pid,
        "widgetId": widget_id,
        "x": tile.x,
        "y": tile.y,
        "width": tile.width,
        "height": tile.height,
    }


def _definition(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or "widgets" not in value:
        raise InvalidDashboard("definition: expected an object {widgets: [placement, ...]}")
    out, seen = [], set()
    items = _objects(value["widgets"], "definition.widgets")
    if len(items) > MAX_PLACEMENTS:
        raise InvalidDashboard(f"definition.widgets: at most {MAX_PLACEMENTS} placements")
    for index, item in enumerate(items):
        where = f"definition.widgets[{index}]"
        widget_id = _placement_ref(item, where)
        pid = item.get("id")
        if not isinstance(pid, str) or not pid:
            raise InvalidDashboard(f"{where}.id: required, a string")
        if pid in seen:
            raise InvalidDashboard(f"{where}.id: {pid!r} is used twice")
        seen.add(pid)
        out.append(_placement(pid, widget_id, _tile(item, where)))
    return {"widgets": out}


def placed_widgets(definition: dict[str, Any]) -> list[str]:
    """The widget ids a definition places, in order."""
    return [p["widgetId"] for p in definition["widgets"]]


def check_dashboard(body: Any) -> dict[str, Any]:
    """A dashboard to create: the stored fields (its placements' widgets still to be
    found in the project: :func:`placed_widgets`)."""
    if not isinstance(body, dict):
        raise InvalidDashboard("expected a JSON object")
    definition = body.get("definition")
    filters = body.get("filters")
    return {
        "name": _text(body, "name", NAME_MAX, required=True),
        "description": _text(body, "description", DESCRIPTION_MAX, required=False) or "",
        "definition": {"widgets": []} if definition is None else _definition(definition),
        "filters": [] if filters is None else _filters(filters, "filters"),
    }


def check_dashboard_update(patch: Any) -> dict[str, Any]:
    """The fields a dashboard PATCH changes (at least one), checked."""
    if not isinstance(patch, dict):
        raise InvalidDashboard("expected a JSON object")
    out: dict[str, Any] = {}
    if patch.get("name") is not None:
        out["name"] = _text(patch, "name", NAME_MAX, required=True)
    if patch.get("description") is not None:
        out["description"] = _text(patch, "description", DESCRIPTION_MAX, required=False)
    if patch.get("definition") is not None:
        out["definition"] = _definition(patch["definition"])
    if patch.get("filters") is not None:
        out["filters"] = _filters(patch["filters"], "filters")
    if not out:
        raise InvalidDashboard("at least one of name, description, definition, filters is required")
    return out


def add_placement(definition: dict[str, Any], body: Any, new_id: str) -> dict[str, Any]:
    """The placement a POST adds (its widget still to be found): the given position or,
    for what is left out, x 0, a 6x6 tile, below every existing tile. 409 when its id
    is taken on the dashboard."""
    if not isinstance(body, dict):
        raise InvalidDashboard("expected a JSON object")
    widget_id = _placement_ref(body, "placement")
    pid = body.get("id")
    if pid is None:
        pid = new_id
    elif not isinstance(pid, str) or not pid:
        raise InvalidDashboard("id: expected a non-empty string")
    if len(definition["widgets"]) >= MAX_PLACEMENTS:
        raise InvalidDashboard(f"A dashboard holds at most {MAX_PLACEMENTS} placements")
    if any(p["id"] == pid for p in definition["widgets"]):
        raise PlacementConflict(f"A placement with id {pid!r} is already on the dashboard")
    below = max((p["y"] + p["height"] for p in definition["widgets"]), default=0)
    tile = _tile(body, "placement", Tile(0, below, TILE, TILE))
    return _placement(pid, widget_id, tile)


def move_placement(placement: dict[str, Any], body: Any) -> dict[str, Any]:
    """A placement after a PATCH of its position or size (at least one field)."""
    if not isinstance(body, dict):
        raise InvalidDashboard("expected a JSON object")
    keys = ("x", "y", "width", "height")
    if all(body.get(k) is None for k in keys):
        raise InvalidDashboard("at least one of x, y, width, height is required")
    current = Tile(*(placement[k] for k in keys))
    return _placement(placement["id"], placement["widgetId"], _tile(body, "placement", current))


# --- the default dashboard -----------------------------------------------------------

#: The project's default dashboard (the seed guide's metrics: cost trend, latency p50
#: and p95, tokens, error rate, requests, top users, top models), as widget bodies.
DEFAULT_NAME = "Overview"
DEFAULT_DESCRIPTION = "Cost, latency, tokens, errors, requests, top users and models."
DEFAULT_WIDGETS: tuple[dict[str, Any], ...] = (
    {
        "name": "Cost by model (USD)",
        "view": "observations",
        "dimensions": [{"field": "providedModelName"}],
        "metrics": [{"measure": "totalCost", "agg": "sum"}],
        "filters": [],
        "chartType": "BAR_TIME_SERIES",
    },
    {
        "name": "Trace latency p50 / p95 (ms)",
        "view": LEGACY_VIEW,
        "dimensions": [],
        "metrics": [{"measure": "latency", "agg": "p50"}, {"measure": "latency", "agg": "p95"}],
        "filters": [],
        "chartType": "LINE_TIME_SERIES",
    },
    {
        "name": "Tokens",
        "view": "observations",
        "dimensions": [],
        "metrics": [
            {"measure": "inputTokens", "agg": "sum"},
            {"measure": "outputTokens", "agg": "sum"},
        ],
        "filters": [],
        "chartType": "BAR_TIME_SERIES",
    },
    {
        "name": "Error rate (traces with an ERROR observation)",
        "view": LEGACY_VIEW,
        "dimensions": [],
        "metrics": [{"measure": "errorRate", "agg": "avg"}],
        "filters": [],
        "chartType": "LINE_TIME_SERIES",
    },
    {
        "name": "Requests per minute (traces)",
        "view": LEGACY_VIEW,
        "dimensions": [],
        "metrics": [{"measure": "count", "agg": "count"}],
        "filters": [],
        "chartType": "LINE_TIME_SERIES",
        "chartConfig": {"per_minute": True},
    },
    {
        "name": "Top users by cost (USD)",
        "view": LEGACY_VIEW,
        "dimensions": [{"field": "userId"}],
        "metrics": [{"measure": "totalCost", "agg": "sum"}],
        "filters": [],
        "chartType": "HORIZONTAL_BAR",
        "chartConfig": {"row_limit": 10},
    },
    {
        "name": "Top models by cost (USD)",
        "view": "observations",
        "dimensions": [{"field": "providedModelName"}],
        "metrics": [{"measure": "totalCost", "agg": "sum"}, {"measure": "count", "agg": "count"}],
        # Observations with a model (generations, embeddings): a filter the model
        # rollup answers, where one on the type reads every observation of the range.
        "filters": [{"column": "providedModelName", "operator": "is not null", "type": "null"}],
        "chartType": "PIVOT_TABLE",
        "chartConfig": {"row_limit": 10},
    },
)


def default_widgets() -> list[dict[str, Any]]:
    """The default dashboard's widgets, checked, as stored fields."""
    return [check_widget(body, legacy=True) for body in DEFAULT_WIDGETS]


def default_layout(widget_ids: list[str], new_id: Any) -> dict[str, Any]:
    """The default dashboard's definition: its widgets two to a row, 6x5 tiles."""
    return {
        "widgets": [
            _placement(new_id(), wid, Tile((i % 2) * TILE, (i // 2) * 5, TILE, 5))
            for i, wid in enumerate(widget_ids)
        ]
    }
