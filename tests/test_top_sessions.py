"""Top sessions by cost from ``session_totals`` (analytics.top_sessions): the metrics
page's top sessions equal the raw rows' over ranges that cut sessions at both ends,
with an environment left out, sessions in several environments, ties, sessions
without cost or without observations; the walk by magnitude is the path taken (shown
by a magnitude made wrong on purpose); a walk that does not settle falls back."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from helpers import T0, event, ingest, iso, write_row
from lanterna.analytics import metrics, top_sessions
from lanterna.store import session_totals
from lanterna.store.db import Database
from lanterna.store.dialect import NO_COST

RANGES = (
    (T0 - timedelta(hours=30, minutes=17), T0 + timedelta(hours=20, minutes=41)),
    (T0 - timedelta(hours=6), T0 + timedelta(hours=6)),
    (T0 - timedelta(days=3), T0 + timedelta(days=3)),
    (T0 + timedelta(minutes=5), T0 + timedelta(minutes=55)),
)


def _data(api: Any, seed: int = 11) -> None:
    """Forty sessions of one to five traces over three days (some spanning hours),
    costs from a small set (ties), a quarter of the traces in "dev"."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    n = 0
    for i in range(40):
        session = f"s{i:02d}"
        at = rng.uniform(-36, 36) * 3600
        for _ in range(rng.randint(1, 5)):
            at += rng.uniform(0, 4) * 3600
            trace_id, env = f"t{n}", "dev" if rng.random() < 0.25 else "default"
            body = {"id": trace_id, "timestamp": iso(seconds=at), "environment": env}
            events.append(event("trace-create", {**body, "sessionId": session}))
            if i % 13 != 12:  # some sessions have no observation at all
                cost = rng.choice([0.0, 0.5, 1.0, 2.0, 3.25])
                events.append(
                    event(
                        "generation-create",
                        {
                            "id": f"g{n}",
                            "traceId": trace_id,
                            "environment": env,
                            "startTime": iso(seconds=at),
                            "usageDetails": {"input": 10, "output": 5},
                            "costDetails": {"total": cost},
                        },
                    )
                )
            n += 1
    for start in range(0, len(events), 50):
        ingest(api, *events[start : start + 50])


def _raw(api: Any, scope: Any) -> list[dict[str, Any]]:
    rt = api.app.state.runtime
    rows = rt.read_sync(
        lambda c: metrics._top_by_cost_raw(rt.store.events_conn(c), scope, "session_id", 1000)
    )
    return sorted(rows, key=lambda r: (-r["cost"], r["id"]))


def _top(api: Any, scope: Any, limit: int) -> list[dict[str, Any]]:
    rt = api.app.state.runtime
    return rt.read_sync(
        lambda c: metrics.top_by_cost(rt.store.events_conn(c), scope, "session_id", limit)
    )


@pytest.mark.clickhouse  # there: each trace's kept figures (trace_figures)
@pytest.mark.parametrize("exclude", [(), ("dev",)])
def test_top_sessions_are_the_raw_rows_top_sessions(api, exclude):
    _data(api)
    for start, end in RANGES:
        scope = metrics.Scope(api.project.id, start, end, exclude_environments=exclude)
        want = _raw(api, scope)
        for limit in (1, 4, 10, 100):
            got = _top(api, scope, limit)
            assert [r["id"] for r in got] == [r["id"] for r in want[:limit]], (start, limit)
            for have, expected in zip(got, want, strict=False):
                assert have == {**expected, "cost": pytest.approx(expected["cost"])}


def _set_magnitude(db_url: str, pid: str, session: str, value: int) -> None:
    write_row(
        db_url,
        "UPDATE session_totals SET magnitude = ? WHERE project_id = ? AND session_id = ?",
        [value, pid, session],
    )


def test_the_walk_by_magnitude_is_the_path_taken(api, db_url, monkeypatch):
    """With the top session's magnitude written as "no cost", the walk stops before
    reading it (the answer, wrong on purpose, leaves it out); when the walk gives
    up, every trace is grouped and it is back."""
    _data(api)
    scope = metrics.Scope(api.project.id, *RANGES[2])
    top = _top(api, scope, 3)
    assert top and top[0]["cost"] > 0
    _set_magnitude(db_url, api.project.id, top[0]["id"], NO_COST)
    assert top[0]["id"] not in [r["id"] for r in _top(api, scope, 3)]
    monkeypatch.setattr(top_sessions, "MAX_SESSIONS", 1)
    assert [r["id"] for r in _top(api, scope, 3)] == [r["id"] for r in top]


def test_the_migration_builds_what_the_write_path_keeps(api, db_url):
    """Migration 0044's backfill (one grouped pass over ``trace_totals``) gives the rows
    the write path kept, magnitudes included."""
    _data(api)
    # a session in two environments
    ingest(api, event("trace-create", {"id": "t0", "environment": "other"}))

    def rows(conn: Any) -> dict[str, Any]:
        found = conn.all(
            "SELECT * FROM session_totals WHERE project_id = ? ORDER BY session_id",
            [api.project.id],
        )
        return {r["session_id"]: r for r in found}

    kept = api.app.state.runtime.read_sync(rows)
    assert any("," in r["environments"] for r in kept.values())
    db = Database(db_url)
    try:
        with db.transaction() as conn:
            conn.run("DELETE FROM session_totals")
            session_totals.backfill(conn)
            built = rows(conn)
    finally:
        db.close()
    assert set(built) == set(kept)
    for session, row in kept.items():
        envs = set(row["environments"].split(","))
        assert set(built[session].pop("environments").split(",")) == envs, session
        row.pop("environments")
        assert built[session] == {**row, "cost": pytest.approx(row["cost"])}, session
