"""The Scores page: the list with filters by name, source, data type, value and time,
and each score name's distribution (histogram for numbers, counts for the others)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from seed import seed_basic

from conftest import Browser, Site, login, shot
from helpers import event, iso
from lanterna.server.app import create_app
from lanterna.server.ui import metrics_page
from support import make_settings, new_project


def _score(base: str, auth: tuple[str, str], body: dict[str, Any]) -> None:
    response = httpx.post(f"{base}/api/public/scores", json=body, auth=auth)
    assert response.status_code == 200, response.text


def _seed(site: Site) -> dict[str, Any]:
    ids = seed_basic(site.url, site.project.auth)
    turns = ids["turns"]
    for i, label in enumerate(["good", "good", "bad"]):
        _score(site.url, site.project.auth, {
            "traceId": turns[i], "name": "verdict", "value": label,
            "dataType": "CATEGORICAL", "source": "ANNOTATION",
        })  # fmt: skip
    _score(site.url, site.project.auth, {
        "traceId": turns[2], "name": "helpful", "value": 1, "dataType": "BOOLEAN",
        "comment": "<b>bold</b> & <script>alert(1)</script>",
    })  # fmt: skip
    # Many distinct values: a histogram of ranges.
    for i in range(40):
        _score(site.url, site.project.auth, {
            "traceId": turns[i % 3], "name": "similarity", "value": i / 40,
        })  # fmt: skip
    return ids


def _rows(page: Any) -> list[str]:
    return page.locator("[data-testid=scores-table] tbody tr[data-score-id]").all_inner_texts()


def _dist(page: Any, name: str) -> Any:
    return page.locator(f"[data-testid=score-distribution][data-score-name='{name}']")


def test_scores_page_lists_filters_and_shows_distributions(site: Site, page) -> None:
    _seed(site)
    login(page, site.url, site.viewer)
    page.click("nav.sidebar a:text('Scores')")
    page.wait_for_load_state()
    assert page.url == site.path("scores")
    assert "48 scores" in page.locator(".page-head").inner_text()
    assert len(_rows(page)) == 48
    # Ratings take few values: a bar per value with its count.
    rating = _dist(page, "user_rating")
    assert "NUMERIC" in rating.inner_text() and "avg 3" in rating.inner_text()
    cells = rating.locator("[data-testid=distribution-table] tbody tr").all_inner_texts()
    assert [c.split("\t") for c in cells] == [["1", "1"], ["3", "1"], ["5", "1"]]
    # Forty distinct values: twenty ranges holding two each.
    sim = _dist(page, "similarity").locator("[data-testid=distribution-table] tbody tr")
    assert sim.count() == 20
    assert sim.first.inner_text().split("\t") == ["0 \u2013 0.049", "2"]
    # Categories and booleans: counts per value.
    verdict = _dist(page, "verdict").locator("[data-testid=distribution-table] tbody tr")
    assert [r.split("\t") for r in verdict.all_inner_texts()] == [["good", "2"], ["bad", "1"]]
    assert "True\t1" in _dist(page, "helpful").inner_text()
    page.wait_for_selector("#chart-score-0[data-rendered=true]")
    shot(page, "scores-page")

    # Filters go in the URL, through the form.
    page.fill("input[name=name]", "verdict")
    page.fill("input[name=value]", "good")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    assert "name=verdict" in page.url and "value=good" in page.url
    rows = _rows(page)
    assert len(rows) == 2 and all("good" in r and "ANNOTATION" in r for r in rows)
    page.goto(site.path("scores?name=similarity&op=%3E%3D&value=0.9"))
    assert len(_rows(page)) == 4  # 0.9, 0.925, 0.95, 0.975
    page.goto(site.path("scores?source=ANNOTATION"))
    assert len(_rows(page)) == 3
    page.goto(site.path("scores?dataType=BOOLEAN"))
    rows = _rows(page)
    assert len(rows) == 1
    # What a user wrote is shown as text, never as markup.
    assert "<b>bold</b> & <script>alert(1)</script>" in rows[0]
    page.goto(site.path("scores?range=1h&name=user_rating"))
    assert len(_rows(page)) == 3
    # A trace link from a score opens its trace.
    page.locator("[data-testid=scores-table] tbody tr a").first.click()
    page.wait_for_load_state()
    assert "/traces/" in page.url


def test_scores_page_filters_over_http(db_url: str, tmp_path) -> None:
    project = new_project(db_url)
    app = create_app(make_settings(db_url, tmp_path))
    with Browser(app, client=("127.0.0.1", 50000)) as client:
        old = (datetime.now(timezone.utc) - timedelta(days=3)).isoformat()
        batch = [
            event("trace-create", {"id": "t1", "name": "one", "timestamp": iso()}),
            event("score-create", {"id": "s-old", "traceId": "t1", "name": "acc",
                                   "value": 0.2, "timestamp": old}),
            event("score-create", {"id": "s-new", "traceId": "t1", "name": "acc", "value": 0.8,
                                   "timestamp": datetime.now(timezone.utc).isoformat()}),
        ]  # fmt: skip
        sent = client.post("/api/public/ingestion", json={"batch": batch}, auth=project.auth)
        assert sent.status_code == 207 and not sent.json()["errors"], sent.text
        from conftest import add_user

        add_user(db_url, "v@example.com", {project.id: "viewer"})
        assert client.login("v@example.com") == 303
        base = f"/project/{project.id}/scores"
        page = client.get(base)
        assert page.status_code == 200 and 'data-score-id="s-old"' in page.text
        page = client.get(base + "?range=24h")
        assert 'data-score-id="s-new"' in page.text and 'data-score-id="s-old"' not in page.text
        page = client.get(base + "?op=%3C&value=0.5")
        assert 'data-score-id="s-old"' in page.text and 'data-score-id="s-new"' not in page.text
        # Bad filters: a message and a 400, not a crash.
        page = client.get(base + "?op=%3E&value=high")
        assert page.status_code == 400 and "needs a number" in page.text
        page = client.get(base + "?source=ROBOT")
        assert page.status_code == 400 and "source: one of" in page.text
        # Another project's scores page: not found.
        other = new_project(db_url, "Other")
        assert client.get(f"/project/{other.id}/scores").status_code == 404


def test_category_labels_reach_the_chart_as_on_the_metrics_page(two_projects) -> None:
    """A category holding quotes and markup: ``<``, ``>`` and ``&`` escaped for plotly,
    quotes kept (plotly would show ``&quot;``), the metrics page's ``label``."""
    client, a, _ = two_projects
    value = 'say "hi" <b>now</b> & go'
    now = datetime.now(timezone.utc).isoformat()
    batch = [
        event("trace-create", {"id": "t1", "timestamp": now}),
        event("score-create", {"id": "s1", "traceId": "t1", "name": "tone", "value": value,
                               "dataType": "CATEGORICAL", "timestamp": now}),
    ]  # fmt: skip
    sent = client.post("/api/public/ingestion", json={"batch": batch}, auth=a.auth)
    assert sent.status_code == 207 and not sent.json()["errors"], sent.text
    assert client.login("viewer-a@example.com") == 303
    page = client.get(f"/project/{a.id}/scores")
    assert page.status_code == 200
    islands = re.findall(
        r'<script type="application/json" data-chart="[^"]+">(.*?)</script>', page.text
    )
    (x,) = [json.loads(island)["data"][0]["x"] for island in islands]
    assert x == [metrics_page.label(value)] == ['say "hi" &lt;b&gt;now&lt;/b&gt; &amp; go']
