"""Hourly rollups: they equal aggregates of the raw rows after inserts, updates and
deletes, and the metrics read from them keep their documented percentile error."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest

from helpers import T0, event, ingest, iso
from lanterna.analytics import metrics
from lanterna.store import rollup_build, rollups
from lanterna.store.db import Database
from lanterna.store.migrations import m0018_coarse_rollups, m0041_latency_days, migrate
from lanterna.store.recompute import recompute


def _raw(conn: Any, project_id: str) -> dict[str, Any]:
    """The rollups' content computed in Python from the raw rows (the definition)."""
    traces = {
        r["id"]: r for r in conn.all("SELECT * FROM traces WHERE project_id = ?", [project_id])
    }
    obs = defaultdict(list)
    for o in conn.all("SELECT * FROM observations WHERE project_id = ?", [project_id]):
        obs[o["trace_id"]].append(o)
    d = conn.dialect
    out: dict[str, dict[tuple, list[float]]] = {
        "traces": defaultdict(lambda: [0, 0, 0.0]),
        "models": defaultdict(lambda: [0, 0.0, 0, 0, 0]),
        "observations": defaultdict(lambda: [0, 0, 0.0, 0, 0, 0]),
        "buckets": defaultdict(lambda: [0, 0.0]),
        "bucket_days": defaultdict(lambda: [0, 0.0]),
        "users": defaultdict(lambda: [0, 0, 0, 0, 0.0, 0, 0, 0]),
        "model_traces": defaultdict(lambda: [0]),
        "facets": defaultdict(lambda: [0, 0, 0.0, 0, 0, 0, 0, 0]),
        "facet_days": defaultdict(lambda: [0, 0, 0.0, 0, 0, 0, 0, 0]),
        "coarse_traces": defaultdict(lambda: [0, 0, 0.0]),
        "coarse_models": defaultdict(lambda: [0, 0, 0, 0.0, 0, 0, 0]),
    }
    for tid, t in traces.items():
        hour = d.ts_out(t["timestamp"])[:13]
        env = t["environment"]
        name = t["name"] or ""
        mine = obs.get(tid, [])
        error = int(any(o["level"] == "ERROR" for o in mine))
        if t["user_id"] is not None:
            u = out["users"][(hour, env, t["user_id"])]
            u[0] += 1
            u[1] += int(bool(mine))
            u[2] += error
            u[3] += len(mine)
            u[4] += sum(float(o["total_cost"] or 0) for o in mine)
            u[5] += sum(int(o["usage_input"] or 0) for o in mine)
            u[6] += sum(int(o["usage_output"] or 0) for o in mine)
            u[7] += sum(int(o["usage_total"] or 0) for o in mine)
        if not mine:
            out["traces"][(hour, env, name, rollups.NO_LATENCY)][0] += 1
            continue
        start = min(d.ts_parse(o["start_time"]) for o in mine)
        end = max(d.ts_parse(o["end_time"] or o["start_time"]) for o in mine)
        latency = (end - start).total_seconds()
        v = out["traces"][(hour, env, name, rollups.bucket(latency))]
        v[0] += 1
        v[1] += error
        v[2] += latency
        for model in {o["model"] for o in mine if o["model"]}:
            out["model_traces"][(hour, env, name, model)][0] += 1
        for o in mine:
            usage = [
                float(o["total_cost"] or 0),
                int(o["usage_input"] or 0),
                int(o["usage_output"] or 0),
                int(o["usage_total"] or 0),
            ]
            m = out["models"][(hour, env, o["model"] or "")]
            m[0] += 1
            for j, x in enumerate(usage):
                m[1 + j] += x
            key = (hour, env, name, o["name"] or "", o["model"] or "")
            w = out["observations"][key]
            w[0] += 1
            w[1] += int(o["level"] == "ERROR")
            for j, x in enumerate(usage):
                w[2 + j] += x
    # Timed by the observation's own hour and environment (those of traces not
    # stored too, under trace name ''): facets and latency histograms.
    for o in (o for mine in obs.values() for o in mine):
        t = traces.get(o["trace_id"])
        own = (d.ts_out(o["start_time"])[:13], o["environment"])
        usage = [
            1,
            int(o["level"] == "ERROR"),
            float(o["total_cost"] or 0),
            int(o["usage_input"] or 0),
            int(o["usage_output"] or 0),
            int(o["usage_total"] or 0),
            int(o["total_cost"] is not None),
            int(o["usage_total"] is not None),
        ]
        tname = (t["name"] or "") if t is not None else ""
        for facet, value in (("model", o["model"]), ("name", o["name"]), ("trace_name", tname)):
            f = out["facets"][(*own, facet, value or "")]
            for j, x in enumerate(usage):
                f[j] += x
        began = d.ts_parse(o["start_time"])
        for measure, col in (("latency", "end_time"), ("ttft", "completion_start_time")):
            if o[col] is not None:
                seconds = (d.ts_parse(o[col]) - began).total_seconds()
                h = out["buckets"][(*own, o["model"] or "", measure, rollups.bucket(seconds))]
                h[0] += 1
                h[1] += seconds
    for (hour, env, facet, value), v in out["facets"].items():
        f = out["facet_days"][(hour[:10], env, facet, value)]
        for j, x in enumerate(v):
            f[j] += x
    for (hour, env, model, measure, b), v in out["buckets"].items():
        h = out["bucket_days"][(hour[:10], env, model, measure, b)]
        h[0] += v[0]
        h[1] += v[1]
    for (hour, env, _, b), v in out["traces"].items():
        c = out["coarse_traces"][(hour[:10], env, b)]
        for j, x in enumerate(v):
            c[j] += x
    for (hour, env, _, model), v in out["model_traces"].items():
        out["coarse_models"][(hour[:10], env, model)][0] += v[0]
    for (hour, env, _, _, model), v in out["observations"].items():
        m = out["coarse_models"][(hour[:10], env, model)]
        for j, x in enumerate(v):
            m[1 + j] += x
    totals = {
        (tid, t["user_id"], t["session_id"], t["name"]): [
            len(obs.get(tid, [])),
            sum(float(o["total_cost"] or 0) for o in obs.get(tid, [])),
            sum(int(o["usage_total"] or 0) for o in obs.get(tid, [])),
        ]
        for tid, t in traces.items()
    }
    scores: dict[tuple, list[float]] = defaultdict(lambda: [0, 0.0])
    for r in conn.all(
        "SELECT * FROM scores WHERE project_id = ? AND value IS NOT NULL"
        " AND data_type IN ('NUMERIC', 'BOOLEAN')",
        [project_id],
    ):
        v = scores[(d.ts_out(r["timestamp"])[:13], r["environment"], r["name"], r["data_type"])]
        v[0] += 1
        v[1] += float(r["value"])
    out["scores"] = scores
    return {**{k: dict(v) for k, v in out.items()}, "totals": totals}


_TABLES = (
    "observations",
    "buckets",
    "users",
    "scores",
    "model_traces",
    "totals",
    "facets",
    "facet_days",
    "bucket_days",
    "coarse_traces",
    "coarse_models",
)


def _rolled(conn: Any, project_id: str) -> dict[str, Any]:
    """The rollup tables' content, rows that went back to zero left out (``models``:
    the observation rollup summed over trace and observation names)."""
    out: dict[str, Any] = {"totals": {}}
    for r in conn.all("SELECT * FROM trace_totals WHERE project_id = ?", [project_id]):
        out["totals"][(r["trace_id"], r["user_id"], r["session_id"], r["name"])] = [
            int(r["observations"]),
            float(r["cost"]),
            int(r["tokens"]),
        ]
    for attr, table in (
        ("traces", "rollup_trace_hours"),
        ("observations", "rollup_observation_hours"),
        ("buckets", "rollup_observation_latency"),
        ("users", "rollup_user_hours"),
        ("scores", "rollup_score_hours"),
        ("model_traces", "rollup_model_traces"),
        ("facets", "rollup_observation_facets"),
        ("facet_days", "rollup_observation_facet_days"),
        ("bucket_days", "rollup_observation_latency_days"),
        ("coarse_traces", "rollup_days"),
        ("coarse_models", "rollup_model_days"),
    ):
        _, keys, values = rollups.TABLES[table]
        out[attr] = {}
        for r in conn.all(f"SELECT * FROM {table} WHERE project_id = ?", [project_id]):
            if r[values[0]] or (table == "rollup_model_days" and r["observations"]):
                key = tuple(r[k] for k in keys)
                out[attr][key] = [float(r[v]) for v in values]
    models: dict[tuple, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0, 0])
    for (hour, env, _, _, model), v in out["observations"].items():
        m = models[(hour, env, model)]
        for j, x in enumerate([v[0], *v[2:]]):
            m[j] += x
    out["models"] = dict(models)
    return out


def _assert_rollups_match(api: Any) -> dict[str, Any]:
    rt = api.app.state.runtime
    pid = api.project.id
    raw = rt.read_sync(lambda c: _raw(c, pid))
    rolled = rt.read_sync(lambda c: _rolled(c, pid))
    for table in ("traces", "models", *_TABLES):
        assert set(rolled[table]) == set(raw[table]), table
        for key, values in raw[table].items():
            assert rolled[table][key] == pytest.approx(values, rel=1e-9, abs=1e-9), key
    return raw


def _trace(i: int, minutes: float, *, env: str = "production") -> list[dict[str, Any]]:
    """A trace at T0 + ``minutes`` with a span and a generation (no end times yet)."""
    at = minutes * 60
    tid = f"t{i}"
    return [
        event(
            "trace-create",
            {"id": tid, "timestamp": iso(seconds=at), "environment": env, "userId": "u1"},
        ),
        event("span-create", {"id": f"{tid}-s", "traceId": tid, "startTime": iso(seconds=at)}),
        event(
            "generation-create",
            {
                "id": f"{tid}-g",
                "traceId": tid,
                "model": "model-a" if i % 2 else "model-b",
                "startTime": iso(seconds=at + 0.1),
                "usageDetails": {"input": 10 + i, "output": 5},
                "costDetails": {"total": 0.01 * (i + 1)},
            },
        ),
    ]


def test_rollups_follow_inserts_updates_and_deletes(api):
    # Inserts across several hours and two environments, one trace without observations.
    events = [e for i in range(12) for e in _trace(i, 23 * i, env="production" if i % 3 else "dev")]
    events.append(event("trace-create", {"id": "bare", "timestamp": iso(seconds=90)}))
    ingest(api, *events)
    raw = _assert_rollups_match(api)
    assert sum(v[0] for v in raw["traces"].values()) == 13

    # Updates: end times arrive later (latency buckets move), a generation gets new usage
    # and cost, an observation turns into an error.
    ingest(
        api,
        *[
            event(
                "span-update",
                {
                    "id": f"t{i}-s",
                    "traceId": f"t{i}",
                    "endTime": iso(seconds=23 * i * 60 + 0.5 + i),
                },
            )
            for i in range(12)
        ],
        event(
            "generation-update",
            {
                "id": "t3-g",
                "traceId": "t3",
                "usageDetails": {"input": 999, "output": 1},
                "costDetails": {"total": 2.5},
            },
        ),
        event("span-update", {"id": "t4-s", "traceId": "t4", "level": "ERROR"}),
    )
    raw = _assert_rollups_match(api)
    assert sum(v[1] for v in raw["traces"].values()) == 1

    # An observation that arrives before its trace counts once the trace exists.
    ingest(
        api,
        event("span-create", {"id": "late-s", "traceId": "late", "startTime": iso(seconds=7000)}),
    )
    _assert_rollups_match(api)
    ingest(api, event("trace-create", {"id": "late", "timestamp": iso(seconds=7000)}))
    raw = _assert_rollups_match(api)
    assert sum(v[0] for v in raw["traces"].values()) == 14

    # One batch: a new trace whose span is created and updated (an error, a model) in
    # the same batch (computed from the batch alone), next to a new observation of a
    # stored trace and an update of a stored one (computed from the stored rows).
    ingest(
        api,
        event("trace-create", {"id": "whole", "timestamp": iso(seconds=8000), "userId": "u1"}),
        event("span-create", {"id": "whole-s", "traceId": "whole", "startTime": iso(seconds=8000)}),
        event(
            "span-update",
            {"id": "whole-s", "traceId": "whole", "endTime": iso(seconds=8003), "level": "ERROR"},
        ),
        event(
            "generation-create",
            {
                "id": "whole-g",
                "traceId": "whole",
                "model": "model-a",
                "startTime": iso(seconds=8001),
                "usageDetails": {"input": 3, "output": 4},
                "costDetails": {"total": 0.5},
            },
        ),
        event("span-create", {"id": "t1-extra", "traceId": "t1", "startTime": iso(seconds=5)}),
        event("span-update", {"id": "t2-s", "traceId": "t2", "endTime": iso(seconds=46 * 60 + 9)}),
    )
    raw = _assert_rollups_match(api)
    assert sum(v[0] for v in raw["traces"].values()) == 15
    assert sum(v[1] for v in raw["traces"].values()) == 2

    # Deletes (one and many) take the traces' contributions away.
    assert api.delete("/api/public/traces/t3").status_code == 200
    _assert_rollups_match(api)
    response = api.request("DELETE", "/api/public/traces", json={"traceIds": ["t0", "t5", "bare"]})
    assert response.status_code == 200, response.text
    raw = _assert_rollups_match(api)
    assert sum(v[0] for v in raw["traces"].values()) == 11

    # The top users come from trace_totals and match the raw rows.
    scope = metrics.Scope(api.project.id, T0 - timedelta(days=1), T0 + timedelta(days=1))
    top = api.app.state.runtime.read_sync(lambda c: metrics.top_by_cost(c, scope, "user_id"))
    mine = [v for k, v in raw["totals"].items() if k[1] == "u1" and v[0] > 0]
    assert top == [
        {
            "id": "u1",
            "traces": len(mine),
            "cost": pytest.approx(sum(v[1] for v in mine)),
            "tokens": sum(v[2] for v in mine),
        }
    ]


def test_migration_0018_builds_its_tables_in_sql_as_the_write_path_does(api):
    """The coarse and observation-timed tables built set-based by the migration equal
    what the write path keeps, observations without a stored trace included."""
    events = [e for i in range(6) for e in _trace(i, 41 * i)]
    events.append(  # an observation whose trace never arrives, in an hour of its own
        event(
            "generation-create",
            {
                "id": "lonely",
                "traceId": "missing",
                "model": "model-a",
                "startTime": iso(seconds=5 * 3600),
                "endTime": iso(seconds=5 * 3600 + 1.5),
                "usageDetails": {"input": 3, "output": 4},
            },
        )
    )
    ingest(api, *events)
    rt = api.app.state.runtime
    before = rt.read_sync(lambda c: _rolled(c, api.project.id))
    assert any(k[0] == iso(seconds=5 * 3600)[:13] for k in before["facets"])

    def rebuild(conn: Any) -> None:
        for table in ("rollup_days", "rollup_model_days", *rollups.OBSERVATION_TIMED):
            conn.run(f"DELETE FROM {table}")
        m0018_coarse_rollups.build(conn)
        m0041_latency_days.build(conn)

    rt.writer.run_sync(rebuild)
    after = rt.read_sync(lambda c: _rolled(c, api.project.id))
    tables = ("facets", "facet_days", "buckets", "bucket_days", "coarse_traces", "coarse_models")
    for table in tables:
        assert set(after[table]) == set(before[table]), table
        for key, values in before[table].items():
            assert after[table][key] == pytest.approx(values, rel=1e-9, abs=1e-9), key
    _assert_rollups_match(api)


def test_backfill_rebuilds_the_rollups(api):
    ingest(api, *[e for i in range(6) for e in _trace(i, 41 * i)])
    rt = api.app.state.runtime
    before = rt.read_sync(lambda c: _rolled(c, api.project.id))

    def rebuild(conn: Any) -> None:
        for table in rollups.TABLES:
            conn.run(f"DELETE FROM {table}")
        rollup_build.backfill(conn)

    rt.writer.run_sync(rebuild)
    after = rt.read_sync(lambda c: _rolled(c, api.project.id))
    # The same keys and values: the build computes them as the write path does.
    for table in ("traces", *_TABLES):
        assert set(after[table]) == set(before[table]), table
        for key, values in before[table].items():
            assert after[table][key] == pytest.approx(values, rel=1e-9, abs=1e-9), key
    _assert_rollups_match(api)


def test_metrics_from_rollups_equal_raw_totals_and_percentiles_within_bound(api):
    rng = random.Random(7)
    latencies = []
    events = []
    for i in range(200):
        at = rng.uniform(0, 6 * 3600)
        latency = rng.lognormvariate(0.0, 1.0)
        latencies.append(latency)
        tid = f"p{i}"
        events += [
            event("trace-create", {"id": tid, "timestamp": iso(seconds=at)}),
            event(
                "generation-create",
                {
                    "id": f"{tid}-g",
                    "traceId": tid,
                    "model": "m",
                    "startTime": iso(seconds=at),
                    "endTime": iso(seconds=at + latency),
                    "level": "ERROR" if i % 10 == 0 else "DEFAULT",
                    "usageDetails": {"input": 3, "output": 2},
                    "costDetails": {"total": 0.5},
                },
            ),
        ]
    ingest(api, *events)
    # A range that starts and ends inside hours: its whole hours come from the rollups,
    # the partial ones from raw rows.
    scope = metrics.Scope(
        api.project.id, T0 - timedelta(minutes=17), T0 + timedelta(hours=6, minutes=5)
    )
    out = api.app.state.runtime.read_sync(lambda c: metrics.overview(c, scope))
    totals = out["totals"]
    assert totals["traces"] == 200
    assert totals["observations"] == 200
    assert totals["cost"] == pytest.approx(100.0)
    assert totals["inputTokens"] == 600 and totals["outputTokens"] == 400
    assert totals["errorRate"] == pytest.approx(0.1)
    assert totals["avgLatency"] == pytest.approx(sum(latencies) / 200, abs=1e-4)
    assert sum(out["series"]["traces"]) == 200
    exact = sorted(latencies)
    for q, key in ((0.5, "p50Latency"), (0.95, "p95Latency"), (0.99, "p99Latency")):
        want = exact[max(1, math.ceil(q * 200)) - 1]
        assert abs(totals[key] - want) / want <= metrics.PERCENTILE_ERROR, key

    # A range of whole hours only (all from the rollups) and one inside a single hour
    # (all raw) agree with the raw rows too.
    whole = metrics.Scope(api.project.id, T0, T0 + timedelta(hours=7))
    same = api.app.state.runtime.read_sync(lambda c: metrics.overview(c, whole))["totals"]
    for key in (
        "traces",
        "observations",
        "cost",
        "totalTokens",
        "errorRate",
        "avgLatency",
        "p50Latency",
        "p95Latency",
        "p99Latency",
    ):
        assert same[key] == pytest.approx(totals[key], rel=1e-9), key
    inside = metrics.Scope(api.project.id, T0 + timedelta(minutes=5), T0 + timedelta(minutes=50))
    part = api.app.state.runtime.read_sync(lambda c: metrics.overview(c, inside))["totals"]
    at = [e for e in events if e["type"] == "trace-create"]
    assert part["traces"] == sum(
        1 for e in at if iso(seconds=300) <= e["body"]["timestamp"] < iso(seconds=3000)
    )


def test_cost_recompute_moves_the_rollups(api, db_url):
    ingest(
        api,
        event("trace-create", {"id": "r", "timestamp": iso()}),
        event(
            "generation-create",
            {
                "id": "r-g",
                "traceId": "r",
                "model": "acme-house-model",
                "startTime": iso(),
                "usageDetails": {"input": 1000, "output": 100},
            },
        ),
    )
    before = _assert_rollups_match(api)
    assert sum(v[1] for v in before["models"].values()) == 0  # no price known yet
    response = api.post(
        "/api/public/models",
        json={
            "modelName": "acme-house-model",
            "matchPattern": "^acme-house-model$",
            "inputPrice": 1e-6,
            "outputPrice": 2e-6,
        },
    )
    assert response.status_code == 200, response.text

    db = Database(db_url)
    try:
        assert recompute(db, since=T0 - timedelta(days=1)).changed == 1
    finally:
        db.close()
    after = _assert_rollups_match(api)
    assert sum(v[1] for v in after["models"].values()) == pytest.approx(1000e-6 + 200e-6)


def test_upgrade_from_0011_builds_the_wide_rollups(api, db_url):
    """A database written before 0012 (rollups per environment and model only) gets
    the wide rollups and (0018, 0041) the coarse and observation-timed ones, equal to
    the raw rows, when it is migrated."""
    events = [e for i in range(5) for e in _trace(i, 30 * i)]
    events.append(event("trace-create", {"id": "t0", "name": "chat", "userId": "u2"}))
    ingest(api, *events)
    rt = api.app.state.runtime

    def downgrade(conn: Any) -> None:  # the state a 0011 database was left in
        for table in rollups.TABLES:
            conn.run(f"DROP TABLE {table}")
        conn.run("ALTER TABLE trace_totals DROP COLUMN name")
        conn.run("DELETE FROM schema_migrations WHERE name = '0018_coarse_rollups'")
        conn.run("DELETE FROM schema_migrations WHERE name = '0041_latency_days'")
        conn.run(
            "CREATE TABLE rollup_traces (project_id TEXT NOT NULL, hour TEXT NOT NULL,"
            " environment TEXT NOT NULL, latency_bucket INTEGER NOT NULL, traces BIGINT,"
            " errors BIGINT, latency_sum REAL)"
        )
        conn.run("CREATE TABLE rollup_models (project_id TEXT NOT NULL, model TEXT)")
        conn.run("DELETE FROM schema_migrations WHERE name = '0012_wide_rollups'")

    rt.writer.run_sync(downgrade)
    db = Database(db_url)
    try:
        assert migrate(db) == ["0012_wide_rollups", "0018_coarse_rollups", "0041_latency_days"]
    finally:
        db.close()
    raw = _assert_rollups_match(api)
    assert {k[2] for k in raw["traces"]} == {"", "chat"}
    assert {k[2] for k in raw["users"]} == {"u1", "u2"}


def test_the_read_function_names_what_a_table_cannot_answer(api):
    """A planner asking a rollup for a dimension or measure it does not keep gets a
    ValueError naming it (and falls back to raw rows); a covered query answers."""
    from lanterna.store import rollup_read

    ingest(api, *_trace(1, 0))
    rt = api.app.state.runtime
    pid = api.project.id
    day = (T0 - timedelta(days=1), T0 + timedelta(days=1))

    def read(table: str, **kwargs: Any) -> list[dict[str, Any]]:
        return rt.read_sync(lambda c: rollup_read.read(c, table, pid, *day, **kwargs))

    assert not rollup_read.covers("rollup_observation_hours", ["user_id"])
    with pytest.raises(ValueError, match="user_id"):
        read("rollup_observation_hours", measures=["cost"], group_by=["user_id"])
    with pytest.raises(ValueError, match="latency_sum"):
        read("rollup_observation_hours", measures=["latency_sum"])
    rows = read(
        "rollup_observation_hours",
        measures=["observations", "cost"],
        group_by=["model"],
        filters={"model": ["model-a", None]},
    )
    assert {r["model"]: r["observations"] for r in rows} == {"model-a": 1, None: 1}


def test_a_partial_day_is_read_as_the_day_less_its_other_hours(api):
    """When more of a partial day's hours are in the range than out of it, the read
    takes the day from the daily table less the hours outside (from the hourly one):
    the same sums as the hours inside, every table, whichever side holds the data."""
    from lanterna.store import rollup_read
    from lanterna.store.rollup_read import Excluding

    # Traces at 00:30, 02:10, 09:00, 10:40, 21:00 and 23:50 of T0's day and the next,
    # and one of another environment at 00:20 only: a group the day less its other
    # hours leaves empty, which is no group.
    minutes = [-570, -470, -60, 40, 660, 830]
    ingest(
        api,
        *[e for i, m in enumerate([*minutes, *(m + 1440 for m in minutes)]) for e in _trace(i, m)],
        *_trace(99, -580, env="staging"),
    )
    rt = api.app.state.runtime
    pid = api.project.id
    day0 = T0.replace(hour=0)
    fine_filter = {
        "rollup_trace_hours": "trace_name",
        "rollup_observation_hours": "trace_name",
        "rollup_model_traces": "trace_name",
    }
    for table, dimension in fine_filter.items():
        measures = rollup_read.MEASURES[table]
        assert rollup_read.coarsest(table, measures, ["day"]) != table
        for first_hour, last_hour in ((3, 68), (0, 44), (9, 48), (14, 61), (1, 26)):
            first = day0 + timedelta(hours=first_hour)
            last = day0 + timedelta(hours=last_hour)

            def read(
                filters: dict[str, Any], a: Any = first, b: Any = last, t: str = table
            ) -> dict[tuple[str, str], Any]:
                rows = rt.read_sync(
                    lambda c: rollup_read.read(
                        c,
                        t,
                        pid,
                        a,
                        b,
                        measures=rollup_read.MEASURES[t],
                        group_by=["day", "environment"],
                        filters=filters,
                    )
                )
                return {(r["day"], r["environment"]): r for r in rows}

            # A filter the daily table cannot apply keeps the read on the hourly one.
            hourly = read({dimension: Excluding(["no such name"])})
            got = read({})
            assert set(got) == set(hourly), (table, first_hour, last_hour)
            for key, row in hourly.items():
                assert [got[key][m] for m in measures] == pytest.approx(
                    [row[m] for m in measures]
                ), (table, first_hour, last_hour)
    # Every table read this way knows which of its values says a group has rows.
    assert set(rollup_read.COUNT) == set(rollup_read.COARSER)
    # (03:00, two days later 20:00): both partial days as days less their other hours.
    parts = rollup_read._parts(
        "rollup_trace_hours", "rollup_days", day0 + timedelta(hours=3), day0 + timedelta(hours=68)
    )
    assert [(p[0], p[3]) for p in parts] == [
        ("rollup_trace_hours", -1),
        ("rollup_trace_hours", -1),
        ("rollup_days", 1),
    ]
