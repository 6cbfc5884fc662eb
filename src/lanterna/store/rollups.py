"""Hourly rollups of traces and observations, so that metrics never scan raw rows.

Two tables, keyed by the UTC hour of the *trace's* ``timestamp`` (``YYYY-MM-DDTHH``
text, the same label on both backends) and the trace's environment:

- ``rollup_traces`` per latency bucket: traces, traces with an ERROR observation, summed
  latency. Bucket ``NO_LATENCY`` holds traces without observations; the other buckets
  are those of :data:`K` (log-spaced).
- ``rollup_models`` per observation model (``''`` for none): observations, cost and
  input/output/total tokens.

Top users and sessions cannot be rolled up by hour (there are about as many keys as
traces), so ``trace_totals`` holds one narrow row per trace (timestamp, environment,
user, session, observations, cost, tokens) with a covering index by time: the top lists
scan that index instead of joining traces with their wide observation rows.

Entities are upserts (an observation's end time or cost may arrive later, a trace's
timestamp may change) and traces can be deleted, so the rollups are kept as deltas:
what a trace added is recorded in its ``trace_totals`` row (with its latency and error
flag), so the *before* side of a write is read back from there (:func:`recorded`), the
*after* side is computed from the raw rows (:func:`contribution`), in the same
transaction, and the difference is added. That costs a few indexed queries for the
batch's traces only, never a scan of an hour.

The common case costs no query at all: a trace that is new, with all its observations
new in the same batch (:class:`Fresh`), contributes exactly what its prepared records
say, computed before the writer runs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..timeutil import format_ts
from .db import Conn
from .dialect import Dialect

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

    def add_trace(self, trace_id: str, hour: str, totals: tuple[Any, ...]) -> None:
        """Add one trace: its ``trace_totals`` row (timestamp, environment, user,
        session, observations, cost, tokens, latency, error) in its UTC ``hour``."""
        self.totals[trace_id] = totals
        env, n, latency, error = totals[1], totals[4], totals[7], totals[8]
        if n == 0:
            self.traces[(hour, env, NO_LATENCY)][0] += 1
            return
        seconds = latency or 0.0
        v = self.traces[(hour, env, latency_bucket(seconds))]
        v[0] += 1
        v[1] += error
        v[2] += seconds


class Fresh:
    """What a trace that is new, with observations that are all new, contributes:
    computed from its records before the writer runs (see :func:`classify`)."""

    __slots__ = ("hour", "models", "totals")

    def __init__(
        self, dialect: Dialect, trace: dict[str, Any], observations: list[dict[str, Any]]
    ) -> None:
        stamp = trace["timestamp"]
        self.hour = format_ts(stamp)[:13]  # the label utc_hour() gives on both backends
        env = trace["environment"]
        self.models: dict[ModelKey, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0, 0])
        cost = 0.0
        tokens = 0
        error = 0
        latency = None
        if observations:
            first = min(o["start_time"] for o in observations)
            last = max(o.get("end_time") or o["start_time"] for o in observations)
            latency = (last - first).total_seconds()
        for o in observations:
            if o.get("level") == "ERROR":
                error = 1
            c = float(o.get("total_cost") or 0)
            total = int(o.get("usage_total") or 0)
            cost += c
            tokens += total
            v = self.models[(self.hour, env, o.get("model") or "")]
            v[0] += 1
            v[1] += c
            v[2] += int(o.get("usage_input") or 0)
            v[3] += int(o.get("usage_output") or 0)
            v[4] += total
        self.totals = (
            dialect.ts(stamp),
            env,
            trace.get("user_id"),
            trace.get("session_id"),
            len(observations),
            cost,
            tokens,
            latency,
            error,
        )

    def add_to(self, out: Contribution, trace_id: str) -> None:
        """Add this trace's values to ``out``."""
        out.add_trace(trace_id, self.hour, self.totals)
        for key, values in self.models.items():
            into = out.models[key]
            for i, x in enumerate(values):
                into[i] += x


_JOIN = "observations o ON o.project_id = t.project_id AND o.trace_id = t.id"


def _chunked(ids: Iterable[str], size: int = _CHUNK) -> Iterable[list[str]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _models(conn: Conn, project_id: str, chunk: list[str], out: Contribution) -> None:
    """Add the per-model values of the stored traces ``chunk`` to ``out``."""
    hour = conn.dialect.utc_hour("t.timestamp")
    marks = ", ".join("?" * len(chunk))
    for r in conn.all(
        f"SELECT {hour} AS hour, t.environment AS env, o.model AS model, COUNT(*) AS n,"
        " COALESCE(SUM(o.total_cost), 0) AS cost, COALESCE(SUM(o.usage_input), 0) AS input,"
        " COALESCE(SUM(o.usage_output), 0) AS output,"
        " COALESCE(SUM(o.usage_total), 0) AS total"
        f" FROM traces t JOIN {_JOIN} WHERE t.project_id = ? AND t.id IN ({marks})"
        " GROUP BY hour, t.environment, o.model",
        [project_id, *chunk],
    ):
        v = out.models[(r["hour"], r["env"], r["model"] or "")]
        v[0] += int(r["n"])
        v[1] += float(r["cost"] or 0)
        v[2] += int(r["input"] or 0)
        v[3] += int(r["output"] or 0)
        v[4] += int(r["total"] or 0)


def contribution(conn: Conn, project_id: str, trace_ids: Iterable[str]) -> Contribution:
    """The rollup values of the stored traces ``trace_ids`` (with their observations),
    computed from the raw rows."""
    d = conn.dialect
    out = Contribution()
    # Exact to the microsecond, as Fresh computes it from the records.
    latency = d.seconds_between("MAX(COALESCE(o.end_time, o.start_time))", "MIN(o.start_time)")
    hour = d.utc_hour("t.timestamp")
    for chunk in _chunked(trace_ids):
        marks = ", ".join("?" * len(chunk))
        for r in conn.all(
            f"SELECT t.id AS id, t.timestamp AS ts, {hour} AS hour, t.environment AS env,"
            " t.user_id AS user_id, t.session_id AS session_id, COUNT(o.id) AS n,"
            f" {latency} AS latency, MAX(CASE WHEN o.level = 'ERROR' THEN 1 ELSE 0 END) AS error,"
            " COALESCE(SUM(o.total_cost), 0) AS cost, COALESCE(SUM(o.usage_total), 0) AS tokens"
            f" FROM traces t LEFT JOIN {_JOIN}"
            f" WHERE t.project_id = ? AND t.id IN ({marks})"
            " GROUP BY t.id, t.timestamp, t.environment, t.user_id, t.session_id",
            [project_id, *chunk],
        ):
            n = int(r["n"])
            out.add_trace(
                r["id"],
                r["hour"],
                (
                    r["ts"],
                    r["env"],
                    r["user_id"],
                    r["session_id"],
                    n,
                    float(r["cost"] or 0),
                    int(r["tokens"] or 0),
                    float(r["latency"] or 0.0) if n else None,
                    int(r["error"] or 0) if n else 0,
                ),
            )
        _models(conn, project_id, chunk, out)
    return out


def recorded(conn: Conn, project_id: str, trace_ids: Iterable[str]) -> Contribution:
    """What the stored traces ``trace_ids`` have added to the rollups: their
    ``trace_totals`` rows (exactly the values added, whichever way they were
    computed) and their per-model values."""
    out = Contribution()
    hour = conn.dialect.utc_hour("timestamp")
    for chunk in _chunked(trace_ids):
        marks = ", ".join("?" * len(chunk))
        for r in conn.all(
            f"SELECT trace_id, timestamp AS ts, {hour} AS hour, environment AS env, user_id,"
            " session_id, observations, cost, tokens, latency, error FROM trace_totals"
            f" WHERE project_id = ? AND trace_id IN ({marks})",
            [project_id, *chunk],
        ):
            out.add_trace(
                r["trace_id"],
                r["hour"],
                (
                    r["ts"],
                    r["env"],
                    r["user_id"],
                    r["session_id"],
                    int(r["observations"]),
                    float(r["cost"]),
                    int(r["tokens"]),
                    None if r["latency"] is None else float(r["latency"]),
                    int(r["error"]),
                ),
            )
        _models(conn, project_id, chunk, out)
    return out


_TRACES_HEAD = (
    "INSERT INTO rollup_traces (project_id, hour, environment, latency_bucket, traces,"
    " errors, latency_sum)"
)
_TRACES_TAIL = (
    " ON CONFLICT (project_id, hour, environment, latency_bucket) DO UPDATE SET"
    " traces = rollup_traces.traces + excluded.traces,"
    " errors = rollup_traces.errors + excluded.errors,"
    " latency_sum = rollup_traces.latency_sum + excluded.latency_sum"
)
_MODELS_HEAD = (
    "INSERT INTO rollup_models (project_id, hour, environment, model, observations, cost,"
    " input_tokens, output_tokens, total_tokens)"
)
_MODELS_TAIL = (
    " ON CONFLICT (project_id, hour, environment, model) DO UPDATE SET"
    " observations = rollup_models.observations + excluded.observations,"
    " cost = rollup_models.cost + excluded.cost,"
    " input_tokens = rollup_models.input_tokens + excluded.input_tokens,"
    " output_tokens = rollup_models.output_tokens + excluded.output_tokens,"
    " total_tokens = rollup_models.total_tokens + excluded.total_tokens"
)
_TOTALS_HEAD = (
    "INSERT INTO trace_totals (project_id, trace_id, timestamp, environment, user_id,"
    " session_id, observations, cost, tokens, latency, error)"
)
_TOTALS_TAIL = (
    " ON CONFLICT (project_id, trace_id) DO UPDATE SET timestamp = excluded.timestamp,"
    " environment = excluded.environment, user_id = excluded.user_id,"
    " session_id = excluded.session_id, observations = excluded.observations,"
    " cost = excluded.cost, tokens = excluded.tokens, latency = excluded.latency,"
    " error = excluded.error"
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
    conn.insert(_TOTALS_HEAD, changed, _TOTALS_TAIL)
    gone = sorted(set(old_totals) - set(plus.totals))
    for start in range(0, len(gone), _CHUNK):
        chunk = gone[start : start + _CHUNK]
        conn.run(
            f"DELETE FROM trace_totals WHERE project_id = ? AND trace_id IN"
            f" ({', '.join('?' * len(chunk))})",
            [project_id, *chunk],
        )
    for table, head, tail in (
        ("traces", _TRACES_HEAD, _TRACES_TAIL),
        ("models", _MODELS_HEAD, _MODELS_TAIL),
    ):
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
        conn.insert(head, rows, tail)


def maintained(conn: Conn, project_id: str, trace_ids: set[str], work: Callable[[], T]) -> T:
    """Run ``work()`` (a write touching only ``trace_ids`` and their observations) and
    move the rollups by the difference it made to those traces."""
    if not trace_ids:
        return work()
    before = recorded(conn, project_id, trace_ids)
    result = work()
    add(conn, project_id, contribution(conn, project_id, trace_ids), before)
    return result


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


def classify(
    conn: Conn,
    project_id: str,
    kinds: dict[str, Any],
    stored: dict[str, dict[str, dict[str, Any]]],
    fresh: dict[str, Fresh],
) -> tuple[list[str], set[str]]:
    """Split the traces a batch can change into those whose precomputed :class:`Fresh`
    values hold and the rest (computed from the raw rows before and after the write).

    ``kinds`` maps kind -> {entity id: entity with ``.events``}; ``stored`` holds the
    entities of the batch that are stored already, by kind; ``fresh`` the precomputed
    values of the batch's traces as if they and their observations were all new. A
    trace's values hold when it is not stored, none of its observations is stored
    (neither in this batch nor before it) and every observation naming it is new.
    """
    stored_traces = stored.get("trace", {})
    candidates = {t for t in kinds.get("trace", ()) if t in fresh and t not in stored_traces}
    touched = set(kinds.get("trace", ()))
    stored_obs = stored.get("observation", {})
    for obs_id, entity in kinds.get("observation", {}).items():
        old = stored_obs.get(obs_id)
        if old is not None:  # an observation's trace is fixed by its first event
            touched.add(old["trace_id"])
            candidates.discard(old["trace_id"])
        for event in entity.events:
            trace_id = event.fields.get("trace_id")
            if trace_id is not None:
                touched.add(trace_id)
                if old is not None:
                    candidates.discard(trace_id)
    for chunk in _chunked(candidates, 64):  # small: index probes whatever the statistics
        # Observations stored before their trace (no DISTINCT: it makes SQLite walk
        # the whole project's trace_id index instead of seeking each id).
        marks = ", ".join("?" * len(chunk))
        for r in conn.all(
            f"SELECT trace_id FROM observations WHERE project_id = ? AND trace_id IN ({marks})",
            [project_id, *chunk],
        ):
            candidates.discard(r["trace_id"])
    return sorted(candidates), touched - candidates


Snapshot = list[tuple[str, set[str], Contribution]]


def snapshot(conn: Conn, rows: Iterable[dict[str, Any]]) -> Snapshot:
    """Before a write to the observation ``rows`` (with ``project_id`` and ``trace_id``)
    of any projects: their traces' contributions, for :func:`settle` after it."""
    touched: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        touched[row["project_id"]].add(row["trace_id"])
    return [(pid, ids, recorded(conn, pid, ids)) for pid, ids in sorted(touched.items())]


def settle(conn: Conn, before: Snapshot) -> None:
    """After the write: move the rollups by what it changed (see :func:`snapshot`)."""
    for project_id, ids, old in before:
        add(conn, project_id, contribution(conn, project_id, ids), old)
