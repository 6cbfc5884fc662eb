"""Cost budgets over real HTTP (uvicorn on a port) on SQLite and PostgreSQL: create,
list, read, change and delete; the status of each period (spent equals the ingested
costs); 400s naming the field with nothing stored; one project never seeing another's;
and the soft/exceeded crossings the alert evaluator is handed (``budget_messages``),
each once per period. Time is given (``at``, ``now``), never waited for."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

import support
from lanterna.alerts.budgets import budget_messages, period_bounds
from lanterna.store.db import Database

pytestmark = pytest.mark.clickhouse

BUDGETS = "/api/public/budgets"
BUDGET_KEYS = {
    "id", "name", "scope", "scopeValue", "period", "limitUsd", "softPercent", "channelIds",
    "createdAt",
    "updatedAt", "status",
}  # fmt: skip
STATUS_KEYS = {
    "budgetId", "at", "spentUsd", "limitUsd", "remainingUsd", "percent", "softPercent",
    "state", "periodStart", "periodEnd",
}  # fmt: skip


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.fixture
def http(live_server: Any) -> Any:
    with httpx.Client(
        base_url=live_server.url, auth=live_server.project.auth, timeout=60
    ) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: httpx.Response, words: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["message"], response.json()


def spend(
    http: httpx.Client,
    at: str,
    cost: float,
    *,
    user: str | None = None,
    session: str | None = None,
    tags: list[str] | None = None,
) -> None:
    """One trace at ``at`` with one generation whose ingested cost is ``cost``."""
    trace_id = str(uuid.uuid4())
    trace: dict[str, Any] = {"id": trace_id, "name": "t", "timestamp": at}
    if user:
        trace["userId"] = user
    if session:
        trace["sessionId"] = session
    if tags:
        trace["tags"] = tags
    generation = {
        "id": str(uuid.uuid4()),
        "traceId": trace_id,
        "name": "llm",
        "startTime": at,
        "costDetails": {"input": cost / 2, "output": cost / 2},
    }
    batch = [
        {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": at, "body": trace},
        {"id": str(uuid.uuid4()), "type": "generation-create", "timestamp": at, "body": generation},
    ]
    reply = http.post("/api/public/ingestion", json={"batch": batch})
    assert reply.status_code == 207 and not reply.json()["errors"], reply.text


def test_create_read_list_change_delete(http):
    created = ok(
        http.post(
            BUDGETS,
            json={"name": "Ada monthly", "scope": "user", "scopeValue": "ada", "limitUsd": 10},
        )
    )
    assert set(created) == BUDGET_KEYS
    assert created["period"] == "month" and created["softPercent"] == 80.0
    assert created["limitUsd"] == 10.0 and created["scopeValue"] == "ada"
    assert set(created["status"]) == STATUS_KEYS
    assert created["status"]["state"] == "ok" and created["status"]["spentUsd"] == 0.0

    one = ok(http.get(f"{BUDGETS}/{created['id']}"))
    assert one["crossings"] == [] and one["name"] == "Ada monthly"
    second = ok(http.post(BUDGETS, json={"name": "All of it", "limitUsd": 100, "period": "total"}))
    assert second["scope"] == "project" and second["scopeValue"] is None
    listed = ok(http.get(BUDGETS))
    assert [b["name"] for b in listed["data"]] == ["Ada monthly", "All of it"]
    assert listed["meta"]["totalItems"] == 2

    changed = ok(http.patch(f"{BUDGETS}/{created['id']}", json={"limitUsd": 20, "period": "day"}))
    assert changed["limitUsd"] == 20.0 and changed["period"] == "day"
    assert changed["scopeValue"] == "ada"  # kept
    assert changed["updatedAt"] >= created["updatedAt"]

    assert ok(http.delete(f"{BUDGETS}/{created['id']}")) == {
        "message": "Budget deleted successfully"
    }
    refused(http.get(f"{BUDGETS}/{created['id']}"), "not found", 404)
    refused(http.delete(f"{BUDGETS}/{created['id']}"), "not found", 404)
    assert [b["name"] for b in ok(http.get(BUDGETS))["data"]] == ["All of it"]


def test_status_per_period_equals_the_ingested_costs(http):
    spend(http, "2026-03-02T10:00:00Z", 1.25, user="ada", session="s1", tags=["beta"])
    spend(http, "2026-03-02T23:59:59Z", 2.5, user="ada", session="s1")
    spend(http, "2026-03-01T12:00:00Z", 4.0, user="ada", tags=["beta"])  # a Sunday
    spend(http, "2026-02-27T12:00:00Z", 8.0, user="ada")  # last month
    spend(http, "2026-03-02T11:00:00Z", 16.0, user="bob", tags=["beta"])

    def status(body: dict[str, Any], at: str) -> dict[str, Any]:
        budget = ok(http.post(BUDGETS, json={"name": "b", **body}))
        return ok(http.get(f"{BUDGETS}/{budget['id']}/status", params={"at": at}))

    monday = "2026-03-02T15:00:00Z"
    ada = {"scope": "user", "scopeValue": "ada", "limitUsd": 5}
    day = status({**ada, "period": "day"}, monday)
    assert day["spentUsd"] == pytest.approx(3.75)
    assert day["periodStart"] == "2026-03-02T00:00:00.000000Z"
    assert day["periodEnd"] == "2026-03-03T00:00:00.000000Z"
    assert day["remainingUsd"] == pytest.approx(1.25) and day["percent"] == pytest.approx(75.0)
    assert day["state"] == "ok"

    week = status({**ada, "period": "week"}, monday)  # the ISO week starts on Monday
    assert week["spentUsd"] == pytest.approx(3.75) and week["periodStart"].startswith("2026-03-02")
    month = status({**ada, "period": "month"}, monday)
    assert month["spentUsd"] == pytest.approx(7.75) and month["state"] == "exceeded"
    assert month["remainingUsd"] == 0.0 and month["periodEnd"].startswith("2026-04-01")
    total = status({**ada, "period": "total"}, monday)
    assert total["spentUsd"] == pytest.approx(15.75)
    assert total["periodStart"] is None and total["periodEnd"] is None

    session = status({"scope": "session", "scopeValue": "s1", "limitUsd": 4.5}, monday)
    assert session["spentUsd"] == pytest.approx(3.75) and session["state"] == "soft"  # 83 %
    tag = status({"scope": "tag", "scopeValue": "beta", "limitUsd": 100}, monday)
    assert tag["spentUsd"] == pytest.approx(21.25)
    project = status({"limitUsd": 100, "softPercent": None}, monday)
    assert project["spentUsd"] == pytest.approx(23.75) and project["softPercent"] is None
    # the same budget in another period
    feb = status({**ada, "period": "month"}, "2026-02-10T00:00:00+02:00")
    assert feb["spentUsd"] == pytest.approx(8.0) and feb["periodStart"].startswith("2026-02-01")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"limitUsd": 1}, "name: required"),
        ({"name": "", "limitUsd": 1}, "name: expected a non-empty string"),
        ({"name": "x"}, "limitUsd: required"),
        ({"name": "x", "limitUsd": "ten"}, "limitUsd: expected a number"),
        ({"name": "x", "limitUsd": 0}, "limitUsd: must be above 0"),
        ({"name": "x", "limitUsd": 1, "scope": "team"}, "scope: expected one of"),
        ({"name": "x", "limitUsd": 1, "scope": "user"}, "scopeValue: required"),
        ({"name": "x", "limitUsd": 1, "scopeValue": "ada"}, "scopeValue: a project budget"),
        ({"name": "x", "limitUsd": 1, "period": "year"}, "period: expected one of"),
        ({"name": "x", "limitUsd": 1, "softPercent": 120}, "softPercent: must be above 0"),
        ({"name": "x", "limitUsd": 1, "softPercent": True}, "softPercent: expected a number"),
        ({"name": "x", "limitUsd": 1, "owner": "me"}, "owner: unknown field"),
        ([1, 2], "body: expected a JSON object"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(http, body, words):
    refused(http.post(BUDGETS, json=body), words)
    assert ok(http.get(BUDGETS))["data"] == []


def test_bad_changes_and_bad_times_are_refused(http):
    budget = ok(http.post(BUDGETS, json={"name": "b", "limitUsd": 3}))
    path = f"{BUDGETS}/{budget['id']}"
    refused(http.patch(path, json={"period": "fortnight"}), "period: expected one of")
    refused(http.patch(path, json={}), "at least one field")
    refused(http.patch(path, json={"scope": "user"}), "scopeValue: required")
    assert ok(http.get(path))["period"] == "month"  # unchanged
    changed = ok(http.patch(path, json={"scope": "tag", "scopeValue": "beta"}))
    assert (changed["scope"], changed["scopeValue"]) == ("tag", "beta")
    back = ok(http.patch(path, json={"scope": "project"}))  # drops the tag
    assert back["scopeValue"] is None
    refused(http.get(f"{path}/status", params={"at": "yesterday"}), "at")
    refused(http.patch(f"{BUDGETS}/nope", json={"limitUsd": 1}), "not found", 404)
    refused(http.post(BUDGETS, content=b"{not json"), "Invalid request data")


def test_a_project_never_sees_another_projects_budgets(http, live_server):
    from support import new_project

    mine = ok(http.post(BUDGETS, json={"name": "mine", "limitUsd": 1}))
    other = new_project(live_server.db_url, "Other")
    with httpx.Client(base_url=live_server.url, auth=other.auth) as theirs:
        assert ok(theirs.get(BUDGETS))["data"] == []
        for call in (theirs.get, theirs.delete):
            refused(call(f"{BUDGETS}/{mine['id']}"), "not found", 404)
        refused(theirs.get(f"{BUDGETS}/{mine['id']}/status"), "not found", 404)
        refused(theirs.patch(f"{BUDGETS}/{mine['id']}", json={"limitUsd": 9}), "not found", 404)
        spend(theirs, "2026-03-02T10:00:00Z", 50.0)  # their spend is not ours
    status = ok(http.get(f"{BUDGETS}/{mine['id']}/status", params={"at": "2026-03-02T12:00:00Z"}))
    assert status["spentUsd"] == 0.0 and status["limitUsd"] == 1.0
    refused(httpx.get(f"{live_server.url}{BUDGETS}"), "", 401)


def test_budgets_are_in_the_openapi_document(http):
    paths = ok(http.get("/api/openapi.json"))["paths"]
    assert {"get", "post"} <= set(paths[BUDGETS])
    assert {"get", "patch", "delete"} <= set(paths[BUDGETS + "/{budget_id}"])
    assert "get" in paths[BUDGETS + "/{budget_id}/status"]


def test_crossings_become_alert_messages_once_per_period(http, live_server, events_url):
    budget = ok(
        http.post(
            BUDGETS,
            json={"name": "Ada daily", "scope": "user", "scopeValue": "ada", "limitUsd": 10,
                  "period": "day"},
        )
    )  # fmt: skip
    db = Database(live_server.db_url)
    events = support.events_conn(events_url)

    def tick(now: str) -> list[Any]:
        with db.transaction() as conn:
            return budget_messages(
                conn,
                live_server.project.id,
                utc(now),
                base_url="http://lanterna.test",
                events=events(conn),
            )

    try:
        spend(http, "2026-03-02T08:00:00Z", 7.0, user="ada")
        assert tick("2026-03-02T08:30:00") == []  # 70 %: below the soft threshold
        spend(http, "2026-03-02T09:00:00Z", 1.5, user="ada")
        (soft,) = tick("2026-03-02T09:30:00")
        assert soft.kind == "fired" and soft.rule_id == budget["id"]
        assert soft.rule_name == "Ada daily" and soft.details["level"] == "soft"
        assert soft.value == pytest.approx(8.5) and soft.threshold == pytest.approx(8.0)
        assert "user ada per day" in soft.condition and "80% of the limit" in soft.condition
        assert soft.url == f"http://lanterna.test/project/{live_server.project.id}/budgets"
        assert tick("2026-03-02T09:31:00") == []  # recorded: not again
        spend(http, "2026-03-02T10:00:00Z", 2.0, user="ada")
        (over,) = tick("2026-03-02T10:30:00")
        assert over.details["level"] == "exceeded" and over.details["state"] == "exceeded"
        assert over.value == pytest.approx(10.5) and over.threshold == 10.0
        assert tick("2026-03-02T11:00:00") == []
        # the next day starts afresh; a jump past both levels gives one message
        spend(http, "2026-03-03T08:00:00Z", 12.0, user="ada")
        (jump,) = tick("2026-03-03T09:00:00")
        assert jump.details["level"] == "exceeded"
        assert jump.details["periodStart"] == "2026-03-03T00:00:00.000000Z"
        history = ok(http.get(f"{BUDGETS}/{budget['id']}"))["crossings"]
        assert [(c["level"], c["periodStart"][:10]) for c in history] == [
            ("exceeded", "2026-03-03"),
            ("soft", "2026-03-03"),
            ("exceeded", "2026-03-02"),
            ("soft", "2026-03-02"),
        ]
    finally:
        db.close()


def test_period_bounds_are_utc_calendar_periods():
    at = datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc)
    assert period_bounds("month", at) == (utc("2026-12-01T00:00:00"), utc("2027-01-01T00:00:00"))
    assert period_bounds("week", at) == (utc("2026-12-28T00:00:00"), utc("2027-01-04T00:00:00"))
    assert period_bounds("total", at) == (None, None)


def test_two_evaluators_at_once_record_a_crossing_once(http, live_server, events_url):
    """Two processes' evaluators in overlapping transactions: the first records and
    notifies, the second waits for its commit and finds the crossing recorded."""
    import threading

    from support import wait_until

    ok(http.post(BUDGETS, json={"name": "p", "limitUsd": 1, "period": "total"}))
    spend(http, "2026-03-02T08:00:00Z", 2.0)
    first, second, watcher = (Database(live_server.db_url) for _ in range(3))
    events = support.events_conn(events_url)
    at = utc("2026-03-02T09:00:00")
    found: list[Any] = []
    try:
        with first.transaction() as conn:
            (message,) = budget_messages(conn, live_server.project.id, at, events=events(conn))
            assert message.details["level"] == "exceeded"

            def other() -> None:
                with second.transaction() as conn2:
                    found.append(
                        budget_messages(conn2, live_server.project.id, at, events=events(conn2))
                    )

            thread = threading.Thread(target=other)
            thread.start()
            if first.dialect.name == "postgresql":  # the second waits on the first's row
                with watcher.read() as watch:
                    wait_until(
                        lambda: watch.scalar(
                            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()"
                        ),
                        20,
                        "the second evaluator to wait",
                    )
        thread.join(20)
        assert found == [[]]
    finally:
        for db in (first, second, watcher):
            db.close()
