"""The evaluation judge's own traces (environment ``lanterna-evaluation``) are not the
app's spend: budgets, alert rules, the metrics page and the dashboards leave them out
unless an environment filter asks for them, from the rollups (whole hours) and raw rows
(partial hours) alike; the public metrics API answers what it is asked (both backends).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import pytest

from helpers import ingest
from lanterna.accounts import store as accounts
from lanterna.analytics import dashboards
from lanterna.analytics.alert_metrics import MetricSpec, measure, query_of
from lanterna.analytics.query import explain, parse_query, run_query
from lanterna.store.db import Database
from support import SECRETS, Api

pytestmark = pytest.mark.clickhouse

PASSWORD = "app traffic password"
SECRETS.add(PASSWORD)
DAY = (datetime.fromisoformat("2026-03-02T00:00:00+00:00"),
       datetime.fromisoformat("2026-03-03T00:00:00+00:00"))  # fmt: skip
APP_COST, JUDGE_COST = 1.25, 0.5


def generation(at: str, cost: float, environment: str) -> list[dict[str, Any]]:
    """A trace with one generation costing ``cost`` (as the judge's traces are made)."""
    trace_id = str(uuid.uuid4())
    trace = {"id": trace_id, "name": "t", "timestamp": at, "environment": environment}
    body = {"id": str(uuid.uuid4()), "traceId": trace_id, "name": "llm", "startTime": at,
            "environment": environment, "model": "gpt-4o-mini",
            "costDetails": {"input": cost / 2, "output": cost / 2}}  # fmt: skip
    return [
        {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": at, "body": trace},
        {"id": str(uuid.uuid4()), "type": "generation-create", "timestamp": at, "body": body},
    ]


@pytest.fixture
def seeded(api: Api) -> Api:
    ingest(api, *generation("2026-03-02T10:15:00Z", APP_COST, "production"))
    ingest(api, *generation("2026-03-02T10:20:00Z", JUDGE_COST, "lanterna-evaluation"))
    return api


def test_budgets_count_the_apps_spend_only(seeded):
    budget = seeded.post(
        "/api/public/budgets",
        json={"name": "daily", "scope": "project", "period": "day", "limitUsd": 10},
    )
    assert budget.status_code == 200, budget.text
    status = seeded.get(
        f"/api/public/budgets/{budget.json()['id']}/status",
        params={"at": "2026-03-02T15:00:00Z"},
    ).json()
    assert status["spentUsd"] == pytest.approx(APP_COST)


@pytest.mark.parametrize(
    ("start", "end"),
    [DAY, (datetime.fromisoformat("2026-03-02T10:10:00+00:00"), DAY[1])],
    ids=["whole-hours", "partial-hour"],
)
def test_alert_rules_leave_out_the_judge_unless_filtered_for(seeded, start, end):
    rt = seeded.app.state.runtime
    pid = seeded.project.id

    def reading(spec: MetricSpec) -> Any:
        return rt.read_sync(lambda c: measure(rt.store.events_conn(c), pid, spec, start, end))

    assert reading(MetricSpec("total_cost")).value == pytest.approx(APP_COST)
    assert reading(MetricSpec("count")).value == 1
    judge = MetricSpec("total_cost", {"environment": "lanterna-evaluation"})
    assert reading(judge).value == pytest.approx(JUDGE_COST)
    # Leaving it out changes no query's path (rollups or raw rows).
    for metric in ("total_cost", "count", "tokens", "error_rate"):
        body = query_of(MetricSpec(metric), *DAY)
        assert body["filters"][-1]["operator"] == "none of"
        unfiltered = {**body, "filters": body["filters"][:-1]}
        paths = [explain(parse_query(b, version=2)).path for b in (body, unfiltered)]
        assert paths[0] == paths[1], metric


def test_dashboards_leave_out_the_judge_unless_filtered_for(seeded):
    rt = seeded.app.state.runtime
    pid = seeded.project.id
    (cost_widget,) = [w for w in dashboards.default_widgets() if w["name"].startswith("Cost by")]
    widget = {**cost_widget, "chart_type": "NUMBER", "dimensions": []}

    def total(filters: list[dict[str, Any]]) -> float:
        query = dashboards.widget_query(widget, *DAY, filters)
        assert explain(query, approximate=True).path == "rollup"
        rows = rt.read_sync(
            lambda c: run_query(rt.store.events_conn(c), pid, query, approximate=True)
        )
        return float(rows[0]["sum_totalCost"])

    assert total([]) == pytest.approx(APP_COST)
    judge = [{"type": "stringOptions", "column": "environment", "operator": "any of",
              "value": ["lanterna-evaluation"]}]  # fmt: skip
    assert total(judge) == pytest.approx(JUDGE_COST)


def test_the_metrics_page_shows_the_apps_cost_and_the_api_answers_what_it_is_asked(seeded):
    db = Database(seeded.app.state.runtime.db.url)
    try:
        with db.transaction() as conn:
            user = accounts.create_user(conn, "owner@example.com", PASSWORD, is_admin=False)
            accounts.set_member(conn, user, seeded.project.id, "owner")
    finally:
        db.close()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', seeded.get("/login").text)
    assert csrf
    form = {"csrf_token": csrf.group(1), "email": "owner@example.com", "password": PASSWORD}
    assert seeded.post("/login", data=form, follow_redirects=False).status_code == 303
    page = f"/project/{seeded.project.id}/metrics"
    window = {"range": "custom", "from": "2026-03-02T00:00", "to": "2026-03-03T00:00"}

    def shown_cost(**extra: str) -> float:
        html = seeded.get(page, params={**window, **extra}, auth=None)
        assert html.status_code == 200, html.text
        found = re.search(r'data-kpi="cost" data-value="([^"]*)"', html.text)
        assert found, "no cost on the page"
        return float(found.group(1))

    assert shown_cost() == pytest.approx(APP_COST)
    assert shown_cost(env="lanterna-evaluation") == pytest.approx(JUDGE_COST)
    assert shown_cost(env="production") == pytest.approx(APP_COST)
    # The public metrics API (Langfuse's) sums what it is asked: every environment.
    daily = seeded.get(
        "/api/public/metrics/daily",
        params={"fromTimestamp": "2026-03-02T00:00:00Z", "toTimestamp": "2026-03-03T00:00:00Z"},
    ).json()
    assert sum(d["totalCost"] for d in daily["data"]) == pytest.approx(APP_COST + JUDGE_COST)
