"""Property test of the hourly rollups: whatever the events (creates and updates in
any order, in any batches), deletes and cost recomputes, every rollup table equals its
definition computed from the raw rows, the read function answers every measure as the
raw rows do, and percentiles from the histograms are within the stated bound."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import T0, event, ingest, iso, price_model
from lanterna.analytics import metrics, usage
from lanterna.store import rollup_read, rollups
from lanterna.store.db import Database
from lanterna.store.recompute import recompute
from test_rollups import _assert_rollups_match

TRACES = ("t0", "t1", "t2")
OBSERVATIONS = ("o0", "o1", "o2", "o3", "o4")  # o<j> belongs to TRACES[j % 3]
SCORES = ("s0", "s1", "s2")
MODEL = "acme-prop-model"  # priced by a custom model only once a step asks for it
WINDOW = (T0 - timedelta(days=1), T0 + timedelta(days=1))

_seconds = st.integers(min_value=-7200, max_value=3 * 3600).map(lambda s: s + 0.123456)
_duration = st.sampled_from([0.0, 0.0004, 0.002, 0.05, 0.4, 1.0, 2.5, 7.3, 31.0])


@st.composite
def _trace_event(draw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": draw(st.sampled_from(TRACES))}
    if draw(st.booleans()):
        body["timestamp"] = iso(seconds=draw(_seconds))
    for key, values in (
        ("name", ["chat", "search"]),
        ("userId", ["u1", "u2"]),
        ("sessionId", ["s1", "s2"]),
        ("environment", ["production", "dev"]),
    ):
        if draw(st.booleans()):
            body[key] = draw(st.sampled_from(values))
    return event("trace-create", body)


@st.composite
def _observation_event(draw: Any) -> dict[str, Any]:
    j = draw(st.integers(0, len(OBSERVATIONS) - 1))
    generation = j % 2 == 0
    body: dict[str, Any] = {"id": OBSERVATIONS[j], "traceId": TRACES[j % len(TRACES)]}
    start = draw(_seconds)
    update = draw(st.booleans())
    if not update or draw(st.booleans()):
        body["startTime"] = iso(seconds=start)
    if draw(st.booleans()):
        body["endTime"] = iso(seconds=start + draw(_duration))
    if draw(st.booleans()):
        body["name"] = draw(st.sampled_from(["retrieve", "llm"]))
    if draw(st.booleans()):
        body["level"] = draw(st.sampled_from(["ERROR", "DEFAULT"]))
    if generation:
        if draw(st.booleans()):
            body["model"] = draw(st.sampled_from([MODEL, "other-model"]))
        if draw(st.booleans()):
            body["completionStartTime"] = iso(seconds=start + draw(_duration))
        if draw(st.booleans()):
            body["usageDetails"] = {"input": draw(st.integers(0, 900)), "output": 7}
        if draw(st.booleans()):
            body["costDetails"] = {"total": draw(st.sampled_from([0.0, 0.25, 1.5]))}
    kind = "generation" if generation else "span"
    return event(f"{kind}-{'update' if update else 'create'}", body)


@st.composite
def _whole_trace(draw: Any) -> list[dict[str, Any]]:
    """A trace with all its fields and its observations created in one batch (the
    write path's precomputed case, when neither is stored yet), events shuffled."""
    i = draw(st.integers(0, len(TRACES) - 1))
    at = draw(_seconds)
    events = [
        event(
            "trace-create",
            {
                "id": TRACES[i],
                "timestamp": iso(seconds=at),
                "name": draw(st.sampled_from(["chat", "search"])),
                "userId": draw(st.sampled_from(["u1", "u2"])),
                "sessionId": draw(st.sampled_from(["s1", "s2"])),
                "environment": draw(st.sampled_from(["production", "dev"])),
            },
        )
    ]
    for j in range(i, len(OBSERVATIONS), len(TRACES)):
        start = at + draw(st.sampled_from([0.0, 0.5, 3.0]))
        body: dict[str, Any] = {
            "id": OBSERVATIONS[j],
            "traceId": TRACES[i],
            "name": draw(st.sampled_from(["retrieve", "llm"])),
            "startTime": iso(seconds=start),
            "endTime": iso(seconds=start + draw(_duration)),
            "level": draw(st.sampled_from(["ERROR", "DEFAULT", "DEFAULT"])),
        }
        if j % 2 == 0:
            body["model"] = draw(st.sampled_from([MODEL, "other-model"]))
            body["completionStartTime"] = iso(seconds=start + draw(_duration))
            body["usageDetails"] = {"input": draw(st.integers(0, 900)), "output": 7}
            if draw(st.booleans()):
                body["costDetails"] = {"total": draw(st.sampled_from([0.25, 1.5]))}
        events.append(event("generation-create" if j % 2 == 0 else "span-create", body))
    return draw(st.permutations(events))


@st.composite
def _score_event(draw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": draw(st.sampled_from(SCORES)),
        "traceId": draw(st.sampled_from(TRACES)),
        "name": draw(st.sampled_from(["quality", "helpful"])),
        "timestamp": iso(seconds=draw(_seconds)),
    }
    kind = draw(st.sampled_from(["NUMERIC", "BOOLEAN", "CATEGORICAL"]))
    body["dataType"] = kind
    if kind == "NUMERIC":
        body["value"] = draw(st.sampled_from([0.0, 0.5, 3.25, -1.0]))
    elif kind == "BOOLEAN":
        body["value"] = draw(st.sampled_from([0, 1]))
    else:
        body["value"] = draw(st.sampled_from(["good", "bad"]))
    if draw(st.booleans()):
        body["environment"] = draw(st.sampled_from(["production", "dev"]))
    if draw(st.integers(0, 3)) == 0:  # a session's own score, on no trace
        del body["traceId"]
        body["sessionId"] = draw(st.sampled_from(["s1", "s2"]))
    return event("score-create", body)


_batch = st.lists(
    st.one_of(_trace_event(), _observation_event(), _score_event()), min_size=1, max_size=8
)
_step = st.one_of(
    _whole_trace().map(lambda b: ("ingest", b)),
    st.tuples(_whole_trace(), _batch).map(lambda b: ("ingest", [*b[0], *b[1]])),
    _batch.map(lambda b: ("ingest", b)),
    st.sampled_from(TRACES).map(lambda t: ("delete", t)),
    st.sampled_from(SCORES).map(lambda t: ("delete-score", t)),
    st.just(("recompute", None)),
)


def _close(got: dict[Any, list[float]], want: dict[Any, list[float]]) -> None:
    assert set(got) == set(want)
    for key, values in want.items():
        assert got[key] == pytest.approx(values, rel=1e-9, abs=1e-9), key


def _check_answers(api: Any, raw: dict[str, Any]) -> None:
    """The read function and the metrics answer as the raw rows do."""
    rt = api.app.state.runtime
    pid = api.project.id
    first, last = WINDOW

    def read(table: str, group_by: tuple[str, ...], **filters: Any) -> list[dict[str, Any]]:
        return rt.read_sync(
            lambda c: rollup_read.read(
                c,
                table,
                pid,
                first,
                last,
                measures=rollup_read.MEASURES[table],
                group_by=group_by,
                filters=filters,
            )
        )

    # Every measure of every table, by model / trace name / user, against the raw sums.
    by_model: dict[Any, list[float]] = defaultdict(lambda: [0.0] * 6)
    for (_, _, _, _, model), v in raw["observations"].items():
        by_model[model or None] = [a + b for a, b in zip(by_model[model or None], v, strict=True)]
    got = {
        r["model"]: [r[m] for m in rollup_read.MEASURES["rollup_observation_hours"]]
        for r in read("rollup_observation_hours", ("model",))
    }
    _close({k: v for k, v in got.items() if v[0]}, by_model)
    by_user: dict[Any, list[float]] = defaultdict(lambda: [0.0] * 8)
    for (_, _, user), v in raw["users"].items():
        by_user[user] = [a + b for a, b in zip(by_user[user], v, strict=True)]
    got = {
        r["user_id"]: [r[m] for m in rollup_read.MEASURES["rollup_user_hours"]]
        for r in read("rollup_user_hours", ("user_id",))
    }
    _close({k: v for k, v in got.items() if v[0]}, by_user)
    for name in ("chat", None):
        want = [0.0, 0.0, 0.0]
        for (_, _, tname, _), v in raw["traces"].items():
            if (tname or None) == name:
                want = [a + b for a, b in zip(want, v, strict=True)]
        rows = read("rollup_trace_hours", (), trace_name=[name])
        assert [rows[0][m] for m in ("traces", "errors", "latency_sum")] == pytest.approx(want)

    # Percentiles from the histograms, within the bound of the exact nearest-rank value.
    exact: dict[str, list[float]] = defaultdict(list)
    for measure, values in _raw_durations(rt, pid).items():
        exact[measure] = sorted(values)
    hist: dict[str, dict[int, int]] = defaultdict(dict)
    for r in read("rollup_observation_latency", ("measure", "bucket")):
        hist[r["measure"]][int(r["bucket"])] = int(r["observations"])
    for r in read("rollup_trace_hours", ("latency_bucket",)):
        hist["trace"][int(r["latency_bucket"])] = int(r["traces"])
    for measure in ("latency", "ttft", "trace"):
        values = exact.get(measure, [])
        for q in (0.5, 0.95, 0.99):
            got_q = rollup_read.percentile(hist.get(measure, {}), q)
            if not values:
                assert got_q is None
                continue
            want = max(values[max(1, math.ceil(q * len(values))) - 1], rollups.MIN_LATENCY)
            assert abs(got_q - want) / want <= rollups.PERCENTILE_ERROR, (measure, q)

    # The dashboard's totals over whole hours (rollups only) and over ranges with
    # partial hours at both ends (rollups plus raw rows) equal the raw rows' totals.
    for start, end in (
        WINDOW,
        (T0 - timedelta(minutes=53), T0 + timedelta(hours=2, minutes=9)),
        (T0 + timedelta(minutes=1), T0 + timedelta(minutes=59)),
        # 14 of T0's day's hours in the range: that day's daily rows less its hours
        # before 10:00 (where the data starts at 08:00), then a whole day.
        (T0 - timedelta(minutes=53), T0 + timedelta(days=1, hours=14)),
    ):
        scope = metrics.Scope(pid, start, end)
        totals = rt.read_sync(lambda c, s=scope: metrics.overview(c, s))["totals"]
        want = rt.read_sync(lambda c, a=start, b=end: _raw_totals(c, pid, a, b))
        assert totals["traces"] == want["traces"]
        assert totals["observations"] == want["observations"]
        assert totals["cost"] == pytest.approx(want["cost"])
        assert totals["totalTokens"] == want["tokens"]
        assert totals["errorRate"] == (
            pytest.approx(want["errors"] / want["observed"]) if want["observed"] else None
        )
        series = rt.read_sync(lambda c, s=scope: metrics.score_series(c, s))
        want_series = rt.read_sync(lambda c, s=scope: _raw_score_series(c, s))
        # raw=True: the path a database without rollups takes (the ClickHouse event store)
        unrolled = dataclasses.replace(scope, raw=True)
        raw_series = rt.read_sync(lambda c, s=unrolled: metrics.score_series(c, s))
        raw_totals = rt.read_sync(lambda c, s=unrolled: metrics.overview(c, s))["totals"]
        assert raw_totals["traces"] == want["traces"]
        assert raw_totals["cost"] == pytest.approx(want["cost"])
        for got in (series, raw_series):
            assert set(got) == set(want_series)
            for name, values in want_series.items():
                assert got[name] == pytest.approx(values), name
    # The daily metrics (rollups plus raw rows) equal the raw rows' days, whole and
    # partial ranges, filtered by trace name and environment or not.
    for scope in (
        metrics.Scope(pid),
        metrics.Scope(pid, T0 - timedelta(minutes=53), T0 + timedelta(hours=2, minutes=9)),
        metrics.Scope(pid, trace_name="chat", environments=["production"]),
    ):
        got_days = rt.read_sync(lambda c, s=scope: usage.daily_usage(c, s, limit=50, offset=0))
        want_days = rt.read_sync(lambda c, s=scope: usage._daily_raw(c, s, limit=50, offset=0))
        assert got_days[1] == want_days[1]
        for a, b in zip(got_days[0], want_days[0], strict=True):
            assert (a.date, a.traces, [m.model for m in a.models]) == (
                b.date,
                b.traces,
                [m.model for m in b.models],
            )
            assert [m.traces for m in a.models] == [m.traces for m in b.models]
            for x, y in zip(
                [a.usage, *[m.usage for m in a.models]],
                [b.usage, *[m.usage for m in b.models]],
                strict=True,
            ):
                assert (x.observations, x.input_tokens, x.output_tokens, x.total_tokens) == (
                    y.observations,
                    y.input_tokens,
                    y.output_tokens,
                    y.total_tokens,
                )
                assert x.cost == pytest.approx(y.cost)
    scope = metrics.Scope(pid, *WINDOW)
    top = rt.read_sync(lambda c: metrics.top_by_cost(c, scope, "user_id"))
    assert {r["id"]: (r["traces"], r["cost"]) for r in top} == {
        u: (v[1], pytest.approx(v[4])) for u, v in by_user.items() if v[1]
    }


def _raw_score_series(conn: Any, scope: Any) -> dict[str, list[float | None]]:
    """Average of each numeric/boolean score name per bucket, from the raw rows."""
    d = conn.dialect
    start, end = scope.bounds()
    by: dict[str, dict[str, float]] = defaultdict(dict)
    for r in conn.all(
        f"SELECT {scope.bucket_sql(conn, 'timestamp')} AS bucket, name, AVG(value) AS avg"
        " FROM scores WHERE project_id = ? AND timestamp >= ? AND timestamp < ?"
        " AND data_type IN ('NUMERIC', 'BOOLEAN') AND value IS NOT NULL GROUP BY bucket, name",
        [scope.project_id, d.ts(start), d.ts(end)],
    ):
        by[r["name"]][r["bucket"]] = float(r["avg"])
    return {name: [v.get(x) for x in scope.buckets()] for name, v in by.items()}


def _raw_totals(conn: Any, pid: str, start: Any, end: Any) -> dict[str, Any]:
    """Traces with a timestamp in ``[start, end)`` and their observations' sums."""
    d = conn.dialect
    per_trace = conn.all(
        "SELECT t.id, COUNT(o.id) AS n, COALESCE(SUM(o.total_cost), 0) AS cost,"
        " COALESCE(SUM(o.usage_total), 0) AS tokens,"
        " MAX(CASE WHEN o.level = 'ERROR' THEN 1 ELSE 0 END) AS error"
        " FROM traces t LEFT JOIN observations o ON o.project_id = t.project_id"
        " AND o.trace_id = t.id WHERE t.project_id = ? AND t.timestamp >= ?"
        " AND t.timestamp < ? GROUP BY t.id",
        [pid, d.ts(start), d.ts(end)],
    )
    return {
        "traces": len(per_trace),
        "observed": sum(1 for r in per_trace if r["n"]),
        "errors": sum(int(r["error"] or 0) for r in per_trace if r["n"]),
        "observations": sum(int(r["n"]) for r in per_trace),
        "cost": sum(float(r["cost"]) for r in per_trace),
        "tokens": sum(int(r["tokens"]) for r in per_trace),
    }


def _raw_durations(rt: Any, pid: str) -> dict[str, list[float]]:
    """Observation latency and time to first token of every observation (the
    histograms are timed by the observation), and every trace's latency, from the raw
    rows."""

    def read(conn: Any) -> dict[str, list[float]]:
        d = conn.dialect
        out: dict[str, list[float]] = defaultdict(list)
        spans: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
        for o in conn.all(
            "SELECT o.trace_id, o.start_time, o.end_time, o.completion_start_time,"
            " t.id AS stored FROM observations o LEFT JOIN traces t"
            " ON t.project_id = o.project_id AND t.id = o.trace_id WHERE o.project_id = ?",
            [pid],
        ):
            start = d.ts_parse(o["start_time"])
            end = d.ts_parse(o["end_time"])
            if o["stored"] is not None:
                spans[o["trace_id"]].append((start, end or start))
            if end is not None:
                out["latency"].append((end - start).total_seconds())
            if o["completion_start_time"] is not None:
                ttft = d.ts_parse(o["completion_start_time"]) - start
                out["ttft"].append(ttft.total_seconds())
        for pairs in spans.values():
            latency = max(b for _, b in pairs) - min(a for a, _ in pairs)
            out["trace"].append(latency.total_seconds())
        return out

    return rt.read_sync(read)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=7))
def test_rollups_equal_raw_rows_whatever_happens(api, db_url, steps):
    # Each example in a project of its own (the fixture's database is shared).
    project = api.new_project()
    api.project, api.auth = project, project.auth
    priced = False
    for kind, arg in steps:
        priced = apply_step(api, db_url, kind, arg, priced=priced)
        raw = _assert_rollups_match(api)
    _check_answers(api, raw)


def apply_step(api: Any, db_url: str, kind: str, arg: Any, *, priced: bool) -> bool:
    """Do one drawn step in ``api``'s project: ingest a batch, delete a trace or a
    score, or recompute costs (pricing the model first); returns whether it is priced."""
    if kind == "ingest":
        ingest(api, *arg)
    elif kind == "delete":
        assert api.delete(f"/api/public/traces/{arg}").status_code in (200, 404)
    elif kind == "delete-score":
        assert api.delete(f"/api/public/scores/{arg}").status_code in (200, 202, 204, 404)
    else:
        if not priced:
            price_model(api, MODEL, 1e-3, 2e-3)
        db = Database(db_url)
        try:
            recompute(db, since=WINDOW[0], project_id=api.project.id)
        finally:
            db.close()
        return True
    return priced
