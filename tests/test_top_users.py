"""Top users by walking ``user_totals`` (analytics.query.top_users): a query by user
ordered by cost, trace count or observation count with a ``row_limit`` answers as the
raw rows do, over ranges that cut users' activity at both ends, with environment
filters, ties, users without cost and traces without a user; the walk is the path
taken (shown by a bound made wrong on purpose), and a walk that does not settle falls
back to grouping every user. Its bound holds because no cost is stored negative."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from helpers import T0, event, ingest, iso, write_row
from lanterna.analytics import metrics
from lanterna.analytics.query import run_query, run_raw, top_users
from test_query_planner import _query, _same

USERS = [f"u{i:02d}" for i in range(30)]
RANGES = (
    (T0 - timedelta(hours=30, minutes=17), T0 + timedelta(hours=20, minutes=41)),
    (T0 - timedelta(hours=6), T0 + timedelta(hours=6)),
    (T0 - timedelta(days=3), T0 + timedelta(days=3)),
    (T0 + timedelta(minutes=5), T0 + timedelta(minutes=55)),
)
QUERIES: tuple[dict[str, Any], ...] = (
    {"metrics": [{"measure": "totalCost", "aggregation": "sum"}], "config": {"row_limit": 5}},
    {"metrics": [{"measure": "totalCost", "aggregation": "sum"},
                 {"measure": "count", "aggregation": "count"},
                 {"measure": "errorRate", "aggregation": "avg"},
                 {"measure": "totalTokens", "aggregation": "sum"}],
     "orderBy": [{"field": "sum_totalCost", "direction": "desc"}],
     "filters": [{"column": "environment", "operator": "none of", "value": ["dev"],
                  "type": "stringOptions"}],
     "config": {"row_limit": 3}},
    {"metrics": [{"measure": "count", "aggregation": "count"}], "config": {"row_limit": 4}},
    {"metrics": [{"measure": "observationsCount", "aggregation": "sum"},
                 {"measure": "totalCost", "aggregation": "sum"}],
     "filters": [{"column": "environment", "operator": "=", "value": "dev", "type": "string"}],
     "config": {"row_limit": 2}},
    {"metrics": [{"measure": "totalCost", "aggregation": "sum"}], "config": {"row_limit": 40}},
    {"metrics": [{"measure": "count", "aggregation": "count"}], "config": {"row_limit": 100}},
)  # fmt: skip


def _by_user(body: dict[str, Any], start: Any, end: Any) -> Any:
    return _query({**body, "dimensions": [{"field": "userId"}]}, start, end)


def _trace(
    rng: random.Random, n: int, user: str | None, cost: float | None, at: float
) -> list[dict[str, Any]]:
    trace_id = f"t{n}"
    env = "dev" if rng.random() < 0.25 else "default"
    body = {"id": trace_id, "name": "chat", "timestamp": iso(seconds=at), "environment": env}
    if user is not None:
        body["userId"] = user
    events = [event("trace-create", body)]
    if cost is not None:
        events.append(
            event(
                "generation-create",
                {
                    "id": f"g{n}",
                    "traceId": trace_id,
                    "name": "llm",
                    "environment": env,
                    "startTime": iso(seconds=at),
                    "endTime": iso(seconds=at + 1.5),
                    "model": "m",
                    "level": "ERROR" if rng.random() < 0.1 else "DEFAULT",
                    "usageDetails": {"input": 10, "output": 5},
                    "costDetails": {"total": cost},
                },
            )
        )
    return events


def _data(api: Any, seed: int = 7) -> None:
    """Thirty users over three days with costs from a small set (ties), users whose
    traces have no observation, and traces without a user."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    n = 0
    for i, user in enumerate(USERS):
        for _ in range(rng.randint(1, 6)):
            cost = None if i % 11 == 10 else rng.choice([0.0, 0.5, 1.0, 2.0, 3.25])
            events += _trace(rng, n, user, cost, rng.uniform(-36, 36) * 3600)
            n += 1
    for _ in range(12):
        events += _trace(rng, n, None, rng.choice([1.0, 4.0]), rng.uniform(-36, 36) * 3600)
        n += 1
    for start in range(0, len(events), 50):
        ingest(api, *events[start : start + 50])


def _assert_same(planned: list[dict[str, Any]], raw: list[dict[str, Any]], body: Any) -> None:
    assert [r["userId"] for r in planned] == [r["userId"] for r in raw], (body, planned, raw)
    for have, want in zip(planned, raw, strict=True):
        for column, value in want.items():
            assert (value is None and have[column] is None) or _same(have[column], value), (
                body,
                column,
                have,
                want,
            )


@pytest.mark.clickhouse  # there: user_totals in key_totals_rows, the rollups as deltas
def test_top_users_answer_as_the_raw_rows_do(api, monkeypatch):
    """The walk answers every query it can (checked: it settles) as the raw rows do."""
    _data(api)
    walked = []
    real = top_users.top_users

    def spy(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        walked.append(out is not None)
        return out

    monkeypatch.setattr(top_users, "top_users", spy)
    rt, pid = api.app.state.runtime, api.project.id
    events = rt.store.events_conn
    for start, end in RANGES:
        for body in QUERIES:
            query = _by_user(body, start, end)
            assert top_users.ordered_metric(query) is not None
            planned = rt.read_sync(lambda c, q=query: run_query(events(c), pid, q))
            raw = rt.read_sync(lambda c, q=query: run_raw(events(c), pid, q))
            _assert_same(planned, raw, body)
    assert walked and all(walked)


def _set_bound(db_url: str, pid: str, user: str, cost: float) -> None:
    write_row(
        db_url,
        "UPDATE user_totals SET cost = ? WHERE project_id = ? AND user_id = ?",
        [cost, pid, user],
    )


def _top_cost(api: Any) -> list[Any]:
    query = _by_user(QUERIES[0], *RANGES[2])
    rows = api.app.state.runtime.read_sync(lambda c: run_query(c, api.project.id, query))
    return [r["userId"] for r in rows if r["userId"] is not None]


def test_the_walk_is_the_path_taken(api, db_url):
    """With the top user's all-time cost written as zero in ``user_totals``, the walk
    never reads that user: the answer (wrong on purpose) leaves them out."""
    _data(api)
    top = _top_cost(api)
    _set_bound(db_url, api.project.id, top[0], 0.0)
    assert top[0] not in _top_cost(api)


def test_a_negative_cost_is_not_stored(api):
    """What makes a user's all-time cost a bound of their cost over any range."""
    ingest(api, *_trace(random.Random(1), 999, "u29", -0.25, 0))
    trace = api.get("/api/public/traces/t999").json()
    assert trace["totalCost"] in (0, None)


def test_a_walk_that_does_not_settle_falls_back(api, db_url, monkeypatch):
    _data(api)
    top = _top_cost(api)
    _set_bound(db_url, api.project.id, top[0], 0.0)
    monkeypatch.setattr(top_users, "MAX_EXACT", 3)
    assert top[0] in _top_cost(api)


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": [{"measure": "totalCost", "aggregation": "sum"}],
         "orderBy": [{"field": "sum_totalCost", "direction": "asc"}]},
        {"metrics": [{"measure": "totalCost", "aggregation": "sum"},
                     {"measure": "count", "aggregation": "count"}],
         "orderBy": [{"field": "count_count", "direction": "desc"}]},
        {"metrics": [{"measure": "totalTokens", "aggregation": "sum"}]},
        {"metrics": [{"measure": "totalCost", "aggregation": "sum"}]},  # row_limit 1000
        {"metrics": [{"measure": "count", "aggregation": "count"}],
         "config": {"row_limit": 101}},
        {"metrics": [{"measure": "count", "aggregation": "count"}],
         "timeDimension": {"granularity": "day"}},
        {"metrics": [{"measure": "count", "aggregation": "count"}],
         "filters": [{"column": "name", "operator": "=", "value": "chat", "type": "string"}]},
    ],
)  # fmt: skip
def test_queries_the_walk_does_not_answer(body):
    assert top_users.ordered_metric(_by_user(body, *RANGES[0])) is None


def _changed_later(api: Any) -> None:
    """A later observation of a stored trace, a deleted trace and a trace whose user
    changes (on ClickHouse each writes deltas of its own to the hourly user rollup)."""
    late = {"id": "g-late", "traceId": "t0", "name": "llm", "startTime": iso(seconds=0)}
    late |= {"model": "m", "costDetails": {"total": 7.5}, "usageDetails": {"input": 3}}
    ingest(api, event("generation-create", late))
    assert api.delete("/api/public/traces/t3").status_code == 200
    ingest(api, event("trace-create", {"id": "t5", "userId": USERS[-1]}))


@pytest.mark.clickhouse  # there: the hourly user rollup and the partial hours' traces
@pytest.mark.parametrize("later", [False, True])
@pytest.mark.parametrize("exclude", [(), ("dev",)])
def test_the_metrics_pages_top_users_are_the_raw_rows_top_users(api, exclude, later):
    _data(api)
    if later:
        _changed_later(api)
    rt, pid = api.app.state.runtime, api.project.id
    on = rt.store.events_conn
    for start, end in RANGES:
        scope = metrics.Scope(pid, start, end, exclude_environments=exclude)
        walked = rt.read_sync(lambda c, s=scope: metrics.top_by_cost(on(c), s, "user_id", 6))
        raw = rt.read_sync(lambda c, s=scope: metrics._top_by_cost_raw(on(c), s, "user_id", 100))
        # the raw query's ties fall to the user id as the walk orders them
        raw.sort(key=lambda r: (-r["cost"], r["id"]))
        assert [r["id"] for r in walked] == [r["id"] for r in raw[:6]]
        for have, want in zip(walked, raw, strict=False):
            assert have == {**want, "cost": pytest.approx(want["cost"])}


def test_many_traces_without_a_user_are_all_traces_less_the_users(api, monkeypatch):
    """Past WITHOUT_USER_READ traces without a user, that row is every trace less the
    users' (from the rollups) instead of those traces one by one: the same answer."""
    from lanterna.analytics.query import plan

    _data(api)
    monkeypatch.setattr(plan, "WITHOUT_USER_READ", 0)
    rt, pid = api.app.state.runtime, api.project.id
    for start, end in RANGES:
        for body in QUERIES:
            query = _by_user(body, start, end)
            planned = rt.read_sync(lambda c, q=query: run_query(c, pid, q))
            _assert_same(planned, rt.read_sync(lambda c, q=query: run_raw(c, pid, q)), body)


def _user_hour_plans(api: Any, query: Any) -> list[str]:
    """SQLite's plans of the reads of ``rollup_user_hours`` answering ``query``."""
    statements: list[str] = []

    def read(c: Any) -> list[str]:
        c.raw.set_trace_callback(statements.append)
        try:
            run_query(c, api.project.id, query)
        finally:
            c.raw.set_trace_callback(None)
        hours = [s for s in statements if "FROM rollup_user_hours" in s]
        return [str(c.raw.execute(f"EXPLAIN QUERY PLAN {s}").fetchall()) for s in hours]

    return api.app.state.runtime.read_sync(read)


def test_a_users_hours_are_read_from_the_index_alone(api, db_url):
    """On SQLite the walk's reads of users' hours find every sum in
    ``rollup_user_hours_user`` (0047): no lookup of the rollup's key per hour; a
    grouping of every user reads the range by the key, not the whole index (which
    SQLite, without statistics, took to group by user without a sort)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL keeps the narrow index (0047)")
    _data(api)
    plans = _user_hour_plans(api, _by_user(QUERIES[0], *RANGES[2]))
    assert plans
    assert all("USING COVERING INDEX rollup_user_hours_user" in p for p in plans), plans
    everyone = _by_user({**QUERIES[0], "config": {"row_limit": 500}}, *RANGES[2])
    plans = _user_hour_plans(api, everyone)
    assert plans
    assert all("PRIMARY KEY (project_id=? AND hour>? AND hour<?)" in p for p in plans), plans
