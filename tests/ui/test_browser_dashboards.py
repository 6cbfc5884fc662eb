"""In a real browser: build a dashboard with two widgets through the page's forms,
reload, and see the same charts, plotting the values the ingested data gives."""

from __future__ import annotations

import html
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from seed import _event, ingest

from conftest import Site, login, shot

#: A model name that would run script if a chart read it as markup.
XSS_MODEL = '<img src=x onerror="alert(1)">'
#: Generations ingested: (model, cost in USD), all within the last hour.
GENERATIONS = [
    ("gpt-4o", 0.05),
    ("gpt-4o", 0.03),
    ("gpt-4o-mini", 0.002),
    ("claude-3", 0.04),
    (XSS_MODEL, 0.001),
]


def _seed(site: Site) -> None:
    start = datetime.now(timezone.utc) - timedelta(minutes=40)
    events = []
    for i, (model, cost) in enumerate(GENERATIONS):
        at = start + timedelta(minutes=5 * i)
        trace = str(uuid.uuid4())
        events.append(_event("trace-create", {"id": trace, "name": "chat", "userId": "u"}, at))
        body = {
            "id": str(uuid.uuid4()),
            "traceId": trace,
            "name": "llm",
            "model": model,
            "startTime": at.isoformat(),
            "endTime": (at + timedelta(seconds=1)).isoformat(),
            "usageDetails": {"input": 10, "output": 5},
            "costDetails": {"total": cost},
        }
        events.append(_event("generation-create", body, at))
    ingest(site.url, site.project.auth, events)


def _add_widget(page: Any, **fields: str) -> None:
    page.locator("[data-testid=add-widget] summary").click()
    form = page.locator("[data-testid=add-widget] form")
    for name, value in fields.items():
        target = form.locator(f"[name={name}]")
        if target.evaluate("e => e.tagName") == "SELECT":
            target.select_option(value)
        else:
            target.fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()


def _plotted(page: Any) -> dict[str, list[dict[str, Any]]]:
    """Each drawn tile's title and the traces plotly holds (x, y, name)."""
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=tile-chart][data-rendered=true]').length == 2"
    )
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-testid=tile]')].map(
            t => [t.querySelector('[data-testid=tile-title]').textContent,
                  t.querySelector('.js-plotly-plot').data.map(
                    d => ({name: d.name, x: Array.from(d.x), y: Array.from(d.y)}))]))"""
    )


def test_build_a_dashboard_with_two_widgets_and_reload(site: Site, page) -> None:
    _seed(site)
    login(page, site.url, site.owner)
    page.goto(site.path("dashboards"))
    page.locator("nav.sidebar a:text('Dashboards')").wait_for()
    page.locator("details:has([data-testid=new-dashboard]) summary").click()
    page.fill("[data-testid=new-dashboard] input[name=name]", "Model spend")
    page.click("[data-testid=new-dashboard] button[type=submit]")
    page.wait_for_load_state()
    assert page.get_by_test_id("dashboard-name").inner_text() == "Model spend"

    _add_widget(
        page,
        name="Cost by model",
        view="observations",
        measure="totalCost",
        aggregation="sum",
        dimension="providedModelName",
        chart_type="HORIZONTAL_BAR",
        width="6",
    )
    _add_widget(
        page,
        name="Generations over time",
        view="observations",
        measure="count",
        aggregation="count",
        chart_type="LINE_TIME_SERIES",
        width="6",
        filter_column="type",
        filter_operator="=",
        filter_value="GENERATION",
    )
    page.goto(page.url.split("?")[0] + "?range=24h")
    before = _plotted(page)
    page.reload()
    after = _plotted(page)
    assert after == before
    assert list(after) == ["Cost by model", "Generations over time"]

    (bars,) = after["Cost by model"]
    expected: dict[str, float] = {}
    for model, cost in GENERATIONS:
        expected[model] = expected.get(model, 0.0) + cost
    # Horizontal: models on y, as text (plotly shows the entities as the characters).
    plotted = dict(zip([html.unescape(m) for m in bars["y"]], bars["x"], strict=True))
    assert set(plotted) == set(expected)
    for model, total in expected.items():
        assert abs(plotted[model] - total) < 1e-9, (model, plotted[model], total)
    # Largest first from the top: plotly draws the first category at the bottom.
    assert bars["y"][-1] == max(expected, key=expected.__getitem__)

    (line,) = after["Generations over time"]
    assert sum(line["y"]) == len(GENERATIONS)
    label = page.locator("[data-testid=tile-chart] .ytick text", has_text="onerror")
    assert label.first.text_content() == XSS_MODEL  # shown as text; no dialog opened
    tiles = page.get_by_test_id("tile")
    assert tiles.count() == 2
    # Each new tile goes below the others (x 0, 6 of 12 columns wide).
    boxes = [tiles.nth(i).bounding_box() for i in range(2)]
    assert boxes[1]["y"] > boxes[0]["y"] and boxes[1]["x"] == boxes[0]["x"]
    shot(page, "dashboard")

    # The project's default dashboard draws all its charts too.
    page.goto(site.path("dashboards"))
    page.locator("[data-testid=dashboards-table] a:text('Overview')").click()
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=tile-chart][data-rendered=true]').length == 6"
    )
    models = {m for m, _ in GENERATIONS}
    assert page.get_by_test_id("tile-table").locator("tbody tr").count() == len(models)
    shot(page, "dashboard-default")
