"""Custom dashboards and dashboard widgets: Langfuse's ``/api/public/unstable/dashboards``
and ``/api/public/unstable/dashboard-widgets`` routes (:mod:`lanterna.analytics.dashboards`
checks what they store; ``store.dashboards`` stores it).

A widget is a v2 metrics query plus a chart type; a dashboard places widgets on a
12-column grid. Every change runs in the writer, so a check against stored rows (a
placement's widget exists, a widget is not placed anywhere) and the write see the same
data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from ...analytics import dashboards as rules
from ...analytics.dashboards import InvalidDashboard, PlacementConflict
from ...store.db import Conn
from ...store.dialect import Dialect
from ...store.interface import Dashboards
from ..auth import ProjectKey
from ..doc_models import DocModel, answer, request_body
from ..errors import not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import dashboard_json, widget_json
from .body import NOT_BLANK, json_body, read_json
from .params import LimitParam, Message, Meta, PageParam, page_of

router = APIRouter(tags=["Dashboards (unstable)"])

DASHBOARDS = "/api/public/unstable/dashboards"
WIDGETS = "/api/public/unstable/dashboard-widgets"


class Widget(DocModel):
    """A dashboard widget (Langfuse's ``unstableDashboardWidget``)."""

    id: str
    createdAt: str
    updatedAt: str
    name: str
    description: str
    view: str
    dimensions: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    filters: list[dict[str, Any]]
    chartType: str
    chartConfig: dict[str, Any]


class WidgetBody(DocModel):
    """Create (every field but ``description`` and ``chartConfig`` required) or update
    (at least one field) a widget: view ``observations``, ``scores-numeric``,
    ``scores-boolean`` or ``scores-categorical``; dimensions ``[{field}]``; metrics
    ``[{measure, agg}]``; filters as in the metrics query; chartType one of
    LINE_TIME_SERIES, AREA_TIME_SERIES, BAR_TIME_SERIES, HORIZONTAL_BAR, VERTICAL_BAR,
    PIE, NUMBER, HISTOGRAM, PIVOT_TABLE; chartConfig ``{type?, row_limit?, bins?,
    show_value_labels?, defaultSort?}``."""

    name: str | None = None
    description: str | None = None
    view: str | None = None
    dimensions: list[dict[str, Any]] | None = None
    metrics: list[dict[str, Any]] | None = None
    filters: list[dict[str, Any]] | None = None
    chartType: str | None = None
    chartConfig: dict[str, Any] | None = None


class Placement(DocModel):
    """A widget's tile on a dashboard's 12-column grid."""

    type: str = "widget"
    id: str
    widgetId: str
    x: int
    y: int
    width: int
    height: int


class PlacementBody(DocModel):
    """Add (``widgetId`` required; the rest defaults to a 6x6 tile at x 0 below every
    tile) or move/resize (``x``, ``y``, ``width``, ``height``; at least one) a placement."""

    type: str | None = "widget"
    id: str | None = None
    widgetId: str | None = None
    x: int | None = None
    y: int | None = None
    width: int | None = None
    height: int | None = None


class Dashboard(DocModel):
    """A dashboard (Langfuse's ``unstableDashboard``)."""

    id: str
    createdAt: str
    updatedAt: str
    name: str
    description: str
    definition: dict[str, list[Placement]]
    filters: list[dict[str, Any]]


class WidgetList(DocModel):
    """A page of widgets, most recently updated first."""

    data: list[Widget]
    meta: Meta


class DashboardList(DocModel):
    """A page of dashboards, most recently updated first."""

    data: list[Dashboard]
    meta: Meta


# --- the bodies of a new widget and a new or changed dashboard, as the routes check them


_NAME = Annotated[str, Field(max_length=rules.NAME_MAX, pattern=NOT_BLANK)]
_DESCRIPTION = Annotated[str | None, Field(max_length=rules.DESCRIPTION_MAX)]
_TILE_FITS: dict[str, Any] = {
    "anyOf": [
        {"properties": {"x": {"const": x}, "width": {"maximum": rules.GRID_COLUMNS - x}}}
        for x in range(rules.GRID_COLUMNS)
    ]
}


class Condition(DocModel):
    """A filter condition (as the metrics query's): ``value`` required but for type
    ``null``."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"type": {"const": "null"}}},
            "else": {"required": ["value"]},
        }
    )

    type: str
    column: str
    operator: str
    value: Any = None
    key: str | None = None


class NewPlacement(DocModel):
    """A widget's tile in a dashboard's ``definition``: ``x + width`` at most 12."""

    model_config = ConfigDict(json_schema_extra=_TILE_FITS)

    type: Literal["widget"] = "widget"
    id: Annotated[str, Field(min_length=1)]
    widgetId: Annotated[str, Field(min_length=1)]
    x: Annotated[int, Field(ge=0, le=rules.GRID_COLUMNS - 1)]
    y: Annotated[int, Field(ge=0)]
    width: Annotated[int, Field(ge=1, le=rules.GRID_COLUMNS)]
    height: Annotated[int, Field(ge=1)]


class Definition(DocModel):
    """The placements of a dashboard (at most 100)."""

    widgets: Annotated[list[NewPlacement], Field(max_length=rules.MAX_PLACEMENTS)]


class DashboardCreate(DocModel):
    """A new dashboard: ``name`` required. Not stated here (a 400 naming the field):
    placement ids differ, and each placement's widget is one of the project's."""

    name: _NAME
    description: _DESCRIPTION = None
    definition: Definition | None = None
    filters: list[Condition] | None = None


class DashboardChange(DocModel):
    """A dashboard change: at least one of the fields not null; ``definition`` replaces
    every placement (the same rules as on create)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [field], "not": {"properties": {field: {"type": "null"}}}}
                for field in ("name", "description", "definition", "filters")
            ]
        }
    )

    name: _NAME | None = None
    description: _DESCRIPTION = None
    definition: Definition | None = None
    filters: list[Condition] | None = None


class Dimension(DocModel):
    """A dimension of a widget's query."""

    field: Annotated[str, Field(min_length=1)]


class WidgetMetric(DocModel):
    """A metric of a widget's query: a measure and its aggregation."""

    measure: Annotated[str, Field(min_length=1)]
    agg: Annotated[str, Field(min_length=1)]


class WidgetCreate(DocModel):
    """A new widget. Not stated here (a 400 with the metrics query's message): the query
    must parse as ``GET /api/public/v2/metrics`` parses it (the view's dimensions,
    measures, aggregations and filter columns; ``agg`` ``histogram`` exactly with chart
    type ``HISTOGRAM``), and ``chartConfig`` holds only its known keys with their
    types."""

    name: _NAME
    description: _DESCRIPTION = None
    view: Literal[rules.VIEWS]  # type: ignore[valid-type]
    dimensions: list[Dimension]
    metrics: Annotated[list[WidgetMetric], Field(min_length=1)]
    filters: list[Condition]
    chartType: Literal[rules.CHART_TYPES]  # type: ignore[valid-type]
    chartConfig: dict[str, Any] | None = None


def _body(model: type[BaseModel]) -> dict[str, Any]:
    def schema() -> dict[str, Any]:
        made = model.model_json_schema(ref_template="#/components/schemas/{model}")
        made.pop("$defs", None)
        return made

    return request_body(schema)


def _ok(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {200: answer(model, "OK")}


def _store(request: Request) -> Dashboards:
    return runtime(request).store.dashboards


def _missing_widgets(store: Dashboards, conn: Conn, project_id: str, ids: list[str]) -> list[str]:
    found = store.get_widgets(conn, project_id, ids)
    return [i for i in ids if i not in found]


#: Picks the store's page or get operation of widgets or dashboards.
Pager = Callable[[Dashboards], Callable[[Conn, str, int, int], tuple[list[dict[str, Any]], int]]]
Getter = Callable[[Dashboards], Callable[[Conn, str, str], "dict[str, Any] | None"]]
Shape = Callable[[Dialect, dict[str, Any]], dict[str, Any]]


async def _list(
    request: Request,
    project_id: str,
    page: int | None,
    limit: int | None,
    rows: Pager,
    shape: Shape,
) -> JSON:
    """A page of the project's widgets or dashboards in the list envelope."""
    paging = page_of(page, limit)
    store = _store(request)

    def read(conn: Conn) -> dict[str, Any]:
        found, total = rows(store)(conn, project_id, paging.limit, paging.offset)
        return paging.envelope([shape(conn.dialect, r) for r in found], total)

    return JSON(await runtime(request).read(read))


async def _one(
    request: Request, project_id: str, row_id: str, get: Getter, shape: Shape, what: str
) -> JSON:
    """One widget or dashboard of the project (404 when missing)."""
    store = _store(request)

    def read(conn: Conn) -> dict[str, Any] | None:
        row = get(store)(conn, project_id, row_id)
        return None if row is None else shape(conn.dialect, row)

    found = await runtime(request).read(read)
    if found is None:
        raise not_found(f"{what} {row_id}")
    return JSON(found)


# --- widgets -------------------------------------------------------------------------


@router.get(WIDGETS, responses=_ok(WidgetList))
async def list_widgets(
    request: Request, principal: ProjectKey, page: PageParam = None, limit: LimitParam = None
) -> JSON:
    """The project's widgets, most recently updated first."""
    return await _list(
        request, principal.project_id, page, limit, lambda s: s.page_widgets, widget_json
    )


@router.post(WIDGETS, responses=_ok(Widget), openapi_extra=json_body(WidgetCreate))
async def create_widget(request: Request, principal: ProjectKey) -> JSON:
    """Create a widget (place it with ``POST /dashboards/{id}/placements``); 400 naming
    the field, or with the metrics query's message when its query does not parse."""
    fields = rules.check_widget(await read_json(request))
    store = _store(request)
    created = await runtime(request).write(
        lambda conn: widget_json(
            conn.dialect, store.create_widget(conn, principal.project_id, fields)
        )
    )
    return JSON(created)


@router.get(WIDGETS + "/{widget_id}", responses=_ok(Widget))
async def get_widget(request: Request, widget_id: str, principal: ProjectKey) -> JSON:
    """One widget of the project (404 when missing)."""
    return await _one(
        request,
        principal.project_id,
        widget_id,
        lambda s: s.get_widget,
        widget_json,
        "Dashboard widget",
    )


@router.patch(WIDGETS + "/{widget_id}", responses=_ok(Widget), openapi_extra=_body(WidgetBody))
async def update_widget(request: Request, widget_id: str, principal: ProjectKey) -> JSON:
    """Change a widget's fields (at least one); changing ``chartType`` without
    ``chartConfig`` resets the config."""
    patch = await read_json(request)
    store = _store(request)

    def work(conn: Conn) -> dict[str, Any] | None:
        stored = store.get_widget(conn, principal.project_id, widget_id)
        if stored is None:
            return None
        fields = rules.check_widget_update(stored, patch)
        row = store.update_widget(conn, principal.project_id, widget_id, fields)
        return None if row is None else widget_json(conn.dialect, row)

    outcome = await runtime(request).write(work)
    if outcome is None:
        raise not_found(f"Dashboard widget {widget_id}")
    return JSON(outcome)


@router.delete(WIDGETS + "/{widget_id}", responses=_ok(Message))
async def delete_widget(request: Request, widget_id: str, principal: ProjectKey) -> JSON:
    """Delete a widget; 409 while a dashboard still places it."""
    store = _store(request)

    def work(conn: Conn) -> bool:
        placing = store.dashboards_placing(conn, principal.project_id, widget_id)
        if placing:
            raise PlacementConflict(
                f"Dashboard widget {widget_id} is placed on dashboard(s) {', '.join(placing)};"
                " remove those placements first"
            )
        return store.delete_widget(conn, principal.project_id, widget_id)

    if not await runtime(request).write(work):
        raise not_found(f"Dashboard widget {widget_id}")
    return JSON({"message": "Dashboard widget deleted successfully"})


# --- dashboards ----------------------------------------------------------------------


@router.get(DASHBOARDS, responses=_ok(DashboardList))
async def list_dashboards(
    request: Request, principal: ProjectKey, page: PageParam = None, limit: LimitParam = None
) -> JSON:
    """The project's dashboards, most recently updated first."""
    return await _list(
        request, principal.project_id, page, limit, lambda s: s.page_dashboards, dashboard_json
    )


def _check_placed(store: Dashboards, conn: Conn, project_id: str, fields: dict[str, Any]) -> None:
    if "definition" not in fields:
        return
    ids = rules.placed_widgets(fields["definition"])
    missing = _missing_widgets(store, conn, project_id, ids)
    if missing:
        index = ids.index(missing[0])
        raise InvalidDashboard(
            f"definition.widgets[{index}].widgetId: no widget {missing[0]!r} in this project"
        )


@router.post(DASHBOARDS, responses=_ok(Dashboard), openapi_extra=json_body(DashboardCreate))
async def create_dashboard(request: Request, principal: ProjectKey) -> JSON:
    """Create a dashboard (``name`` required; optional description, definition, filters)."""
    fields = rules.check_dashboard(await read_json(request))
    store = _store(request)

    def work(conn: Conn) -> dict[str, Any]:
        _check_placed(store, conn, principal.project_id, fields)
        return dashboard_json(
            conn.dialect, store.create_dashboard(conn, principal.project_id, fields)
        )

    return JSON(await runtime(request).write(work))


@router.get(DASHBOARDS + "/{dashboard_id}", responses=_ok(Dashboard))
async def get_dashboard(request: Request, dashboard_id: str, principal: ProjectKey) -> JSON:
    """One dashboard of the project (404 when missing)."""
    return await _one(
        request,
        principal.project_id,
        dashboard_id,
        lambda s: s.get_dashboard,
        dashboard_json,
        "Dashboard",
    )


@router.patch(
    DASHBOARDS + "/{dashboard_id}",
    responses=_ok(Dashboard),
    openapi_extra=json_body(DashboardChange),
)
async def update_dashboard(request: Request, dashboard_id: str, principal: ProjectKey) -> JSON:
    """Change a dashboard's name, description, definition (all placements) or filters."""
    fields = rules.check_dashboard_update(await read_json(request))
    store = _store(request)

    def work(conn: Conn) -> dict[str, Any] | None:
        if store.get_dashboard(conn, principal.project_id, dashboard_id) is None:
            return None
        _check_placed(store, conn, principal.project_id, fields)
        row = store.update_dashboard(conn, principal.project_id, dashboard_id, fields)
        return None if row is None else dashboard_json(conn.dialect, row)

    outcome = await runtime(request).write(work)
    if outcome is None:
        raise not_found(f"Dashboard {dashboard_id}")
    return JSON(outcome)


@router.delete(DASHBOARDS + "/{dashboard_id}", responses=_ok(Message))
async def delete_dashboard(request: Request, dashboard_id: str, principal: ProjectKey) -> JSON:
    """Delete a dashboard (its widgets stay)."""
    store = _store(request)
    if not await runtime(request).write(
        lambda conn: store.delete_dashboard(conn, principal.project_id, dashboard_id)
    ):
        raise not_found(f"Dashboard {dashboard_id}")
    return JSON({"message": "Dashboard deleted successfully"})


# --- placements ----------------------------------------------------------------------


@router.post(
    DASHBOARDS + "/{dashboard_id}/placements",
    responses=_ok(Placement),
    openapi_extra=_body(PlacementBody),
)
async def add_placement(request: Request, dashboard_id: str, principal: ProjectKey) -> JSON:
    """Place a widget of the project on the dashboard (404 for a missing dashboard or
    widget, 409 for a placement id already on it)."""
    body = await read_json(request)
    store = _store(request)
    project_id = principal.project_id

    def work(conn: Conn) -> dict[str, Any]:
        row = store.get_dashboard(conn, project_id, dashboard_id)
        if row is None:
            raise not_found(f"Dashboard {dashboard_id}")
        placement = rules.add_placement(row["definition"], body, str(uuid.uuid4()))
        if _missing_widgets(store, conn, project_id, [placement["widgetId"]]):
            raise not_found(f"Dashboard widget {placement['widgetId']}")
        definition = {"widgets": [*row["definition"]["widgets"], placement]}
        store.update_dashboard(conn, project_id, dashboard_id, {"definition": definition})
        return placement

    return JSON(await runtime(request).write(work))


def _edit_placement(
    request: Request, dashboard_id: str, placement_id: str, project_id: str, change: Any
) -> Any:
    """A write unit: the dashboard's placement changed by ``change(placement)`` (None
    removes it); answers the changed placement or the removed one."""
    store = _store(request)

    def work(conn: Conn) -> dict[str, Any]:
        row = store.get_dashboard(conn, project_id, dashboard_id)
        if row is None:
            raise not_found(f"Dashboard {dashboard_id}")
        placements = row["definition"]["widgets"]
        found = next((p for p in placements if p["id"] == placement_id), None)
        if found is None:
            raise not_found(f"Placement {placement_id}")
        changed = change(found)
        kept = [changed if p is found else p for p in placements if p is not found or changed]
        store.update_dashboard(conn, project_id, dashboard_id, {"definition": {"widgets": kept}})
        return changed or found

    return work


@router.patch(
    DASHBOARDS + "/{dashboard_id}/placements/{placement_id}",
    responses=_ok(Placement),
    openapi_extra=_body(PlacementBody),
)
async def update_placement(
    request: Request, dashboard_id: str, placement_id: str, principal: ProjectKey
) -> JSON:
    """Move or resize a placement (omitted fields keep their value)."""
    body = await read_json(request)
    work = _edit_placement(
        request,
        dashboard_id,
        placement_id,
        principal.project_id,
        lambda p: rules.move_placement(p, body),
    )
    return JSON(await runtime(request).write(work))


@router.delete(DASHBOARDS + "/{dashboard_id}/placements/{placement_id}", responses=_ok(Message))
async def delete_placement(
    request: Request, dashboard_id: str, placement_id: str, principal: ProjectKey
) -> JSON:
    """Remove a placement (the widget stays)."""
    work = _edit_placement(
        request, dashboard_id, placement_id, principal.project_id, lambda p: None
    )
    await runtime(request).write(work)
    return JSON({"message": "Placement deleted successfully"})
