"""The metrics rollups on the ClickHouse event store (``store/clickhouse/rollups.py``):
whatever is ingested, updated and deleted, the deltas the writer and the deletes insert
sum to the rollups computed afresh from the raw rows; the metrics API reads them (a row
only the rollups hold shows up); ``lanterna rollups rebuild`` restores them after a
process died between the two inserts; the migration that adds them fills them from the
events already stored.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import T0, event, ingest, iso
from lanterna.cli import main
from lanterna.store import rollups
from lanterna.store.clickhouse import EventsDb, key_totals, migrate
from lanterna.store.clickhouse import rollups as ch
from lanterna.store.db import Database
from test_rollups_property import _step, apply_step

pytestmark = pytest.mark.clickhouse_only


def _summed(rows: list[list[Any]]) -> dict[tuple[Any, ...], list[float]]:
    """Delta rows summed by (project, rollup, keys): the non-zero groups."""
    out: dict[tuple[Any, ...], list[float]] = {}
    for r in rows:
        have = out.setdefault(tuple(r[:8]), [0.0] * 8)
        for i, v in enumerate(r[8:]):
            have[i] += v
    # Rounded first: deltas of a group added in another order leave float residues
    # (a latency sum of 1e-19 where every count is zero).
    rounded = {k: [round(x, 9) for x in v] for k, v in out.items()}
    return {k: v for k, v in rounded.items() if any(v)}


def kept(events: EventsDb, pid: str) -> dict[tuple[Any, ...], list[float]]:
    """The project's kept rollups: its deltas summed."""
    _names, rows = events.query(
        f"SELECT {', '.join(ch.COLUMNS)} FROM {ch.DELTAS} WHERE project_id = '{pid}'"
    )
    return _summed([list(r) for r in rows])


def afresh(events: EventsDb, pid: str) -> dict[tuple[Any, ...], list[float]]:
    """The project's rollups computed from its raw rows, as delta rows summed."""
    fresh = ch.traces_now(events, pid, ch.trace_ids_of(events, pid))
    fresh.update(rollups.scores(ch.score_rows(events, pid, "1 = 1", [])))
    return _summed(ch.rows_of(pid, fresh))


def figures_kept(api: Any, pid: str) -> dict[str, tuple[Any, ...]]:
    """The figures of every trace the kept ``trace_figures`` rows hold (so a row left
    behind by a deleted trace shows), as the ClickHouse store reads them, rounded."""
    rt = api.app.state.runtime
    held = rt.store.events.query(
        f"SELECT trace_id FROM trace_figures WHERE project_id = '{pid}' AND observations > 0"
    )[1]
    ids = [r[0] for r in held]
    metrics, rolled = rt.read_sync(lambda c: rt.store.traces.trace_figures(c, pid, ids))
    return _figures(metrics, rolled)


def figures_raw(api: Any, pid: str) -> dict[str, tuple[Any, ...]]:
    """Every stored trace's figures computed from its observations (the SQL stores'
    query, ``traces.trace_figures``, run on ClickHouse's merged rows), rounded."""
    from lanterna.store import traces

    events = api.app.state.runtime.store.events
    ids = [r[0] for r in events.query(f"SELECT id FROM traces WHERE project_id = '{pid}'")[1]]
    metrics, rolled = traces.trace_figures(events.conn(json_text=False), pid, ids)
    return _figures(metrics, rolled)


def observation_ids_listed(api: Any, pid: str) -> tuple[dict[str, list[str]], ...]:
    """Each stored trace's observation ids as the traces API lists them (read within
    the starts its figures keep) and as the trace id index finds them in the merged
    rows (the SQL stores' query), traces without observations left out."""
    from lanterna.queries.traces import TraceParts, trace_list
    from lanterna.store import traces

    rt = api.app.state.runtime
    events = rt.store.events
    parts = TraceParts(io=False, metrics=False, observation_ids=True)
    items, _ = rt.read_sync(
        lambda c: trace_list(
            rt.store, c, pid, traces.TraceQuery(), limit=1000, offset=0, parts=parts
        )
    )
    listed = {i.row["id"]: i.observation_ids for i in items if i.observation_ids}
    ids = [i.row["id"] for i in items]
    raw = traces.observation_ids(events.conn(json_text=False), pid, ids)
    return listed, {k: v for k, v in raw.items() if v}


def _figures(metrics: dict[str, Any], rolled: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    assert metrics.keys() == rolled.keys()
    return {
        tid: (round(latency, 6), round(cost, 9), rolled[tid])
        for tid, (latency, cost) in metrics.items()
    }


def keys_kept(events: EventsDb, pid: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Every user's and session's kept totals (``key_totals_rows``, merged), rounded."""
    _names, rows = events.query(
        "SELECT kind, key, first_seen, last_seen, traces, observations, cost, input_tokens,"
        f" output_tokens, total_tokens, users FROM {key_totals.TABLE} FINAL"
        f" WHERE project_id = '{pid}'"
    )
    return {(r[0], r[1]): (*r[2:6], round(r[6], 9), *r[7:10], r[10]) for r in rows}


def keys_raw(events: EventsDb, pid: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Every user's and session's totals from the merged traces and observations."""
    conn = events.conn(json_text=False)
    out: dict[tuple[str, str], tuple[Any, ...]] = {}
    for kind in ("user", "session"):
        col = f"{kind}_id"
        sums = {
            r["k"]: (r["n"], round(r["cost"], 9), r["i"], r["o"], r["t"])
            for r in conn.all(
                f"SELECT t.{col} AS k, count() AS n, sum(coalesce(o.total_cost, 0)) AS cost,"
                " sum(coalesce(o.usage_input, 0)) AS i, sum(coalesce(o.usage_output, 0)) AS o,"
                " sum(coalesce(o.usage_total, 0)) AS t FROM traces t JOIN observations o"
                " ON o.project_id = t.project_id AND o.trace_id = t.id"
                f" WHERE t.project_id = ? AND t.{col} IS NOT NULL GROUP BY t.{col}",
                [pid],
            )
        }
        users: dict[str, dict[str, int]] = {}
        if kind == "session":
            for r in conn.all(
                "SELECT session_id, user_id, count() AS n FROM traces WHERE project_id = ?"
                " AND session_id IS NOT NULL AND user_id IS NOT NULL GROUP BY session_id, user_id",
                [pid],
            ):
                users.setdefault(r["session_id"], {})[r["user_id"]] = r["n"]
        for r in conn.all(
            f"SELECT {col} AS k, min(timestamp) AS f, max(timestamp) AS l, count() AS n"
            f" FROM traces WHERE project_id = ? AND {col} IS NOT NULL GROUP BY {col}",
            [pid],
        ):
            out[(kind, r["k"])] = (
                r["f"].replace(tzinfo=None),
                r["l"].replace(tzinfo=None),
                r["n"],
                *sums.get(r["k"], (0, 0.0, 0, 0, 0)),
                users.get(r["k"], {}),
            )
    return out


def user_traces(events: EventsDb, pid: str, source: str) -> set[tuple[Any, ...]]:
    """The user, time, id, name and session of every trace with a user in ``source``."""
    _names, rows = events.query(
        f"SELECT user_id, timestamp, id, name, session_id FROM {source}"
        f" WHERE project_id = '{pid}' AND user_id IS NOT NULL"
    )
    return set(rows)


def assert_counts_match(api: Any, events: EventsDb) -> None:
    """The unfiltered traces and observations lists count every stored row (summed from
    the daily rollups here)."""
    pid = api.project.id
    for path, table in (("traces", "traces"), ("observations", "observations")):
        want = events.query(f"SELECT count() FROM {table} WHERE project_id = '{pid}'")[1][0][0]
        got = api.get(f"/api/public/{path}", params={"limit": 1}).json()["meta"]["totalItems"]
        assert got == want, path


def _metrics(api: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    query = {
        "view": "traces",
        "fromTimestamp": iso(T0 - timedelta(hours=3)),
        "toTimestamp": iso(T0 + timedelta(hours=4)),
        **body,
    }
    response = api.get("/api/public/metrics", params={"query": json.dumps(query)})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


@settings(
    # 40 a run (~1 s each on chDB; new examples every run): the suite's longest test
    # with the planner's below, kept under two minutes on a loaded 2-core CI machine.
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_step, min_size=1, max_size=6))
def test_the_kept_rollups_equal_a_rebuild_after_every_step(api, db_url, steps):
    """Batches in any order (updates before creates, observations before their trace,
    scores re-sent with another type), trace and score deletes through the API: after
    each step the kept deltas sum, key by key, to the rollups of the raw rows, and each
    trace's kept figures (the trace list's latency, cost, tokens, level) are those of
    its observations, the traces API lists every observation id read within the
    starts the figures keep, each user's and session's kept totals those of its traces, and the
    copy of the traces ordered by user holds each trace with a user as it is; the
    unfiltered lists count every stored trace and observation."""
    project = api.new_project()
    api.project, api.auth = project, project.auth
    events = api.app.state.runtime.store.events
    priced = False
    for kind, arg in steps:
        priced = apply_step(api, db_url, kind, arg, priced=priced)
        assert kept(events, project.id) == afresh(events, project.id), (kind, arg)
        assert figures_kept(api, project.id) == figures_raw(api, project.id), (kind, arg)
        listed, raw = observation_ids_listed(api, project.id)
        assert listed == raw, (kind, arg)
        assert keys_kept(events, project.id) == keys_raw(events, project.id), (kind, arg)
        want = user_traces(events, project.id, "traces")
        assert user_traces(events, project.id, "user_traces") == want, (kind, arg)
        assert_counts_match(api, events)


def test_an_observation_of_a_stored_trace_the_batch_does_not_hold(api):
    """A batch with a new trace and an observation of another, stored trace: that
    trace's figures move (it once counted the observation as one without a trace)."""
    ingest(
        api,
        event("trace-create", {"id": "t0", "name": "chat", "timestamp": iso(seconds=5)}),
        event("trace-create", {"id": "t1", "name": "chat", "timestamp": iso(seconds=9)}),
    )
    ingest(
        api,
        event("trace-create", {"id": "t2", "name": "chat", "timestamp": iso(seconds=20)}),
        event(
            "span-create",
            {"id": "o2", "traceId": "t2", "startTime": iso(seconds=21), "endTime": iso(seconds=22)},
        ),
        event(
            "span-update",
            {"id": "o4", "traceId": "t1", "startTime": iso(seconds=30), "level": "ERROR"},
        ),
    )
    events = api.app.state.runtime.store.events
    assert kept(events, api.project.id) == afresh(events, api.project.id)
    sums = [
        {"measure": "count", "aggregation": "count"},
        {"measure": "errorCount", "aggregation": "sum"},
        {"measure": "observationsCount", "aggregation": "sum"},
    ]
    # Whole hours only: the answer comes from the rollups alone.
    body = {"metrics": sums, "fromTimestamp": iso(T0 - timedelta(hours=1))}
    assert _metrics(api, {**body, "toTimestamp": iso(T0 + timedelta(hours=1))}) == [
        {"count_count": 3, "sum_errorCount": 1, "sum_observationsCount": 2}
    ]


def test_the_metrics_api_reads_the_rollups(api):
    """A delta only the rollups hold counts in a whole-hour query and not in one by
    minute (raw rows)."""
    ingest(api, event("trace-create", {"id": "tr-a", "name": "chat", "timestamp": iso(T0)}))
    hour = (T0 + timedelta(hours=2)).isoformat()[:13]
    row = [api.project.id, "rollup_trace_hours", hour, "default", "chat", "", "", 0, 40.0]
    api.app.state.runtime.store.events.insert(ch.DELTAS, [row + [0.0] * 7], ch.COLUMNS)
    count = {"metrics": [{"measure": "count", "aggregation": "count"}]}
    assert _metrics(api, count) == [{"count_count": 41}]
    by_minute = _metrics(api, {**count, "timeDimension": {"granularity": "minute"}})
    assert sum(r["count_count"] for r in by_minute) == 1


def _lose_the_deltas(events: EventsDb, pid: str) -> None:
    events.command(f"DELETE FROM {ch.DELTAS} WHERE project_id = '{pid}'")
    assert kept(events, pid) == {}


def _some_data(api: Any) -> None:
    ingest(
        api,
        event("trace-create", {"id": "t0", "name": "chat", "userId": "u1", "timestamp": iso()}),
        event(
            "generation-create",
            {
                "id": "g0",
                "traceId": "t0",
                "model": "m1",
                "startTime": iso(seconds=1),
                "endTime": iso(seconds=3),
                "usageDetails": {"input": 10, "output": 5},
            },
        ),
        event(
            "score-create",
            {"id": "s0", "traceId": "t0", "name": "quality", "value": 0.5, "timestamp": iso()},
        ),
    )


def test_rollups_rebuild_restores_lost_deltas(api, db_url, events_url, capsys):
    """The deltas of a project gone (a process died after inserting the events):
    ``lanterna rollups rebuild --events-url`` puts back what the events say."""
    _some_data(api)
    events = api.app.state.runtime.store.events
    pid = api.project.id
    want = kept(events, pid)
    assert want and want == afresh(events, pid)
    _lose_the_deltas(events, pid)
    args = ["rollups", "rebuild", "--database-url", db_url, "--events-url", events_url]
    assert main([*args, "--project", pid]) == 0
    assert "rebuilt the rollups" in capsys.readouterr().out
    assert kept(events, pid) == want
    with pytest.raises(SystemExit, match="--events-url"):
        main(["rollups", "rebuild", "--database-url", db_url])


def run_again(events: EventsDb, db_url: str, version: int) -> list[int]:
    """Forget that migration ``version`` ran and migrate: the versions applied."""
    events.command(f"DELETE FROM lanterna_migrations WHERE version = {version}")
    db = Database(db_url)
    try:
        return migrate(events, lambda: db.transaction(exclusive=True))
    finally:
        db.close()


def test_the_migration_fills_the_rollups_of_stored_events(api, db_url):
    """An event store from before the rollups (migration 1 only) gets them from its
    events when migration 2 runs."""
    _some_data(api)
    events = api.app.state.runtime.store.events
    pid = api.project.id
    want = kept(events, pid)
    _lose_the_deltas(events, pid)
    assert run_again(events, db_url, 2) == [2]
    assert kept(events, pid) == want


@pytest.mark.parametrize(
    "failing",
    [
        "observations_rows",
        "rollup_deltas",
        "trace_figures_rows",
        "user_traces_rows",
        "key_totals_rows",
    ],
)
def test_a_failed_insert_inside_a_batch_leaves_the_rollups_right(api, monkeypatch, failing):
    """The traces of a batch inserted, then one insert failing (its observations', or
    one of the rollups' steps): the rollups, figures, users' and sessions' totals and the
    traces in user order move by what was stored, each step once, so the re-sent batch
    (or the writer's retry) adds only the rest, and they equal the raw rows'."""
    events = api.app.state.runtime.store.events
    real = type(events).insert
    failed = []
    ingest(api, event("trace-create", {"id": "t1", "userId": "u", "sessionId": "s"}))

    def flaky(self: Any, table: str, rows: list[list[Any]], columns: Any) -> None:
        if table == failing and not failed:
            failed.append(table)
            raise RuntimeError("connection dropped")
        real(self, table, rows, columns)

    monkeypatch.setattr(type(events), "insert", flaky)
    batch = [
        event(
            "trace-create",
            {
                "id": "t9",
                "name": "chat",
                "timestamp": iso(seconds=3),
                "userId": "u",
                "sessionId": "s",
            },
        ),
        event(
            "span-create",
            {"id": "o9", "traceId": "t9", "startTime": iso(seconds=4), "endTime": iso(seconds=6)},
        ),
    ]
    body = {"batch": batch}
    try:  # (the test client raises the server's exception: a 500)
        answered = api.post("/api/public/ingestion", json=body).status_code < 300
    except RuntimeError:
        answered = False
    if not answered:  # as an SDK does: the batch again
        assert api.post("/api/public/ingestion", json=body).status_code < 300
    assert failed == [failing]
    pid = api.project.id
    assert kept(events, pid) == afresh(events, pid)
    assert figures_kept(api, pid) == figures_raw(api, pid)
    assert keys_kept(events, pid) == keys_raw(events, pid)
    assert user_traces(events, pid, "user_traces") == user_traces(events, pid, "traces")
    assert keys_kept(events, pid)[("session", "s")][2] == 2  # two traces, once each
    assert [o["id"] for o in api.get("/api/public/traces/t9").json()["observations"]] == ["o9"]


def _sessions_kept(events: EventsDb, pid: str) -> dict[str, tuple[Any, ...]]:
    _names, rows = events.query(
        f"SELECT id, environment, created_at FROM kept_sessions WHERE project_id = '{pid}'"
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def test_the_writer_and_a_rebuild_keep_the_same_users_and_sessions(api):
    """What the writer keeps of each user and session (sums, first and last trace, a
    session's traces per user, environment and start) is what a rebuild (and migration
    4, the same statements) computes from the stored traces: a session begun by traces
    of two environments in one batch, a user id that is the empty string, a trace
    moved to another session, a session emptied by a delete. (A session whose first
    traces are gone keeps their environment and start in the writer, as the SQL store's
    ``sessions`` row does, where a rebuild takes its remaining traces'.)"""

    def trace(tid: str, at: float, **body: Any) -> dict[str, Any]:
        return event("trace-create", {"id": tid, "timestamp": iso(seconds=at), **body})

    ingest(
        api,
        trace("a2", 5, sessionId="s1", userId="ann", environment="dev"),
        trace("a1", 2, sessionId="s1", userId="", environment="production"),
        trace("a3", 2, sessionId="s1", userId="bob", environment="staging"),
        trace("b1", 9, sessionId="s2", userId="ann"),
        trace("c1", 1, sessionId="s3", userId="cy"),
        event(
            "generation-create",
            {
                "id": "g1",
                "traceId": "a2",
                "startTime": iso(seconds=5),
                "usageDetails": {"input": 5, "output": 2},
                "costDetails": {"total": 0.25},
            },
        ),
    )
    ingest(api, trace("b2", 0, sessionId="s2", userId="bob"))
    ingest(api, event("trace-create", {"id": "b2", "sessionId": "s1"}))  # s2 -> s1
    assert api.delete("/api/public/traces/c1").status_code == 200  # s3 is empty
    events = api.app.state.runtime.store.events
    pid = api.project.id
    keys, sessions = keys_kept(events, pid), _sessions_kept(events, pid)
    assert keys == keys_raw(events, pid)
    assert set(sessions) == {"s1", "s2"}
    assert sessions["s1"][0] == "production"  # a1: earliest time, then id, of its batch
    assert keys[("session", "s1")][-1] == {"": 1, "ann": 1, "bob": 2}
    ch.rebuild(events, [pid])
    assert keys_kept(events, pid) == keys
    assert _sessions_kept(events, pid) == sessions


def test_migration_5_keeps_each_traces_observation_starts(api, db_url):
    """Figures written before migration 5 (no first and last observation start): the
    traces API still lists every observation id (through the trace id index), and the
    migration fills the starts from the events, after which the list reads within
    them. Observations starting before their trace and long after it are kept."""
    for n, (start, end) in enumerate([(-30, -20), (1, 2), (3600, 3601)]):
        ingest(
            api,
            event("trace-create", {"id": f"t{n}", "timestamp": iso(seconds=n)}),
            event(
                "span-create",
                {
                    "id": f"o{n}a",
                    "traceId": f"t{n}",
                    "startTime": iso(seconds=start),
                    "endTime": iso(seconds=end),
                },
            ),
            event("span-create", {"id": f"o{n}b", "traceId": f"t{n}", "startTime": iso(seconds=n)}),
        )
    ingest(api, event("trace-create", {"id": "bare", "timestamp": iso(seconds=5)}))
    events = api.app.state.runtime.store.events
    pid = api.project.id
    _, rows = events.query(
        "SELECT trace_id, first_start, last_start FROM trace_figures"
        f" WHERE project_id = '{pid}' AND observations > 0 ORDER BY trace_id"
    )
    t0 = T0.replace(tzinfo=None)
    assert rows == [
        ("t0", t0 - timedelta(seconds=30), t0),
        ("t1", t0 + timedelta(seconds=1), t0 + timedelta(seconds=1)),
        ("t2", t0 + timedelta(seconds=2), t0 + timedelta(seconds=3600)),
    ]
    want = {
        "t0": ["o0a", "o0b"],
        "t1": ["o1a", "o1b"],  # the same start: by id
        "t2": ["o2b", "o2a"],
    }
    assert observation_ids_listed(api, pid) == (want, want)
    page = api.get("/api/public/traces", params={"limit": 50}).json()["data"]
    assert {t["id"]: t["observations"] for t in page} == {**want, "bare": []}

    # as a store migrated up to 4 has them: the columns empty
    events.command(
        "ALTER TABLE trace_figures_rows UPDATE first_start = NULL, last_start = NULL"
        " WHERE 1 SETTINGS mutations_sync = 2"
    )
    assert observation_ids_listed(api, pid) == (want, want)
    assert run_again(events, db_url, 5) == [5]
    _, filled = events.query(
        f"SELECT count() FROM trace_figures WHERE project_id = '{pid}' AND first_start IS NOT NULL"
    )
    assert filled[0][0] == 3
    assert observation_ids_listed(api, pid) == (want, want)
    assert figures_kept(api, pid) == figures_raw(api, pid)
