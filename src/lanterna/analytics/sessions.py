"""Per-session aggregates for the session list and the session view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..store.costs import session_totals
from ..store.db import Conn
from ..store.traces import trace_metrics
from ..timeutil import seconds_between


@dataclass(slots=True)
class SessionSummary:
    """A session as the list shows it."""

    turns: int = 0
    users: list[str] = field(default_factory=list)
    first: Any = None
    last: Any = None
    duration: float | None = None
    cost: float = 0.0
    tokens: int = 0


def session_summaries(
    conn: Conn, project_id: str, session_ids: Sequence[str]
) -> dict[str, SessionSummary]:
    """``session id -> SessionSummary`` for a page of sessions.

    Turns are traces; duration runs from the first trace's timestamp to the last one's.
    Cost and tokens are :func:`lanterna.store.costs.session_totals`.
    """
    ids = list(dict.fromkeys(session_ids))
    if not ids:
        return {}
    d = conn.dialect
    marks = ", ".join("?" * len(ids))
    out: dict[str, SessionSummary] = {sid: SessionSummary() for sid in ids}
    for r in conn.all(
        "SELECT session_id, COUNT(*) AS turns, MIN(timestamp) AS first, MAX(timestamp) AS last"
        f" FROM traces WHERE project_id = ? AND session_id IN ({marks}) GROUP BY session_id",
        [project_id, *ids],
    ):
        s = out[r["session_id"]]
        s.turns = int(r["turns"])
        s.first, s.last = d.ts_parse(r["first"]), d.ts_parse(r["last"])
        s.duration = seconds_between(s.first, s.last)
    for r in conn.all(
        "SELECT DISTINCT session_id, user_id FROM traces"
        f" WHERE project_id = ? AND session_id IN ({marks}) AND user_id IS NOT NULL"
        " ORDER BY session_id, user_id",
        [project_id, *ids],
    ):
        out[r["session_id"]].users.append(r["user_id"])
    for sid in ids:
        totals = session_totals(conn, project_id, sid)
        out[sid].cost = totals["totalCost"]
        out[sid].tokens = totals["totalTokens"]
    return out


@dataclass(slots=True)
class Turn:
    """One trace of a session, with its latency, cost and the cost so far."""

    trace: dict[str, Any]
    latency: float
    cost: float
    cumulative_cost: float


def session_turns(
    conn: Conn, project_id: str, traces: list[dict[str, Any]]
) -> tuple[list[Turn], float | None]:
    """The session's traces as turns (in order), and the average latency per turn."""
    metrics = trace_metrics(conn, project_id, [t["id"] for t in traces])
    turns: list[Turn] = []
    running = 0.0
    latencies: list[float] = []
    for t in traces:
        latency, cost = metrics.get(t["id"], (0.0, 0.0))
        running += cost
        if t["id"] in metrics:
            latencies.append(latency)
        turns.append(Turn(t, latency, cost, running))
    average = sum(latencies) / len(latencies) if latencies else None
    return turns, average


def sessions_of_user(conn: Conn, project_id: str, user_id: str, *, limit: int = 50) -> list[str]:
    """Ids of the sessions a user's traces belong to, most recent first."""
    rows = conn.all(
        "SELECT session_id, MAX(timestamp) AS last FROM traces"
        " WHERE project_id = ? AND user_id = ? AND session_id IS NOT NULL"
        " GROUP BY session_id ORDER BY last DESC, session_id LIMIT ?",
        (project_id, user_id, limit),
    )
    return [r["session_id"] for r in rows]
