"""The ``Lifecycle`` resource with the events in ClickHouse: deleting a user's, a
session's or a project's data and retention find what to delete in the event tables
there and delete it as tombstones (``events.tombstones``: reads leave the rows out at
once, merges drop the older versions), with the same counts and the same rules as the
SQL store (``store/lifecycle.py``). The jobs' leases, the retention settings and the
project's other rows stay in the metadata database.

Sessions are not rows on ClickHouse (``ChSessions`` derives them from the traces'
session ids): a session whose last trace is deleted is gone with it, and is counted
once, as the SQL store counts the row it deletes; retention finds no session rows left
behind (:meth:`ChLifecycle.orphan_session_ids`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .. import lifecycle as sql
from .. import media
from ..db import Conn
from ..lifecycle import BATCH, Deleted
from ..traces import TraceQuery
from .conn import EventsDb, events_on
from .events import tombstones

_KINDS = ("score", "observation", "trace")


def _marks(ids: Sequence[Any]) -> str:
    return ", ".join("?" * len(ids))


def _orphans(project_id: str, stamp: Any, n: int) -> tuple[str, list[Any]]:
    """:data:`~lanterna.store.lifecycle.Orphans` grouped once: ClickHouse runs no
    correlated subqueries."""
    return (
        "SELECT trace_id FROM observations WHERE project_id = ?"
        " AND trace_id IN (SELECT trace_id FROM observations"
        " WHERE project_id = ? AND start_time < ?)"  # only traces with an old observation
        " AND trace_id NOT IN (SELECT id FROM traces WHERE project_id = ?)"
        " GROUP BY trace_id HAVING MAX(start_time) < ? ORDER BY trace_id LIMIT ?",
        [project_id, project_id, stamp, project_id, stamp, n],
    )


class ChLifecycle:
    """:class:`~lanterna.store.protocols.Lifecycle` on the ClickHouse event store."""

    def __init__(self, events: EventsDb) -> None:
        self.events = events
        # the metadata database's part, as the SQL store has it
        self.projects_with_retention = sql.projects_with_retention
        self.claim_job = sql.claim_job
        self.finish_job = sql.finish_job

    def _ev(self, conn: Conn) -> Conn:
        """A Conn on the event tables whose rows look like those of ``conn``'s database."""
        return events_on(self.events, conn)

    def user_trace_ids(
        self, conn: Conn, project_id: str, user_id: str, *, limit: int = BATCH
    ) -> list[str]:
        """Up to ``limit`` ids of the user's traces."""
        return sql.user_trace_ids(self._ev(conn), project_id, user_id, limit=limit)

    def session_trace_ids(
        self, conn: Conn, project_id: str, session_id: str, *, limit: int = BATCH
    ) -> list[str]:
        """Up to ``limit`` ids of the session's traces."""
        return sql.session_trace_ids(self._ev(conn), project_id, session_id, limit=limit)

    def project_trace_ids(self, conn: Conn, project_id: str, *, limit: int = BATCH) -> list[str]:
        """Up to ``limit`` ids of the project's traces."""
        return sql.project_trace_ids(self._ev(conn), project_id, limit=limit)

    def delete_project_rows(self, conn: Conn, project_id: str) -> int:
        """The project's remaining events (scores and observations without a stored
        trace) as tombstones, :data:`BATCH` at a time, then its rows in the metadata
        database and the project."""
        gone = 0
        for kind in _KINDS:
            view = "observations" if kind == "observation" else f"{kind}s"
            some = f"id IN (SELECT id FROM {view} WHERE project_id = ? LIMIT {BATCH})"
            while n := tombstones(self.events, kind, project_id, some, [project_id]):
                gone += n
        return gone + sql.delete_project_rows(conn, project_id)

    def delete_trace_data(
        self, conn: Conn, project_id: str, trace_ids: Sequence[str], *, empty_sessions: bool = True
    ) -> Deleted:
        """Delete traces with their observations and scores, then (with
        ``empty_sessions``) the sessions they leave empty with those sessions' own
        scores. Runs in the writer."""
        ids = list(dict.fromkeys(trace_ids))
        if not ids:
            return Deleted()
        ev = self._ev(conn)
        out = Deleted()
        sessions: set[str] = set()
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            params = [project_id, *chunk]
            where = f"project_id = ? AND trace_id IN ({_marks(chunk)})"
            out.observations += int(
                ev.scalar(f"SELECT COUNT(*) FROM observations WHERE {where}", params) or 0
            )
            out.scores += int(ev.scalar(f"SELECT COUNT(*) FROM scores WHERE {where}", params) or 0)
            if empty_sessions:
                sessions.update(
                    r["session_id"]
                    for r in ev.all(
                        "SELECT DISTINCT session_id FROM traces WHERE project_id = ?"
                        f" AND id IN ({_marks(chunk)}) AND session_id IS NOT NULL",
                        params,
                    )
                )
            tombstones(self.events, "score", project_id, f"trace_id IN ({_marks(chunk)})", chunk)
            tombstones(
                self.events, "observation", project_id, f"trace_id IN ({_marks(chunk)})", chunk
            )
            out.traces += tombstones(
                self.events, "trace", project_id, f"id IN ({_marks(chunk)})", chunk
            )
        media.release_traces(conn, project_id, ids)
        for session_id in sorted(sessions):
            out.add(self._drop_session(conn, project_id, session_id, emptied=True))
        return out

    def delete_empty_session(self, conn: Conn, project_id: str, session_id: str) -> Deleted:
        """A session no trace names any more: its own scores (those with the session's
        id and no trace) deleted, and the session counted gone when it had any. Nothing
        while a trace still names it."""
        return self._drop_session(conn, project_id, session_id, emptied=False)

    def _drop_session(
        self, conn: Conn, project_id: str, session_id: str, *, emptied: bool
    ) -> Deleted:
        """:meth:`delete_empty_session`; ``emptied``: its last traces were just deleted,
        so it existed (counted once, as the SQL store counts the row it deletes)."""
        ev = self._ev(conn)
        if ev.one(
            "SELECT 1 FROM traces WHERE project_id = ? AND session_id = ? LIMIT 1",
            (project_id, session_id),
        ):
            return Deleted()
        own = ev.all(
            "SELECT id FROM scores WHERE project_id = ? AND session_id = ? AND trace_id IS NULL",
            (project_id, session_id),
        )
        scores = self.delete_scores(conn, project_id, [r["id"] for r in own])
        conn.run("DELETE FROM sessions WHERE project_id = ? AND id = ?", (project_id, session_id))
        return Deleted(scores=scores, sessions=1 if emptied or scores else 0)

    def delete_scores(self, conn: Conn, project_id: str, score_ids: Sequence[str]) -> int:
        """Delete scores by id (tombstones; ClickHouse keeps no score rollups)."""
        deleted = 0
        for start in range(0, len(score_ids), BATCH):
            chunk = list(score_ids[start : start + BATCH])
            deleted += tombstones(
                self.events, "score", project_id, f"id IN ({_marks(chunk)})", chunk
            )
        return deleted

    def expired_trace_ids(
        self, conn: Conn, project_id: str, cutoff: datetime, *, limit: int = BATCH
    ) -> list[str]:
        """Up to ``limit`` ids of traces older than ``cutoff`` (by the trace's
        timestamp), and of traces never stored whose observations all started before it."""
        return sql.expired_trace_ids(
            self._ev(conn), project_id, cutoff, limit=limit, orphans=_orphans
        )

    def expired_score_ids(
        self, conn: Conn, project_id: str, cutoff: datetime, *, limit: int = BATCH
    ) -> list[str]:
        """Up to ``limit`` ids of scores without a trace older than ``cutoff``."""
        return sql.expired_score_ids(self._ev(conn), project_id, cutoff, limit=limit)

    def orphan_session_ids(self, conn: Conn, project_id: str, *, limit: int = BATCH) -> list[str]:
        """None: sessions are the traces' session ids here, gone with their last trace."""
        return []

    def export_trace_ids(
        self,
        conn: Conn,
        project_id: str,
        query: TraceQuery,
        *,
        after: tuple[datetime, str] | None,
        limit: int = BATCH,
    ) -> list[tuple[datetime, str]]:
        """The next ``limit`` ``(timestamp, id)`` of traces matching ``query``, oldest
        first, after the key ``after``."""
        return sql.export_trace_ids(self._ev(conn), project_id, query, after=after, limit=limit)

    def session_scores(
        self, conn: Conn, project_id: str, session_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        """The scores of these sessions that belong to no trace."""
        return sql.session_scores(self._ev(conn), project_id, session_ids)
