"""The store with traces, observations and scores in ClickHouse (``store/interface.py``).

Metadata (projects, keys, prompts, models, rules, datasets, ...) stays in the SQLite or
PostgreSQL database: every other resource is the SQL store's. The event resources run
the portable read queries of ``store/traces.py``, ``observations.py`` and ``scores.py``
on ClickHouse's merged views through a ``Conn`` over ClickHouse (``conn.py``; its
dialect says that no row counts are kept, so lists count their rows); what reads
SQL-only tables (the trace totals kept in the write path) or writes has its own
version here. The rows they return look like the
metadata database's, so the API shapes stay as they are.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ...schema import LEVELS
from .. import media, scores, sessions, traces
from .. import observations as observations_module
from ..db import Conn
from ..interface import (
    Datasets,
    Evaluations,
    Experiments,
    Ingest,
    Lifecycle,
    Observations,
    Scores,
    Sessions,
    SqlStore,
    Traces,
)
from ..observations import ObservationQuery
from ..protocols import CursorPage, Page, Row
from ..scores import ScoreDistribution, ScoreQuery
from ..sessions import SessionStats
from ..traces import TraceQuery, TraceRollup, TraceTotals
from . import key_totals
from .conn import EventsDb, events_on
from .events import ChIngest, tombstones
from .lifecycle import ChLifecycle
from .metadata import ChDatasets, ChEvaluations, ChExperiments

_on = events_on


def _figures(
    ch: Conn,
    project_id: str,
    trace_ids: Sequence[str],
    around: tuple[datetime, datetime] | None = None,
) -> list[Row]:
    """The ``trace_figures`` rows of those of ``trace_ids`` with observations (as
    ``traces.trace_figures``, which leaves out traces without any): within ``around``
    (the traces' first and last time, inclusive) when given, else by the times of
    their stored rows."""
    ids = list(dict.fromkeys(trace_ids))
    out: list[Row] = []
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        marks = ", ".join("?" * len(chunk))
        if around is not None:
            keys = f"timestamp >= ? AND timestamp <= ? AND trace_id IN ({marks})"
            params: list[Any] = [ch.dialect.ts(around[0]), ch.dialect.ts(around[1]), *chunk]
        else:
            keys = (
                "(timestamp, trace_id) IN (SELECT timestamp, id FROM traces_rows"
                f" WHERE project_id = ? AND id IN ({marks}))"
            )
            params = [project_id, *chunk]
        out += ch.all(
            "SELECT trace_id, observations, cost, tokens, latency, input_tokens,"
            " output_tokens, severity, errors FROM trace_figures WHERE project_id = ?"
            f" AND {keys} AND observations > 0",
            [project_id, *params],
        )
    return out


class ChTraces:
    """The ``Traces`` resource on ClickHouse."""

    def __init__(self, events: EventsDb) -> None:
        self.events = events

    def get_trace(self, conn: Conn, project_id: str, trace_id: str) -> Row | None:
        return traces.get_trace(_on(self.events, conn), project_id, trace_id)

    def list_traces(
        self,
        conn: Conn,
        project_id: str,
        query: TraceQuery,
        *,
        limit: int,
        offset: int,
        with_io: bool = True,
        count_limit: int | None = None,
    ) -> Page:
        return traces.list_traces(
            _on(self.events, conn),
            project_id,
            query,
            limit=limit,
            offset=offset,
            with_io=with_io,
            count_limit=count_limit,
        )

    def trace_totals(
        self, conn: Conn, project_id: str, query: TraceQuery, *, limit: int, scores: bool = True
    ) -> TraceTotals:
        """The trace list's totals row, from the observations and scores themselves
        (the SQL store reads the ``trace_totals`` rows its write path keeps): the same
        traces (the first ``limit`` in the list's order, and whether more match), the
        same sums and averages."""
        ch = _on(self.events, conn)
        d = ch.dialect
        chosen, params = _chosen_sql(ch, project_id, query)
        started = time.perf_counter()
        found = ch.all(chosen, [*params, limit + 1])
        took = time.perf_counter() - started
        matched = len(found)
        if not found:
            return TraceTotals()
        if took > matched * _PARSE_PER_ID:
            # Finding them again costs more than reading their ids in each statement
            # (filters ClickHouse scans for, a search): bind the ids (and their time
            # range, the figures' key).
            ids = [r["id"] for r in found[:limit]]
            stamps = [s for r in found[:limit] if (s := d.ts_parse(r["timestamp"]))]
            which, which_params = ", ".join("?" * len(ids)), ids
            keys = f"timestamp >= ? AND timestamp <= ? AND trace_id IN ({which})"
            keys_params = [d.ts(min(stamps)), d.ts(max(stamps)), *ids]
        else:
            # The chosen traces found again in each statement's subquery (the list's
            # time order, a tag, a user): ClickHouse parses a statement with 10,000 ids
            # in about 100 ms, a cheap subquery runs in 20-30.
            which = f"SELECT id FROM ({chosen}) AS c"
            which_params = [*params, limit]
            keys = f"(timestamp, trace_id) IN (SELECT timestamp, id FROM ({chosen}) AS c)"
            keys_params = which_params
        # The chosen traces' figures summed, by key.
        row = ch.one(
            "SELECT COUNT(*) AS observed, SUM(latency) AS latency, SUM(cost) AS cost,"
            " SUM(tokens) AS tokens FROM trace_figures"
            f" WHERE project_id = ? AND {keys} AND observations > 0",
            [project_id, *keys_params],
        )
        out = TraceTotals(traces=min(matched, limit), more=matched > limit)
        if row is not None and int(row["observed"] or 0):
            out.cost = float(row["cost"] or 0.0)
            out.tokens = int(row["tokens"] or 0)
            # the average over the traces with observations
            out.latency = float(row["latency"] or 0.0) / int(row["observed"])
        if scores and matched:
            out.scores = traces.score_averages_where(ch, project_id, which, which_params)
        return out

    def trace_score_averages(
        self, conn: Conn, project_id: str, query: TraceQuery, *, limit: int
    ) -> dict[str, float]:
        ch = _on(self.events, conn)
        chosen, params = _chosen_sql(ch, project_id, query)
        return traces.score_averages_where(
            ch, project_id, f"SELECT id FROM ({chosen}) AS c", [*params, limit]
        )

    def observations_of(self, conn: Conn, project_id: str, trace_id: str) -> list[Row]:
        return traces.observations_of(_on(self.events, conn), project_id, trace_id)

    def scores_of(self, conn: Conn, project_id: str, trace_id: str) -> list[Row]:
        return traces.scores_of(_on(self.events, conn), project_id, trace_id)

    def trace_metrics(
        self, conn: Conn, project_id: str, trace_ids: Sequence[str]
    ) -> dict[str, tuple[float, float]]:
        return self.trace_figures(conn, project_id, trace_ids)[0]

    def observation_ids(
        self,
        conn: Conn,
        project_id: str,
        trace_ids: Sequence[str],
        *,
        around: tuple[datetime, datetime] | None = None,
    ) -> dict[str, list[str]]:
        """``traces.observation_ids``; with ``around`` (the traces' first and last time)
        read within the traces' first and last observation start as their figures keep
        them, by the observations' time key, instead of through the trace id index
        (10 M observations, a page of 50 traces: 199-214 -> 16 ms, and 15 more to
        read the starts)."""
        ch = _on(self.events, conn)
        if around is None or not trace_ids:
            return traces.observation_ids(ch, project_id, trace_ids)
        ids = list(dict.fromkeys(trace_ids))
        marks = ", ".join("?" * len(ids))
        d = ch.dialect
        span = ch.one(
            "SELECT min(first_start) AS lo, max(last_start) AS hi,"
            " countIf(first_start IS NULL) AS unknown, count() AS n FROM trace_figures"
            " WHERE project_id = ? AND timestamp >= ? AND timestamp <= ?"
            f" AND trace_id IN ({marks}) AND observations > 0",
            [project_id, d.ts(around[0]), d.ts(around[1]), *ids],
        )
        if span is None or not int(span["n"]):
            return {}  # no trace of the page has an observation
        if int(span["unknown"]):  # figures written before migration 5 filled them
            return traces.observation_ids(ch, project_id, ids)
        out: dict[str, list[str]] = {}
        rows = ch.all(
            "SELECT trace_id, id FROM observations WHERE project_id = ?"
            f" AND start_time >= ? AND start_time <= ? AND trace_id IN ({marks})"
            " ORDER BY start_time, id",
            [project_id, d.ts(d.ts_parse(span["lo"])), d.ts(d.ts_parse(span["hi"])), *ids],
        )
        for r in rows:
            out.setdefault(r["trace_id"], []).append(r["id"])
        return out

    def score_ids(
        self, conn: Conn, project_id: str, trace_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        return traces.score_ids(_on(self.events, conn), project_id, trace_ids)

    def trace_figures(
        self,
        conn: Conn,
        project_id: str,
        trace_ids: Sequence[str],
        *,
        around: tuple[datetime, datetime] | None = None,
    ) -> tuple[dict[str, tuple[float, float]], dict[str, TraceRollup]]:
        """What ``traces.trace_figures`` computes from the observations, read from the
        traces' ``trace_figures`` rows by key (the write path keeps them)."""
        metrics: dict[str, tuple[float, float]] = {}
        rollups: dict[str, TraceRollup] = {}
        for r in _figures(_on(self.events, conn), project_id, trace_ids, around):
            tid = r["trace_id"]
            metrics[tid] = (float(r["latency"] or 0.0), float(r["cost"]))
            rollups[tid] = TraceRollup(
                observations=int(r["observations"]),
                tokens=int(r["tokens"]),
                level=LEVELS[int(r["severity"])],
                errors=int(r["errors"]),
                input_tokens=int(r["input_tokens"]),
                output_tokens=int(r["output_tokens"]),
            )
        return metrics, rollups

    def delete_traces(self, conn: Conn, project_id: str, trace_ids: Sequence[str]) -> int:
        """Delete traces with their observations and scores (runs in the writer; the
        media they referred to are released in the metadata database)."""
        ids = list(dict.fromkeys(trace_ids))
        deleted = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            tombstones(self.events, "score", project_id, f"trace_id IN ({marks})", chunk)
            tombstones(self.events, "observation", project_id, f"trace_id IN ({marks})", chunk)
            deleted += tombstones(self.events, "trace", project_id, f"id IN ({marks})", chunk)
        media.release_traces(conn, project_id, ids)
        return deleted


class ChObservations:
    """The ``Observations`` resource on ClickHouse."""

    def __init__(self, events: EventsDb) -> None:
        self.events = events

    def get_observation(self, conn: Conn, project_id: str, observation_id: str) -> Row | None:
        return observations_module.get_observation(
            _on(self.events, conn), project_id, observation_id
        )

    def list_observations(
        self, conn: Conn, project_id: str, query: ObservationQuery, *, limit: int, offset: int
    ) -> Page:
        return observations_module.list_observations(
            _on(self.events, conn), project_id, query, limit=limit, offset=offset
        )

    def observations_after(
        self,
        conn: Conn,
        project_id: str,
        query: ObservationQuery,
        *,
        limit: int,
        after: tuple[datetime, str] | None,
        with_trace: bool,
        with_io: bool,
        with_metadata: bool,
    ) -> CursorPage:
        return observations_module.observations_after(
            _on(self.events, conn),
            project_id,
            query,
            limit=limit,
            after=after,
            with_trace=with_trace,
            with_io=with_io,
            with_metadata=with_metadata,
        )


class ChScores:
    """The ``Scores`` resource on ClickHouse."""

    def __init__(self, events: EventsDb) -> None:
        self.events = events

    def get_score(
        self, conn: Conn, project_id: str, score_id: str, *, traces_only: bool = False
    ) -> Row | None:
        return scores.get_score(
            _on(self.events, conn), project_id, score_id, traces_only=traces_only
        )

    def list_scores(
        self, conn: Conn, project_id: str, q: ScoreQuery, *, limit: int, offset: int
    ) -> Page:
        return scores.list_scores(_on(self.events, conn), project_id, q, limit=limit, offset=offset)

    def scores_of_traces(
        self, conn: Conn, project_id: str, trace_ids: Sequence[str], *, limit: int
    ) -> list[Row]:
        return scores.scores_of_traces(_on(self.events, conn), project_id, trace_ids, limit=limit)

    def scores_after(
        self,
        conn: Conn,
        project_id: str,
        q: ScoreQuery,
        *,
        limit: int,
        after: tuple[datetime, str] | None,
    ) -> CursorPage:
        return scores.scores_after(_on(self.events, conn), project_id, q, limit=limit, after=after)

    def delete_score(self, conn: Conn, project_id: str, score_id: str) -> bool:
        return tombstones(self.events, "score", project_id, "id = ?", [score_id]) > 0

    def score_distributions(
        self,
        conn: Conn,
        project_id: str,
        q: ScoreQuery,
        *,
        max_names: int = 20,
        max_bins: int = 20,
        max_values: int = 20,
    ) -> list[ScoreDistribution]:
        return scores.score_distributions(
            _on(self.events, conn),
            project_id,
            q,
            max_names=max_names,
            max_bins=max_bins,
            max_values=max_values,
        )


#: Sessions as the SQL store's ``sessions`` table has them (id, environment and time of
#: the trace that began it), from each session's kept totals (``key_totals.py``).
_SESSIONS = "kept_sessions"


class ChSessions:
    """The ``Sessions`` resource on ClickHouse, read from the traces' session ids."""

    def __init__(self, events: EventsDb) -> None:
        self.events = events

    def get_session(self, conn: Conn, project_id: str, session_id: str) -> Row | None:
        return sessions.get_session(_on(self.events, conn), project_id, session_id, _SESSIONS)

    def list_sessions(
        self,
        conn: Conn,
        project_id: str,
        *,
        from_timestamp: datetime | None = None,
        to_timestamp: datetime | None = None,
        environments: Sequence[str] = (),
        limit: int,
        offset: int,
    ) -> Page:
        return sessions.list_sessions(
            _on(self.events, conn),
            project_id,
            from_timestamp=from_timestamp,
            to_timestamp=to_timestamp,
            environments=environments,
            limit=limit,
            offset=offset,
            source=_SESSIONS,
        )

    def traces_of_session(self, conn: Conn, project_id: str, session_id: str) -> list[Row]:
        return sessions.traces_of_session(_on(self.events, conn), project_id, session_id)

    def _kept(self, conn: Conn, project_id: str, session_ids: Sequence[str]) -> list[Row]:
        """The kept totals (``key_totals.py``) of the sessions ``session_ids``."""
        ids = list(dict.fromkeys(session_ids))
        if not ids:
            return []
        return _on(self.events, conn).all(
            "SELECT key, traces, first_seen, last_seen, cost, total_tokens, users"
            f" FROM {key_totals.TABLE} FINAL WHERE project_id = ? AND kind = 'session'"
            f" AND key IN ({', '.join('?' * len(ids))})",
            [project_id, *ids],
        )

    def session_stats(
        self, conn: Conn, project_id: str, session_ids: Sequence[str]
    ) -> dict[str, SessionStats]:
        """A page of sessions' stats from their kept totals: one read by key."""
        out = {sid: SessionStats() for sid in dict.fromkeys(session_ids)}
        for r in self._kept(conn, project_id, session_ids):
            out[r["key"]] = SessionStats(
                int(r["traces"]), r["first_seen"], r["last_seen"], sorted(r["users"])
            )
        return out

    def sessions_of_user(
        self, conn: Conn, project_id: str, user_id: str, *, limit: int = 50
    ) -> list[str]:
        return sessions.sessions_of_user(_on(self.events, conn), project_id, user_id, limit=limit)

    def session_usage(
        self, conn: Conn, project_id: str, session_ids: Sequence[str]
    ) -> dict[str, tuple[float, int]] | None:
        """``session id -> (cost, total tokens)`` of a page of sessions, from their kept
        totals."""
        out = {sid: (0.0, 0) for sid in dict.fromkeys(session_ids)}
        for r in self._kept(conn, project_id, session_ids):
            out[r["key"]] = (float(r["cost"]), int(r["total_tokens"]))
        return out


class ClickHouseStore(SqlStore):
    """The SQL store with traces, observations, scores and ingestion on ClickHouse."""

    events_backend = "clickhouse"

    def __init__(self, events: EventsDb) -> None:
        super().__init__()
        #: The ClickHouse events database (its client and lock).
        self.events = events
        self.traces: Traces = ChTraces(events)
        self.observations: Observations = ChObservations(events)
        self.scores: Scores = ChScores(events)
        self.sessions: Sessions = ChSessions(events)
        self.ingest: Ingest = ChIngest(events)
        self.lifecycle: Lifecycle = ChLifecycle(events)
        self.datasets: Datasets = ChDatasets(events)
        self.experiments: Experiments = ChExperiments(events)
        self.evaluations: Evaluations = ChEvaluations(events)

    def events_conn(self, conn: Conn) -> Conn:
        """A ``Conn`` on ClickHouse whose rows look like those of ``conn``'s database."""
        return _on(self.events, conn)


def clickhouse_store(url: str) -> ClickHouseStore:
    """The store for ``url`` (``clickhouse://...`` or ``chdb:///...``); its schema is
    migrated by :func:`~lanterna.store.clickhouse.schema.migrate`."""
    return ClickHouseStore(EventsDb(url))


#: What ClickHouse takes to parse a statement's list of ids, per id (10,000 ids: about
#: 100 ms at 1 M observations here).
_PARSE_PER_ID = 10e-6


def _chosen_sql(ch: Conn, project_id: str, query: TraceQuery) -> tuple[str, list[Any]]:
    """The statement selecting the ids of the first ``?`` traces matching ``query`` in
    the list's order, and its parameters but the last (the limit)."""
    m = traces._matching(ch, project_id, query)
    sql = (
        f"SELECT t.id AS id, t.timestamp AS timestamp FROM {m.source} WHERE {m.count_where}"
        f" ORDER BY {m.order} LIMIT ?"
    )
    return sql, list(m.count_params)
