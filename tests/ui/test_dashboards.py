"""Custom dashboards in the web UI through the real app: the default dashboard (created
once per project), the forms that add, move, resize and remove widgets, rename and
delete a dashboard, roles, other projects, and user-written text escaped."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conftest import Browser
from helpers import event, ingest, iso

pytestmark = pytest.mark.clickhouse

WIDGETS = "/api/public/unstable/dashboard-widgets"


def _post(client: Browser, page: str, target: str, **data: Any) -> Any:
    """Post a form of ``page`` to ``target``."""
    token = client.csrf(page)
    return client.post(target, data={"csrf_token": token, **data}, follow_redirects=False)


def _dashboard_ids(client: Browser, pid: str) -> list[str]:
    html = client.get(f"/project/{pid}/dashboards").text
    return re.findall(rf'href="/project/{pid}/dashboards/([0-9a-f-]+)"', html)


def _tiles(html: str) -> list[str]:
    return re.findall(r'data-testid="tile-title">([^<]*)<', html)


def _seed(client: Browser, auth: Any) -> None:
    """Two generations now (gpt-4o twice, one ERROR), so every default widget has data."""
    start = datetime.now(timezone.utc) - timedelta(minutes=20)
    events = []
    for i, (model, level) in enumerate((("gpt-4o", "DEFAULT"), ("gpt-4o", "ERROR"))):
        trace = str(uuid.uuid4())
        at = start + timedelta(minutes=i)
        events.append(
            event(
                "trace-create",
                {"id": trace, "name": "chat", "userId": "alice", "timestamp": iso(at)},
            )
        )
        events.append(
            event(
                "generation-create",
                {
                    "id": str(uuid.uuid4()),
                    "traceId": trace,
                    "model": model,
                    "level": level,
                    "startTime": iso(at),
                    "endTime": iso(at, seconds=1.5),
                    "usageDetails": {"input": 100, "output": 20},
                    "costDetails": {"total": 0.01},
                },
            )
        )
    ingest(client, *events, auth=auth)


def test_default_dashboard_is_created_once_and_draws_every_widget(two_projects) -> None:
    client, a, _ = two_projects
    _seed(client, a.auth)
    assert client.login("owner-a@example.com") == 303
    nav = client.get(f"/project/{a.id}/traces").text
    assert f'href="/project/{a.id}/dashboards"' in nav
    ids = _dashboard_ids(client, a.id)
    assert len(ids) == 1 and _dashboard_ids(client, a.id) == ids  # created once
    page = client.get(f"/project/{a.id}/dashboards/{ids[0]}?range=24h")
    assert page.status_code == 200
    assert _tiles(page.text) == [
        "Cost by model (USD)",
        "Trace latency p50 / p95 (ms)",
        "Tokens",
        "Error rate (traces with an ERROR observation)",
        "Requests per minute (traces)",
        "Top users by cost (USD)",
        "Top models by cost (USD)",
    ]
    assert 'role="alert"' not in page.text, page.text
    assert page.text.count('data-testid="tile-chart"') == 6
    assert "gpt-4o" in page.text and "alice" in page.text
    # The widgets are the API's too; deleting the default dashboard does not bring it back.
    assert client.get(WIDGETS, auth=a.auth).json()["meta"]["totalItems"] == 7
    response = _post(
        client,
        f"/project/{a.id}/dashboards/{ids[0]}",
        f"/project/{a.id}/dashboards/{ids[0]}/settings",
        action="delete",
    )
    assert response.status_code == 303
    assert _dashboard_ids(client, a.id) == []
    assert client.get(WIDGETS, auth=a.auth).json()["meta"]["totalItems"] == 0


def test_build_arrange_and_remove_widgets_with_the_forms(two_projects) -> None:
    client, a, _ = two_projects
    _seed(client, a.auth)
    assert client.login("owner-a@example.com") == 303
    listing = f"/project/{a.id}/dashboards"
    response = _post(client, listing, listing, name="Mine <b>", description="costs")
    assert response.status_code == 303
    board = response.headers["location"]
    page = client.get(board).text
    assert "Mine &lt;b&gt;" in page and "Mine <b>" not in page
    widget = {
        "name": "<script>alert(1)</script> tokens",
        "view": "observations",
        "measure": "totalTokens",
        "aggregation": "sum",
        "dimension": "providedModelName",
        "chart_type": "VERTICAL_BAR",
        "width": "12",
        "height": "5",
        "filter_column": "level",
        "filter_type": "string",
        "filter_operator": "=",
        "filter_value": "ERROR",
    }
    assert _post(client, board, board + "/widgets", **widget).status_code == 303
    page = client.get(board + "?range=24h").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; tokens" in page and "<script>alert" not in page
    island = re.search(r'data-chart="widget-0">([^<]*)<', page).group(1)
    assert '"y":[120]' in island.replace(" ", "")  # the one ERROR generation's tokens

    # The query layer's message for a widget it cannot answer; nothing stored.
    bad = {**widget, "measure": "colour"}
    response = _post(client, board, board + "/widgets", **bad)
    assert response.status_code == 400
    assert "Unknown measure &#39;colour&#39;" in response.text
    assert len(_tiles(client.get(board).text)) == 1

    placement = re.search(r'data-placement="([^"]+)"', page).group(1)
    moved = _post(
        client,
        board,
        f"{board}/placements/{placement}",
        action="save",
        x="2",
        y="1",
        width="6",
        height="4",
    )
    assert moved.status_code == 303
    page = client.get(board).text
    assert "grid-column: 3 / span 6; grid-row: 2 / span 4;" in page
    wide = _post(client, board, f"{board}/placements/{placement}", action="save", x="8", width="6")
    assert wide.status_code == 400 and "x + width" in wide.text
    removed = _post(client, board, f"{board}/placements/{placement}", action="remove")
    assert removed.status_code == 303
    assert _tiles(client.get(board).text) == []
    widgets = client.get(WIDGETS, auth=a.auth).json()["data"]
    assert all(w["name"] != widget["name"] for w in widgets)  # its widget went with it

    renamed = _post(
        client, board, board + "/settings", action="save", name="Renamed", description=""
    )
    assert renamed.status_code == 303
    assert "Renamed" in client.get(board).text


def test_viewers_read_and_other_projects_see_nothing(two_projects) -> None:
    client, a, _ = two_projects
    assert client.login("owner-a@example.com") == 303
    board = f"/project/{a.id}/dashboards/{_dashboard_ids(client, a.id)[0]}"
    token = client.csrf(board)

    viewer = Browser(client.app, client=("127.0.0.1", 50011))
    assert viewer.login("viewer-a@example.com") == 303
    page = viewer.get(board)
    assert page.status_code == 200 and "Add a widget" not in page.text
    refused = viewer.post(
        board + "/settings",
        data={"csrf_token": viewer.csrf(board), "action": "delete"},
        follow_redirects=False,
    )
    assert refused.status_code == 403

    other = Browser(client.app, client=("127.0.0.1", 50012))
    assert other.login("owner-b@example.com") == 303
    assert other.get(board).status_code == 404
    assert (
        client.post(
            board + "/settings", data={"csrf_token": "nope", "action": "delete"}
        ).status_code
        == 403
    )
    assert client.get(board).status_code == 200
    assert token


def test_every_chart_type_of_an_api_built_dashboard_draws(two_projects) -> None:
    client, a, _ = two_projects
    _seed(client, a.auth)
    assert client.login("owner-a@example.com") == 303
    base = {"view": "observations", "filters": [], "dimensions": []}
    cost = [{"measure": "totalCost", "agg": "sum"}]
    bodies = [
        {**base, "name": "area", "metrics": cost, "chartType": "AREA_TIME_SERIES"},
        {**base, "name": "pie", "metrics": [{"measure": "count", "agg": "count"}],
         "dimensions": [{"field": "level"}], "chartType": "PIE"},
        {**base, "name": "number", "metrics": cost, "chartType": "NUMBER"},
        {**base, "name": "histogram", "metrics": [{"measure": "latency", "agg": "histogram"}],
         "chartType": "HISTOGRAM", "chartConfig": {"bins": 4}},
        {**base, "name": "scores", "view": "scores-numeric",
         "metrics": [{"measure": "value", "agg": "avg"}], "chartType": "PIVOT_TABLE"},
    ]  # fmt: skip
    ids = []
    for body in bodies:
        response = client.post(WIDGETS, json=body, auth=a.auth)
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    # Only ERROR observations on this dashboard: its filter joins each widget's.
    errors = [{"column": "level", "operator": "=", "value": "ERROR", "type": "string"}]
    placements = [
        {
            "type": "widget",
            "id": f"p{i}",
            "widgetId": w,
            "x": 0,
            "y": 6 * i,
            "width": 12,
            "height": 6,
        }
        for i, w in enumerate(ids[:4])
    ]
    board = client.post(
        "/api/public/unstable/dashboards",
        json={"name": "All kinds", "definition": {"widgets": placements}, "filters": errors},
        auth=a.auth,
    ).json()
    path = f"/project/{a.id}/dashboards/{board['id']}?range=24h"
    page = client.get(path).text
    assert _tiles(page) == ["area", "pie", "number", "histogram"]
    assert 'role="alert"' not in page, page
    assert re.search(r'data-testid="tile-number">\s*0\.01\s*<', page)  # the ERROR one's cost
    pie = re.search(r'data-chart="widget-1">([^<]*)<', page).group(1).replace(" ", "")
    assert '"labels":["ERROR"]' in pie and '"values":[1]' in pie
    histogram = re.search(r'data-chart="widget-3">([^<]*)<', page).group(1).replace(" ", "")
    assert '"y":[1]' in histogram  # one ERROR observation, one bin
    # A filter the widget's view lacks: that tile shows the query layer's message.
    score_tile = {"type": "widget", "id": "s", "widgetId": ids[4], "x": 0, "y": 30, "width": 6,
                  "height": 4}  # fmt: skip
    placed = client.post(
        f"/api/public/unstable/dashboards/{board['id']}/placements", json=score_tile, auth=a.auth
    )
    assert placed.status_code == 200, placed.text
    page = client.get(path).text
    assert page.count('role="alert"') == 1 and "level" in page.split('role="alert"')[1][:300]
    assert _tiles(page)[-1] == "scores" and page.count('data-testid="tile-chart"') == 3
