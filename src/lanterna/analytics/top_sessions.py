"""Top sessions by cost over a range without grouping every trace of the range (the
metrics page's "Top sessions by cost": 1.4 M traces with a session in 30 days at
10 M observations).

Sessions are read from ``session_totals`` (one row per session, kept exact in the write
path) by cost *magnitude*, highest first: every session of magnitude ``m`` costs less
than ``2**(m+1)`` in all, so less over any range (no cost is stored negative). After
each magnitude, the walk stops once the ``limit``-th cost found exceeds what the next
magnitude can hold. A session whose traces all lie in the range has its totals as
they are when the environment filter keeps all its environments (and none when it
keeps none of them); the others (cut by the range, or with environments both kept and
left out) are summed from their traces in the range (``traces_session``, then each
trace's ``trace_totals`` row).

Ties fall to the session id, as the raw-row query orders them. A walk that reads more
than :data:`MAX_SESSIONS` sessions without settling returns None (the caller groups
every trace, as before).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..store.db import Conn
from ..store.dialect import NO_COST
from ..store.rollup_read import Excluding

#: Sessions read before giving up.
MAX_SESSIONS = 20_000
#: Relative slack of a magnitude's bound (PostgreSQL computes it through a decimal
#: conversion of 15 digits).
_SLACK = 1e-12
_CHUNK = 500


def top_sessions(
    conn: Conn,
    project_id: str,
    start: datetime,
    end: datetime,
    environments: Sequence[str] | None,
    limit: int,
) -> list[dict[str, Any]] | None:
    """The ``limit`` sessions of the project costing most over ``[start, end)`` among
    those with a trace with observations there, as ``{"id", "traces" (with
    observations), "cost", "tokens"}``, most first; ``environments`` as
    :meth:`~.metrics.Scope.environment_filter` (None: any). None when the walk does
    not settle (see the module's docstring)."""
    d = conn.dialect
    found: dict[str, tuple[int, float, int]] = {}
    read = 0
    level = conn.scalar(
        "SELECT MAX(magnitude) FROM session_totals WHERE project_id = ?", [project_id]
    )
    while level is not None:
        level = int(level)
        # Through the magnitude index: SQLite's planner, without statistics of the
        # table, walked every session of the project by its key (10 M observations:
        # 117 ms for 239 sessions).
        source = d.by_index("session_totals", "session_totals_magnitude")
        rows = conn.all(
            "SELECT session_id, environments, first_seen, last_seen, observed_traces, cost,"
            f" tokens FROM {source} WHERE project_id = ? AND magnitude = ?"
            " AND last_seen >= ? AND first_seen < ?",
            [project_id, level, d.ts(start), d.ts(end)],
        )
        read += len(rows)
        if read > MAX_SESSIONS:
            return None
        cut: list[str] = []
        for r in rows:
            first, last = d.ts_parse(r["first_seen"]), d.ts_parse(r["last_seen"])
            inside = first is not None and last is not None and start <= first and last < end
            kept = _kept(r["environments"], environments)
            if kept is None or not inside:
                cut.append(r["session_id"])
            elif kept and r["observed_traces"] > 0:
                found[r["session_id"]] = (
                    int(r["observed_traces"]),
                    float(r["cost"]),
                    int(r["tokens"]),
                )
        found.update(_summed(conn, project_id, cut, start, end, environments))
        best = _ranked(found)[:limit]
        below = conn.scalar(
            "SELECT MAX(magnitude) FROM session_totals WHERE project_id = ? AND magnitude < ?",
            [project_id, level],
        )
        if below is None:
            break
        # What the sessions left can cost at most (nothing, below the lowest magnitude).
        bound = 2.0 ** (int(below) + 1) * (1 + _SLACK) if int(below) != NO_COST else 0.0
        if len(best) >= limit and best[-1][1][1] > bound:
            break
        level = below
    return [
        {"id": key, "traces": n, "cost": cost, "tokens": tokens}
        for key, (n, cost, tokens) in _ranked(found)[:limit]
    ]


def _ranked(found: dict[str, tuple[int, float, int]]) -> list[tuple[str, tuple[int, float, int]]]:
    return sorted(found.items(), key=lambda item: (-item[1][1], item[0]))


def _kept(listed: str | None, environments: Sequence[str] | None) -> bool | None:
    """Whether the filter keeps all of a session's environments (True), none (False)
    or some (None; also for a session whose environments are not known)."""
    if listed is None:
        return None
    if environments is None:
        return True
    excluded = isinstance(environments, Excluding)
    kept = {(env not in environments) if excluded else (env in environments)
            for env in listed.split(",")}  # fmt: skip
    return kept.pop() if len(kept) == 1 else None


def _summed(
    conn: Conn,
    project_id: str,
    sessions: list[str],
    start: datetime,
    end: datetime,
    environments: Sequence[str] | None,
) -> dict[str, tuple[int, float, int]]:
    """The sessions' traces with observations in the range and environments: count,
    cost and tokens per session."""
    d = conn.dialect
    out: dict[str, tuple[int, float, int]] = {}
    envs = ""
    env_params: list[Any] = []
    if environments is not None:
        negate = "NOT " if isinstance(environments, Excluding) else ""
        envs = f" AND c.environment {negate}IN ({', '.join('?' * len(environments))})"
        env_params = list(environments)
        if not environments:
            envs = "" if negate else " AND 1 = 0"
    for i in range(0, len(sessions), _CHUNK):
        chunk = sessions[i : i + _CHUNK]
        for r in conn.all(
            "SELECT t.session_id AS key, COUNT(*) AS n, SUM(c.cost) AS cost,"
            f" SUM(c.tokens) AS tokens FROM {d.by_index('traces t', 'traces_session')}"
            " JOIN trace_totals c ON c.project_id = t.project_id AND c.trace_id = t.id"
            f" WHERE t.project_id = ? AND t.session_id IN ({', '.join('?' * len(chunk))})"
            f" AND t.timestamp >= ? AND t.timestamp < ? AND c.observations > 0{envs}"
            " GROUP BY t.session_id",
            [project_id, *chunk, d.ts(start), d.ts(end), *env_params],
        ):
            out[r["key"]] = (int(r["n"]), float(r["cost"] or 0), int(r["tokens"] or 0))
    return out
