"""Budget crossings notify the budget's channels, on both backends: a budget naming a
stored webhook channel (a loopback receiver, allowlisted) gets one signed ``fired``
message when spend passes the soft threshold and one when it passes the limit, nothing
on the ticks in between, and still one each when two evaluators tick at the same
instant. Also: ``channelIds`` on the budgets API (an unknown or another project's
channel is a 400 naming it) and the budget's entries in the alert history. Time is
given to each tick, never waited for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from test_channels_api import _signed_by, _webhook

from alert_receivers import Receiver, http_receiver
from lanterna.cli import main
from lanterna.server.app import create_app
from lanterna.server.channel_ops import rule_channels
from support import make_settings, new_project
from test_alerts import Api, evaluator, evaluator_pair, tick_together
from test_budgets_api import spend

pytestmark = pytest.mark.clickhouse

SECRET = "whsec-budget-0123456789"
BUDGETS = "/api/public/budgets"
DAY = datetime(2024, 5, 8, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def setup(
    db_url: str, events_url: str, tmp_path: Path
) -> Iterator[tuple[Api, Receiver, dict[str, Any]]]:
    """The app (background evaluator off, loopback allowed), a receiver, and a budget of
    $10 a day with the soft threshold at 80 % notifying a webhook on the receiver."""
    settings = make_settings(db_url, tmp_path)
    settings.events_url = events_url
    settings.alert_tick_seconds = 0
    settings.outbound_allow = "127.0.0.1"
    project = new_project(db_url)
    with Api(create_app(settings)) as api, http_receiver() as receiver:
        api.project = project
        api.auth = project.auth
        hook = _webhook(api, receiver.url, SECRET)
        body = {"name": "Daily spend", "period": "day", "limitUsd": 10, "channelIds": [hook["id"]]}
        r = api.post(BUDGETS, json=body)
        assert r.status_code == 200, r.text
        yield api, receiver, r.json()


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    for r in receiver.requests:
        assert _signed_by(SECRET, r.headers, r.body)
    return [json.loads(r.body) for r in receiver.requests]


def test_a_budget_notifies_its_channel_once_per_crossing(setup):
    api, receiver, budget = setup
    assert budget["channelIds"] and budget["status"]["state"] == "ok"
    tick = evaluator(api).tick
    spend(api, iso(DAY + HOUR), 7.0)
    tick(DAY + 2 * HOUR)
    assert receiver.requests == []  # 70 %: below the soft threshold
    spend(api, iso(DAY + 2 * HOUR), 1.5)
    tick(DAY + 3 * HOUR)
    (soft,) = bodies(receiver)
    assert soft["kind"] == "fired"
    assert soft["rule"] == {"id": budget["id"], "name": "Daily spend"}
    assert soft["details"]["source"] == "budget" and soft["details"]["level"] == "soft"
    assert soft["value"] == pytest.approx(8.5) and soft["threshold"] == pytest.approx(8.0)
    writer = api.app.state.runtime.writer  # type: ignore[attr-defined]
    commits = writer.commits
    tick(DAY + 4 * HOUR)
    assert len(receiver.requests) == 1  # recorded: not again
    assert writer.commits == commits  # nothing new: the spend was read, nothing written
    spend(api, iso(DAY + 4 * HOUR), 2.0)
    tick(DAY + 5 * HOUR)
    tick(DAY + 6 * HOUR)
    _, over = bodies(receiver)
    assert over["kind"] == "fired" and over["details"]["level"] == "exceeded"
    assert over["value"] == pytest.approx(10.5) and over["threshold"] == 10.0
    r = api.get("/api/public/alerts/history", params={"limit": 50})
    assert r.status_code == 200, r.text
    entries = list(reversed(r.json()["data"]))
    assert [(e["source"], e["ruleId"], e["kind"]) for e in entries] == [
        ("budget", budget["id"], kind) for kind in ("fired", "notified") * 2
    ]
    assert entries[1]["channelId"] == budget["channelIds"][0]


def test_two_evaluators_ticking_at_once_notify_each_crossing_once(
    setup, db_url: str, events_url: str
):
    api, receiver, _ = setup
    channels_for = rule_channels(api.app.state.runtime)  # type: ignore[attr-defined]
    with evaluator_pair(db_url, channels_for, events_url) as evaluators:
        spend(api, iso(DAY + HOUR), 9.0)
        tick_together(evaluators, DAY + 2 * HOUR)
        assert [b["details"]["level"] for b in bodies(receiver)] == ["soft"]
        spend(api, iso(DAY + 2 * HOUR), 3.0)
        tick_together(evaluators, DAY + 3 * HOUR)
        tick_together(evaluators, DAY + 4 * HOUR)
    assert [b["details"]["level"] for b in bodies(receiver)] == ["soft", "exceeded"]
    r = api.get("/api/public/alerts/history", params={"limit": 50})
    kinds = [e["kind"] for e in reversed(r.json()["data"])]
    assert kinds == ["fired", "notified", "fired", "notified"]


def test_budget_channels_must_be_the_projects_own(setup, db_url: str):
    api, receiver, budget = setup
    path = f"{BUDGETS}/{budget['id']}"

    def refused(r: Any) -> None:
        assert r.status_code == 400, r.text
        assert "channelIds" in r.json()["message"], r.text

    refused(api.post(BUDGETS, json={"name": "x", "limitUsd": 1, "channelIds": ["nope"]}))
    refused(api.post(BUDGETS, json={"name": "x", "limitUsd": 1, "channelIds": "nope"}))
    other = new_project(db_url, "Other")
    hook = {"name": "Theirs", "type": "webhook", "config": {"url": receiver.url, "secret": SECRET}}
    made = api.post("/api/public/alert-channels", json=hook, auth=other.auth)
    assert made.status_code == 200, made.text
    theirs = made.json()
    refused(api.post(BUDGETS, json={"name": "x", "limitUsd": 1, "channelIds": [theirs["id"]]}))
    refused(api.patch(path, json={"channelIds": [theirs["id"]]}))
    names = [b["name"] for b in api.get(BUDGETS).json()["data"]]
    assert names == ["Daily spend"]  # nothing half-written
    assert api.get(path).json()["channelIds"] == budget["channelIds"]
    cleared = api.patch(path, json={"channelIds": []})
    assert cleared.status_code == 200 and cleared.json()["channelIds"] == []


def test_lanterna_worker_notifies_a_budget_crossing_once(
    setup,
    db_url: str,
    events_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    """The worker's own channel lookup (server key from the data dir, the allowlist from
    the environment) at its own clock: an all-time budget already past its limit."""
    api, receiver, daily = setup
    body = {"name": "All time", "period": "total", "limitUsd": 1, "channelIds": daily["channelIds"]}
    made = api.post(BUDGETS, json=body)
    assert made.status_code == 200, made.text
    spend(api, iso(DAY + HOUR), 2.0)
    monkeypatch.setenv("LANTERNA_OUTBOUND_ALLOW", "127.0.0.1")
    data_dir = api.app.state.runtime.settings.data_dir  # type: ignore[attr-defined]
    args = ["worker", "--once", "--data-dir", data_dir]
    if not db_url.startswith("sqlite"):
        args += ["--database-url", db_url]
    if events_url:
        args += ["--events-url", events_url]
    assert main(args) == 0
    assert main(args) == 0
    (over,) = bodies(receiver)
    assert over["rule"] == {"id": made.json()["id"], "name": "All time"}
    assert over["details"]["level"] == "exceeded"
    assert capsys.readouterr().out.count("evaluated 0 rule(s)") == 2
