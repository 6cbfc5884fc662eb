"""Two ``lanterna serve`` processes on one PostgreSQL database, both evaluating alert
rules: every rule still notifies its webhook exactly once when it fires and once when
it resolves. Real server subprocesses (``--port 0``), a loopback webhook receiver, and
the evaluators' time injected through the testing setting ``alert_clock_file`` (each
tick reads "now" from that file), so the test moves time on without waiting for it."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from alert_receivers import Receiver, http_receiver
from helpers import event, iso
from support import Project, new_project, serve_process, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

NOW = datetime(2024, 5, 8, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)
RULES = 6
HOOK_SECRET = "whsec-0123456789abcdef"


def signed(headers: dict[str, str], body: bytes) -> bool:
    """The receiver's check of the documented signature (docs/alerts.md)."""
    stamp = headers["X-Lanterna-Timestamp"].encode()
    mac = hmac.new(HOOK_SECRET.encode(), stamp + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + mac, headers["X-Lanterna-Signature"])


def observations(start: datetime, minutes: int, errors_per_minute: int) -> list[dict]:
    """20 observations a minute for ``minutes`` minutes from ``start``, some errors."""
    out = []
    for m in range(minutes):
        for i in range(20):
            at = start + m * MIN + timedelta(seconds=3 * i)
            body = {"id": f"o-{at.timestamp()}-{i}", "traceId": f"t-{at.timestamp()}-{i}",
                    "name": "llm", "startTime": iso(at), "endTime": iso(at + timedelta(seconds=1)),
                    "level": "ERROR" if i < errors_per_minute else "DEFAULT"}  # fmt: skip
            out.append(event("span-create", body))
    return out


class Clock:
    """The file both servers' evaluators read "now" from."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def set(self, at: datetime) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(iso(at))
        tmp.replace(self.path)  # atomic: a tick never reads half a time


@pytest.fixture
def two_servers(
    backend: str, db_url: str, tmp_path: Path
) -> Iterator[tuple[list[httpx.Client], Clock, Receiver, Project]]:
    project = new_project(db_url)
    clock = Clock(tmp_path / "now.txt")
    clock.set(NOW)
    shared = {
        "LANTERNA_ALERT_TICK_SECONDS": "1",
        "LANTERNA_ALERT_CLOCK_FILE": str(clock.path),
        "LANTERNA_OUTBOUND_ALLOW": "127.0.0.1",
        "LANTERNA_SECRET_KEY": secrets.token_hex(32),  # both open the channel's secret
    }
    with ExitStack() as stack:
        receiver = stack.enter_context(http_receiver())
        clients = []
        for name in ("a", "b"):
            env = {**shared, "LANTERNA_DATA_DIR": str(tmp_path / name)}
            base, _ = stack.enter_context(serve_process(db_url, env=env))
            client = httpx.Client(base_url=base, auth=project.auth, timeout=30)
            stack.callback(client.close)
            clients.append(client)
        yield clients, clock, receiver, project


def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 207), response.text
    return response.json()


def evaluated_at(client: httpx.Client, rule_ids: list[str], at: datetime) -> bool:
    """Every rule's last evaluation was at ``at``."""
    for rule_id in rule_ids:
        state = ok(client.get(f"/api/public/alerts/rules/{rule_id}"))["state"]
        if state["evaluatedAt"] is None or (
            datetime.fromisoformat(state["evaluatedAt"].replace("Z", "+00:00")) != at
        ):
            return False
    return True


def test_two_servers_on_one_database_notify_each_rule_once(two_servers):
    (a, b), clock, receiver, _ = two_servers
    # Five minutes of traffic with 10 % errors, sent to server b.
    ok(b.post("/api/public/ingestion", json={"batch": observations(NOW - 5 * MIN, 5, 2)}))
    hook = ok(a.post("/api/public/alert-channels", json={
        "name": "ops", "type": "webhook",
        "config": {"url": receiver.url, "secret": HOOK_SECRET},
    }))  # fmt: skip
    ids = []
    for i in range(RULES):  # made on server a, due at the servers' next tick
        rule = ok(a.post("/api/public/alerts/rules", json={
            "name": f"errors {i}", "metric": "error_rate", "threshold": 5,
            "windowSeconds": 300, "intervalSeconds": 60, "channelIds": [hook["id"]],
        }))  # fmt: skip
        ids.append(rule["id"])

    def kinds() -> Counter[tuple[str, str]]:
        bodies = [json.loads(r.body) for r in list(receiver.requests)]
        return Counter((body["rule"]["id"], body["kind"]) for body in bodies)

    # Both servers tick every second at NOW: each rule fires and notifies once.
    wait_until(lambda: evaluated_at(b, ids, NOW), 60, "every rule evaluated at NOW")
    wait_until(lambda: len(receiver.requests) >= RULES, 30, "the notifications")
    # A minute on, still failing: evaluated again by one of them, not notified again.
    clock.set(NOW + MIN)
    wait_until(lambda: evaluated_at(a, ids, NOW + MIN), 60, "every rule evaluated at NOW+1m")
    assert kinds() == Counter({(i, "fired"): 1 for i in ids})

    # The errors stop: clean minutes; at NOW+6m the window holds none, each resolves once.
    ok(a.post("/api/public/ingestion", json={"batch": observations(NOW, 6, 0)}))
    clock.set(NOW + 6 * MIN)
    wait_until(lambda: evaluated_at(b, ids, NOW + 6 * MIN), 60, "every rule evaluated at NOW+6m")
    clock.set(NOW + 7 * MIN)
    wait_until(lambda: evaluated_at(a, ids, NOW + 7 * MIN), 60, "every rule evaluated at NOW+7m")
    expected = Counter({(i, kind): 1 for i in ids for kind in ("fired", "resolved")})
    assert kinds() == expected
    assert all(signed(r.headers, r.body) for r in receiver.requests)
    for rule_id in ids:
        history = ok(a.get(f"/api/public/alerts/rules/{rule_id}/history"))["data"]
        assert sorted(e["kind"] for e in history) == ["fired", "notified", "notified", "resolved"]
