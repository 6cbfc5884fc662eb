"""Alert rules end to end on both backends: the rules API (create, read, change, delete,
the 400s naming the field, project isolation), the evaluator driven tick by tick with an
injected time (fire once, no duplicate during the cooldown, one resolve, re-notify,
delivery errors in the history, baseline mode over a synthetic week), and the lease:
two evaluators on one database ticking at the same instant evaluate and notify once.

Channels are the other half of the seam (``alerts/message.py``): here a recording
channel (it keeps what it is handed) and a failing one stand in for webhook/Slack/email.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from alert_receivers import http_receiver
from helpers import event, iso
from lanterna.alerts.evaluator import Evaluator
from lanterna.alerts.message import AlertMessage, Channel, DeliveryError
from lanterna.cli import main
from lanterna.server.app import create_app
from lanterna.store.db import Database
from lanterna.store.writer import Writer
from support import Project, make_settings, new_project, store_of, wait_until

pytestmark = pytest.mark.clickhouse


class Api(TestClient):
    """The app in-process, authenticated as ``project`` by default (tests/conftest.py's
    ``Api``; not imported: tests/sdk has a conftest of its own)."""

    project: Project


NOW = datetime(2024, 5, 8, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


class Recording:
    """A channel that keeps every message it is handed (thread-safe)."""

    def __init__(self) -> None:
        self.messages: list[AlertMessage] = []
        self._lock = threading.Lock()

    def deliver(self, message: AlertMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def kinds(self) -> list[str]:
        return [m.kind for m in self.messages]


class Refusing:
    """A channel whose every delivery fails."""

    def deliver(self, message: AlertMessage) -> None:
        raise DeliveryError("receiver answered 503 after 3 attempts")


class Channels:
    """The lookup the evaluator takes: a rule's ``channelIds`` -> channels."""

    def __init__(self) -> None:
        self.by_id: dict[str, Channel] = {"rec": Recording(), "down": Refusing()}

    def __call__(self, rule: dict[str, Any]) -> Sequence[tuple[str, Channel]]:
        return [(i, self.by_id[i]) for i in rule["channel_ids"] if i in self.by_id]

    @property
    def rec(self) -> Recording:
        channel = self.by_id["rec"]
        assert isinstance(channel, Recording)
        return channel


@pytest.fixture
def channels() -> Channels:
    return Channels()


@pytest.fixture
def alerts_api(db_url: str, events_url: str, tmp_path: Path, channels: Channels) -> Iterator[Api]:
    """The app with its background evaluator off (tests tick it with their own time)."""
    settings = make_settings(db_url, tmp_path)
    settings.events_url = events_url
    settings.alert_tick_seconds = 0
    app = create_app(settings, alert_channels=channels)
    project = new_project(db_url)
    with Api(app, raise_server_exceptions=True) as client:
        client.project = project
        client.auth = project.auth
        yield client


def evaluator(api: Api) -> Evaluator:
    e: Evaluator = api.app.state.runtime.evaluator  # type: ignore[attr-defined]
    return e


def observations(start: datetime, count: int, errors: int = 0, **more: Any) -> list[dict]:
    """``count`` observations spread over the minute after ``start``, ``errors`` of them
    at level ERROR (each in a trace of its own)."""
    out = []
    for i in range(count):
        at = start + timedelta(seconds=60 * i / max(count, 1))
        body = {"id": f"o-{start.timestamp()}-{i}", "traceId": f"t-{start.timestamp()}-{i}",
                "name": "llm", "startTime": iso(at), "endTime": iso(at + timedelta(seconds=1)),
                "level": "ERROR" if i < errors else "DEFAULT", **more}  # fmt: skip
        out.append(event("span-create", body))
    return out


def send(api: Api, events: list[dict], auth: Any = None) -> None:
    for i in range(0, len(events), 500):
        r = api.post(
            "/api/public/ingestion", json={"batch": events[i : i + 500]}, auth=auth or api.auth
        )
        assert r.status_code == 207 and not r.json()["errors"], r.text


def create(api: Api, **body: Any) -> dict[str, Any]:
    rule = {"name": "errors", "metric": "error_rate", "comparator": ">", "threshold": 5,
            "windowSeconds": 300, "channelIds": ["rec"], **body}  # fmt: skip
    r = api.post("/api/public/alerts/rules", json=rule)
    assert r.status_code == 200, r.text
    return r.json()


def history(api: Api, rule_id: str) -> list[str]:
    r = api.get(f"/api/public/alerts/rules/{rule_id}/history", params={"limit": 100})
    assert r.status_code == 200, r.text
    return [e["kind"] for e in reversed(r.json()["data"])]


# --- the evaluator ----------------------------------------------------------------------


def test_an_error_burst_fires_once_and_resolves_once(alerts_api: Api, channels: Channels):
    api = alerts_api
    rule = create(api, cooldownSeconds=3600)
    # A burst: 100 observations over 5 minutes, 10 % errors.
    send(api, [e for m in range(5) for e in observations(NOW + m * MIN, 20, errors=2)])
    e = evaluator(api)
    [outcome] = e.tick(NOW + 5 * MIN)
    assert outcome.value == pytest.approx(10.0) and outcome.samples == 100
    assert channels.rec.kinds() == ["fired"]
    fired = channels.rec.messages[0]
    assert fired.rule_id == rule["id"] and fired.threshold == 5.0
    assert fired.condition == "error rate > 5% over 5 minutes"
    assert fired.url.endswith(f"/project/{api.project.id}/alerts/{rule['id']}")

    # Still failing a minute later: evaluated again (the interval is 60 s), not re-sent.
    assert e.tick(NOW + 5 * MIN + 30 * timedelta(seconds=1)) == []  # not due yet
    [again] = e.tick(NOW + 6 * MIN)
    assert again.status == "firing" and again.events == ()
    assert channels.rec.kinds() == ["fired"]

    # The errors stop: clean traffic; once the window holds no error, one resolve.
    send(api, [e for m in range(6, 13) for e in observations(NOW + m * MIN, 20)])
    for m in range(7, 15):
        e.tick(NOW + m * MIN)
    assert channels.rec.kinds() == ["fired", "resolved"]
    state = api.get(f"/api/public/alerts/rules/{rule['id']}").json()["state"]
    assert state["status"] == "ok" and state["value"] == 0.0

    # Errors again within the cooldown (an hour after the notification): recorded as
    # fired, not sent; nor is its resolve.
    send(api, [e for m in range(15, 20) for e in observations(NOW + m * MIN, 20, errors=5)])
    e.tick(NOW + 20 * MIN)
    send(api, [e for m in range(20, 26) for e in observations(NOW + m * MIN, 20)])
    e.tick(NOW + 26 * MIN)
    assert channels.rec.kinds() == ["fired", "resolved"]
    assert history(api, rule["id"]) == [
        "fired", "notified", "resolved", "notified", "fired", "resolved"
    ]  # fmt: skip


def test_renotify_and_delivery_errors_are_kept_in_the_history(alerts_api: Api, channels: Channels):
    api = alerts_api
    rule = create(api, channelIds=["rec", "down"], renotifySeconds=600, cooldownSeconds=0)
    send(api, [e for m in range(0, 20) for e in observations(NOW + m * MIN, 10, errors=3)])
    e = evaluator(api)
    for m in range(5, 21):  # 16 minutes of firing: sent at 5 and again at 15
        e.tick(NOW + m * MIN)
    assert channels.rec.kinds() == ["fired", "fired"]
    events = api.get(f"/api/public/alerts/rules/{rule['id']}/history").json()["data"]
    errors = [x for x in events if x["kind"] == "delivery_error"]
    assert len(errors) == 2 and errors[0]["channelId"] == "down"
    assert errors[0]["message"] == "receiver answered 503 after 3 attempts"
    whole = api.get("/api/public/alerts/history").json()
    assert whole["meta"]["totalItems"] == len(events) == 5  # fired + 2 x (notified, error)


def test_min_samples_and_filters_narrow_what_a_rule_sees(alerts_api: Api, channels: Channels):
    api = alerts_api
    few = create(api, name="few", minSamples=500)
    other_model = create(api, name="gpt", filters={"model": "gpt-4o"})
    mine = create(api, name="mine", filters={"observationName": "llm", "metadata": {"team": "red"}})
    send(api, observations(NOW, 50, errors=10, metadata={"team": "red"}))
    outcomes = {o.rule_id: o for o in evaluator(api).tick(NOW + MIN)}
    assert outcomes[few["id"]].status == "ok" and outcomes[few["id"]].samples == 50
    assert outcomes[other_model["id"]].samples == 0 and outcomes[other_model["id"]].value is None
    assert outcomes[mine["id"]].status == "firing" and outcomes[mine["id"]].value == 20.0
    assert [m.rule_id for m in channels.rec.messages] == [mine["id"]]


# --- baseline mode ----------------------------------------------------------------------


def _hourly(hour: datetime) -> int:
    """Normal traffic: a daily cycle between 6 and 14 observations an hour."""
    return round(10 + 4 * math.sin(2 * math.pi * hour.hour / 24))


def test_baseline_fires_on_a_three_fold_spike_not_on_daily_variation(
    alerts_api: Api, channels: Channels
):
    api = alerts_api
    end = NOW  # the spike is the hour before it
    start = end - timedelta(days=8)
    events = []
    hour = start
    while hour < end:
        n = _hourly(hour) * (3 if hour == end - timedelta(hours=1) else 1)
        events += observations(hour, n)
        hour += timedelta(hours=1)
    send(api, events)
    week = create(api, name="week", metric="count", mode="baseline",
                  baseline="same_hour_last_week", factor=2, windowSeconds=3600,
                  intervalSeconds=3600, threshold=None)  # fmt: skip
    day = create(api, name="day", metric="count", mode="baseline", baseline="last_24_hours",
                 factor=2, windowSeconds=3600, intervalSeconds=3600)  # fmt: skip
    e = evaluator(api)
    # A day of normal hours (peaks and troughs included): nothing fires.
    for h in range(24, 0, -1):
        for o in e.tick(end - timedelta(hours=h)):
            assert o.status == "ok", (h, o)
    # The spike hour: three times last week's same hour, and over twice the day's mean.
    outcomes = {o.rule_id: o for o in e.tick(end)}
    spike = _hourly(end - timedelta(hours=1)) * 3
    assert outcomes[week["id"]].value == spike
    assert outcomes[week["id"]].threshold == 2 * _hourly(end - timedelta(hours=1))
    assert outcomes[week["id"]].status == outcomes[day["id"]].status == "firing"
    assert sorted(m.rule_name for m in channels.rec.messages) == ["day", "week"]
    rule = api.get(f"/api/public/alerts/rules/{week['id']}").json()
    assert rule["condition"] == "observations > 2x the same window last week over 60 minutes"


# --- the lease: one evaluation per rule per tick ------------------------------------------


@contextmanager
def evaluator_pair(
    db_url: str, channels_for: Any, events_url: str = ""
) -> Iterator[list[Evaluator]]:
    """Two evaluators as two processes have them: each with its own database handle
    and writer, on one database (and the event store of ``events_url``)."""
    evaluators, parts = [], []
    try:
        for name in ("one", "two"):
            db = Database(db_url)
            writer = Writer(db)
            writer.start()
            parts.append((db, writer))
            evaluators.append(
                Evaluator(
                    db, store_of(events_url), writer.run_sync, channels_for=channels_for, owner=name
                )
            )
        yield evaluators
    finally:
        for db, writer in parts:
            writer.stop()
            db.close()


def tick_together(evaluators: list[Evaluator], at: datetime) -> dict[str, list]:
    """Every evaluator ticks at ``at`` at the same moment (a barrier); their outcomes."""
    barrier = threading.Barrier(len(evaluators))
    results: dict[str, list] = {}

    def run(ev: Evaluator) -> None:
        barrier.wait()
        results[ev.owner] = ev.tick(at)

    threads = [threading.Thread(target=run, args=(ev,)) for ev in evaluators]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_evaluators_on_one_database_evaluate_and_notify_once(
    alerts_api: Api, channels: Channels, db_url: str, events_url: str
):
    api = alerts_api
    rules = [create(api, name=f"r{i}") for i in range(5)]
    send(api, observations(NOW, 40, errors=10))
    with evaluator_pair(db_url, channels, events_url) as evaluators:
        results = tick_together(evaluators, NOW + MIN)
    evaluated = sorted(o.rule_id for outs in results.values() for o in outs)
    assert evaluated == sorted(r["id"] for r in rules)  # each exactly once
    assert sorted(m.rule_name for m in channels.rec.messages) == [f"r{i}" for i in range(5)]
    for r in rules:
        assert history(api, r["id"]) == ["fired", "notified"]


# --- the rules API ------------------------------------------------------------------------


def test_rules_api_create_read_change_delete(alerts_api: Api):
    api = alerts_api
    rule = create(api, description="when errors climb", filters={"environment": "production"})
    assert rule["mode"] == "threshold" and rule["intervalSeconds"] == 60
    assert rule["state"]["status"] == "ok" and rule["state"]["evaluatedAt"] is None
    assert rule["filters"] == {"environment": "production"}
    # A whole number written as a float is an integer to JSON Schema, and to the route.
    whole = create(api, name="whole", windowSeconds=600.0)
    assert whole["windowSeconds"] == 600 and isinstance(whole["windowSeconds"], int)
    assert api.delete(f"/api/public/alerts/rules/{whole['id']}").status_code == 200
    r = api.patch(f"/api/public/alerts/rules/{rule['id']}", json={"threshold": 7.5})
    assert r.status_code == 200 and r.json()["threshold"] == 7.5
    assert r.json()["description"] == "when errors climb"
    listed = api.get("/api/public/alerts/rules").json()
    assert [x["id"] for x in listed["data"]] == [rule["id"]]
    assert listed["meta"]["totalItems"] == 1
    assert api.delete(f"/api/public/alerts/rules/{rule['id']}").status_code == 200
    assert api.get(f"/api/public/alerts/rules/{rule['id']}").status_code == 404
    assert api.delete(f"/api/public/alerts/rules/{rule['id']}").status_code == 404
    spec = api.get("/api/openapi.json").json()
    assert {"/api/public/alerts/rules", "/api/public/alerts/rules/{rule_id}",
            "/api/public/alerts/rules/{rule_id}/history",
            "/api/public/alerts/history"} <= set(spec["paths"])  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metric": "happiness"}, "metric"),
        ({"windowSeconds": 30}, "windowSeconds"),
        ({"windowSeconds": 86401}, "windowSeconds"),
        ({"filters": {"colour": "red"}}, "filters.colour"),
        ({"filters": {"metadata": {"team": ["a"]}}}, "filters.metadata"),
        ({"threshold": None}, "threshold"),
        ({"threshold": "high"}, "threshold"),
        ({"comparator": "=="}, "comparator"),
        ({"mode": "baseline"}, "baseline"),
        ({"mode": "baseline", "baseline": "last_24_hours", "factor": 0}, "factor"),
        ({"metric": "score_avg"}, "scoreName"),
        ({"intervalSeconds": 1}, "intervalSeconds"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field_and_nothing_is_written(
    alerts_api: Api, body: dict[str, Any], field: str
):
    api = alerts_api
    base = {"name": "r", "metric": "error_rate", "threshold": 5}
    r = api.post("/api/public/alerts/rules", json={**base, **body})
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith(f"{field}:"), r.json()
    assert api.get("/api/public/alerts/rules").json()["data"] == []
    stored = create(api)
    r = api.patch(f"/api/public/alerts/rules/{stored['id']}", json=body)
    assert r.status_code == 400 and r.json()["message"].startswith(f"{field}:")
    assert api.get(f"/api/public/alerts/rules/{stored['id']}").json() == stored


def test_rules_and_their_evaluation_stay_in_their_project(alerts_api: Api, channels: Channels):
    api = alerts_api
    mine = create(api)
    other = new_project(api.app, "Other Project")
    theirs = api.post(
        "/api/public/alerts/rules",
        json={"name": "theirs", "metric": "error_rate", "threshold": 5, "channelIds": ["rec"]},
        auth=other.auth,
    ).json()
    for method, path in [("get", ""), ("patch", ""), ("delete", ""), ("get", "/history")]:
        body = {"threshold": 1} if method == "patch" else None
        url = f"/api/public/alerts/rules/{mine['id']}{path}"
        r = api.request(method, url, json=body, auth=other.auth)
        assert r.status_code == 404, (method, path)
    assert [
        x["id"] for x in api.get("/api/public/alerts/rules", auth=other.auth).json()["data"]
    ] == [theirs["id"]]
    # Errors in this project fire this project's rule only.
    send(api, observations(NOW, 20, errors=5))
    evaluator(api).tick(NOW + MIN)
    assert [m.rule_id for m in channels.rec.messages] == [mine["id"]]
    assert api.get("/api/public/alerts/history", auth=other.auth).json()["data"] == []
    assert api.get("/api/public/alerts/rules").status_code == 200
    assert api.get("/api/public/alerts/rules", auth=("pk-lf-x", "sk-lf-y")).status_code == 401


# --- where the evaluator runs: inside `lanterna serve`, and `lanterna worker` -------------


def _db_args(db_url: str) -> list[str]:
    if db_url.startswith("sqlite:///"):
        return ["--data-dir", str(Path(db_url.removeprefix("sqlite:///")).parent)]
    return ["--database-url", db_url]


def test_the_server_evaluates_rules_in_the_background(db_url: str, tmp_path: Path):
    settings = make_settings(db_url, tmp_path)
    settings.alert_tick_seconds = 1
    project = new_project(db_url)
    with Api(create_app(settings)) as api:
        api.auth = project.auth
        rule = create(api)
        state = lambda: api.get(f"/api/public/alerts/rules/{rule['id']}").json()["state"]  # noqa: E731
        wait_until(lambda: state()["evaluatedAt"] is not None, 20, "a background evaluation")


def test_lanterna_worker_evaluates_due_rules(
    alerts_api: Api, db_url: str, capsys: pytest.CaptureFixture[str]
):
    rule = create(alerts_api, channelIds=[])
    assert main(["worker", "--once", *_db_args(db_url)]) == 0
    assert capsys.readouterr().out.strip() == "evaluated 1 rule(s)"
    state = alerts_api.get(f"/api/public/alerts/rules/{rule['id']}").json()["state"]
    assert state["evaluatedAt"] is not None and state["status"] == "ok"
    # Not due again until its interval has passed: a second worker finds nothing to do.
    done = subprocess.run(
        [sys.executable, "-m", "lanterna", "worker", "--once", *_db_args(db_url)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "evaluated 0 rule(s)", done.stderr


def test_a_worker_sharing_the_api_processes_environment_runs_every_job(db_url: str):
    # docs/scale-out.md has API processes set the background jobs' periods to 0 so the
    # workers run them; a worker given that same environment runs them all at their
    # default periods (it exited, or skipped retention and exports, before), and reads
    # its own period for evaluation rules.
    import os
    import signal

    env = {
        **os.environ,
        "LANTERNA_ALERT_TICK_SECONDS": "0",
        "LANTERNA_RETENTION_INTERVAL_SECONDS": "0",
        "LANTERNA_EXPORT_TICK_SECONDS": "0",
        "LANTERNA_EVALUATION_TICK_SECONDS": "7",
    }
    with subprocess.Popen(
        [sys.executable, "-m", "lanterna", "worker", *_db_args(db_url)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as worker:  # fmt: skip
        try:
            assert worker.stdout is not None and worker.stderr is not None
            first = worker.stdout.readline()
            assert (
                "alert rules every 15 s, evaluation rules every 7 s, retention every 3600 s,"
                " scheduled exports every 60 s" in first
            ), (first, worker.stderr.read() if worker.poll() is not None else "")
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
        finally:
            if worker.poll() is None:
                worker.kill()


def test_a_rule_notifies_its_stored_webhook_channel_once(db_url: str, tmp_path: Path):
    """The server's own channel lookup: a webhook channel made through its API, on a
    loopback receiver (allowlisted), gets one signed notification and one resolve."""
    settings = make_settings(db_url, tmp_path)
    settings.alert_tick_seconds = 0
    settings.outbound_allow = "127.0.0.1"
    project = new_project(db_url)
    with Api(create_app(settings)) as api, http_receiver() as receiver:
        api.auth = project.auth
        config = {"url": receiver.url, "secret": "whsec-0123456789abcdef"}
        body = {"name": "ops", "type": "webhook", "config": config}
        hook = api.post("/api/public/alert-channels", json=body)
        assert hook.status_code == 200, hook.text
        rule = create(api, channelIds=[hook.json()["id"]], cooldownSeconds=0)
        send(api, [e for m in range(5) for e in observations(NOW + m * MIN, 20, errors=2)])
        e = evaluator(api)
        e.tick(NOW + 5 * MIN)
        e.tick(NOW + 6 * MIN)
        send(api, [e for m in range(6, 12) for e in observations(NOW + m * MIN, 20)])
        e.tick(NOW + 12 * MIN)
        assert history(api, rule["id"]) == ["fired", "notified", "resolved", "notified"]
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert [b["kind"] for b in bodies] == ["fired", "resolved"]
    assert all("X-Lanterna-Signature" in r.headers for r in receiver.requests)
    assert bodies[0]["rule"] == {"id": rule["id"], "name": "errors"}
    assert bodies[0]["value"] == 10.0 and bodies[0]["threshold"] == 5.0
    assert bodies[0]["condition"] == "error rate > 5% over 5 minutes"
