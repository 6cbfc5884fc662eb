"""The A/B test pages of a test without data (a new draft, a metric nobody recorded
yet) and of a comparison by cost or latency (read as sums: no distribution): they
render the variants with zero counts instead of failing."""

from __future__ import annotations

import re

from conftest import Browser
from helpers import event, iso

AB = "/api/public/ab-tests"


def _variants_shown(html: str, table: str) -> list[str]:
    found = re.search(rf'data-testid="{table}">(.*?)</table>', html, re.S)
    assert found, f"no {table} on the page"
    return re.findall(r'<tr data-variant="([^"]*)">', found.group(1))


def test_pages_of_a_test_without_data_render(two_projects) -> None:
    client: Browser
    client, a, _ = two_projects
    configs = (
        {"name": "user_rating", "dataType": "NUMERIC", "minValue": 1, "maxValue": 5},
        {"name": "verdict", "dataType": "CATEGORICAL",
         "categories": [{"label": "good", "value": 1}, {"label": "bad", "value": 0}]},
    )  # fmt: skip
    for config in configs:
        made = client.post("/api/public/score-configs", json=config, auth=a.auth)
        assert made.status_code == 200, made.text
    for name, metric in (("fresh-cost", "cost"), ("fresh-latency", "latency"),
                         ("fresh-score", "user_rating"), ("fresh-verdict", "verdict")):  # fmt: skip
        body = {
            "name": name,
            "variants": [{"name": "A", "weight": 50}, {"name": "B", "weight": 50}],
            "primaryMetric": metric,
        }
        created = client.post(AB, json=body, auth=a.auth)
        assert created.status_code in (200, 201), created.text
    assert client.login("viewer-a@example.com") == 303
    for name in ("fresh-cost", "fresh-latency", "fresh-score", "fresh-verdict"):
        page = client.get(f"/project/{a.id}/ab-tests/{name}")
        assert page.status_code == 200, page.text[-2000:]
        assert _variants_shown(page.text, "readout-table") == ["A", "B"]
        assert _variants_shown(page.text, "operational-table") == ["A", "B"]
        assert re.search(r'<tr data-variant="A"><td>A</td><td>0</td>', page.text)
        assert 'data-testid="chart-distribution"' not in page.text
    # Another metric for the same test, from the page's query: the same.
    page = client.get(f"/project/{a.id}/ab-tests/fresh-score?metric=latency")
    assert page.status_code == 200 and _variants_shown(page.text, "readout-table") == ["A", "B"]


def test_comparison_by_cost_or_latency_renders(two_projects) -> None:
    client: Browser
    client, a, _ = two_projects
    batch = [
        event("trace-create", {"id": f"t{i}", "timestamp": iso(), "metadata": {"variant": v}})
        for i, v in enumerate("AAB")
    ]
    sent = client.post("/api/public/ingestion", json={"batch": batch}, auth=a.auth)
    assert sent.status_code == 207 and not sent.json()["errors"], sent.text
    assert client.login("viewer-a@example.com") == 303
    base = f"/project/{a.id}/ab-tests/compare"
    for query in ("by=tag&metric=cost", "groupBy=metadata.variant&metric=latency",
                  "metric=cost&control=B"):  # fmt: skip
        page = client.get(f"{base}?{query}")
        assert page.status_code == 200, page.text[-2000:]
        shown = _variants_shown(page.text, "readout-table")
        assert sorted(shown) == ["A", "B"], query
        assert 'data-testid="chart-distribution"' not in page.text
