"""Custom dashboards and widgets through Langfuse's unstable routes
(``/api/public/unstable/dashboards``, ``.../placements``, ``/api/public/unstable/
dashboard-widgets``): create, list, get, update, delete, placements, 400s naming the
field, 404s and 409s, and one project never seeing another's.

Every test runs on SQLite and PostgreSQL through the in-process app.
"""

from __future__ import annotations

from typing import Any

import pytest

from lanterna.analytics.dashboards import per_minute, widget_query
from support import run_sdk_script

pytestmark = pytest.mark.clickhouse

DASHBOARDS = "/api/public/unstable/dashboards"
WIDGETS = "/api/public/unstable/dashboard-widgets"
WIDGET_KEYS = {
    "id", "createdAt", "updatedAt", "name", "description", "view", "dimensions", "metrics",
    "filters", "chartType", "chartConfig",
}  # fmt: skip
DASHBOARD_KEYS = {"id", "createdAt", "updatedAt", "name", "description", "definition", "filters"}


def widget_body(**more: Any) -> dict[str, Any]:
    """A valid widget: cost by model over time."""
    body: dict[str, Any] = {
        "name": "Cost by model",
        "view": "observations",
        "dimensions": [{"field": "providedModelName"}],
        "metrics": [{"measure": "totalCost", "agg": "sum"}],
        "filters": [],
        "chartType": "LINE_TIME_SERIES",
    }
    body.update(more)
    return body


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def refused(response: Any, words: str, status: int = 400) -> None:
    """An error whose message names the problem."""
    assert response.status_code == status, response.text
    assert words in response.json()["message"], response.json()


def new_widget(api: Any, **more: Any) -> dict[str, Any]:
    return ok(api.post(WIDGETS, json=widget_body(**more)))


def new_dashboard(api: Any, **body: Any) -> dict[str, Any]:
    return ok(api.post(DASHBOARDS, json={"name": "Costs", **body}))


# --- widgets -------------------------------------------------------------------------


def test_widget_create_get_list_update_delete(api):
    widget = new_widget(api, description="per model")
    assert set(widget) == WIDGET_KEYS
    assert widget["chartConfig"] == {"type": "LINE_TIME_SERIES"}
    assert widget["description"] == "per model"
    assert widget["metrics"] == [{"measure": "totalCost", "agg": "sum"}]
    assert ok(api.get(f"{WIDGETS}/{widget['id']}")) == widget

    second = new_widget(
        api,
        name="Latency",
        view="observations",
        dimensions=[],
        metrics=[{"measure": "latency", "agg": "p95"}],
        chartType="NUMBER",
        chartConfig={"row_limit": 5},
    )
    listed = ok(api.get(WIDGETS))
    assert [w["id"] for w in listed["data"]] == [second["id"], widget["id"]]  # newest first
    assert listed["meta"] == {"page": 1, "limit": 50, "totalItems": 2, "totalPages": 1}
    assert [w["id"] for w in ok(api.get(WIDGETS, params={"limit": 1, "page": 2}))["data"]] == [
        widget["id"]
    ]

    # Changing chartType without chartConfig resets the config; other fields stay.
    changed = ok(api.patch(f"{WIDGETS}/{second['id']}", json={"chartType": "HORIZONTAL_BAR"}))
    assert changed["chartConfig"] == {"type": "HORIZONTAL_BAR"}
    assert changed["metrics"] == [{"measure": "latency", "agg": "p95"}]
    renamed = ok(api.patch(f"{WIDGETS}/{second['id']}", json={"name": "p95 latency"}))
    assert renamed["name"] == "p95 latency" and renamed["chartType"] == "HORIZONTAL_BAR"
    assert ok(api.get(f"{WIDGETS}/{second['id']}"))["name"] == "p95 latency"

    assert ok(api.delete(f"{WIDGETS}/{second['id']}"))["message"]
    assert api.get(f"{WIDGETS}/{second['id']}").status_code == 404
    assert api.delete(f"{WIDGETS}/{second['id']}").status_code == 404
    assert ok(api.get(WIDGETS))["meta"]["totalItems"] == 1


def test_widget_bad_input_names_the_field(api):
    refused(api.post(WIDGETS, json=widget_body(name="")), "name")
    body = widget_body()
    del body["chartType"]
    refused(api.post(WIDGETS, json=body), "chartType: required")
    refused(api.post(WIDGETS, json=widget_body(chartType="DONUT")), "chartType")
    refused(api.post(WIDGETS, json=widget_body(view="traces")), "view")
    refused(
        api.post(WIDGETS, json=widget_body(metrics=[{"measure": "totalCost"}])), "metrics[0].agg"
    )
    refused(
        api.post(WIDGETS, json=widget_body(chartConfig={"type": "PIE"})),
        "chartConfig.type",
    )
    refused(api.post(WIDGETS, json=widget_body(chartConfig={"bins": 0})), "chartConfig.bins")
    # The query layer's own messages: unknown measure, dimension, filter column.
    refused(
        api.post(WIDGETS, json=widget_body(metrics=[{"measure": "nope", "agg": "sum"}])),
        "Unknown measure 'nope'",
    )
    refused(
        api.post(WIDGETS, json=widget_body(dimensions=[{"field": "colour"}])),
        "Unknown dimension 'colour'",
    )
    refused(
        api.post(WIDGETS, json=widget_body(dimensions=[{"field": "userId"}])),
        "Dimension 'userId'",
    )
    bad_filter = [{"column": "colour", "operator": "=", "value": "x", "type": "string"}]
    refused(api.post(WIDGETS, json=widget_body(filters=bad_filter)), "colour")
    refused(api.post(WIDGETS, content=b"{nope", headers={"content-type": "application/json"}), "")
    widget = new_widget(api)
    refused(api.patch(f"{WIDGETS}/{widget['id']}", json={}), "at least one")
    refused(api.patch(f"{WIDGETS}/{widget['id']}", json={"view": "traces"}), "view")
    refused(
        api.patch(f"{WIDGETS}/{widget['id']}", json={"metrics": [{"measure": "x", "agg": "sum"}]}),
        "Unknown measure 'x'",
    )
    assert ok(api.get(f"{WIDGETS}/{widget['id']}"))["metrics"] == widget["metrics"]
    refused(api.get(WIDGETS, params={"limit": 0}), "Invalid request data")


def test_histogram_widgets_take_histogram_metrics(api):
    histogram = {"measure": "latency", "agg": "histogram"}
    refused(api.post(WIDGETS, json=widget_body(metrics=[histogram])), "HISTOGRAM")
    widget = new_widget(
        api, dimensions=[], metrics=[histogram], chartType="HISTOGRAM", chartConfig={"bins": 20}
    )
    assert widget["chartConfig"] == {"type": "HISTOGRAM", "bins": 20}


# --- dashboards and placements -------------------------------------------------------


def test_dashboard_create_get_list_update_delete(api):
    dashboard = new_dashboard(api)
    assert set(dashboard) == DASHBOARD_KEYS
    assert dashboard["description"] == "" and dashboard["definition"] == {"widgets": []}
    assert dashboard["filters"] == []
    widget = new_widget(api)
    env = [{"column": "environment", "operator": "=", "value": "prod", "type": "string"}]
    placement = {
        "type": "widget", "id": "p1", "widgetId": widget["id"], "x": 0, "y": 0, "width": 12,
        "height": 4,
    }  # fmt: skip
    second = new_dashboard(
        api,
        name="Latency",
        description="for on-call",
        definition={"widgets": [placement]},
        filters=env,
    )
    assert second["definition"] == {"widgets": [placement]} and second["filters"] == env
    assert ok(api.get(f"{DASHBOARDS}/{second['id']}")) == second
    listed = ok(api.get(DASHBOARDS))
    assert [d["id"] for d in listed["data"]] == [second["id"], dashboard["id"]]
    assert listed["meta"]["totalItems"] == 2

    updated = ok(api.patch(f"{DASHBOARDS}/{dashboard['id']}", json={"name": "Spend"}))
    assert updated["name"] == "Spend" and updated["definition"] == {"widgets": []}
    assert ok(api.get(DASHBOARDS))["data"][0]["id"] == dashboard["id"]
    emptied = ok(api.patch(f"{DASHBOARDS}/{second['id']}", json={"definition": {"widgets": []}}))
    assert emptied["definition"] == {"widgets": []} and emptied["filters"] == env

    assert ok(api.delete(f"{DASHBOARDS}/{dashboard['id']}"))["message"]
    assert api.get(f"{DASHBOARDS}/{dashboard['id']}").status_code == 404
    assert api.delete(f"{DASHBOARDS}/{dashboard['id']}").status_code == 404
    assert api.patch(f"{DASHBOARDS}/{dashboard['id']}", json={"name": "x"}).status_code == 404


def test_dashboard_bad_input(api):
    refused(api.post(DASHBOARDS, json={}), "name: required")
    refused(api.post(DASHBOARDS, json={"name": 3}), "name")
    refused(api.post(DASHBOARDS, json={"name": "x", "filters": [{"column": "a"}]}), "filters[0]")
    refused(api.post(DASHBOARDS, json={"name": "x", "definition": {}}), "definition")
    missing = {"type": "widget", "id": "p", "widgetId": "nope", "x": 0, "y": 0, "width": 6,
               "height": 6}  # fmt: skip
    refused(
        api.post(DASHBOARDS, json={"name": "x", "definition": {"widgets": [missing]}}),
        "definition.widgets[0].widgetId",
    )
    widget = new_widget(api)
    wide = {**missing, "widgetId": widget["id"], "x": 8}
    refused(
        api.post(DASHBOARDS, json={"name": "x", "definition": {"widgets": [wide]}}),
        "x + width",
    )
    no_height = {k: v for k, v in wide.items() if k != "height"} | {"x": 0}
    refused(
        api.post(DASHBOARDS, json={"name": "x", "definition": {"widgets": [no_height]}}),
        "definition.widgets[0].height",
    )
    dashboard = new_dashboard(api)
    refused(api.patch(f"{DASHBOARDS}/{dashboard['id']}", json={}), "at least one")
    many = [{**wide, "x": 0, "id": f"p{i}"} for i in range(101)]
    refused(
        api.patch(f"{DASHBOARDS}/{dashboard['id']}", json={"definition": {"widgets": many}}),
        "at most 100",
    )


def test_placements_add_move_remove(api):
    dashboard = new_dashboard(api)
    first, second = new_widget(api), new_widget(api, name="Other")
    path = f"{DASHBOARDS}/{dashboard['id']}/placements"
    placed = ok(api.post(path, json={"widgetId": first["id"]}))
    assert placed["type"] == "widget" and placed["widgetId"] == first["id"] and placed["id"]
    assert (placed["x"], placed["y"], placed["width"], placed["height"]) == (0, 0, 6, 6)
    # Appended below every existing tile when no position is given.
    below = ok(api.post(path, json={"type": "widget", "id": "mine", "widgetId": second["id"]}))
    assert (below["id"], below["y"]) == ("mine", 6)
    beside = ok(api.post(path, json={"widgetId": second["id"], "x": 6, "y": 0, "width": 6}))
    assert (beside["x"], beside["y"], beside["height"]) == (6, 0, 6)
    stored = ok(api.get(f"{DASHBOARDS}/{dashboard['id']}"))["definition"]["widgets"]
    assert [p["id"] for p in stored] == [placed["id"], "mine", beside["id"]]

    refused(api.post(path, json={"id": "mine", "widgetId": first["id"]}), "mine", 409)
    assert api.post(path, json={"widgetId": "nope"}).status_code == 404
    assert (
        api.post(f"{DASHBOARDS}/nope/placements", json={"widgetId": first["id"]}).status_code == 404
    )
    refused(api.post(path, json={"type": "preset", "presetId": "latency"}), "presetId")
    refused(api.post(path, json={}), "widgetId")
    refused(api.post(path, json={"widgetId": first["id"], "width": 13}), "width")

    moved = ok(api.patch(f"{path}/mine", json={"x": 3, "height": 2}))
    assert (moved["x"], moved["y"], moved["width"], moved["height"]) == (3, 6, 6, 2)
    refused(api.patch(f"{path}/mine", json={}), "at least one")
    refused(api.patch(f"{path}/mine", json={"x": 9}), "x + width")
    assert api.patch(f"{path}/nope", json={"x": 1}).status_code == 404
    stored = ok(api.get(f"{DASHBOARDS}/{dashboard['id']}"))["definition"]["widgets"]
    assert stored[1] == moved

    # A placed widget cannot be deleted (409) until its placements are removed.
    refused(api.delete(f"{WIDGETS}/{second['id']}"), "placed", 409)
    assert ok(api.delete(f"{path}/mine"))["message"]
    assert api.delete(f"{path}/mine").status_code == 404
    refused(api.delete(f"{WIDGETS}/{second['id']}"), "placed", 409)
    assert ok(api.delete(f"{path}/{beside['id']}"))["message"]
    assert ok(api.delete(f"{WIDGETS}/{second['id']}"))["message"]
    stored = ok(api.get(f"{DASHBOARDS}/{dashboard['id']}"))["definition"]["widgets"]
    assert [p["id"] for p in stored] == [placed["id"]]
    # Deleting the dashboard keeps its widgets.
    ok(api.delete(f"{DASHBOARDS}/{dashboard['id']}"))
    assert ok(api.get(f"{WIDGETS}/{first['id']}"))["id"] == first["id"]


def test_projects_do_not_see_each_others_dashboards(api):
    widget = new_widget(api)
    dashboard = new_dashboard(api)
    other = api.new_project()
    for path in (f"{WIDGETS}/{widget['id']}", f"{DASHBOARDS}/{dashboard['id']}"):
        assert api.get(path, auth=other.auth).status_code == 404
        assert api.patch(path, json={"name": "x"}, auth=other.auth).status_code == 404
        assert api.delete(path, auth=other.auth).status_code == 404
    assert ok(api.get(WIDGETS, auth=other.auth))["data"] == []
    assert ok(api.get(DASHBOARDS, auth=other.auth))["data"] == []
    placements = f"{DASHBOARDS}/{dashboard['id']}/placements"
    assert api.post(placements, json={"widgetId": widget["id"]}, auth=other.auth).status_code == 404
    # Another project's widget cannot be placed on one's own dashboard.
    mine = ok(api.post(DASHBOARDS, json={"name": "Mine"}, auth=other.auth))
    response = api.post(
        f"{DASHBOARDS}/{mine['id']}/placements", json={"widgetId": widget["id"]}, auth=other.auth
    )
    assert response.status_code == 404
    assert api.get(DASHBOARDS, auth=("pk-lf-nope", "sk-lf-nope")).status_code == 401
    assert ok(api.get(f"{WIDGETS}/{widget['id']}"))["name"] == widget["name"]


def test_routes_are_in_the_openapi_document(api):
    paths = ok(api.get("/api/openapi.json"))["paths"]
    for path, methods in {
        DASHBOARDS: {"get", "post"},
        DASHBOARDS + "/{dashboard_id}": {"get", "patch", "delete"},
        DASHBOARDS + "/{dashboard_id}/placements": {"post"},
        DASHBOARDS + "/{dashboard_id}/placements/{placement_id}": {"patch", "delete"},
        WIDGETS: {"get", "post"},
        WIDGETS + "/{widget_id}": {"get", "patch", "delete"},
    }.items():
        assert methods <= set(paths[path]), path
    assert "requestBody" in paths[WIDGETS]["post"]


@pytest.mark.slow
def test_langfuse5_sdk_builds_a_dashboard(live_server):
    result = run_sdk_script("langfuse5", "lf5_dashboards.py", live_server)
    widget = result["widget"]
    assert widget["class"] == "DashboardWidget" and widget["createdAtType"] == "datetime"
    assert (widget["view"], widget["chartType"], widget["rowLimit"]) == (
        "observations",
        "LINE_TIME_SERIES",
        20,
    )
    assert widget["filters"] == ["type"]
    assert result["board"] == {"class": "Dashboard", "description": "for on-call"}
    placed, moved = result["placed"], result["moved"]
    assert placed["class"] == "DashboardPlacement_Widget" and placed["box"] == [0, 0, 6, 6]
    assert moved["id"] == placed["id"] and moved["box"] == [6, 0, 6, 4]
    assert result["fetched"] == [moved]
    assert result["listed"] == [[True, "Latency"]] and result["listedMeta"] == 1
    assert result["widgets"] == ["p95 latency by model"]
    assert result["renamed"] == ["p95 latency", "NUMBER", "NUMBER"]
    status, kind, message, code = result["refused"]
    assert (status, kind, code) == (400, "PublicApiError", "invalid_query")
    assert "Unknown measure 'colour'" in message
    assert all(result["deleted"])


def test_per_minute_divides_by_the_minutes_of_each_bucket_inside_the_range(api):
    """chartConfig.per_minute (a Lanterna extension): a time series' values divided by
    the minutes each bucket spends in the range, partial buckets by their part."""
    body = widget_body(chartType="LINE_TIME_SERIES", chartConfig={"per_minute": True})
    widget = new_widget(api, **body)
    assert widget["chartConfig"]["per_minute"] is True
    stored = {"view": "observations", "dimensions": [], "filters": [], "chart_type":
              "LINE_TIME_SERIES", "chart_config": {"per_minute": True},
              "metrics": [{"measure": "count", "agg": "count"}]}  # fmt: skip
    query = widget_query(stored, "2024-05-01T10:30:00Z", "2024-05-03T00:00:00Z")
    assert query.granularity == "hour"
    rows = [{"time_dimension": "2024-05-01T10:00:00.000Z", "count_count": 60},
            {"time_dimension": "2024-05-01T11:00:00.000Z", "count_count": 120}]  # fmt: skip
    assert [r["count_count"] for r in per_minute(query, rows)] == [2.0, 2.0]
    refused(
        api.post(WIDGETS, json=widget_body(chartType="PIE", chartConfig={"per_minute": True})),
        "chartConfig.per_minute",
    )
