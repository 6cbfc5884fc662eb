"""Trace queries: by id (with observations and scores), lists, aggregates, deletes."""

from __future__ import annotations

from typing import Any

from .db import Conn


def get_trace(conn: Conn, project_id: str, trace_id: str) -> dict[str, Any] | None:
    """One trace row, or None."""
    return conn.one("SELECT * FROM traces WHERE project_id = ? AND id = ?", (project_id, trace_id))


def observations_of(conn: Conn, project_id: str, trace_id: str) -> list[dict[str, Any]]:
    """All observations of a trace, in start order."""
    return conn.all(
        "SELECT * FROM observations WHERE project_id = ? AND trace_id = ? ORDER BY start_time, id",
        (project_id, trace_id),
    )


def scores_of(conn: Conn, project_id: str, trace_id: str) -> list[dict[str, Any]]:
    """All scores of a trace (its own and its observations'), oldest first."""
    return conn.all(
        "SELECT * FROM scores WHERE project_id = ? AND trace_id = ? ORDER BY timestamp, id",
        (project_id, trace_id),
    )
