"""Reading one trace costs the same however many other traces the project holds: the
per-trace reads go through the trace indexes even on a new SQLite database, which has
no planner statistics (there SQLite preferred the time index for the ORDER BY, a walk
of every observation of the project: 385 ms per trace read in a 10-minute load run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from helpers import event, ingest, iso
from lanterna.server.app import create_app
from lanterna.store import traces
from lanterna.store.db import Database
from lanterna.store.migrations import migrate
from support import make_settings, new_project


def _trace(n: int, observations: int) -> list[dict]:
    tid = f"t-{n}"
    out = [event("trace-create", {"id": tid, "name": "chat", "timestamp": iso(seconds=n)})]
    for i in range(observations):
        out.append(
            event(
                "span-create",
                {"id": f"{tid}-o{i}", "traceId": tid, "name": "step", "startTime": iso(seconds=n)},
            )
        )
    out.append(event("score-create", {"id": f"{tid}-s", "traceId": tid, "name": "q", "value": 1}))
    return out


def _steps(db: Database, project_id: str) -> tuple[int, int]:
    """SQLite virtual-machine steps (in hundreds) to read trace t-0's observations and
    its scores."""
    counts = []
    with db.read() as conn:
        for read in (traces.observations_of, traces.scores_of):
            ticks = [0]

            def tick(ticks: list[int] = ticks) -> int:
                ticks[0] += 1
                return 0

            conn.raw.set_progress_handler(tick, 100)
            try:
                assert read(conn, project_id, "t-0")
            finally:
                conn.raw.set_progress_handler(None, 100)
            counts.append(ticks[0])
    return counts[0], counts[1]


def _site(tmp_path: Path) -> tuple[Database, Any, Any]:
    """A new SQLite database (no planner statistics), a project and the app."""
    url = f"sqlite:///{tmp_path / 'lanterna.db'}"
    db = Database(url)
    migrate(db)
    return db, new_project(url), create_app(make_settings(url, tmp_path))


def test_reading_a_trace_does_not_walk_the_project(tmp_path: Path):
    db, project, app = _site(tmp_path)
    with TestClient(app) as client:
        client.auth = project.auth
        ingest(client, *_trace(0, 5))
        alone = _steps(db, project.id)
        for first in range(1, 401, 100):  # 400 more traces, 4,000 observations
            ingest(client, *[e for n in range(first, first + 100) for e in _trace(n, 10)])
        crowded = _steps(db, project.id)
    db.close()
    # a walk of 4,000 observations (or of 400 scores) is tens of thousands of steps
    assert crowded[0] <= alone[0] + 5, (alone, crowded)
    assert crowded[1] <= alone[1] + 5, (alone, crowded)


def test_a_users_traces_by_name_and_environment_are_counted_from_the_index(tmp_path: Path):
    """The traces API's count for a user, a name and an environment reads
    ``traces_user`` alone (0048: it holds the name and environment), not each of the
    user's trace rows (a user with 40,000 traces at 10 M observations: 85 ms)."""
    db, project, app = _site(tmp_path)
    with TestClient(app) as client:
        client.auth = project.auth
        batch = [e for n in range(6) for e in _trace(n, 1)]
        for e in batch[::3]:  # the trace-create events: every other one is user u
            n = int(e["body"]["id"][2:])
            e["body"].update(userId="u" if n % 2 else "v", environment="prod")
        ingest(client, *batch)
        r = client.get("/api/public/traces", params={"userId": "u", "name": "chat"})
        assert r.json()["meta"]["totalItems"] == 3
    statements: list[str] = []
    query = traces.TraceQuery(user_id="u", name="chat", environments=["prod"])
    with db.read() as conn:
        conn.raw.set_trace_callback(statements.append)
        try:
            _, total = traces.list_traces(conn, project.id, query, limit=50, offset=0)
        finally:
            conn.raw.set_trace_callback(None)
        counts = [s for s in statements if s.startswith("SELECT COUNT(*)")]
        plans = [str(conn.raw.execute(f"EXPLAIN QUERY PLAN {s}").fetchall()) for s in counts]
    db.close()
    assert total == 3
    assert plans and all("COVERING INDEX traces_user" in p for p in plans), plans
