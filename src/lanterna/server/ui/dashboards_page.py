"""Custom dashboards in the web UI: the project's dashboards (its default one created on
the first visit), a dashboard's widgets charted over a time range, and forms to add a
widget, move, resize or remove it, rename or delete the dashboard.

Widgets are checked by :mod:`lanterna.analytics.dashboards` (as the API checks them) and
answered by the metrics query layer; each is read on its own, so one that fails (a
filter its view lacks, the query time limit) shows its message and the rest still draw.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...analytics import dashboards as rules
from ...analytics.query import AGGREGATIONS, VIEWS, Query, run_query
from ...errors import DomainError
from ...store.db import Conn
from ...store.filters import OPERATORS
from ...store.interface import Dashboards
from . import dashboard_charts as charts
from .ranges import METRIC_RANGES, bounded_range
from .web import Form, Page, not_found, page_form, project_page, redirect, render, rt_of

router = APIRouter()

LIST_LIMIT = 100
UI_VIEWS = ("observations", rules.LEGACY_VIEW, *rules.VIEWS[1:])
FILTER_TYPES = ("string", "number", "stringOptions", "arrayOptions", "boolean", "datetime", "null")


def dashboards_url(pid: str, dashboard_id: str | None = None, rest: str = "") -> str:
    """The list, or one dashboard's page (``rest``: a sub-path of it)."""
    base = f"/project/{pid}/dashboards"
    return base if dashboard_id is None else f"{base}/{dashboard_id}{rest}"


def ensure_default(store: Dashboards, conn: Conn, project_id: str) -> None:
    """Create the project's default dashboard and its widgets, once (a write unit)."""
    created, _ = store.default_dashboard(conn, project_id)
    if created:
        return
    widgets = [store.create_widget(conn, project_id, f) for f in rules.default_widgets()]
    definition = rules.default_layout([w["id"] for w in widgets], lambda: str(uuid.uuid4()))
    fields = {
        "name": rules.DEFAULT_NAME,
        "description": rules.DEFAULT_DESCRIPTION,
        "definition": definition,
        "filters": [],
    }
    row = store.create_dashboard(conn, project_id, fields)
    store.record_default(conn, project_id, row["id"])


@router.get("/project/{project_id}/dashboards")
async def dashboards_list(request: Request, project_id: str) -> Response:
    """The project's dashboards, most recently changed first."""
    page = await project_page(request, project_id)
    return await _list_response(request, page)


async def _list_response(
    request: Request, page: Page, error: str = "", form: Form | None = None
) -> Response:
    rt = rt_of(request)
    store = rt.store.dashboards
    created, _ = await rt.read(lambda c: store.default_dashboard(c, page.pid))
    if not created:
        await rt.write(lambda c: ensure_default(store, c, page.pid))

    def read(c: Conn) -> tuple[list[dict[str, Any]], str | None]:
        rows, _total = store.page_dashboards(c, page.pid, LIST_LIMIT, 0)
        return rows, store.default_dashboard(c, page.pid)[1]

    rows, default_id = await rt.read(read)
    return render(
        request,
        "dashboards.html",
        {
            "items": rows,
            "default_id": default_id,
            "url": dashboards_url,
            "error": error,
            "form": form,
        },
        page=page,
        status=400 if error else 200,
    )


@router.post("/project/{project_id}/dashboards")
async def create_dashboard(request: Request, project_id: str) -> Response:
    """A new, empty dashboard."""
    page, form = await page_form(request, project_id, "edit_dashboards")
    store = rt_of(request).store.dashboards
    try:
        fields = rules.check_dashboard(
            {"name": form.get("name"), "description": form.get("description") or None}
        )
    except rules.InvalidDashboard as exc:
        return await _list_response(request, page, error=exc.message, form=form)
    row = await rt_of(request).write(lambda c: store.create_dashboard(c, page.pid, fields))
    return redirect(dashboards_url(page.pid, row["id"]))


async def _tiles(
    request: Request, page: Page, dashboard: dict[str, Any], start: Any, end: Any
) -> list[dict[str, Any]]:
    """Each placement with its widget, chart or table, or the message of its failure."""
    rt = rt_of(request)
    store = rt.store.dashboards
    placements = dashboard["definition"]["widgets"]
    ids = rules.placed_widgets(dashboard["definition"])
    widgets = await rt.read(lambda c: store.get_widgets(c, page.pid, ids))
    millis = rt.settings.query_timeout_ms
    timeout = millis / 1000 if millis > 0 else None
    tiles = []
    for index, placement in enumerate(placements):
        widget = widgets.get(placement["widgetId"])
        tile: dict[str, Any] = {"p": placement, "widget": widget, "chart": None, "table": None}
        tile["error"] = "" if widget else "This widget was deleted."
        tiles.append(tile)
        if widget is None:
            continue
        try:
            query = rules.widget_query(widget, start, end, dashboard["filters"])

            def read(c: Conn, query: Query = query) -> list[dict[str, Any]]:
                # Dashboards take percentiles from rollup histograms (within 2.53 %).
                events = rt.store.events_conn(c)
                return run_query(events, page.pid, query, timeout=timeout, approximate=True)

            rows = await rt.read(read)
        except DomainError as exc:
            tile["error"] = exc.message
            continue
        if widget["chart_config"].get("per_minute"):
            rows = rules.per_minute(query, rows)
        if widget["chart_type"] in ("PIVOT_TABLE", "NUMBER"):
            tile["table"] = charts.table(query, rows)
        else:
            tile["chart"] = charts.figure(f"widget-{index}", widget["chart_type"], query, rows)
    return tiles


@router.get("/project/{project_id}/dashboards/{dashboard_id}")
async def dashboard_page(request: Request, project_id: str, dashboard_id: str) -> Response:
    """A dashboard's widgets over the chosen range (default: the last 7 days)."""
    page = await project_page(request, project_id)
    return await _dashboard_response(request, page, dashboard_id)


async def _dashboard_response(
    request: Request,
    page: Page,
    dashboard_id: str,
    *,
    error: str = "",
    form: Form | None = None,
) -> Response:
    rt = rt_of(request)
    store = rt.store.dashboards
    dashboard = await rt.read(lambda c: store.get_dashboard(c, page.pid, dashboard_id))
    if dashboard is None:
        raise not_found("Dashboard")
    window = bounded_range(request.query_params)
    tiles = await _tiles(request, page, dashboard, window.start, window.end)
    views = {name: VIEWS[name] for name in UI_VIEWS}
    return render(
        request,
        "dashboard.html",
        {
            "d": dashboard,
            "tiles": tiles,
            "p": window.params,
            "window": window,
            "ranges": tuple(METRIC_RANGES),
            "range_error": window.error,
            "error": error,
            "form": form,
            "f": dict(form.pairs) if form else {},
            "url": dashboards_url,
            "views": UI_VIEWS,
            "measures": sorted({m for v in views.values() for m in v.measures}),
            "dimensions": sorted({d for v in views.values() for d in v.dimensions_for(1)}),
            "aggregations": AGGREGATIONS,
            "chart_types": rules.CHART_LABELS,
            "filter_types": FILTER_TYPES,
            "operators": sorted({op for ops in OPERATORS.values() for op in ops}),
            "grid": rules.GRID_COLUMNS,
        },
        page=page,
        status=400 if error else 200,
    )


def _filter_value(kind: str, text: str) -> Any:
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            raise rules.InvalidDashboard(f"filter value: not a number: {text!r}") from None
    if kind in ("stringOptions", "arrayOptions", "categoryOptions"):
        return [part.strip() for part in text.split(",") if part.strip()]
    if kind == "boolean":
        return text.lower() in ("true", "1", "yes")
    return "" if kind == "null" else text


def _widget_body(form: Form) -> dict[str, Any]:
    """The widget the add-widget form describes, as an API body."""
    dimension = form.get("dimension")
    filters = []
    if form.get("filter_column"):
        kind = form.get("filter_type") or "string"
        filters.append(
            {
                "column": form.get("filter_column"),
                "operator": form.get("filter_operator") or "=",
                "type": kind,
                "value": _filter_value(kind, form.get("filter_value")),
            }
        )
    return {
        "name": form.get("name"),
        "view": form.get("view"),
        "dimensions": [{"field": dimension}] if dimension else [],
        "metrics": [{"measure": form.get("measure"), "agg": form.get("aggregation")}],
        "filters": filters,
        "chartType": form.get("chart_type"),
    }


def _int(form: Form, name: str) -> int | None:
    text = form.get(name)
    try:
        return int(text) if text else None
    except ValueError:
        raise rules.InvalidDashboard(f"{name}: expected a whole number") from None


@router.post("/project/{project_id}/dashboards/{dashboard_id}/widgets")
async def add_widget(request: Request, project_id: str, dashboard_id: str) -> Response:
    """Create a widget from the form and place it below the dashboard's tiles."""
    page, form = await page_form(request, project_id, "edit_dashboards")
    store = rt_of(request).store.dashboards
    try:
        fields = rules.check_widget(_widget_body(form), legacy=True)
        size = {"width": _int(form, "width"), "height": _int(form, "height")}
    except rules.InvalidDashboard as exc:
        return await _dashboard_response(request, page, dashboard_id, error=exc.message, form=form)

    def work(c: Conn) -> bool:
        dashboard = store.get_dashboard(c, page.pid, dashboard_id)
        if dashboard is None:
            return False
        widget = store.create_widget(c, page.pid, fields)
        placement = rules.add_placement(
            dashboard["definition"], {"widgetId": widget["id"], **size}, str(uuid.uuid4())
        )
        definition = {"widgets": [*dashboard["definition"]["widgets"], placement]}
        store.update_dashboard(c, page.pid, dashboard_id, {"definition": definition})
        return True

    try:
        found = await rt_of(request).write(work)
    except rules.InvalidDashboard as exc:
        return await _dashboard_response(request, page, dashboard_id, error=exc.message, form=form)
    if not found:
        raise not_found("Dashboard")
    return redirect(dashboards_url(page.pid, dashboard_id) + _range_query(form))


def _range_query(form: Form) -> str:
    """The dashboard's range the form was posted from, as its page's query string."""
    back = form.get("back")
    return back if back.startswith("?") else ""


def _drop_orphans(store: Dashboards, c: Conn, project_id: str, widget_ids: list[str]) -> None:
    """Delete the widgets no dashboard places any more (the UI's widgets live on one)."""
    for widget_id in set(widget_ids):
        if not store.dashboards_placing(c, project_id, widget_id):
            store.delete_widget(c, project_id, widget_id)


@router.post("/project/{project_id}/dashboards/{dashboard_id}/placements/{placement_id}")
async def edit_placement(
    request: Request, project_id: str, dashboard_id: str, placement_id: str
) -> Response:
    """Move or resize a tile (``action=save``) or remove it (``action=remove``; its
    widget goes too when no other dashboard places it)."""
    page, form = await page_form(request, project_id, "edit_dashboards")
    store = rt_of(request).store.dashboards
    remove = form.get("action") == "remove"
    try:
        move = {k: _int(form, k) for k in ("x", "y", "width", "height")}
    except rules.InvalidDashboard as exc:
        return await _dashboard_response(request, page, dashboard_id, error=exc.message)

    def work(c: Conn) -> bool:
        dashboard = store.get_dashboard(c, page.pid, dashboard_id)
        if dashboard is None:
            return False
        placements = dashboard["definition"]["widgets"]
        found = next((p for p in placements if p["id"] == placement_id), None)
        if found is None:
            return False
        if remove:
            kept = [p for p in placements if p is not found]
        else:
            moved = rules.move_placement(found, move)
            kept = [moved if p is found else p for p in placements]
        store.update_dashboard(c, page.pid, dashboard_id, {"definition": {"widgets": kept}})
        if remove:
            _drop_orphans(store, c, page.pid, [found["widgetId"]])
        return True

    try:
        done = await rt_of(request).write(work)
    except rules.InvalidDashboard as exc:
        return await _dashboard_response(request, page, dashboard_id, error=exc.message)
    if not done:
        raise not_found("Tile")
    return redirect(dashboards_url(page.pid, dashboard_id) + _range_query(form))


@router.post("/project/{project_id}/dashboards/{dashboard_id}/settings")
async def edit_dashboard(request: Request, project_id: str, dashboard_id: str) -> Response:
    """Rename the dashboard (``action=save``) or delete it (``action=delete``, with the
    widgets no other dashboard places)."""
    page, form = await page_form(request, project_id, "edit_dashboards")
    store = rt_of(request).store.dashboards
    if form.get("action") == "delete":

        def delete(c: Conn) -> bool:
            dashboard = store.get_dashboard(c, page.pid, dashboard_id)
            if dashboard is None:
                return False
            store.delete_dashboard(c, page.pid, dashboard_id)
            _drop_orphans(store, c, page.pid, rules.placed_widgets(dashboard["definition"]))
            return True

        if not await rt_of(request).write(delete):
            raise not_found("Dashboard")
        return redirect(dashboards_url(page.pid))
    try:
        fields = rules.check_dashboard_update(
            {"name": form.get("name"), "description": form.get("description")}
        )
    except rules.InvalidDashboard as exc:
        return await _dashboard_response(request, page, dashboard_id, error=exc.message)
    row = await rt_of(request).write(
        lambda c: store.update_dashboard(c, page.pid, dashboard_id, fields)
    )
    if row is None:
        raise not_found("Dashboard")
    return redirect(dashboards_url(page.pid, dashboard_id) + _range_query(form))
