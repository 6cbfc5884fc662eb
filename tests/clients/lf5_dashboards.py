"""Build a dashboard with the official Langfuse 5.x SDK's ``api.unstable`` clients:
create a widget and a dashboard, place, move and remove the widget, list, read, update
and delete, and a refused widget.

Run under .venvs/langfuse5 by tests/test_dashboards_api.py, configured by
LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_BASE_URL. Prints one JSON line:
what the SDK parsed from each answer (its model classes and typed fields).
"""

from __future__ import annotations

import json
from typing import Any

from langfuse import Langfuse
from langfuse.api.core.api_error import ApiError
from langfuse.api.unstable import (
    CreateDashboardPlacementRequest_Widget,
    DashboardWidgetChartConfigInput,
    DashboardWidgetDimension,
    DashboardWidgetFilter,
    DashboardWidgetMetric,
)


def placement(p: Any) -> dict[str, Any]:
    """A parsed placement's class and fields."""
    return {
        "class": type(p).__name__,
        "id": p.id,
        "widgetId": p.widget_id,
        "box": [p.x, p.y, p.width, p.height],
    }


def main() -> None:
    api = Langfuse().api.unstable
    widget = api.dashboard_widgets.create(
        name="p95 latency by model",
        view="observations",
        dimensions=[DashboardWidgetDimension(field="providedModelName")],
        metrics=[DashboardWidgetMetric(measure="latency", agg="p95")],
        filters=[
            DashboardWidgetFilter(column="type", operator="=", type="string", value="GENERATION")
        ],
        chart_type="LINE_TIME_SERIES",
        chart_config=DashboardWidgetChartConfigInput(row_limit=20),
    )
    board = api.dashboards.create(name="Latency", description="for on-call")
    placed = api.dashboards.add_placement(
        board.id, request=CreateDashboardPlacementRequest_Widget(widget_id=widget.id)
    )
    moved = api.dashboards.update_placement(board.id, placed.id, x=6, width=6, height=4)
    fetched = api.dashboards.get(board.id)
    listed = api.dashboards.list(limit=10)
    widgets = api.dashboard_widgets.list()
    renamed = api.dashboard_widgets.update(widget.id, name="p95 latency", chart_type="NUMBER")
    try:
        api.dashboard_widgets.create(
            name="bad",
            view="observations",
            dimensions=[],
            metrics=[DashboardWidgetMetric(measure="colour", agg="sum")],
            filters=[],
            chart_type="NUMBER",
        )
        refused: Any = None
    except ApiError as exc:
        # The SDK parses the unstable API's error envelope: {message, code, details}.
        refused = [exc.status_code, type(exc.body).__name__, exc.body.message, str(exc.body.code)]
    removed = api.dashboards.delete_placement(board.id, placed.id)
    deleted_widget = api.dashboard_widgets.delete(widget.id)
    deleted_board = api.dashboards.delete(board.id)
    print(
        json.dumps(
            {
                "widget": {
                    "class": type(widget).__name__,
                    "view": str(widget.view),
                    "chartType": str(widget.chart_type),
                    "rowLimit": widget.chart_config.row_limit,
                    "createdAtType": type(widget.created_at).__name__,
                    "filters": [f.column for f in widget.filters],
                },
                "board": {"class": type(board).__name__, "description": board.description},
                "placed": placement(placed),
                "moved": placement(moved),
                "fetched": [placement(p) for p in fetched.definition.widgets],
                "listed": [[d.id == board.id, d.name] for d in listed.data],
                "listedMeta": listed.meta.total_items,
                "widgets": [w.name for w in widgets.data],
                "renamed": [renamed.name, str(renamed.chart_type), renamed.chart_config.type],
                "refused": refused,
                "deleted": [removed.message, deleted_widget.message, deleted_board.message],
            }
        )
    )


if __name__ == "__main__":
    main()
