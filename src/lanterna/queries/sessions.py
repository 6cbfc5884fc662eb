"""Sessions: a page of the session list (with per-session summaries when asked for) and
one session with its traces, usage and turns. The public API (``/api/public/sessions``)
and the dashboard's session pages both read them here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..analytics.metrics import Usage
from ..analytics.usage import session_totals
from ..store.db import Conn
from ..store.interface import Store
from ..timeutil import seconds_between
from .traces import times_of


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
    store: Store, conn: Conn, project_id: str, session_ids: Sequence[str]
) -> dict[str, SessionSummary]:
    """``session id -> SessionSummary`` for a page of sessions.

    Turns are traces; duration runs from the first trace's timestamp to the last one's.
    Cost and tokens are :func:`lanterna.analytics.usage.session_totals`, read from the
    store's per-session totals where it keeps them.
    """
    out: dict[str, SessionSummary] = {}
    usage = store.sessions.session_usage(conn, project_id, session_ids)
    for sid, stats in store.sessions.session_stats(conn, project_id, session_ids).items():
        if usage is not None:
            cost, tokens = usage.get(sid, (0.0, 0))
        else:  # a store without per-session totals
            totals = session_totals(conn, project_id, sid)
            cost, tokens = totals.cost, totals.total_tokens
        out[sid] = SessionSummary(
            turns=stats.turns,
            users=stats.users,
            first=stats.first,
            last=stats.last,
            duration=seconds_between(stats.first, stats.last),
            cost=cost,
            tokens=tokens,
        )
    return out


@dataclass(slots=True)
class Turn:
    """One trace of a session, with its latency, cost and the cost so far."""

    trace: dict[str, Any]
    latency: float
    cost: float
    cumulative_cost: float


def _turns(
    traces: list[dict[str, Any]], metrics: dict[str, tuple[float, float]]
) -> tuple[list[Turn], float | None]:
    """The session's traces as turns (in order), and the average latency per turn."""
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


Row = dict[str, Any]


@dataclass(slots=True)
class SessionItem:
    """A session of a list page, with its summary when asked for."""

    row: Row
    summary: SessionSummary | None = None


def session_list(
    store: Store,
    conn: Conn,
    project_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    environments: Sequence[str] = (),
    limit: int,
    offset: int,
    summaries: bool = False,
) -> tuple[list[SessionItem], int]:
    """A page of the project's sessions (newest first, created in ``[start, end)``) and
    the total count; with ``summaries``, each session's :class:`SessionSummary`."""
    rows, total = store.sessions.list_sessions(
        conn,
        project_id,
        from_timestamp=start,
        to_timestamp=end,
        environments=environments,
        limit=limit,
        offset=offset,
    )
    ids = [r["id"] for r in rows]
    found = session_summaries(store, conn, project_id, ids) if summaries else {}
    return [SessionItem(r, found.get(r["id"])) for r in rows], total


@dataclass(slots=True)
class SessionDetail:
    """A session row, its trace rows (oldest first) and their usage; with turns, each
    trace as a :class:`Turn` and the average latency per turn."""

    row: Row
    traces: list[Row]
    totals: Usage
    turns: list[Turn] = field(default_factory=list)
    average_latency: float | None = None

    @property
    def users(self) -> list[str]:
        """The users of the session's traces, sorted."""
        return sorted({t["user_id"] for t in self.traces if t["user_id"]})


def session_detail(
    store: Store, conn: Conn, project_id: str, session_id: str, *, turns: bool = False
) -> SessionDetail | None:
    """One session, or None when the project has no such session."""
    row = store.sessions.get_session(conn, project_id, session_id)
    if row is None:
        return None
    traces = store.sessions.traces_of_session(conn, project_id, session_id)
    if not turns:
        usage = session_totals(store.events_conn(conn), project_id, session_id)
        return SessionDetail(row, traces, usage)
    # The turns' figures per trace add up to the session's usage: one read of the
    # observations for both (tens of milliseconds less on ClickHouse).
    metrics, rollups = store.traces.trace_figures(
        conn, project_id, [t["id"] for t in traces], around=times_of(conn, traces)
    )
    usage = Usage(
        observations=sum(r.observations for r in rollups.values()),
        cost=math.fsum(cost for _, cost in metrics.values()),
        input_tokens=sum(r.input_tokens for r in rollups.values()),
        output_tokens=sum(r.output_tokens for r in rollups.values()),
        total_tokens=sum(r.tokens for r in rollups.values()),
    )
    out = SessionDetail(row, traces, usage)
    out.turns, out.average_latency = _turns(traces, metrics)
    return out
