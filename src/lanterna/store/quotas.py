"""The shared counters of the per-project rate limits (``server/quota.py``)."""

from __future__ import annotations

from collections.abc import Iterable

from .db import Conn

#: (project id, kind, window start in epoch seconds)
CounterKey = tuple[str, str, int]


def add_usage(conn: Conn, deltas: Iterable[tuple[CounterKey, int]]) -> dict[CounterKey, int]:
    """Add this process's usage to the shared counters; return every process's total
    for each counter named (a delta of 0 only reads it)."""
    totals: dict[CounterKey, int] = {}
    for (project_id, kind, window), delta in deltas:
        if delta:
            conn.run(
                "INSERT INTO rate_counters (project_id, kind, window_start, used)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (project_id, kind, window_start)"
                " DO UPDATE SET used = rate_counters.used + excluded.used",
                (project_id, kind, window, delta),
            )
        used = conn.scalar(
            "SELECT used FROM rate_counters WHERE project_id = ? AND kind = ? AND window_start = ?",
            (project_id, kind, window),
        )
        totals[(project_id, kind, window)] = int(used or 0)
    return totals


def forget_before(conn: Conn, window: int) -> None:
    """Drop the counters of windows that started before ``window``."""
    conn.run("DELETE FROM rate_counters WHERE window_start < ?", (window,))
