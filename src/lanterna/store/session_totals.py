"""Per-session totals: one row per project and session id of traces (the environments
of its traces, comma-separated: environment names hold no comma; first and last trace
time; traces, traces with
observations, cost, total tokens) and the cost's *magnitude* (``m`` with
``2**m <= cost < 2**(m+1)``, :data:`~.dialect.NO_COST` for none), so that the top sessions by
cost of a range (the metrics page) read the few sessions that can rank instead of
grouping every trace of the range (``analytics/top_sessions.py``).

Kept in the write transaction from the same before/after ``trace_totals`` rows the
rollups move by (:func:`add`, called with :func:`.user_totals.apply`): the sums move
by the traces' differences; the first and last trace time only widen with a trace
that is new to a session, and its environments list only gains the new trace's
environment; a session that lost a trace (deleted, moved to another session,
re-timed, or moved to another environment), or gained traces of several environments
in one batch, has them read again from ``traces_session``. So a
batch costs one upsert statement for its sessions, and the table equals the raw rows.

The magnitude index (``session_totals_magnitude``) changes only when a session's cost
crosses a power of two, not on every trace it gains (an index on the cost itself
would move an entry per trace); the table's key is the session id, so a batch's
upserts land on the pages of the sessions it touches.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .db import Conn
from .dialect import NO_COST, magnitude

__all__ = ["NO_COST", "add", "backfill", "magnitude"]

#: The summed columns, in the order of a delta.
SUMS = ("traces", "observed_traces", "cost", "tokens")
_COLUMNS = ("environments", "first_seen", "last_seen", *SUMS, "magnitude")
_CHUNK = 500


def _upsert_tail(conn: Conn) -> str:
    new_cost = "session_totals.cost + excluded.cost"
    return (
        " ON CONFLICT (project_id, session_id) DO UPDATE SET"
        # A new environment joins the list (several in one batch: NULL, and add reads
        # the session's environments again from its traces)
        " environments = CASE WHEN excluded.first_seen IS NULL"
        " THEN session_totals.environments WHEN "
        + conn.dialect.position(
            "',' || session_totals.environments || ','", "',' || excluded.environments || ','"
        )
        + " > 0 THEN session_totals.environments"
        " ELSE session_totals.environments || ',' || excluded.environments END,"
        " first_seen = CASE WHEN excluded.first_seen IS NULL"
        " OR excluded.first_seen > session_totals.first_seen THEN session_totals.first_seen"
        " ELSE excluded.first_seen END,"
        " last_seen = CASE WHEN excluded.last_seen IS NULL"
        " OR excluded.last_seen < session_totals.last_seen THEN session_totals.last_seen"
        " ELSE excluded.last_seen END, "
        + ", ".join(f"{c} = session_totals.{c} + excluded.{c}" for c in SUMS)
        + f", magnitude = {conn.dialect.magnitude(new_cost)}"
    )


_HEAD = f"INSERT INTO session_totals (project_id, session_id, {', '.join(_COLUMNS)})"


def add(conn: Conn, project_id: str, plus: Any, minus: Any = None) -> None:
    """Move the project's session totals by what a write made of the traces it touched:
    ``plus`` and ``minus`` are the :class:`~.rollups.Contribution` after and before it
    (their ``totals``: each trace's ``trace_totals`` row, ``(timestamp, environment,
    name, user, session, observations, cost, tokens, ...)``)."""
    old: dict[str, tuple[Any, ...]] = minus.totals if minus is not None else {}
    deltas: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0])
    spans: dict[str, list[Any]] = {}
    recheck: set[str] = set()

    def move(row: tuple[Any, ...], sign: int) -> None:
        d = deltas[row[4]]
        d[0] += sign
        d[1] += sign * (row[5] > 0)
        d[2] += sign * row[6]
        d[3] += sign * row[7]

    for trace_id, row in plus.totals.items():
        before = old.get(trace_id)
        if before == row:
            continue
        if before is not None and before[4] is not None:
            move(before, -1)
            if before[4] != row[4] or before[0] != row[0] or before[1] != row[1]:
                recheck.add(before[4])
        if row[4] is None:
            continue
        move(row, 1)
        if before is not None and before[4] == row[4] and before[:2] == row[:2]:
            continue  # the same session, time and environment: only the sums moved
        span = spans.get(row[4])
        if span is None:
            spans[row[4]] = [row[1], row[0], row[0]]
        else:
            if span[0] != row[1]:
                span[0] = None  # several environments in this batch
            span[1] = min(span[1], row[0])
            span[2] = max(span[2], row[0])
    for trace_id, before in old.items():
        if trace_id not in plus.totals and before[4] is not None:
            move(before, -1)
            recheck.add(before[4])
    rows = []
    for session in sorted(set(deltas) | set(spans)):
        d = deltas.get(session) or [0, 0, 0.0, 0]
        span = spans.get(session)
        if span is None and not any(d):
            continue
        env, first, last = span if span is not None else (None, None, None)
        if span is not None and env is None:
            recheck.add(session)  # several environments: read from its traces
        rows.append([project_id, session, env, first, last, *d, magnitude(d[2])])
    if rows:
        conn.insert(_HEAD, rows, _upsert_tail(conn))
    if recheck:
        _recheck(conn, project_id, sorted(recheck))


def drop_emptied(conn: Conn, table: str, column: str, project_id: str, keys: list[str]) -> None:
    """Delete the rows of ``table`` (``user_totals`` or ``session_totals``) whose
    ``column`` is one of ``keys`` and that are left without traces."""
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        conn.run(
            f"DELETE FROM {table} WHERE project_id = ? AND traces <= 0"
            f" AND {column} IN ({', '.join('?' * len(chunk))})",
            [project_id, *chunk],
        )


def _recheck(conn: Conn, project_id: str, sessions: list[str]) -> None:
    """Sessions that lost a trace or gained an environment: drop those left without
    traces, and read the environments and first and last trace time of the others from
    their traces."""
    drop_emptied(conn, "session_totals", "session_id", project_id, sessions)
    for session in sessions:
        conn.run(
            "UPDATE session_totals SET"
            " first_seen = (SELECT MIN(timestamp) FROM traces"
            " WHERE project_id = ? AND session_id = ?),"
            " last_seen = (SELECT MAX(timestamp) FROM traces"
            " WHERE project_id = ? AND session_id = ?),"
            " environments = (SELECT "
            + conn.dialect.comma_list("environment")
            + " FROM traces WHERE project_id = ? AND session_id = ?)"
            " WHERE project_id = ? AND session_id = ?",
            [project_id, session] * 4,
        )


def backfill(conn: Conn) -> None:
    """Build the table from ``trace_totals`` (the migration that adds it): one grouped
    pass."""
    conn.run(
        f"INSERT INTO session_totals (project_id, session_id, {', '.join(_COLUMNS)})"
        " SELECT project_id, session_id,"
        f" {conn.dialect.comma_list('environment')},"
        " MIN(timestamp), MAX(timestamp), COUNT(*),"
        " SUM(CASE WHEN observations > 0 THEN 1 ELSE 0 END), SUM(cost), SUM(tokens),"
        f" {conn.dialect.magnitude('SUM(cost)')}"
        " FROM trace_totals WHERE session_id IS NOT NULL GROUP BY project_id, session_id"
    )
