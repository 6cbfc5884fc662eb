"""Rollups of traces, observations and users, so that metrics never scan raw rows
(:data:`TABLES`; docs/metrics.md has the table of levels). ``''`` stands for "none" in
text keys; hours are ``YYYY-MM-DDTHH`` and days ``YYYY-MM-DD`` text, UTC, the same
labels on both backends.

- Keyed by the UTC hour of the *trace's* ``timestamp`` and the trace's environment
  (a trace's observations count in its trace's hour): ``rollup_trace_hours`` (trace
  name, latency bucket; :data:`NO_LATENCY` holds traces without observations),
  ``rollup_observation_hours`` (trace name, observation name, model),
  ``rollup_model_traces`` (traces with an observation of a model, not ``''``),
  ``rollup_user_hours`` (traces with a user). The coarse level sums them by *day*
  without the names: ``rollup_days`` and ``rollup_model_days``.
- Keyed by the *observation's* own hour (or day) and environment:
  ``rollup_observation_facets`` / ``_facet_days`` (each observation once under its
  model, its name and its trace's name; observations of traces not stored count with
  trace name ``''``), ``rollup_observation_latency`` / ``_latency_days`` (latency and
  time to first token per model and log-spaced bucket: percentiles within
  :data:`PERCENTILE_ERROR`).
- ``rollup_score_hours``, keyed by the *score's* hour and environment: count and sum of
  NUMERIC and BOOLEAN values per name; the write path subtracts a batch's stored
  scores and adds them as written; deletes subtract them first.

Users: an hourly user rollup, not ``trace_totals`` with a user index. Its key leads
with the hour, so a batch's upserts land in the few index pages of the current hour
(an index leading with the user puts each trace's entry on a random page: migration
0008 dropped ``trace_totals_user`` for costing about 0.6 WAL pages per observation).
Grouping by user over a range reads one row per (user, hour, environment) instead of
one per trace. Measured on SQLite (top 20 users by cost over 30 days, 300,000 traces,
warm medians): with skewed users (Pareto; 19,000 user-hours) 14-21 ms against
450-560 ms from ``trace_totals``'s time index; with 2,000 uniform users (271,000
user-hours) 320 against 800 ms; with 50,000 uniform users, where almost every
user-hour holds one trace, 800 against 660 ms: it never loses much and wins by an
order of magnitude when users come back within the hour, as real ones do. A scope
naming *one* user reads raw rows through ``traces_user`` instead: that is bounded by
the user's own traces.

Top sessions cannot be rolled up by hour (about as many keys as traces), so
``trace_totals`` holds one narrow row per trace (timestamp, environment, name, user,
session, observations, cost, tokens, latency, error flag) with a covering index by time.

Entities are upserts (an observation's end time, cost or model may arrive later, a
trace's timestamp, name or user may change) and traces can be deleted, so the rollups
are kept as deltas. In the write's transaction, what the batch's traces contribute is
computed from their raw rows before the write (:func:`recorded`) and after it
(:func:`contribution`), and the difference is added. Both sides are computed in Python
by one function (:meth:`Contribution.add_trace`) from the rows' exact timestamps, so
what a trace added is exactly what is taken away later. That costs two indexed
queries per 500 touched traces, never a scan of an hour.

The common case costs no query at all: a trace that is new, with all its observations
new in the same batch (:class:`Fresh`), contributes what its prepared records say,
computed by the same function before the writer runs.

:mod:`lanterna.store.rollup_write` writes the tables (SQL), :mod:`lanterna.store.rollup_read`
reads them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ..schema import LEVELS
from ..timeutil import UTC, format_ts
from . import ab_rollups
from .db import Conn
from .dialect import Dialect

T = TypeVar("T")

#: Histogram buckets per factor e (bucket b holds values in [e^(b/K), e^((b+1)/K))).
K = 20
#: Values below this (seconds) share the lowest bucket.
MIN_LATENCY = 0.001
#: Bound on a percentile's relative error when it reports its bucket's geometric
#: middle: half a bucket's width on the log scale, e^(1/(2K)) - 1 (2.53 %), for
#: values of :data:`MIN_LATENCY` and more.
PERCENTILE_ERROR = math.exp(0.5 / K) - 1
#: A level's rank in ``LEVELS`` (a trace's is its worst observation's; none is DEBUG's).
SEVERITY: dict[Any, int] = {level: rank for rank, level in enumerate(LEVELS)}
#: The latency bucket of traces without observations (they have no latency).
NO_LATENCY = -1_000_000
#: Measures of ``rollup_observation_latency``.
LATENCY, TTFT = "latency", "ttft"
#: Facets of ``rollup_observation_facets``: what an observation is counted under.
FACETS = ("model", "name", "trace_name")
_CHUNK = 500

# Keys (after the project): the dimensions of each table, in primary-key order.
TraceKey = tuple[str, str, str, int]  # hour, environment, trace name, latency bucket
ObservationKey = tuple[str, str, str, str, str]  # hour, env, trace name, name, model
UserKey = tuple[str, str, str]  # hour, environment, user
ModelKey = tuple[str, str, str, str]  # hour, environment, trace name, model
ScoreKey = tuple[str, str, str, str]  # hour (of the score), environment, name, data type
#: trace hour, trace environment, trace name, name, model, the observation's own hour
#: and environment: what every observation table is summed from
WideKey = tuple[str, str, str, str, str, str, str]
#: an observation without a stored trace: its hour, environment, name, model
LooseKey = tuple[str, str, str, str]
#: the observation's hour, environment, model, measure, bucket
BucketKey = tuple[str, str, str, str, int]

#: the values of the facet tables: observations, errors, cost, tokens, and how many
#: have a cost and a total token count (a sum over none is null, as in SQL)
_FACET_VALUES = (
    "observations",
    "errors",
    "cost",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "costed",
    "counted",
)
#: table -> (name of its values in :meth:`Contribution.tables`, key columns, value
#: columns). The fine level first, then the coarse one and the observation-hour one.
TABLES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "rollup_trace_hours": (
        "traces",
        ("hour", "environment", "trace_name", "latency_bucket"),
        ("traces", "errors", "latency_sum"),
    ),
    "rollup_observation_hours": (
        "observations",
        ("hour", "environment", "trace_name", "name", "model"),
        ("observations", "errors", "cost", "input_tokens", "output_tokens", "total_tokens"),
    ),
    "rollup_user_hours": (
        "users",
        ("hour", "environment", "user_id"),
        (
            "traces",
            "observed_traces",
            "errors",
            "observations",
            "cost",
            "input_tokens",
            "output_tokens",
            "total_tokens",
        ),
    ),
    "rollup_model_traces": (
        "model_traces",
        ("hour", "environment", "trace_name", "model"),
        ("traces",),
    ),
    "rollup_score_hours": (
        "scores",
        ("hour", "environment", "name", "data_type"),
        ("scores", "value_sum"),
    ),
    "rollup_days": (
        "coarse_traces",
        ("day", "environment", "latency_bucket"),
        ("traces", "errors", "latency_sum"),
    ),
    "rollup_model_days": (
        "coarse_models",
        ("day", "environment", "model"),
        (
            "traces",
            "observations",
            "errors",
            "cost",
            "input_tokens",
            "output_tokens",
            "total_tokens",
        ),
    ),
    "rollup_observation_facets": (
        "facets",
        ("hour", "environment", "facet", "value"),
        _FACET_VALUES,
    ),
    "rollup_observation_facet_days": (
        "facet_days",
        ("day", "environment", "facet", "value"),
        _FACET_VALUES,
    ),
    "rollup_observation_latency": (
        "buckets",
        ("hour", "environment", "model", "measure", "bucket"),
        ("observations", "seconds"),
    ),
    "rollup_observation_latency_days": (
        "bucket_days",
        ("day", "environment", "model", "measure", "bucket"),
        ("observations", "seconds"),
    ),
}
#: the tables keyed by the *observation's* hour and environment (the others: the
#: trace's; scores: the score's)
OBSERVATION_TIMED = (
    "rollup_observation_facets",
    "rollup_observation_facet_days",
    "rollup_observation_latency",
    "rollup_observation_latency_days",
)
#: the score data types with a numeric value (BOOLEAN as 0/1), the ones rolled up
NUMERIC_SCORES = ("NUMERIC", "BOOLEAN")


def bucket(seconds: float) -> int:
    """The histogram bucket of a duration in seconds."""
    return math.floor(math.log(max(seconds, MIN_LATENCY)) * K)


latency_bucket = bucket  # the name the trace latency histogram had


def middle(b: int) -> float:
    """The geometric middle of bucket ``b``, in seconds: what a percentile reports."""
    return math.exp((b + 0.5) / K)


def _zeros(n: int) -> Callable[[], list[float]]:
    return lambda: [0] * n


def _into(
    into: dict[Any, list[float]], key: Any, values: Sequence[float], at: int = 0, size: int = 0
) -> None:
    """Add ``values`` to ``into[key]`` from position ``at`` (a new entry: ``size``
    zeros, or a copy of ``values``)."""
    have = into.get(key)
    if have is None:
        if not at and (not size or size == len(values)):
            into[key] = list(values)
            return
        have = into[key] = [0] * (size or at + len(values))
    for j, x in enumerate(values, at):
        have[j] += x


_STORED = ("traces", "wide", "loose", "buckets", "users", "model_traces", "scores")


#: :attr:`Contribution.figures` of one trace.
Figures = tuple[int, int, int, int, datetime | None, datetime | None]


class Contribution:
    """What a set of traces adds to the rollups: values per key of what every table is
    summed from (:meth:`tables`), and each trace's ``trace_totals`` row.

    Per observation the write path updates one ``wide`` entry (trace hour and
    environment, trace name, name, model, own hour and environment) and its histogram
    buckets; the tables that sum over some of those keys (the observation rollup, the
    coarse model rollup, the facets) are derived per distinct key when written."""

    def __init__(self) -> None:
        self.traces: dict[TraceKey, list[float]] = defaultdict(_zeros(3))
        self.wide: dict[WideKey, list[float]] = {}
        self.loose: dict[LooseKey, list[float]] = {}
        self.buckets: dict[BucketKey, list[float]] = {}
        self.users: dict[UserKey, list[float]] = defaultdict(_zeros(8))
        self.model_traces: dict[ModelKey, list[float]] = defaultdict(_zeros(1))
        self.scores: dict[ScoreKey, list[float]] = defaultdict(_zeros(2))
        #: trace id -> its ``trace_totals`` row (the columns of :data:`_TOTALS_COLUMNS`
        #: after project and trace id)
        self.totals: dict[str, tuple[Any, ...]] = {}
        #: trace id -> what else the trace list shows of it: ``(input tokens, output
        #: tokens, severity, errors, first start, last start)`` (severity:
        #: :data:`SEVERITY` of its worst level; the starts: its observations' earliest
        #: and latest ``start_time``, None without any); the ClickHouse event store keeps
        #: them beside the totals (``trace_figures``), and reads a page's observation
        #: ids within the starts
        self.figures: dict[str, Figures] = {}
        #: trace id -> its A/B key, for the traces taking part (:mod:`.ab_rollups`)
        self.ab: dict[str, ab_rollups.Key] = {}
        #: the scores added, as :func:`.ab_rollups.score_row` gives them
        self.score_rows: list[ab_rollups.ScoreRow] = []

    def add_trace(
        self,
        dialect: Dialect,
        trace_id: str,
        trace: Mapping[str, Any],
        observations: Sequence[Mapping[str, Any]],
    ) -> None:
        """Add one trace (a record or row: ``timestamp`` as an aware datetime,
        ``environment``, ``name``, ``user_id``, ``session_id``) with its observations
        (``name``, ``model``, ``level``, ``environment``, ``total_cost``,
        ``usage_input``, ``usage_output``, ``usage_total``, and ``start_time``,
        ``end_time``, ``completion_start_time`` as aware datetimes)."""
        # The write path's hot loop (every ingested observation): plain locals.
        stamp: datetime = trace["timestamp"]
        hour = format_ts(stamp)[:13]  # the label utc_hour() gives on both backends
        member = ab_rollups.member_of(trace)
        if member is not None:
            self.ab[trace_id] = (*member, hour)
        env = trace["environment"]
        tname = trace.get("name") or ""
        cost = 0.0
        inputs = outputs = tokens = errors = severity = 0
        first = last = latest = None
        models = set()
        if observations:
            wide, durations = self.wide, self._durations
            h0 = datetime.fromisoformat(hour + ":00:00+00:00")
            # Ingestion refuses year 9999 (timeutil.MAX_TS); rows stored before it did
            # may sit in the last hour there is, which has no next hour.
            h1 = h0 + _HOUR if h0 < _LAST_HOUR else _END_OF_TIME
            for o in observations:
                get = o.get
                start = o["start_time"]
                end = get("end_time")
                if first is None or start < first:
                    first = start
                if latest is None or start > latest:
                    latest = start
                stop = end or start
                if last is None or stop > last:
                    last = stop
                level = get("level")
                error = 1 if level == "ERROR" else 0
                rank = SEVERITY.get(level, 0)
                if rank > severity:
                    severity = rank
                c = get("total_cost")
                i = get("usage_input") or 0
                out = get("usage_output") or 0
                total = get("usage_total")
                errors += error
                inputs += i
                outputs += out
                model = get("model") or ""
                if model:
                    models.add(model)
                own = hour if h0 <= start < h1 else format_ts(start)[:13]
                oenv = get("environment") or env
                key = (hour, env, tname, get("name") or "", model, own, oenv)
                costed = 0 if c is None else 1
                counted = 0 if total is None else 1
                c = float(c) if c else 0.0
                total = total or 0
                cost += c
                tokens += total
                v = wide.get(key)
                if v is None:
                    wide[key] = [1, error, c, i, out, total, costed, counted]
                else:
                    v[0] += 1
                    v[1] += error
                    v[2] += c
                    v[3] += i
                    v[4] += out
                    v[5] += total
                    v[6] += costed
                    v[7] += counted
                durations(start, end, get("completion_start_time"), own, oenv, model)
        for model in models:
            self.model_traces[(hour, env, tname, model)][0] += 1
        error = 1 if errors else 0
        n = len(observations)
        latency = None if first is None or last is None else (last - first).total_seconds()
        if latency is None:
            self.traces[(hour, env, tname, NO_LATENCY)][0] += 1
        else:
            t = self.traces[(hour, env, tname, bucket(latency))]
            t[0] += 1
            t[1] += error
            t[2] += latency
        user = trace.get("user_id")
        if user is not None:
            u = self.users[(hour, env, user)]
            u[0] += 1
            if n:
                u[1] += 1
                u[2] += error
                u[3] += n
                u[4] += cost
                u[5] += inputs
                u[6] += outputs
                u[7] += tokens
        self.figures[trace_id] = (inputs, outputs, severity, errors, first, latest)
        self.totals[trace_id] = (
            dialect.ts(stamp),
            env,
            trace.get("name"),
            user,
            trace.get("session_id"),
            n,
            cost,
            tokens,
            latency,
            error,
        )

    def _durations(
        self, start: datetime, end: Any, first_token: Any, hour: str, env: str, model: str
    ) -> None:
        buckets = self.buckets
        log, floor, lowest = math.log, math.floor, MIN_LATENCY
        for measure, at in ((LATENCY, end), (TTFT, first_token)):
            if at is None:
                continue
            seconds = (at - start).total_seconds()
            k = (hour, env, model, measure, floor(log(seconds if seconds > lowest else lowest) * K))
            h = buckets.get(k)
            if h is None:
                buckets[k] = [1, seconds]
            else:
                h[0] += 1
                h[1] += seconds

    def add_loose(self, observation: Mapping[str, Any]) -> None:
        """Add an observation whose trace is not stored: it counts in the tables timed
        by the observation (under trace name ``''``), not in the trace-timed ones."""
        get = observation.get
        start = observation["start_time"]
        own = format_ts(start)[:13]
        env = get("environment") or ""
        model = get("model") or ""
        c = get("total_cost")
        total = get("usage_total")
        values = [
            1,
            1 if get("level") == "ERROR" else 0,
            float(c) if c else 0.0,
            get("usage_input") or 0,
            get("usage_output") or 0,
            total or 0,
            0 if c is None else 1,
            0 if total is None else 1,
        ]
        _into(self.loose, (own, env, get("name") or "", model), values)
        self._durations(start, get("end_time"), get("completion_start_time"), own, env, model)

    def add_score(self, score: Mapping[str, Any]) -> None:
        """Add one score (a record or row: ``timestamp`` as an aware datetime,
        ``environment``, ``name``, ``data_type``, ``value``, and for the A/B rollups
        ``id``, ``trace_id``, ``string_value``); only numeric and boolean scores with a
        value count here."""
        self.score_rows.append(ab_rollups.score_row(score))
        value = score.get("value")
        if value is None or score.get("data_type") not in NUMERIC_SCORES:
            return
        hour = format_ts(score["timestamp"])[:13]
        v = self.scores[(hour, score["environment"], score["name"], score["data_type"])]
        v[0] += 1
        v[1] += float(value)

    def update(self, other: Contribution, *, totals: bool = False) -> None:
        """Add ``other``'s values (of other traces) to this one's (with ``totals``,
        its ``trace_totals`` rows too)."""
        for attr in _STORED:
            into = getattr(self, attr)
            for key, values in getattr(other, attr).items():
                _into(into, key, values)
        self.score_rows.extend(other.score_rows)
        if totals:
            self.totals.update(other.totals)
            self.figures.update(other.figures)
            self.ab.update(other.ab)

    def tables(self) -> dict[str, dict[Any, list[float]]]:
        """Each table's values by key (the names of :data:`TABLES`): the stored ones
        and those summed from ``wide``, ``loose``, ``traces`` and ``model_traces``."""
        observations: dict[Any, list[float]] = {}
        models: dict[Any, list[float]] = {}
        facets: dict[Any, list[float]] = {}
        for (hour, env, tname, name, model, own, oenv), v in self.wide.items():
            _into(observations, (hour, env, tname, name, model), v[:6])
            _into(models, (hour[:10], env, model), v[:6], 1, 7)
            _into(facets, (own, oenv, "model", model), v)
            _into(facets, (own, oenv, "name", name), v)
            _into(facets, (own, oenv, "trace_name", tname), v)
        for (own, oenv, name, model), v in self.loose.items():
            _into(facets, (own, oenv, "model", model), v)
            _into(facets, (own, oenv, "name", name), v)
            _into(facets, (own, oenv, "trace_name", ""), v)
        for (hour, env, _, model), v in self.model_traces.items():
            _into(models, (hour[:10], env, model), v, 0, 7)
        coarse: dict[Any, list[float]] = {}
        for (hour, env, _, b), v in self.traces.items():
            _into(coarse, (hour[:10], env, b), v)
        facet_days: dict[Any, list[float]] = {}
        for (hour, env, facet, value), v in facets.items():
            _into(facet_days, (hour[:10], env, facet, value), v)
        bucket_days: dict[Any, list[float]] = {}
        for (hour, env, model, measure, b), v in self.buckets.items():
            _into(bucket_days, (hour[:10], env, model, measure, b), v)
        return {
            "traces": self.traces,
            "observations": observations,
            "users": self.users,
            "model_traces": self.model_traces,
            "scores": self.scores,
            "coarse_traces": coarse,
            "coarse_models": models,
            "facets": facets,
            "facet_days": facet_days,
            "buckets": self.buckets,
            "bucket_days": bucket_days,
        }


_HOUR = timedelta(hours=1)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_LAST_HOUR = _END_OF_TIME.replace(minute=0, second=0, microsecond=0)


class Fresh:
    """A trace that is new, with observations that are all new (see :func:`classify`):
    its records, from which its values are computed only when the batch's summed
    values (:func:`fold`) cannot be used as a whole."""

    __slots__ = ("dialect", "observations", "trace")

    def __init__(
        self, dialect: Dialect, trace: dict[str, Any], observations: list[dict[str, Any]]
    ) -> None:
        self.dialect = dialect
        self.trace = trace
        self.observations = observations

    def add_to(self, out: Contribution, trace_id: str) -> None:
        """Add this trace's values (and ``trace_totals`` row) to ``out``."""
        out.add_trace(self.dialect, trace_id, self.trace, self.observations)


def fold(fresh: Mapping[str, Fresh]) -> Contribution:
    """What the traces ``fresh`` add, summed into one :class:`Contribution` (with their
    ``trace_totals`` rows): a batch's common case, computed before the writer runs."""
    out = Contribution()
    for trace_id, f in fresh.items():
        f.add_to(out, trace_id)
    return out


def summed(parts: Iterable[Contribution]) -> Contribution:
    """The values of ``parts`` added up, with their ``trace_totals`` rows."""
    out = Contribution()
    for part in parts:
        out.update(part, totals=True)
    return out


def _chunked(ids: Iterable[str], size: int = _CHUNK) -> Iterable[list[str]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


_TRACE_COLS = "id, timestamp, environment, name, user_id, session_id"
_OBS_COLS = (
    "trace_id, name, model, level, environment, total_cost, usage_input, usage_output,"
    " usage_total, start_time, end_time, completion_start_time"
)
_TIMES = ("start_time", "end_time", "completion_start_time")


def contribution(conn: Conn, project_id: str, trace_ids: Iterable[str]) -> Contribution:
    """The rollup values of the stored traces ``trace_ids`` (with their observations),
    computed from the raw rows."""
    d = conn.dialect
    out = Contribution()
    for chunk in _chunked(trace_ids):
        marks = ", ".join("?" * len(chunk))
        params = [project_id, *chunk]
        traces = conn.all(
            f"SELECT {_TRACE_COLS}, {ab_rollups.member_columns(d)} FROM traces"
            f" WHERE project_id = ? AND id IN ({marks})",
            params,
        )
        by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for o in conn.all(
            f"SELECT {_OBS_COLS} FROM observations WHERE project_id = ? AND trace_id IN ({marks})",
            params,
        ):
            for col in _TIMES:
                o[col] = d.ts_parse(o[col])
            by_trace[o["trace_id"]].append(o)
        for t in traces:
            t["timestamp"] = d.ts_parse(t["timestamp"])
            out.add_trace(d, t["id"], t, by_trace.pop(t["id"], []))
        for loose in by_trace.values():  # observations of traces not stored (yet)
            for o in loose:
                out.add_loose(o)
    return out


def recorded(conn: Conn, project_id: str, trace_ids: Iterable[str]) -> Contribution:
    """What the stored traces ``trace_ids`` have added to the rollups: their
    :func:`contribution` before a write (the rollups always equal the raw rows)."""
    return contribution(conn, project_id, trace_ids)


def delta_rows(
    project_id: str,
    plus: Contribution,
    minus: Contribution | None = None,
    tables: Iterable[str] = TABLES,
) -> Iterator[tuple[str, list[list[Any]]]]:
    """``(table, rows)`` per table of ``tables``: ``[project_id, *key, *values]`` of
    ``plus - minus`` for each key whose difference is not zero, keys in order."""
    news = plus.tables()
    olds = minus.tables() if minus is not None else {}
    for table in tables:
        attr = TABLES[table][0]
        new = news[attr]
        old = olds.get(attr, {})
        if not old:  # the common case: nothing to take away
            rows = [[project_id, *key, *new[key]] for key in sorted(new)]
        else:
            rows = []
            for key in sorted(set(new) | set(old)):
                a = new.get(key)
                b = old.get(key)
                if a == b:
                    continue
                if b is None:
                    delta = a
                elif a is None:
                    delta = [-x for x in b]
                else:
                    delta = [x - y for x, y in zip(a, b, strict=True)]
                rows.append([project_id, *key, *delta])  # type: ignore[misc]
        yield table, rows


def scores(records: Iterable[Mapping[str, Any]]) -> Contribution:
    """What the scores ``records`` add to the rollups (see :meth:`Contribution.add_score`)."""
    out = Contribution()
    for record in records:
        out.add_score(record)
    return out


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
