"""Rules evaluated together read the same figures as each alone: one tick of rules
that share a window (grouped into one query per filter field: model, trace name,
environment, user) gives every rule exactly the value and sample count computed by hand
from the observations sent, and equal to the rule read on its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from helpers import event, iso
from lanterna.alerts.evaluator import Evaluator
from lanterna.server.app import create_app
from support import make_settings, new_project

NOW = datetime(2024, 5, 8, 12, 0, tzinfo=timezone.utc)
MODELS = ("model-a", "model-b", "model-c")
NAMES = ("chat", "search")
USERS = ("ada", "bob", "cy", "dee")


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(db_url, tmp_path)
    settings.alert_tick_seconds = 0
    project = new_project(db_url)
    with TestClient(create_app(settings)) as client:
        client.auth = project.auth
        yield client


def traffic() -> tuple[list[dict], list[dict[str, Any]]]:
    """Events of 120 observations in the 5 minutes before NOW (and 30 before that,
    outside a 5-minute window), and what each observation is."""
    events, rows = [], []
    for i in range(150):
        at = NOW - timedelta(seconds=2 * i + 1)
        row = {"model": MODELS[i % 3], "name": NAMES[i % 2], "user": USERS[i % 4],
               "env": "production" if i % 5 else "staging", "error": i % 7 == 0,
               "tokens": 10 + i, "at": at}  # fmt: skip
        trace = f"t{i}"
        events.append(event("trace-create", {"id": trace, "name": row["name"],
                                             "userId": row["user"], "timestamp": iso(at),
                                             "environment": row["env"]}))  # fmt: skip
        events.append(event("generation-create", {
            "id": f"g{i}", "traceId": trace, "name": "llm", "model": row["model"],
            "startTime": iso(at), "endTime": iso(at + timedelta(seconds=1)),
            "environment": row["env"], "level": "ERROR" if row["error"] else "DEFAULT",
            "usage": {"input": row["tokens"], "output": 0, "total": row["tokens"]},
        }))  # fmt: skip
        rows.append(row)
    return events, rows


def test_grouped_rules_read_what_each_reads_alone(api: TestClient):
    events, rows = traffic()
    for i in range(0, len(events), 200):
        r = api.post("/api/public/ingestion", json={"batch": events[i : i + 200]})
        assert r.status_code == 207 and not r.json()["errors"], r.text
    bodies: list[tuple[dict[str, Any], Any]] = []
    for key, field, values in (("model", "model", MODELS), ("traceName", "name", NAMES),
                               ("environment", "env", ("production", "staging", "dev")),
                               ("userId", "user", USERS)):  # fmt: skip
        for value in values:
            for metric in ("error_rate", "count", "tokens"):
                body = {"name": f"{metric} {value}", "metric": metric, "threshold": 1e9,
                        "windowSeconds": 300, "filters": {key: value}}  # fmt: skip
                bodies.append((body, lambda r, f=field, v=value: r[f] == v))
    bodies.append(({"name": "all", "metric": "error_rate", "threshold": 1e9}, lambda r: True))
    ids = {}
    for body, match in bodies:
        r = api.post("/api/public/alerts/rules", json=body)
        assert r.status_code == 200, r.text
        ids[r.json()["id"]] = (body, match)
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    evaluator: Evaluator = runtime.evaluator
    alerts = runtime.store.alerts
    outcomes = {o.rule_id: o for o in evaluator.tick(NOW)}
    assert set(outcomes) == set(ids)
    window = [r for r in rows if r["at"] >= NOW - timedelta(seconds=300)]
    assert len(window) == 150 and len(rows) == 150  # every row lies in the window
    for rule_id, (body, match) in ids.items():
        mine = [r for r in window if match(r)]
        want = {
            "error_rate": 100 * sum(r["error"] for r in mine) / len(mine) if mine else None,
            "count": float(len(mine)),
            "tokens": float(sum(r["tokens"] for r in mine)) if mine else None,
        }[body["metric"]]
        got = outcomes[rule_id]
        assert got.samples == len(mine), body
        assert got.value == (pytest.approx(want) if want is not None else None), body
        # The same rule read on its own (the Alerts page's chart reads one by one).
        pid = got.project_id
        rule = runtime.read_sync(lambda c, i=rule_id, p=pid: alerts.get_rule(c, p, i))
        reading = evaluator.reading_at(rule, NOW)
        assert (reading.value, reading.samples) == (got.value, got.samples), body
