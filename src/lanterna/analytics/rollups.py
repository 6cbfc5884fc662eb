"""Hourly rollups of traces and observations, so that metrics never scan raw rows.

Two tables, keyed by the UTC hour of the *trace's* ``timestamp`` (``YYYY-MM-DDTHH``
text, the same label on both backends) and the trace's environment:

- ``rollup_traces`` per latency bucket: traces, traces with an ERROR observation, summed
  latency. Bucket ``NO_LATENCY`` holds traces without observations; the other buckets
  are those of :data:`lanterna.analytics.metrics.K` (log-spaced).
- ``rollup_models`` per observation model (``''`` for none): observations, cost and
  input/output/total tokens.

Top users and sessions cannot be rolled up by hour (there are about as many keys as
traces), so ``trace_totals`` holds one narrow row per trace (timestamp, environment,
user, session, observations, cost, tokens) with a covering index by time: the top lists
scan that index instead of joining traces with their wide observation rows.

Entities are upserts (an observation's end time or cost may arrive later, a trace's
timestamp may change) and traces can be deleted, so the rollups are kept as deltas:
:func:`maintained` computes the touched traces' contributions from raw rows before
and after a write, in the same transaction, and adds the difference. That costs two
indexed queries per table for the batch's traces only, never a scan of an hour.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..store.db import Conn

T = TypeVar("T")

#: Histogram buckets per factor e (bucket b holds latencies in [e^(b/K), e^((b+1)/K))).
K = 20
#: Latencies below this (seconds) share the lowest bucket.
MIN_LATENCY = 0.001
#: The latency bucket of traces without observations (they have no latency).
NO_LATENCY = -1_000_000
_CHUNK = 500

TraceKey = tuple[str, str, int]  # hour, environment, latency bucket
ModelKey = tuple[str, str, str]  # hour, environment, model ('' for none)


def latency_bucket(seconds: float) -> int:
    """The histogram bucket of a latency."""
    return math.floor(math.log(max(seconds, MIN_LATENCY)) * K)


class Contribution:
    """What a set of traces adds to the rollups: values per key of each table."""

    def __init__(self) -> None:
        self.traces: dict[TraceKey, list[float]] = defaultdict(lambda: [0, 0, 0.0])
        self.models: dict[ModelKey, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0, 0])
        #: trace id -> its ``trace_totals`` row (without project and id)
        self.totals: dict[str, tuple[Any, ...]] = {}


def contribution(conn: Conn, project_id: str, trace_ids: Iterable[str]) -> Contribution:
    """The rollup values of the stored traces ``trace_ids`` (with their observations)."""
    d = conn.dialect
    out = Contribution()
    ids = sorted(set(trace_ids))
    latency = (
        f"{d.epoch_seconds('MAX(COALESCE(o.end_time, o.start_time))')}"
        f" - {d.epoch_seconds('MIN(o.start_time)')}"
    )
    hour = d.utc_hour("t.timestamp")
    join = "observations o ON o.project_id = t.project_id AND o.trace_id = t.id"
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        params = [project_id, *chunk]
        for r in conn.all(
            f"SELECT t.id AS id, t.timestamp AS ts, {hour} AS hour, t.environment AS env,"
            " t.user_id AS user_id, t.session_id AS session_id, COUNT(o.id) AS n,"
            f" {latency} AS latency, MAX(CASE WHEN o.level = 'ERROR' THEN 1 ELSE 0 END) AS error,"
            " COALESCE(SUM(o.total_cost), 0) AS cost, COALESCE(SUM(o.usage_total), 0) AS tokens"
            f" FROM traces t LEFT JOIN {join}"
            f" WHERE t.project_id = ? AND t.id IN ({marks})"
            " GROUP BY t.id, t.timestamp, t.environment, t.user_id, t.session_id",
            params,
        ):
            out.totals[r["id"]] = (
                r["ts"],
                r["env"],
                r["user_id"],
                r["session_id"],
                int(r["n"]),
                float(r["cost"] or 0),
                int(r["tokens"] or 0),
            )
            if int(r["n"]) == 0:
                key = (r["hour"], r["env"], NO_LATENCY)
                out.traces[key][0] += 1
                continue
            seconds = float(r["latency"] or 0.0)
            v = out.traces[(r["hour"], r["env"], latency_bucket(seconds))]
            v[0] += 1
            v[1] += int(r["error"] or 0)
            v[2] += seconds
        for r in conn.all(
            f"SELECT {hour} AS hour, t.environment AS env, o.model AS model, COUNT(*) AS n,"
            " COALESCE(SUM(o.total_cost), 0) AS cost, COALESCE(SUM(o.usage_input), 0) AS input,"
            " COALESCE(SUM(o.usage_output), 0) AS output,"
            " COALESCE(SUM(o.usage_total), 0) AS total"
            f" FROM traces t JOIN {join} WHERE t.project_id = ? AND t.id IN ({marks})"
            " GROUP BY hour, t.environment, o.model",
            params,
        ):
            v = out.models[(r["hour"], r["env"], r["model"] or "")]
            v[0] += int(r["n"])
            v[1] += float(r["cost"] or 0)
            v[2] += int(r["input"] or 0)
            v[3] += int(r["output"] or 0)
            v[4] += int(r["total"] or 0)
    return out


_TRACES_SQL = (
    "INSERT INTO rollup_traces (project_id, hour, environment, latency_bucket, traces,"
    " errors, latency_sum) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (project_id, hour, environment, latency_bucket) DO UPDATE SET"
    " traces = rollup_traces.traces + excluded.traces,"
    " errors = rollup_traces.errors + excluded.errors,"
    " latency_sum = rollup_traces.latency_sum + excluded.latency_sum"
)
_MODELS_SQL = (
    "INSERT INTO rollup_models (project_id, hour, environment, model, observations, cost,"
    " input_tokens, output_tokens, total_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (project_id, hour, environment, model) DO UPDATE SET"
    " observations = rollup_models.observations + excluded.observations,"
    " cost = rollup_models.cost + excluded.cost,"
    " input_tokens = rollup_models.input_tokens + excluded.input_tokens,"
    " output_tokens = rollup_models.output_tokens + excluded.output_tokens,"
    " total_tokens = rollup_models.total_tokens + excluded.total_tokens"
)


_TOTALS_SQL = (
    "INSERT INTO trace_totals (project_id, trace_id, timestamp, environment, user_id,"
    " session_id, observations, cost, tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (project_id, trace_id) DO UPDATE SET timestamp = excluded.timestamp,"
    " environment = excluded.environment, user_id = excluded.user_id,"
    " session_id = excluded.session_id, observations = excluded.observations,"
    " cost = excluded.cost, tokens = excluded.tokens"
)


def add(conn: Conn, project_id: str, plus: Contribution, minus: Contribution | None = None) -> None:
    """Add ``plus - minus`` to the project's rollups (keys whose difference is zero are
    left alone), and make ``trace_totals`` hold ``plus``'s traces (those only in
    ``minus`` are gone)."""
    old_totals = minus.totals if minus is not None else {}
    changed = [
        [project_id, trace_id, *row]
        for trace_id, row in sorted(plus.totals.items())
        if old_totals.get(trace_id) != row
    ]
    if changed:
        conn.many(_TOTALS_SQL, changed)
    gone = sorted(set(old_totals) - set(plus.totals))
    for start in range(0, len(gone), _CHUNK):
        chunk = gone[start : start + _CHUNK]
        conn.run(
            f"DELETE FROM trace_totals WHERE project_id = ? AND trace_id IN"
            f" ({', '.join('?' * len(chunk))})",
            [project_id, *chunk],
        )
    for table, sql in (("traces", _TRACES_SQL), ("models", _MODELS_SQL)):
        new: dict[Any, list[float]] = getattr(plus, table)
        old: dict[Any, list[float]] = getattr(minus, table) if minus is not None else {}
        rows = []
        for key in sorted(set(new) | set(old)):
            a = new.get(key)
            b = old.get(key)
            if a == b:
                continue
            width = len(a if a is not None else b)  # type: ignore[arg-type]
            delta = [(a[i] if a else 0) - (b[i] if b else 0) for i in range(width)]
            rows.append([project_id, *key, *delta])
        if rows:
            conn.many(sql, rows)


def maintained(conn: Conn, project_id: str, trace_ids: set[str], work: Callable[[], T]) -> T:
    """Run ``work()`` (a write touching only ``trace_ids`` and their observations) and
    move the rollups by the difference it made to those traces."""
    if not trace_ids:
        return work()
    before = contribution(conn, project_id, trace_ids)
    result = work()
    add(conn, project_id, contribution(conn, project_id, trace_ids), before)
    return result


def stored_trace_ids(conn: Conn, project_id: str, observation_ids: Iterable[str]) -> set[str]:
    """The traces the stored observations ``observation_ids`` belong to."""
    ids = list(observation_ids)
    out: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        # No DISTINCT (the set dedupes): with it SQLite walks the whole project through
        # the trace_id index instead of looking each id up by primary key.
        for r in conn.all(
            f"SELECT trace_id FROM observations WHERE project_id = ? AND id IN ({marks})",
            [project_id, *chunk],
        ):
            out.add(r["trace_id"])
    return out


def backfill(conn: Conn) -> None:
    """Build the rollups of every stored trace (the migration that adds the tables)."""
    projects = [
        r["project_id"] for r in conn.all("SELECT DISTINCT project_id FROM traces ORDER BY 1")
    ]
    for project_id in projects:
        ids = [
            r["id"]
            for r in conn.all(
                "SELECT id FROM traces WHERE project_id = ? ORDER BY id", [project_id]
            )
        ]
        total = Contribution()
        for start in range(0, len(ids), 5000):
            part = contribution(conn, project_id, ids[start : start + 5000])
            for table in ("traces", "models"):
                into = getattr(total, table)
                for key, values in getattr(part, table).items():
                    into[key] = [x + y for x, y in zip(into[key], values, strict=True)]
            only = Contribution()  # per-trace rows now; the hourly sums once, below
            only.totals = part.totals
            add(conn, project_id, only)
        add(conn, project_id, total)


def touched_traces(conn: Conn, project_id: str, kinds: dict[str, Any]) -> set[str]:
    """The traces a batch of events (``kind -> {entity id: entity with .events}``) can
    change: its traces, the traces its observations name, and those its already stored
    observations belong to (an observation's trace is fixed by its first event)."""
    traces = set(kinds.get("trace", ()))
    observations = kinds.get("observation", {})
    for entity in observations.values():
        for event in entity.events:
            trace_id = event.fields.get("trace_id")
            if trace_id is not None:
                traces.add(trace_id)
    if observations:
        traces |= stored_trace_ids(conn, project_id, observations)
    return traces


Snapshot = list[tuple[str, set[str], Contribution]]


def snapshot(conn: Conn, rows: Iterable[dict[str, Any]]) -> Snapshot:
    """Before a write to the observation ``rows`` (with ``project_id`` and ``trace_id``)
    of any projects: their traces' contributions, for :func:`settle` after it."""
    touched: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        touched[row["project_id"]].add(row["trace_id"])
    return [(pid, ids, contribution(conn, pid, ids)) for pid, ids in sorted(touched.items())]


def settle(conn: Conn, before: Snapshot) -> None:
    """After the write: move the rollups by what it changed (see :func:`snapshot`)."""
    for project_id, ids, old in before:
        add(conn, project_id, contribution(conn, project_id, ids), old)
