"""The Alerts page through the real app on both backends: an admin previews, creates,
changes and deletes a rule with the form; a bad rule is refused naming the field and
nothing is stored; the rule's chart holds the metric and the threshold line; the
history shows what the evaluator recorded; viewers and members see rules but get no
forms and their posts are refused; another project's people get 404."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import Browser, add_user
from helpers import event, iso
from lanterna.server.app import create_app
from lanterna.timeutil import now
from support import Project, make_settings, new_project

FORM = {
    "name": "errors", "description": "", "metric": "error_rate", "score_name": "",
    "window_minutes": "5", "mode": "threshold", "comparator": ">", "threshold": "5",
    "baseline": "same_hour_last_week", "factor": "", "interval_seconds": "60",
    "min_samples": "1", "cooldown_minutes": "10", "renotify_minutes": "0",
    "channel_ids": "ops", "notify_resolved": "on", "enabled": "on", "action": "save",
}  # fmt: skip


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[tuple[Browser, Project, Project]]:
    settings = make_settings(db_url, tmp_path)
    settings.alert_tick_seconds = 0  # the test ticks the evaluator itself
    app = create_app(settings)
    a, b = new_project(db_url, "A"), new_project(db_url, "B")
    for email, role in [("admin", "admin"), ("member", "member"), ("viewer", "viewer")]:
        add_user(db_url, f"{email}@example.com", {a.id: role})
    add_user(db_url, "owner-b@example.com", {b.id: "owner"})
    with Browser(app, client=("127.0.0.1", 50000)) as client:
        yield client, a, b


def _post(client: Browser, path: str, form: dict[str, str], page: str) -> Any:
    data = {"csrf_token": client.csrf(page), **form}
    return client.post(path, data=data, follow_redirects=False)


def _chart(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" data-chart="[^"]+">(.*?)</script>', html)
    assert found, "no chart on the page"
    return json.loads(found.group(1))


def test_an_admin_previews_creates_changes_and_deletes_a_rule(site) -> None:
    client, a, _ = site
    assert client.login("admin@example.com") == 303
    base = f"/project/{a.id}/alerts"
    # Some errors in the last minutes, so the chart has values.
    at = now() - timedelta(minutes=2)
    batch = [
        event("span-create", {"id": f"o{i}", "traceId": f"t{i}", "startTime": iso(at),
                               "endTime": iso(at), "level": "ERROR" if i < 3 else "DEFAULT"})
        for i in range(10)
    ]  # fmt: skip
    assert (
        client.post("/api/public/ingestion", json={"batch": batch}, auth=a.auth).status_code == 207
    )

    preview = _post(client, base, {**FORM, "action": "preview"}, base)
    assert preview.status_code == 200
    chart = _chart(preview.text)
    assert [t["name"] for t in chart["data"]] == ["error rate", "threshold"]
    assert set(chart["data"][1]["y"]) == {5.0} and chart["data"][0]["y"][-1] == 30.0
    assert client.get("/api/public/alerts/rules", auth=a.auth).json()["data"] == []

    created = _post(client, base, FORM, base)
    assert created.status_code == 303
    rule_url = created.headers["location"]
    [rule] = client.get("/api/public/alerts/rules", auth=a.auth).json()["data"]
    assert rule_url == f"{base}/{rule['id']}"
    assert rule["windowSeconds"] == 300 and rule["cooldownSeconds"] == 600
    assert rule["channelIds"] == ["ops"] and rule["threshold"] == 5.0
    page = client.get(rule_url)
    assert "error rate &gt; 5% over 5 minutes" in page.text
    assert _chart(page.text)["data"][1]["y"][-1] == 5.0

    changed = {**FORM, "mode": "baseline", "baseline": "last_24_hours", "factor": "3",
               "filter_environment": "production", "filter_metadata": "team=red"}  # fmt: skip
    assert _post(client, rule_url, changed, rule_url).status_code == 303
    rule = client.get(f"/api/public/alerts/rules/{rule['id']}", auth=a.auth).json()
    assert rule["mode"] == "baseline" and rule["factor"] == 3.0 and rule["threshold"] is None
    assert rule["filters"] == {"environment": "production", "metadata": {"team": "red"}}

    # The evaluator's record shows in the history on both pages.
    client.app.state.runtime.evaluator.tick(now())  # type: ignore[attr-defined]
    assert client.get(f"/api/public/alerts/rules/{rule['id']}", auth=a.auth).json()["state"][
        "evaluatedAt"
    ]
    listing = client.get(base)
    assert 'data-testid="rules-table"' in listing.text and ">errors</a>" in listing.text

    assert _post(client, f"{rule_url}/delete", {}, rule_url).status_code == 303
    assert client.get(rule_url).status_code == 404


def test_a_bad_rule_form_names_the_field_and_stores_nothing(site) -> None:
    client, a, _ = site
    assert client.login("admin@example.com") == 303
    base = f"/project/{a.id}/alerts"
    for form, field in [
        ({**FORM, "window_minutes": "0.5"}, "windowSeconds"),
        ({**FORM, "window_minutes": "1441"}, "windowSeconds"),
        ({**FORM, "threshold": "lots"}, "threshold"),
        ({**FORM, "mode": "baseline", "factor": ""}, "factor"),
        ({**FORM, "filter_metadata": "team"}, "filters.metadata"),
        ({**FORM, "metric": "happiness"}, "metric"),
    ]:
        response = _post(client, base, form, base)
        assert response.status_code == 400, form
        assert re.search(rf'data-testid="alert-error">{re.escape(field)}:', response.text), field
    assert client.get("/api/public/alerts/rules", auth=a.auth).json()["data"] == []


def test_viewers_and_members_see_rules_but_cannot_change_them(site) -> None:
    client, a, b = site
    made = client.post(
        "/api/public/alerts/rules",
        json={"name": "errors", "metric": "error_rate", "threshold": 5},
        auth=a.auth,
    ).json()
    rule_url = f"/project/{a.id}/alerts/{made['id']}"
    for who in ("viewer", "member"):
        assert client.login(f"{who}@example.com") == 303
        listing = client.get(f"/project/{a.id}/alerts")
        assert listing.status_code == 200 and ">errors</a>" in listing.text
        assert 'data-testid="rule-form"' not in listing.text
        page = client.get(rule_url)
        assert page.status_code == 200 and 'data-testid="rule-chart"' in page.text
        assert 'data-testid="rule-form"' not in page.text
        assert 'data-testid="delete-rule"' not in page.text
        for path in (f"/project/{a.id}/alerts", rule_url, f"{rule_url}/delete"):
            response = _post(client, path, {**FORM, "threshold": "1"}, rule_url)
            assert response.status_code == 403, (who, path)
        client.cookies.clear()
    assert client.get(f"/api/public/alerts/rules/{made['id']}", auth=a.auth).json() == made
    # Another project's owner: as if it did not exist.
    assert client.login("owner-b@example.com") == 303
    assert client.get(rule_url).status_code == 404
    assert client.get(f"/project/{b.id}/alerts/{made['id']}").status_code == 404


def test_the_history_names_a_budget_whose_crossing_it_records(site) -> None:
    client, a, _ = site
    made = client.post(
        "/api/public/budgets",
        json={"name": "Team spend", "limitUsd": 1, "period": "total"},
        auth=a.auth,
    )
    assert made.status_code == 200, made.text
    at = now() - timedelta(minutes=1)
    batch = [
        event("trace-create", {"id": "t1", "name": "t", "timestamp": iso(at)}),
        event("generation-create", {"id": "g1", "traceId": "t1", "startTime": iso(at),
                                     "costDetails": {"total": 2.0}}),
    ]  # fmt: skip
    assert (
        client.post("/api/public/ingestion", json={"batch": batch}, auth=a.auth).status_code == 207
    )
    client.app.state.runtime.evaluator.tick(now())  # type: ignore[attr-defined]
    assert client.login("admin@example.com") == 303
    page = client.get(f"/project/{a.id}/alerts").text
    assert 'data-testid="history-budget">budget: Team spend</a>' in page
