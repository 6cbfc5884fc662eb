"""Data lifecycle operations: deleting a user's or a session's data, retention (what is
older than a project's retention), the keyset walk of an export, and the lease of
background jobs.

Every delete goes through :func:`lanterna.store.traces.delete_traces` (which keeps the
hourly rollups exact) or, for scores without a trace, through
:func:`lanterna.store.rollup_write.remove_scores` before the rows go; each runs in the
writer, a batch per transaction, so a large deletion never holds the write lock long.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import rollup_write
from .db import Conn
from .traces import TraceQuery, _matching, delete_traces

#: Trace ids per delete transaction (also the page of an export).
BATCH = 500


@dataclass
class Deleted:
    """How many rows a deletion removed."""

    traces: int = 0
    observations: int = 0
    scores: int = 0
    sessions: int = 0

    def add(self, other: Deleted) -> None:
        """Add ``other``'s counts to these."""
        self.traces += other.traces
        self.observations += other.observations
        self.scores += other.scores
        self.sessions += other.sessions

    def as_json(self) -> dict[str, int]:
        """The counts as an API object."""
        return {
            "traces": self.traces,
            "observations": self.observations,
            "scores": self.scores,
            "sessions": self.sessions,
        }

    @property
    def total(self) -> int:
        """Every row removed."""
        return self.traces + self.observations + self.scores + self.sessions


def _marks(ids: Sequence[Any]) -> str:
    return ", ".join("?" * len(ids))


def user_trace_ids(conn: Conn, project_id: str, user_id: str, *, limit: int = BATCH) -> list[str]:
    """Up to ``limit`` ids of the user's traces (deleting them and asking again walks
    them all)."""
    rows = conn.all(
        "SELECT id FROM traces WHERE project_id = ? AND user_id = ? LIMIT ?",
        (project_id, user_id, limit),
    )
    return [r["id"] for r in rows]


def session_trace_ids(
    conn: Conn, project_id: str, session_id: str, *, limit: int = BATCH
) -> list[str]:
    """Up to ``limit`` ids of the session's traces."""
    rows = conn.all(
        "SELECT id FROM traces WHERE project_id = ? AND session_id = ? LIMIT ?",
        (project_id, session_id, limit),
    )
    return [r["id"] for r in rows]


def project_trace_ids(conn: Conn, project_id: str, *, limit: int = BATCH) -> list[str]:
    """Up to ``limit`` ids of the project's traces (deleting a whole project)."""
    rows = conn.all("SELECT id FROM traces WHERE project_id = ? LIMIT ?", (project_id, limit))
    return [r["id"] for r in rows]


#: Deleted last, in this order: the rows that refer to the project row itself.
_PROJECT_LAST = ("memberships", "api_keys")


def delete_project_rows(conn: Conn, project_id: str) -> int:
    """Delete every row left of the project (each table with a ``project_id`` column:
    whatever later migrations add) and then the project itself; how many rows went.
    Runs in the writer, after the traces went a batch at a time."""
    tables = sorted(
        {str(r["name"]) for r in conn.all(conn.dialect.tables_with_column(), ("project_id",))}
    )
    ordered = [t for t in tables if t not in _PROJECT_LAST] + [
        t for t in _PROJECT_LAST if t in tables
    ]
    gone = 0
    for table in ordered:
        gone += conn.run(f"DELETE FROM {table} WHERE project_id = ?", (project_id,))
    return gone + conn.run("DELETE FROM projects WHERE id = ?", (project_id,))


def delete_trace_data(
    conn: Conn, project_id: str, trace_ids: Sequence[str], *, empty_sessions: bool = True
) -> Deleted:
    """Delete traces with their observations and scores (rollups corrected), then (with
    ``empty_sessions``) the sessions they leave empty with those sessions' own scores.
    Runs in the writer."""
    ids = list(dict.fromkeys(trace_ids))
    if not ids:
        return Deleted()
    params = [project_id, *ids]
    where = f"project_id = ? AND trace_id IN ({_marks(ids)})"
    observations = int(conn.scalar(f"SELECT COUNT(*) FROM observations WHERE {where}", params))
    scores = int(conn.scalar(f"SELECT COUNT(*) FROM scores WHERE {where}", params))
    sessions = (
        []
        if not empty_sessions
        else [
            r["session_id"]
            for r in conn.all(
                "SELECT DISTINCT session_id FROM traces"
                f" WHERE project_id = ? AND id IN ({_marks(ids)}) AND session_id IS NOT NULL",
                params,
            )
        ]
    )
    out = Deleted(delete_traces(conn, project_id, ids), observations, scores)
    for session_id in sessions:
        gone = delete_empty_session(conn, project_id, session_id)
        out.scores += gone.scores
        out.sessions += gone.sessions
    return out


def delete_empty_session(conn: Conn, project_id: str, session_id: str) -> Deleted:
    """Delete a session that has no trace left: its row and its own scores (those
    with the session's id and no trace). Nothing when a trace still names it."""
    if conn.one(
        "SELECT 1 FROM traces WHERE project_id = ? AND session_id = ? LIMIT 1",
        (project_id, session_id),
    ):
        return Deleted()
    ids = [
        r["id"]
        for r in conn.all(
            "SELECT id FROM scores WHERE project_id = ? AND session_id = ? AND trace_id IS NULL",
            (project_id, session_id),
        )
    ]
    out = Deleted(scores=delete_scores(conn, project_id, ids))
    out.sessions = conn.run(
        "DELETE FROM sessions WHERE project_id = ? AND id = ?", (project_id, session_id)
    )
    return out


def delete_scores(conn: Conn, project_id: str, score_ids: Sequence[str]) -> int:
    """Delete scores by id, taking them out of the rollups first. Runs in the writer."""
    deleted = 0
    for i in range(0, len(score_ids), BATCH):
        chunk = list(score_ids[i : i + BATCH])
        rollup_write.remove_scores(conn, project_id, "id", chunk)
        deleted += conn.run(
            f"DELETE FROM scores WHERE project_id = ? AND id IN ({_marks(chunk)})",
            [project_id, *chunk],
        )
    return deleted


def projects_with_retention(conn: Conn) -> list[tuple[str, int]]:
    """``(project id, retention days)`` of every project with a retention."""
    rows = conn.all(
        "SELECT id, retention_days FROM projects WHERE retention_days IS NOT NULL"
        " AND retention_days > 0 ORDER BY id"
    )
    return [(r["id"], int(r["retention_days"])) for r in rows]


#: SQL and parameters finding up to ``n`` traces never stored whose observations all
#: started before ``stamp``: ``(project_id, stamp, n) -> (sql, params)``.
Orphans = Callable[[str, Any, int], tuple[str, list[Any]]]


def _orphans(project_id: str, stamp: Any, n: int) -> tuple[str, list[Any]]:
    return (
        "SELECT DISTINCT o.trace_id FROM observations o WHERE o.project_id = ?"
        " AND o.start_time < ? AND NOT EXISTS (SELECT 1 FROM traces t"
        " WHERE t.project_id = o.project_id AND t.id = o.trace_id)"
        " AND NOT EXISTS (SELECT 1 FROM observations n WHERE n.project_id = o.project_id"
        " AND n.trace_id = o.trace_id AND n.start_time >= ?) LIMIT ?",
        [project_id, stamp, stamp, n],
    )


def expired_trace_ids(
    conn: Conn,
    project_id: str,
    cutoff: datetime,
    *,
    limit: int = BATCH,
    orphans: Orphans = _orphans,
) -> list[str]:
    """Up to ``limit`` ids of traces older than ``cutoff`` (by the trace's timestamp),
    and of traces never stored whose observations all started before it (``orphans``:
    the query finding those, for a database that spells it otherwise)."""
    stamp = conn.dialect.ts(cutoff)
    rows = conn.all(
        "SELECT id FROM traces WHERE project_id = ? AND timestamp < ? ORDER BY timestamp LIMIT ?",
        (project_id, stamp, limit),
    )
    ids = [r["id"] for r in rows]
    if len(ids) < limit:
        ids += [r["trace_id"] for r in conn.all(*orphans(project_id, stamp, limit - len(ids)))]
    return ids


def expired_score_ids(
    conn: Conn, project_id: str, cutoff: datetime, *, limit: int = BATCH
) -> list[str]:
    """Up to ``limit`` ids of scores without a trace (session and standalone scores)
    older than ``cutoff``; scores of traces go with their trace."""
    rows = conn.all(
        "SELECT id FROM scores WHERE project_id = ? AND trace_id IS NULL AND timestamp < ? LIMIT ?",
        (project_id, conn.dialect.ts(cutoff), limit),
    )
    return [r["id"] for r in rows]


def orphan_session_ids(conn: Conn, project_id: str, *, limit: int = BATCH) -> list[str]:
    """Up to ``limit`` sessions that neither a trace nor a score names any more (what
    retention leaves once a session's traces and scores have expired)."""
    rows = conn.all(
        "SELECT s.id FROM sessions s WHERE s.project_id = ?"
        " AND NOT EXISTS (SELECT 1 FROM traces t WHERE t.project_id = s.project_id"
        " AND t.session_id = s.id)"
        " AND NOT EXISTS (SELECT 1 FROM scores c WHERE c.project_id = s.project_id"
        " AND c.session_id = s.id) LIMIT ?",
        (project_id, limit),
    )
    return [r["id"] for r in rows]


def export_trace_ids(
    conn: Conn,
    project_id: str,
    query: TraceQuery,
    *,
    after: tuple[datetime, str] | None,
    limit: int = BATCH,
) -> list[tuple[datetime, str]]:
    """The next ``limit`` ``(timestamp, id)`` of traces matching ``query`` (the trace
    list's filters), oldest first, after the key ``after``: an export's keyset walk,
    constant memory however many traces match."""
    m = _matching(conn, project_id, query)
    where, params = m.where, list(m.params)
    d = conn.dialect
    if after is not None:
        where += " AND (t.timestamp > ? OR (t.timestamp = ? AND t.id > ?))"
        params += [d.ts(after[0]), d.ts(after[0]), after[1]]
    rows = conn.all(
        f"SELECT t.timestamp, t.id FROM traces t WHERE {where} ORDER BY t.timestamp, t.id LIMIT ?",
        [*params, limit],
    )
    return [(d.ts_parse(r["timestamp"]), r["id"]) for r in rows]  # type: ignore[misc]


def claim_job(conn: Conn, name: str, owner: str, at: datetime, until: datetime) -> bool:
    """Take job ``name``'s lease for ``owner`` until ``until`` if the job is due at
    ``at`` and nobody holds it; True when taken (one conditional update: one winner)."""
    d = conn.dialect
    conn.run("INSERT INTO job_leases (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (name,))
    stamp = d.ts(at)
    return bool(
        conn.run(
            "UPDATE job_leases SET lease_owner = ?, lease_until = ? WHERE name = ?"
            " AND (next_run_at IS NULL OR next_run_at <= ?)"
            " AND (lease_until IS NULL OR lease_until <= ?)",
            (owner, d.ts(until), name, stamp, stamp),
        )
    )


def finish_job(conn: Conn, name: str, owner: str, next_run_at: datetime) -> bool:
    """Release ``owner``'s lease of job ``name`` and make it due next at
    ``next_run_at``; False when ``owner`` no longer holds it."""
    return bool(
        conn.run(
            "UPDATE job_leases SET next_run_at = ?, lease_owner = NULL, lease_until = NULL"
            " WHERE name = ? AND lease_owner = ?",
            (conn.dialect.ts(next_run_at), name, owner),
        )
    )


def session_scores(conn: Conn, project_id: str, session_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The scores of these sessions that belong to no trace (an export's session scores)."""
    out: list[dict[str, Any]] = []
    ids = list(session_ids)
    for i in range(0, len(ids), BATCH):
        chunk = ids[i : i + BATCH]
        out += conn.all(
            "SELECT * FROM scores WHERE project_id = ? AND trace_id IS NULL"
            f" AND session_id IN ({_marks(chunk)}) ORDER BY timestamp, id",
            [project_id, *chunk],
        )
    return out
