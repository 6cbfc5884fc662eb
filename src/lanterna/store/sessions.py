"""Session queries: a page of sessions, one session with its traces, what a session's
traces add up to, the sessions of a user."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .db import Conn


def list_sessions(
    conn: Conn,
    project_id: str,
    *,
    from_timestamp: datetime | None = None,
    to_timestamp: datetime | None = None,
    environments: Sequence[str] = (),
    limit: int,
    offset: int,
    source: str = "sessions",
) -> tuple[list[dict[str, Any]], int]:
    """One page of the project's sessions (newest first) and the total count.

    ``from_timestamp`` is inclusive, ``to_timestamp`` exclusive, both on ``created_at``.
    ``source``: the table (or a subquery with its columns) to read them from.
    """
    d = conn.dialect
    where = ["project_id = ?"]
    params: list[Any] = [project_id]
    if from_timestamp is not None:
        where.append("created_at >= ?")
        params.append(d.ts(from_timestamp))
    if to_timestamp is not None:
        where.append("created_at < ?")
        params.append(d.ts(to_timestamp))
    if environments:
        where.append(f"environment IN ({', '.join('?' * len(environments))})")
        params.extend(environments)
    clause = " AND ".join(where)
    total = int(conn.scalar(f"SELECT COUNT(*) FROM {source} WHERE {clause}", params))
    if total <= offset:
        return [], total
    rows = conn.all(
        f"SELECT * FROM {source} WHERE {clause} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return rows, total


def get_session(
    conn: Conn, project_id: str, session_id: str, source: str = "sessions"
) -> dict[str, Any] | None:
    """One session row, or None (``source`` as in :func:`list_sessions`)."""
    return conn.one(
        f"SELECT * FROM {source} WHERE project_id = ? AND id = ?", (project_id, session_id)
    )


def traces_of_session(conn: Conn, project_id: str, session_id: str) -> list[dict[str, Any]]:
    """Every trace of a session, oldest first (served by the traces_session index)."""
    where, params = conn.dialect.event_rows(
        "traces", "timestamp", "{a}project_id = ? AND {a}session_id = ?", [project_id, session_id]
    )
    return conn.all(f"SELECT * FROM traces WHERE {where} ORDER BY timestamp, id", params)


@dataclass(slots=True)
class SessionStats:
    """What a session's traces show: how many (its turns), the first and last trace's
    timestamps and the users of its traces (sorted)."""

    turns: int = 0
    first: datetime | None = None
    last: datetime | None = None
    users: list[str] = field(default_factory=list)


def session_stats(
    conn: Conn, project_id: str, session_ids: Sequence[str]
) -> dict[str, SessionStats]:
    """``session id -> SessionStats`` for a page of sessions (every id asked for, in
    order; a session without traces has empty stats)."""
    ids = list(dict.fromkeys(session_ids))
    if not ids:
        return {}
    d = conn.dialect
    marks = ", ".join("?" * len(ids))
    out = {sid: SessionStats() for sid in ids}
    # One read grouped by session and user (each session's users come with its counts;
    # ClickHouse: one statement of tens of milliseconds instead of two).
    for r in conn.all(
        "SELECT session_id, user_id, COUNT(*) AS turns, MIN(timestamp) AS first,"
        f" MAX(timestamp) AS last FROM traces WHERE project_id = ? AND session_id IN ({marks})"
        " GROUP BY session_id, user_id",
        [project_id, *ids],
    ):
        s = out[r["session_id"]]
        s.turns += int(r["turns"])
        first, last = d.ts_parse(r["first"]), d.ts_parse(r["last"])
        if first is not None and (s.first is None or first < s.first):
            s.first = first
        if last is not None and (s.last is None or last > s.last):
            s.last = last
        if r["user_id"] is not None:
            s.users.append(r["user_id"])
    for s in out.values():
        s.users.sort()
    return out


def session_usage(
    conn: Conn, project_id: str, session_ids: Sequence[str]
) -> dict[str, tuple[float, int]] | None:
    """``session id -> (cost, total tokens)`` of the sessions' traces' observations,
    from ``session_totals`` (one row per session, kept in the write path): one read
    for a page of sessions instead of each session's observations. A session without
    a row has no trace, so (0, 0)."""
    ids = list(dict.fromkeys(session_ids))
    out = {sid: (0.0, 0) for sid in ids}
    if ids:
        for r in conn.all(
            "SELECT session_id, cost, tokens FROM session_totals WHERE project_id = ?"
            f" AND session_id IN ({', '.join('?' * len(ids))})",
            [project_id, *ids],
        ):
            out[r["session_id"]] = (float(r["cost"]), int(r["tokens"]))
    return out


#: :func:`sessions_of_user` first reads this many of the user's latest traces.
USER_SESSIONS_SAMPLE = 1000


def sessions_of_user(conn: Conn, project_id: str, user_id: str, *, limit: int = 50) -> list[str]:
    """Ids of the sessions a user's traces belong to, most recent first (by their
    latest trace; ties by id).

    Read from the user's latest :data:`USER_SESSIONS_SAMPLE` traces (then ten times as
    many: a busy user's sessions hold hundreds of traces) when those name ``limit``
    sessions whose latest trace is newer than the oldest trace read: their latest
    traces are all in the sample, and every other session's is older, so the answer is
    exact. Otherwise every trace of the user is grouped."""
    source = conn.dialect.user_traces
    for size in (USER_SESSIONS_SAMPLE, 10 * USER_SESSIONS_SAMPLE):
        sample = conn.all(
            f"SELECT session_id, timestamp FROM {source} WHERE project_id = ? AND user_id = ?"
            " ORDER BY timestamp DESC LIMIT ?",
            (project_id, user_id, size),
        )
        if len(sample) < size:
            break  # every trace of the user read: grouped below
        oldest = sample[-1]["timestamp"]
        last: dict[str, Any] = {}
        for r in sample:
            if r["session_id"] is not None and r["timestamp"] > oldest:
                last.setdefault(r["session_id"], r["timestamp"])
        if len(last) >= limit:
            ranked = sorted(last.items(), key=lambda x: x[0])
            ranked.sort(key=lambda x: x[1], reverse=True)
            return [sid for sid, _ in ranked[:limit]]
    rows = conn.all(
        f"SELECT session_id, MAX(timestamp) AS last FROM {source}"
        " WHERE project_id = ? AND user_id = ? AND session_id IS NOT NULL"
        " GROUP BY session_id ORDER BY last DESC, session_id LIMIT ?",
        (project_id, user_id, limit),
    )
    return [r["session_id"] for r in rows]
