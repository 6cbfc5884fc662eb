"""Property test of the per-user totals (``user_totals``): whatever the events
(creates and updates in any order and batches, users and timestamps changing),
deletes and cost recomputes, the users API and a user's totals equal the raw rows'
aggregates, on every page and in every order; so do the per-session totals
(``session_totals``); and the unfiltered trace and observation
lists' totals (``row_counts``) equal the stored rows."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ingest
from test_rollups_property import _step, apply_step

#: users API order -> the raw row's key (ties by user id, ascending)
ORDERS = ("lastSeen", "firstSeen", "traces", "cost", "tokens", "userId")


def _raw_users(api: Any) -> dict[str, dict[str, Any]]:
    """Every user of the project from the raw rows, shaped as the users API."""
    pid = api.project.id

    def read(conn: Any) -> dict[str, dict[str, Any]]:
        conn = api.app.state.runtime.store.events_conn(conn)  # ClickHouse: its own rows
        d = conn.dialect
        out: dict[str, dict[str, Any]] = {}
        for r in conn.all(
            "SELECT t.user_id AS user_id, MIN(t.timestamp) AS first, MAX(t.timestamp) AS last,"
            " COUNT(*) AS n FROM traces t WHERE t.project_id = ? AND t.user_id IS NOT NULL"
            " GROUP BY t.user_id",
            [pid],
        ):
            out[r["user_id"]] = {
                "userId": r["user_id"],
                "firstSeen": d.ts_parse(r["first"]),
                "lastSeen": d.ts_parse(r["last"]),
                "countTraces": int(r["n"]),
                "countObservations": 0,
                "inputTokens": 0,
                "outputTokens": 0,
                "totalTokens": 0,
                "totalCost": 0.0,
            }
        for r in conn.all(
            "SELECT t.user_id AS user_id, COUNT(*) AS n, SUM(o.total_cost) AS cost,"
            " SUM(o.usage_input) AS i, SUM(o.usage_output) AS o, SUM(o.usage_total) AS total"
            " FROM traces t JOIN observations o ON o.project_id = t.project_id"
            " AND o.trace_id = t.id WHERE t.project_id = ? AND t.user_id IS NOT NULL"
            " GROUP BY t.user_id",
            [pid],
        ):
            out[r["user_id"]].update(
                countObservations=int(r["n"]),
                inputTokens=int(r["i"] or 0),
                outputTokens=int(r["o"] or 0),
                totalTokens=int(r["total"] or 0),
                totalCost=float(r["cost"] or 0.0),
            )
        return out

    return api.app.state.runtime.read_sync(read)


def _same(got: dict[str, Any], want: dict[str, Any]) -> None:
    from datetime import datetime

    assert datetime.fromisoformat(got["firstSeen"].replace("Z", "+00:00")) == want["firstSeen"]
    assert datetime.fromisoformat(got["lastSeen"].replace("Z", "+00:00")) == want["lastSeen"]
    for key in ("countTraces", "countObservations", "inputTokens", "outputTokens"):
        assert got[key] == want[key], key
    assert got["totalTokens"] == want["totalTokens"]
    assert got["totalCost"] == pytest.approx(want["totalCost"], abs=1e-9)


def assert_users_match(api: Any) -> None:
    """The users API (every page, page size 1) and each user's totals equal the raw rows."""
    want = _raw_users(api)
    listed = api.get("/api/public/users", params={"limit": 50}).json()
    assert listed["meta"]["totalItems"] == len(want)
    assert {u["userId"] for u in listed["data"]} == set(want)
    for got in listed["data"]:
        _same(got, want[got["userId"]])
    # most recently seen first, ties by user id; every page of one holds the next one
    order = sorted(want.values(), key=lambda u: u["userId"])
    order.sort(key=lambda u: u["lastSeen"], reverse=True)
    pages = [
        api.get("/api/public/users", params={"limit": 1, "page": n}).json()
        for n in range(1, len(want) + 2)
    ]
    assert [u["userId"] for p in pages for u in p["data"]] == [u["userId"] for u in order]
    for user_id, values in want.items():
        response = api.get(f"/api/public/users/{user_id}")
        assert response.status_code == 200
        _same(response.json(), values)
    assert api.get("/api/public/users/nobody-at-all").status_code == 404


def assert_sessions_match(api: Any) -> None:
    """``session_totals`` holds each session's raw aggregates: environments, first and
    last trace time, traces, traces with observations, cost, tokens, and a cost
    magnitude that bounds the cost."""
    pid = api.project.id

    def read(conn: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        d = conn.dialect
        want: dict[str, Any] = {}
        for r in conn.all(
            "SELECT t.session_id AS s, " + d.comma_list("t.environment") + " AS envs,"
            " MIN(t.timestamp) AS first, MAX(t.timestamp) AS last, COUNT(*) AS n"
            " FROM traces t WHERE t.project_id = ? AND t.session_id IS NOT NULL"
            " GROUP BY t.session_id",
            [pid],
        ):
            want[r["s"]] = [
                set(r["envs"].split(",")),
                d.ts_parse(r["first"]),
                d.ts_parse(r["last"]),
                r["n"],
                0,
                0.0,
                0,
            ]
        for r in conn.all(
            "SELECT t.session_id AS s, COUNT(DISTINCT t.id) AS n, SUM(o.total_cost) AS cost,"
            " SUM(o.usage_total) AS tokens FROM traces t JOIN observations o"
            " ON o.project_id = t.project_id AND o.trace_id = t.id"
            " WHERE t.project_id = ? AND t.session_id IS NOT NULL GROUP BY t.session_id",
            [pid],
        ):
            want[r["s"]][4:] = [r["n"], float(r["cost"] or 0), int(r["tokens"] or 0)]
        got = {
            r["session_id"]: r
            for r in conn.all("SELECT * FROM session_totals WHERE project_id = ?", [pid])
        }
        for r in got.values():
            r["first_seen"], r["last_seen"] = (
                d.ts_parse(r["first_seen"]),
                d.ts_parse(r["last_seen"]),
            )
        return want, got

    want, got = api.app.state.runtime.read_sync(read)
    assert set(got) == set(want)
    for session, (env, first, last, n, observed, cost, tokens) in want.items():
        row = got[session]
        envs = set(row["environments"].split(","))
        assert (envs, row["first_seen"], row["last_seen"]) == (env, first, last)
        assert (row["traces"], row["observed_traces"], row["tokens"]) == (n, observed, tokens)
        assert row["cost"] == pytest.approx(cost, abs=1e-9)
        m = row["magnitude"]
        if cost > 1e-9:
            assert 2.0**m <= cost * (1 + 1e-12) and cost < 2.0 ** (m + 1) * (1 + 1e-12)


def assert_counts_match(api: Any) -> None:
    """The unfiltered traces and observations lists count every stored row."""
    pid = api.project.id
    for path, table in (("traces", "traces"), ("observations", "observations")):
        want = api.app.state.runtime.read_sync(
            lambda c, t=table: c.scalar(f"SELECT COUNT(*) FROM {t} WHERE project_id = ?", [pid])
        )
        got = api.get(f"/api/public/{path}", params={"limit": 1}).json()["meta"]["totalItems"]
        assert got == want, path


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=7))
def test_user_totals_equal_raw_rows_whatever_happens(api, db_url, steps):
    project = api.new_project()
    api.project, api.auth = project, project.auth
    priced = False
    for kind, arg in steps:
        priced = apply_step(api, db_url, kind, arg, priced=priced)
        assert_users_match(api)
        assert_sessions_match(api)
        assert_counts_match(api)


@pytest.mark.clickhouse_only
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=6))
def test_users_on_clickhouse_equal_raw_rows_whatever_happens(api, db_url, steps):
    """On the ClickHouse event store (``user_totals`` kept in ``key_totals_rows``), the
    users API and each user's totals equal the raw rows' aggregates whatever the
    events, user changes and deletes."""
    project = api.new_project()
    api.project, api.auth = project, project.auth
    priced = False
    for kind, arg in steps:
        priced = apply_step(api, db_url, kind, arg, priced=priced)
        assert_users_match(api)
        _assert_usage_orders(api)


def _assert_usage_orders(api: Any) -> None:
    """The users list by cost and by tokens (both ways) pages as the raw rows sort."""
    from lanterna.analytics.metrics import Scope
    from lanterna.analytics.usage import list_users

    want = _raw_users(api)
    rt = api.app.state.runtime
    for order, key in (("cost", "totalCost"), ("tokens", "totalTokens")):
        for desc in (True, False):
            expected = sorted(want.values(), key=lambda u: u["userId"])
            expected.sort(key=lambda u, k=key: round(u[k], 9), reverse=desc)  # type: ignore[misc]
            got, total = rt.read_sync(
                lambda c, o=order, d=desc: list_users(
                    rt.store.events_conn(c),
                    Scope(api.project.id),
                    limit=50,
                    offset=0,
                    order=o,
                    desc=d,
                )
            )
            assert total == len(want)
            assert [u.user_id for u in got] == [u["userId"] for u in expected], (order, desc)


@pytest.mark.clickhouse
def test_users_by_usage_follow_deletes_and_user_changes(api):
    """The users list by cost and by tokens, and each user's totals, after a user's only
    trace is deleted, a trace moves to another user, and a user has a trace without
    observations (on ClickHouse from the kept ``key_totals_rows``)."""
    from helpers import event, iso

    costs = {"ann": 3.0, "bob": 0.5, "cy": 2.0, "dee": 1.0, "eve": 4.0}
    batch = []
    for i, (user, cost) in enumerate(costs.items()):
        tid = f"t-{user}"
        at = iso(seconds=3600 * i)  # each in an hour of its own
        batch.append(event("trace-create", {"id": tid, "userId": user, "timestamp": at}))
        batch.append(
            event(
                "generation-create",
                {
                    "id": f"g-{user}",
                    "traceId": tid,
                    "startTime": at,
                    "usageDetails": {"input": int(100 * cost), "output": 1},
                    "costDetails": {"total": cost},
                },
            )
        )
    batch.append(event("trace-create", {"id": "t-fay", "userId": "fay", "timestamp": iso()}))
    ingest(api, *batch)
    assert api.delete("/api/public/traces/t-eve").status_code == 200  # eve is gone
    ingest(api, event("trace-create", {"id": "t-cy", "userId": "dee"}))  # cy's moves to dee
    want = _raw_users(api)
    assert set(want) == {"ann", "bob", "dee", "fay"}
    assert want["dee"]["totalCost"] == pytest.approx(3.0)
    _assert_usage_orders(api)
    assert_users_match(api)


def test_users_list_orders_equal_raw_rows(api):
    """Each order of the users list (the dashboard's columns) sorts as the raw rows do."""
    from helpers import event, iso

    batch = []
    for i, (user, traces) in enumerate((("ann", 3), ("bob", 1), ("cy", 2), ("dee", 2))):
        for j in range(traces):
            tid = f"{user}-{j}"
            batch.append(
                event(
                    "trace-create",
                    {"id": tid, "userId": user, "timestamp": iso(seconds=100 * i + j)},
                )
            )
            batch.append(
                event(
                    "generation-create",
                    {
                        "id": f"g-{tid}",
                        "traceId": tid,
                        "startTime": iso(seconds=100 * i + j),
                        "usageDetails": {"input": 10 * (i + 1), "output": j},
                        "costDetails": {"total": 0.5 * (4 - i)},
                    },
                )
            )
    ingest(api, *batch)
    want = _raw_users(api)
    keys = {
        "lastSeen": lambda u: u["lastSeen"],
        "firstSeen": lambda u: u["firstSeen"],
        "traces": lambda u: u["countTraces"],
        "cost": lambda u: u["totalCost"],
        "tokens": lambda u: u["totalTokens"],
        "userId": lambda u: u["userId"],
    }
    from lanterna.analytics.metrics import Scope
    from lanterna.analytics.usage import list_users

    rt = api.app.state.runtime
    for order in ORDERS:
        for desc in (True, False):
            expected = sorted(want.values(), key=lambda u: u["userId"])
            expected.sort(key=keys[order], reverse=desc)
            got, total = rt.read_sync(
                lambda c, o=order, d=desc: list_users(
                    c, Scope(api.project.id), limit=10, offset=0, order=o, desc=d
                )
            )
            assert total == len(want)
            # ties by user id, ascending, in either direction
            assert [u.user_id for u in got] == [u["userId"] for u in expected], order
