"""The metrics query planner on the three backends: for queries it routes to the rollups,
the planned answer equals the raw-row answer on the same data (hypothesis over random
event orders, updates, deletes and cost recomputes; ranges with partial hours at both
ends), approximate percentiles are within the stated bound, and ``explain`` names the
path each query takes (shown to be the one taken by a row only the rollups hold)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import T0, event, ingest, iso
from lanterna.analytics.query import explain, parse_query, run_query, run_raw
from lanterna.store.db import Database
from lanterna.store.rollups import MIN_LATENCY, PERCENTILE_ERROR
from test_clickhouse_rollups import afresh, kept
from test_rollups_property import _step, apply_step

#: Ranges over the property test's data (T0 - 2 h .. T0 + 3 h): partial hours at both
#: ends, whole hours only, a range inside one hour, and whole days.
RANGES = (
    (T0 - timedelta(hours=2, minutes=43, seconds=7), T0 + timedelta(hours=3, minutes=5)),
    (T0 - timedelta(hours=3), T0 + timedelta(hours=4)),
    (T0 + timedelta(minutes=1), T0 + timedelta(minutes=59)),
    # Whole days (the coarse daily level) with hours and partial hours at both ends.
    (T0 - timedelta(days=2, minutes=17), T0 + timedelta(days=1, hours=3, minutes=1)),
)
_ALL_SUMS = [
    {"measure": "count", "aggregation": "count"},
    {"measure": "count", "aggregation": "sum"},
    {"measure": "errorCount", "aggregation": "sum"},
    {"measure": "errorRate", "aggregation": "avg"},
    {"measure": "observationsCount", "aggregation": "sum"},
    {"measure": "observationsCount", "aggregation": "avg"},
    {"measure": "totalCost", "aggregation": "sum"},
    {"measure": "totalTokens", "aggregation": "sum"},
    {"measure": "latency", "aggregation": "sum"},
    {"measure": "latency", "aggregation": "count"},
    {"measure": "latency", "aggregation": "avg"},
]
_OBSERVATION_SUMS = [
    {"measure": m, "aggregation": a}
    for m, a in (("count", "count"), ("count", "sum"), ("errorCount", "sum"),
                 ("errorCount", "avg"), ("errorRate", "avg"), ("totalCost", "sum"),
                 ("totalTokens", "sum"), ("inputTokens", "sum"), ("outputTokens", "sum"))
]  # fmt: skip
_DURATIONS = [
    {"measure": m, "aggregation": a}
    for m in ("latency", "timeToFirstToken") for a in ("sum", "count", "avg")
]  # fmt: skip
_SCORE_METRICS = [
    {"measure": m, "aggregation": a} for m in ("count", "value") for a in ("count", "sum", "avg")
]
#: Queries (without their range) the planner answers from the rollups.
PLANNED: tuple[dict[str, Any], ...] = (
    {"metrics": _ALL_SUMS},
    {"metrics": _ALL_SUMS, "dimensions": [{"field": "name"}],
     "timeDimension": {"granularity": "hour"}},
    {"metrics": _ALL_SUMS, "dimensions": [{"field": "environment"}, {"field": "name"}],
     "timeDimension": {"granularity": "day"}},
    {"metrics": [{"measure": "count", "aggregation": "count"},
                 {"measure": "errorCount", "aggregation": "avg"}],
     "timeDimension": {"granularity": "week"},
     "filters": [{"column": "name", "operator": "any of", "value": ["chat"],
                  "type": "stringOptions"}]},
    {"metrics": [{"measure": "totalCost", "aggregation": "sum"},
                 {"measure": "count", "aggregation": "count"},
                 {"measure": "errorCount", "aggregation": "sum"},
                 {"measure": "observationsCount", "aggregation": "sum"},
                 {"measure": "totalTokens", "aggregation": "sum"}],
     "dimensions": [{"field": "userId"}], "timeDimension": {"granularity": "month"},
     "filters": [{"column": "userId", "operator": "=", "value": "u1", "type": "string"}]},
    # By user: the group without a user is all traces less the user rollup's.
    {"metrics": [{"measure": "totalCost", "aggregation": "sum"},
                 {"measure": "count", "aggregation": "count"},
                 {"measure": "errorRate", "aggregation": "avg"},
                 {"measure": "observationsCount", "aggregation": "avg"},
                 {"measure": "totalTokens", "aggregation": "sum"}],
     "dimensions": [{"field": "userId"}, {"field": "environment"}],
     "timeDimension": {"granularity": "day"}},
    {"metrics": [{"measure": "totalCost", "aggregation": "sum"}],
     "dimensions": [{"field": "userId"}], "config": {"row_limit": 2}},
    # Scores (v2): the score rollup, keyed by the score's own hour.
    {"view": "scores-numeric", "metrics": _SCORE_METRICS,
     "dimensions": [{"field": "name"}, {"field": "dataType"}],
     "timeDimension": {"granularity": "hour"}},
    {"view": "scores-numeric", "metrics": _SCORE_METRICS, "dimensions": [{"field": "environment"}],
     "filters": [{"column": "name", "operator": "=", "value": "quality", "type": "string"}]},
    {"view": "scores-boolean", "metrics": _SCORE_METRICS, "dimensions": [{"field": "name"}],
     "timeDimension": {"granularity": "day"}},
    {"view": "scores-boolean", "metrics": _SCORE_METRICS},
    {"metrics": [{"measure": "count", "aggregation": "count"}],
     "dimensions": [{"field": "environment"}],
     "filters": [{"column": "environment", "operator": "=", "value": "dev", "type": "string"}],
     "orderBy": [{"field": "environment", "direction": "desc"}]},
    # Observations (v2): the rollups timed by the observation's own hour.
    {"view": "observations", "metrics": _OBSERVATION_SUMS + _DURATIONS,
     "dimensions": [{"field": "providedModelName"}]},
    {"view": "observations", "metrics": _OBSERVATION_SUMS,
     "dimensions": [{"field": "name"}, {"field": "environment"}],
     "timeDimension": {"granularity": "hour"}},
    {"view": "observations", "metrics": _OBSERVATION_SUMS + _DURATIONS,
     "timeDimension": {"granularity": "day"},
     "filters": [{"column": "providedModelName", "operator": "any of",
                  "value": ["acme-prop-model"], "type": "stringOptions"}]},
    {"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}],
     "dimensions": [{"field": "traceName"}],
     "filters": [{"column": "level", "operator": "=", "value": "ERROR", "type": "string"}]},
    # "is not null": any value but the rollups' "none"
    {"view": "observations", "metrics": _OBSERVATION_SUMS,
     "dimensions": [{"field": "providedModelName"}],
     "filters": [{"column": "providedModelName", "operator": "is not null", "type": "null"}]},
    {"metrics": _ALL_SUMS, "dimensions": [{"field": "name"}],
     "filters": [{"column": "name", "operator": "is not null", "type": "null"}]},
    {"metrics": [{"measure": "totalCost", "aggregation": "sum"}],
     "dimensions": [{"field": "userId"}],
     "filters": [{"column": "userId", "operator": "is not null", "type": "null"}]},
    {"view": "observations", "metrics": [{"measure": "totalTokens", "aggregation": "sum"}],
     "dimensions": [{"field": "providedModelName"}], "timeDimension": {"granularity": "week"},
     "orderBy": [{"field": "sum_totalTokens", "direction": "desc"}]},
)  # fmt: skip


def _query(body: dict[str, Any], start: datetime, end: datetime) -> Any:
    version = 1 if body.get("view", "traces") == "traces" else 2
    return parse_query(
        {"view": "traces", **body, "fromTimestamp": iso(start), "toTimestamp": iso(end)},
        version=version,
    )


def _key(query: Any, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in query.columns if c not in {m.column for m in query.metrics})


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        # Float sums added in another order (and, for the rows without a user, a total
        # less the users' sums) differ in the last bits.
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b and type(a) is type(b))


def _read(rt: Any, fn: Any) -> Any:
    """``fn`` of the store's event connection (ClickHouse's on that backend)."""
    return rt.read_sync(lambda c: fn(rt.store.events_conn(c)))


def _assert_clickhouse_rollups_equal_a_rebuild(rt: Any, pid: str) -> None:
    """ClickHouse: the deltas the writes and deletes inserted sum, key by key, to what
    the rollups computed afresh from the raw rows hold."""
    assert kept(rt.store.events, pid) == afresh(rt.store.events, pid)


def _empty_on_clickhouse(rt: Any, raw: list[dict[str, Any]]) -> bool:
    """The one row of an aggregate over no rows, on ClickHouse."""
    counts = [v for k, v in raw[0].items() if k.endswith("_count") and k.startswith("count")]
    return rt.store.events_backend != "sql" and len(raw) == 1 and counts == [0]


def _assert_planned_equals_raw(rt: Any, pid: str) -> None:
    for start, end in RANGES:
        for body in PLANNED:
            query = _query(body, start, end)
            assert explain(query).path == "rollup", (body, explain(query))
            planned = _read(rt, lambda c, q=query: run_query(c, pid, q))
            raw = _read(rt, lambda c, q=query: run_raw(c, pid, q))
            assert len(planned) == len(raw), (body, planned, raw)
            got = {_key(query, r): r for r in planned}
            for want in raw:
                have = got[_key(query, want)]
                for column, value in want.items():
                    if have[column] is None and _empty_on_clickhouse(rt, raw):
                        # ClickHouse sums no rows to 0 and averages them to nan (the API
                        # writes null); the rollups answer null, as SQL does.
                        assert value in (0, None) or math.isnan(value), (body, column, want)
                        continue
                    assert _same(have[column], value), (body, column, have, want)
            # Ordered as the raw query orders them (ties aside: keys are unique here).
            if query.order_by or query.granularity:
                assert [_key(query, r) for r in planned] == [_key(query, r) for r in raw]


def _assert_percentiles_within_bound(rt: Any, pid: str) -> None:
    """Approximate p50/p95/p99 of trace and observation latency are within
    PERCENTILE_ERROR of the nearest-rank value of the raw latencies."""
    for (start, end), view in ((r, v) for r in RANGES for v in ("traces", "observations")):
        body = {
            "view": view,
            "metrics": [{"measure": "latency", "aggregation": a} for a in ("p50", "p95", "p99")],
        }
        query = _query(body, start, end)
        assert explain(query).path == "raw"  # exact percentiles unless asked otherwise
        assert explain(query, approximate=True).path == "rollup"
        (row,) = _read(rt, lambda c, q=query: run_query(c, pid, q, approximate=True))
        values = sorted(
            max(v / 1000, MIN_LATENCY) for v in _read(rt, lambda c, q=query: _latencies(c, pid, q))
        )
        # The API's choice (approximate=None): histograms from a number of rows on.
        exact = _read(rt, lambda c, q=query: run_query(c, pid, q))
        small = _read(
            rt, lambda c, q=query: run_query(c, pid, q, approximate=None, approximate_from=10**9)
        )
        assert small == exact
        if values:
            large = _read(
                rt, lambda c, q=query: run_query(c, pid, q, approximate=None, approximate_from=1)
            )
            assert large == [row]
            # At the boundary: the range's rows (whole hours and partial ones) counted
            # exactly, so a threshold of that many takes the histograms and one more not.
            counting = _query(
                {"view": view, "metrics": [{"measure": "count", "aggregation": "count"}]},
                start,
                end,
            )
            (total,) = _read(rt, lambda c, q=counting: run_query(c, pid, q))
            n = int(total["count_count"])
            for threshold, want_rows in ((n, [row]), (n + 1, exact)):
                got_rows = _read(
                    rt,
                    lambda c, q=query, t=threshold: run_query(
                        c, pid, q, approximate=None, approximate_from=t
                    ),
                )
                assert got_rows == want_rows, (view, start, end, threshold)
        for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            got = row[f"{name}_latency"]
            if not values:
                assert got is None
                continue
            want = values[max(1, math.ceil(fraction * len(values))) - 1]
            assert abs(got / 1000 - want) <= want * PERCENTILE_ERROR * 1.0001, (name, got, want)


def _latencies(conn: Any, pid: str, query: Any) -> list[float]:
    values = run_raw(
        conn,
        pid,
        _query(
            {
                "view": query.view.name,
                "metrics": [{"measure": "latency", "aggregation": "histogram"}],
            },
            query.start,
            query.end,
        ),
        collect=True,
    )
    return values[0]["histogram_latency"] if values else []


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=6))
def test_planned_answers_equal_raw_answers_whatever_happens(api, db_url, steps):
    _planned_equals_raw(api, db_url, steps)


@pytest.mark.clickhouse_only
@settings(
    # Fewer: each example reads a few hundred queries from chDB (4-5 s alone, ~20 s on a
    # loaded CI machine). The write path's deltas get many more examples in
    # test_clickhouse_rollups.py; new examples every run.
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=6))
def test_planned_answers_equal_raw_answers_on_clickhouse(api, db_url, steps):
    _planned_equals_raw(api, db_url, steps)


def _planned_equals_raw(api: Any, db_url: str, steps: list[Any]) -> None:
    project = api.new_project()
    api.project, api.auth = project, project.auth
    priced = False
    for kind, arg in steps:
        priced = apply_step(api, db_url, kind, arg, priced=priced)
    rt = api.app.state.runtime
    if rt.store.events_backend == "clickhouse":
        _assert_clickhouse_rollups_equal_a_rebuild(rt, project.id)
    _assert_planned_equals_raw(rt, project.id)
    _assert_percentiles_within_bound(rt, project.id)


@pytest.mark.parametrize(
    ("body", "approximate", "path"),
    [
        ({"metrics": [{"measure": "count", "aggregation": "count"}]}, False, "rollup"),
        ({"metrics": [{"measure": "latency", "aggregation": "p95"}]}, False, "raw"),
        ({"metrics": [{"measure": "latency", "aggregation": "p95"}]}, True, "rollup"),
        ({"metrics": [{"measure": "latency", "aggregation": "max"}]}, True, "raw"),
        ({"metrics": [{"measure": "totalCost", "aggregation": "avg"}]}, False, "raw"),
        ({"metrics": [{"measure": "count", "aggregation": "count"}],
          "timeDimension": {"granularity": "minute"}}, False, "raw"),
        ({"metrics": [{"measure": "count", "aggregation": "count"}],
          "dimensions": [{"field": "release"}]}, False, "raw"),
        ({"metrics": [{"measure": "count", "aggregation": "count"}],
          "dimensions": [{"field": "userId"}]}, False, "rollup"),
        ({"metrics": [{"measure": "latency", "aggregation": "avg"}],
          "dimensions": [{"field": "userId"}]}, False, "raw"),
        ({"metrics": [{"measure": "count", "aggregation": "count"}],
          "dimensions": [{"field": "userId"}, {"field": "name"}]}, False, "raw"),
        ({"metrics": [{"measure": "count", "aggregation": "count"}],
          "filters": [{"column": "name", "operator": "contains", "value": "c", "type": "string"}]},
         False, "raw"),
        ({"metrics": [{"measure": "uniqueUserIds", "aggregation": "count"}]}, False, "raw"),
    ],
)  # fmt: skip
def test_explain_names_the_path(body, approximate, path):
    query = _query(body, T0, T0 + timedelta(days=1))
    plan = explain(query, approximate=approximate)
    assert plan.path == path
    assert plan.reason if path == "raw" else plan.tables


def test_observation_views_take_the_observation_rollups_where_they_hold_the_answer():
    def plan(**body: Any) -> Any:
        query = parse_query(
            {"view": "observations", "fromTimestamp": iso(T0),
             "toTimestamp": iso(T0 + timedelta(days=1)), **body},
            version=2,
        )  # fmt: skip
        return explain(query), explain(query, approximate=True)

    cost = [{"measure": "totalCost", "aggregation": "sum"}]
    p95 = [{"measure": "latency", "aggregation": "p95"}]
    exact, _ = plan(metrics=cost)
    assert exact.path == "rollup" and exact.tables == ("rollup_observation_facets",)
    exact, approximate = plan(metrics=p95, dimensions=[{"field": "providedModelName"}])
    assert exact.path == "raw" and approximate.path == "rollup"
    assert "rollup_observation_latency" in approximate.tables
    by_name, _ = plan(metrics=p95, dimensions=[{"field": "name"}])
    assert by_name.path == "raw"
    two, _ = plan(metrics=cost, dimensions=[{"field": "name"}, {"field": "traceName"}])
    assert two.path == "raw" and "one of" in two.reason
    typed, _ = plan(metrics=cost, dimensions=[{"field": "type"}])
    assert typed.path == "raw" and "type" in typed.reason
    level = [{"column": "level", "operator": "=", "value": "ERROR", "type": "string"}]
    errors, _ = plan(metrics=[{"measure": "count", "aggregation": "count"}], filters=level)
    assert errors.path == "rollup"
    errors, _ = plan(metrics=cost, filters=level)
    assert errors.path == "raw" and "ERROR" in errors.reason


@pytest.mark.clickhouse
def test_the_rollup_path_is_the_one_taken(api, db_url):
    """A row only the rollups hold (written straight into the rollup table) shows up in
    a query routed to them and not in one answered from raw rows."""
    ingest(api, event("trace-create", {"id": "tr-a", "name": "chat", "timestamp": iso(T0)}))
    rt, pid = api.app.state.runtime, api.project.id
    hour = (T0 + timedelta(hours=2)).isoformat()[:13]

    if rt.store.events_backend == "clickhouse":  # a delta row of ClickHouse's rollups
        from lanterna.store.clickhouse import rollups as ch

        row = [pid, "rollup_trace_hours", hour, "default", "chat", "", "", 0, 1000.0]
        rt.store.events.insert(ch.DELTAS, [row + [0.0] * 7], ch.COLUMNS)
    else:
        db = Database(db_url)
        try:
            with db.transaction() as conn:
                conn.run(
                    "INSERT INTO rollup_trace_hours (project_id, hour, environment, trace_name,"
                    " latency_bucket, traces, errors, latency_sum)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [pid, hour, "default", "chat", 0, 1000, 0, 0.0],
                )
        finally:
            db.close()
    count = {"metrics": [{"measure": "count", "aggregation": "count"}]}
    routed = _query(count, T0 - timedelta(minutes=30), T0 + timedelta(hours=5, minutes=10))
    by_minute = _query(
        {**count, "timeDimension": {"granularity": "minute"}},
        T0 - timedelta(minutes=30),
        T0 + timedelta(hours=5, minutes=10),
    )
    assert explain(routed).path == "rollup" and explain(by_minute).path == "raw"
    assert _read(rt, lambda c: run_query(c, pid, routed)) == [{"count_count": 1001}]
    rows = _read(rt, lambda c: run_query(c, pid, by_minute))
    assert sum(r["count_count"] for r in rows) == 1


@pytest.mark.clickhouse
def test_score_views_from_the_score_rollup(api):
    """Numeric and boolean scores in whole and partial hours: the planned answer is the
    raw one and the expected sums."""
    scores = [("a", "quality", "NUMERIC", 0.5, -100), ("b", "quality", "NUMERIC", 2.0, 7300),
              ("c", "helpful", "BOOLEAN", 1, 3000), ("d", "helpful", "BOOLEAN", 0, 200),
              ("e", "tone", "CATEGORICAL", "ok", 10)]  # fmt: skip
    ingest(api, event("trace-create", {"id": "tr-s", "timestamp": iso(T0)}))
    ingest(api, *[
        event("score-create", {"id": sid, "traceId": "tr-s", "name": name, "dataType": kind,
                               "value": value, "timestamp": iso(seconds=at)})
        for sid, name, kind, value, at in scores
    ])  # fmt: skip
    rt, pid = api.app.state.runtime, api.project.id
    body = {"view": "scores-numeric", "dimensions": [{"field": "name"}], "metrics": _SCORE_METRICS}
    query = _query(body, T0 - timedelta(minutes=5), T0 + timedelta(hours=2, minutes=5))
    assert explain(query).path == "rollup"
    planned = _read(rt, lambda c: run_query(c, pid, query))
    assert planned == _read(rt, lambda c: run_raw(c, pid, query))
    by_name = {r["name"]: r for r in planned}
    assert by_name["quality"]["sum_value"] == 2.5 and by_name["quality"]["count_count"] == 2
    assert by_name["helpful"]["avg_value"] == 0.5 and "tone" not in by_name
    boolean = _query({**body, "view": "scores-boolean"}, T0, T0 + timedelta(hours=1))
    assert _read(rt, lambda c: run_query(c, pid, boolean)) == [
        {"name": "helpful", "count_count": 2, "sum_count": 2, "avg_count": 1.0,
         "count_value": 2, "sum_value": 1.0, "avg_value": 0.5}
    ]  # fmt: skip


def test_a_raw_query_computes_each_measure_once_per_row(tmp_path):
    """The inner select of a raw-row query is not merged into the aggregate (SQLite
    would then repeat a measure's expression for every aggregate using it: an
    observation's latency from its text timestamps three times for a sum, a count
    and a percentile's values). Shown by SQLite's plan: the subquery runs as its own
    co-routine."""
    from lanterna.analytics.query.run import compile_query
    from lanterna.store.migrations import migrate

    db = Database(f"sqlite:///{tmp_path / 'plan.db'}")
    migrate(db)
    body = {
        "view": "observations",
        "dimensions": [{"field": "providedModelName"}],
        "metrics": [
            {"measure": "latency", "aggregation": "avg"},
            {"measure": "latency", "aggregation": "p95"},
        ],
    }
    query = _query(body, T0 - timedelta(hours=1), T0)
    with db.read() as conn:
        compiled = compile_query(query, "p", conn.dialect)
        plan = conn.raw.execute(f"EXPLAIN QUERY PLAN {compiled.sql}", compiled.params).fetchall()
    db.close()
    steps = [str(row[-1]) for row in plan]
    assert "CO-ROUTINE q" in steps or "MATERIALIZE q" in steps, steps


@pytest.mark.clickhouse
def test_an_empty_name_outside_a_partial_hour_is_not_counted(api):
    # The rollups keep "no name" and "" as one group; a partial hour answered as its
    # rollups less the raw rows outside the range must take those rows from that group
    # (they were taken from a group of "" that was then dropped: the count was 1 high).
    pid = api.project.id
    rt = api.app.state.runtime
    at = {"outside": T0 + timedelta(minutes=5), "inside": T0 + timedelta(minutes=30)}
    ingest(
        api,
        event("trace-create", {"id": "t-empty", "name": "", "timestamp": iso(T0)}),
        *(
            event(
                "span-create",
                {
                    "id": f"o-{k}",
                    "traceId": "t-empty",
                    "name": "",
                    "startTime": iso(t),
                    "endTime": iso(t),
                },
            )
            for k, t in at.items()
        ),
    )
    for view in ("observations", "traces"):
        body = {"view": view, "dimensions": [{"field": "name"}],
                "metrics": [{"measure": "count", "aggregation": "count"}]}  # fmt: skip
        start = T0 + timedelta(minutes=17) if view == "observations" else T0
        query = _query(body, start, T0 + timedelta(hours=4, minutes=5))
        assert explain(query).path == "rollup", explain(query)
        rows = _read(rt, lambda c, q=query: run_query(c, pid, q))
        want = 1  # the observation at 10:30, or the trace at 10:00
        assert [(r["name"] or "", r["count_count"]) for r in rows] == [("", want)], (view, rows)


def test_the_sum_of_count_over_a_range_without_data_is_null_on_every_path(api):
    # docs/metrics.md: the one row of a range without data answers null (count: 0). The
    # observation rollups answered 0 for sum_count where raw rows (a filter on type)
    # answered null.
    pid = api.project.id
    rt = api.app.state.runtime
    metrics = [
        {"measure": "count", "aggregation": "sum"},
        {"measure": "count", "aggregation": "count"},
    ]
    planned = _query({"view": "observations", "metrics": metrics}, T0, T0 + timedelta(hours=2))
    raw = _query({"view": "observations", "metrics": metrics, "filters": [
        {"column": "type", "operator": "=", "value": "SPAN", "type": "string"}]},
        T0, T0 + timedelta(hours=2))  # fmt: skip
    assert explain(planned).path == "rollup" and explain(raw).path == "raw"
    for query in (planned, raw):
        rows = _read(rt, lambda c, q=query: run_query(c, pid, q))
        assert rows == [{"sum_count": None, "count_count": 0}], (explain(query).path, rows)
