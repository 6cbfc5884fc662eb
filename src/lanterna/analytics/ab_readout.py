"""The readout of an A/B test, or of an ad-hoc comparison, over stored traces and scores.

A grouping (:class:`Grouping`) says which traces take part and which variant each is:

- a declared A/B test: traces whose metadata ``experiment`` is the test's name, their
  variant its metadata ``variant`` (what the SDK's ``assign`` records; both strings);
- ``metadata.KEY``: traces that have the key, by its value (the seed guide's
  ``metadata.variant``);
- ``tags``: traces carrying one of the given tags, by the first of them they carry;
- ``promptVersion``: traces with a generation linked to the prompt, by its version.

What the statistics need: per variant the traces, units (distinct users or sessions; a
trace without one counts as its own unit), cost, mean latency and errors; per variant,
UTC hour and value the number of traces (a metric from ``trace_totals``) or scores (a
score name) with that value, or for cost and latency their count, sum and sum of
squares. A declared test's readout over its whole time reads them from the A/B
rollups (:mod:`lanterna.store.ab_rollups`: rows per hour and value, and one per unit to
count); a time range or an ad-hoc comparison reads them with grouped statements over
the raw traces, ``trace_totals`` (the per-trace totals the write path keeps) and
scores. Both give the same rows. :mod:`lanterna.abtests.stats` turns them into the
readout. Each score row of the metric is one observation; a trace with two
``user_rating`` scores counts twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..abtests.rules import AbTestError
from ..store import ab_rollups, rollup_read
from ..store.db import Conn

if TYPE_CHECKING:  # scipy and statsmodels load on the first readout, not at start
    from ..abtests import stats

#: Metrics read from ``trace_totals`` (the column and the metric's kind).
_TRACE_METRICS = {
    "cost": ("cost", "numeric"),
    "latency": ("latency", "numeric"),
    "errorRate": ("error", "boolean"),
}
#: The most variants a comparison shows (the most frequent ones).
MAX_GROUPS = 20


@dataclass
class Grouping:
    """Which traces take part and the SQL for each one's variant.

    ``kind``: ``abTest`` (``value`` the test name), ``metadata`` (``value`` the key),
    ``tags`` (``tags`` the tags) or ``promptVersion`` (``value`` the prompt name)."""

    kind: str
    value: str = ""
    tags: list[str] = field(default_factory=list)

    def rolled_up(self, from_ts: datetime | None, to_ts: datetime | None) -> bool:
        """Whether the A/B rollups answer (a declared test over its whole time)."""
        return self.kind == "abTest" and from_ts is None and to_ts is None

    def sql(self, conn: Conn) -> tuple[str, list[Any]]:
        """SQL for a trace's variant (over alias ``t``; NULL when it takes no part)."""
        d = conn.dialect
        if self.kind == "abTest":  # both strings, as the A/B rollups take them
            experiment, variant = ab_rollups.member_sql(d, "t.metadata")
            return f"(CASE WHEN {experiment} = ? THEN {variant} END)", [self.value]
        if self.kind == "metadata" and d.name == "clickhouse":
            # NULL when the key is missing (JSONExtractString gives ''), a non-string
            # value as its JSON text, as SQLite and PostgreSQL give it
            m = "ifNull(t.metadata, '{}')"
            return (
                f"if(JSONHas({m}, ?), if(JSONType({m}, ?) = 'String',"
                f" JSONExtractString({m}, ?), JSONExtractRaw({m}, ?)), NULL)",
                [self.value] * 4,
            )
        if self.kind == "metadata":
            return f"CAST({d.json_text_at('t.metadata')} AS TEXT)", [self.value]
        if self.kind == "tags":
            whens = " ".join(f"WHEN {d.json_array_contains('t.tags')} THEN ?" for _ in self.tags)
            params: list[Any] = []
            for tag in self.tags:
                params += [tag, tag]
            return f"(CASE {whens} END)", params
        if self.kind == "promptVersion" and d.name == "clickhouse":
            # joined by _traces (no correlated subquery there); NULL without the prompt
            return "CAST(pv.version AS Nullable(String))", []
        if self.kind == "promptVersion":
            return (
                "(SELECT CAST(MIN(o.prompt_version) AS TEXT) FROM observations o"
                " WHERE o.project_id = t.project_id AND o.trace_id = t.id"
                " AND o.prompt_name = ?)",
                [self.value],
            )
        raise AbTestError(f"unknown grouping {self.kind!r}")


def _traces(
    conn: Conn,
    project_id: str,
    grouping: Grouping,
    unit: str,
    from_ts: datetime | None,
    to_ts: datetime | None,
) -> tuple[str, list[Any]]:
    """The participating traces as a sub-select: trace id, hour, variant, unit."""
    variant, params = grouping.sql(conn)
    join = ""
    if grouping.kind == "promptVersion" and conn.dialect.name == "clickhouse":
        # the traces' prompt version joined once, where SQL has a correlated subquery
        join = (
            " LEFT JOIN (SELECT o.trace_id AS trace_id, MIN(o.prompt_version) AS version"
            " FROM observations o WHERE o.project_id = ? AND o.prompt_name = ?"
            " GROUP BY o.trace_id) pv ON pv.trace_id = t.id"
        )
        params = [project_id, grouping.value]
    where = ["t.project_id = ?"]
    args: list[Any] = [*params, project_id]
    if from_ts is not None:
        where.append("t.timestamp >= ?")
        args.append(conn.dialect.ts(from_ts))
    if to_ts is not None:
        where.append("t.timestamp < ?")
        args.append(conn.dialect.ts(to_ts))
    unit_col = "t.session_id" if unit == "session" else "t.user_id"
    inner = (
        f"SELECT t.id AS trace_id, {conn.dialect.utc_hour('t.timestamp')} AS hour,"
        f" {variant} AS variant, COALESCE({unit_col}, t.id) AS unit"
        f" FROM traces t{join} WHERE {' AND '.join(where)}"
    )
    return f"(SELECT * FROM ({inner}) p WHERE p.variant IS NOT NULL)", args


def _per_trace(
    conn: Conn, join: str, g: str, args: list[Any], project_id: str
) -> tuple[str, dict[str, str], list[Any]]:
    """``{join} <per-trace totals> tt ON ...`` for the participating traces ``g`` (the
    sub-select of :func:`_traces` and its ``args``), the SQL of each total's column
    (``cost``, ``latency``, ``error``) by name, and the parameters of ``FROM {g} g
    {join ...}``. SQL: the write path's ``trace_totals`` rows (one per stored trace). The
    ClickHouse event store keeps none: there the participating traces' observations
    summed the same way (cost 0, error 0 and latency null for a trace without
    observations, as ``rollups.Contribution.add_trace`` keeps them), always left-joined
    so those traces are still counted."""
    if rollup_read.totals_kept(conn):
        return (
            f"{join} trace_totals tt ON tt.project_id = ? AND tt.trace_id = g.trace_id",
            {"cost": "tt.cost", "latency": "tt.latency", "error": "tt.error"},
            [*args, project_id],
        )
    latency = conn.dialect.seconds_between(
        "MAX(COALESCE(ob.end_time, ob.start_time))", "MIN(ob.start_time)"
    )
    return (
        "LEFT JOIN (SELECT ob.trace_id AS trace_id, SUM(ob.total_cost) AS cost,"
        f" {latency} AS latency, MAX(CASE WHEN ob.level = 'ERROR' THEN 1 ELSE 0 END) AS error"
        " FROM observations ob WHERE ob.project_id = ?"
        f" AND ob.trace_id IN (SELECT trace_id FROM {g} gi) GROUP BY ob.trace_id) tt"
        " ON tt.trace_id = g.trace_id",
        {"cost": "COALESCE(tt.cost, 0)", "latency": "tt.latency", "error": "COALESCE(tt.error, 0)"},
        [*args, project_id, *args],
    )


def operational(
    conn: Conn,
    project_id: str,
    grouping: Grouping,
    unit: str = "user",
    from_ts: datetime | None = None,
    to_ts: datetime | None = None,
    *,
    rollup: bool = True,
) -> stats.Operational:
    """Per variant: traces, units, total cost, mean latency, errors (from the A/B
    rollups when they answer and ``rollup``)."""
    from ..abtests import stats

    if rollup and grouping.rolled_up(from_ts, to_ts):
        return _rolled_operational(_Rolled(conn, project_id, grouping.value), unit)
    g, args = _traces(conn, project_id, grouping, unit, from_ts, to_ts)
    totals, col, params = _per_trace(conn, "LEFT JOIN", g, args, project_id)
    rows = conn.all(
        f"SELECT g.variant AS variant, COUNT(*) AS n, COUNT(DISTINCT g.unit) AS units,"
        f" SUM({col['cost']}) AS cost, AVG({col['latency']}) AS latency,"
        f" SUM({col['error']}) AS errors FROM {g} g {totals} GROUP BY g.variant",
        params,
    )
    return stats.Operational(
        traces={r["variant"]: int(r["n"]) for r in rows},
        units={r["variant"]: int(r["units"]) for r in rows},
        cost={r["variant"]: float(r["cost"] or 0.0) for r in rows},
        latency={r["variant"]: None if r["latency"] is None else float(r["latency"]) for r in rows},
        errors={r["variant"]: int(r["errors"] or 0) for r in rows},
    )


class _Rolled:
    """A declared test's A/B rollups, for one readout: its hour rows read once."""

    def __init__(self, conn: Conn, project_id: str, test: str) -> None:
        self.conn, self.project_id, self.test = conn, project_id, test
        self._hours: list[dict[str, Any]] | None = None

    def hours(self) -> list[dict[str, Any]]:
        if self._hours is None:
            self._hours = ab_rollups.hours(self.conn, self.project_id, self.test)
        return self._hours


def _rolled_operational(rolled: _Rolled, unit: str) -> stats.Operational:
    from ..abtests import stats

    lone = "no_session" if unit == "session" else "no_user"
    units = ab_rollups.units(rolled.conn, rolled.project_id, rolled.test, unit)
    ops = stats.Operational({}, units, {}, {}, {})
    timed: dict[str, list[float]] = {}
    for r in rolled.hours():
        v = r["variant"]
        ops.traces[v] = ops.traces.get(v, 0) + int(r["traces"])
        ops.units[v] = ops.units.get(v, 0) + int(r[lone])
        ops.cost[v] = ops.cost.get(v, 0.0) + float(r["cost_sum"])
        ops.errors[v] = ops.errors.get(v, 0) + int(r["errors"])
        t = timed.setdefault(v, [0, 0.0])
        t[0] += int(r["timed"])
        t[1] += float(r["latency_sum"])
    ops.units = {v: n for v, n in ops.units.items() if v in ops.traces}
    ops.latency = {v: (s / n if n else None) for v, (n, s) in timed.items()}
    return ops


def _rolled_metric(rolled: _Rolled, metric: str, kind: str) -> stats.MetricRows:
    from ..abtests import stats

    if metric in ("cost", "latency"):
        n, total, squares = (
            ("costed", "cost_sum", "cost_squares")
            if metric == "cost"
            else ("timed", "latency_sum", "latency_squares")
        )
        moments = [
            (str(r["variant"]), str(r["hour"]), int(r[n]), float(r[total]), float(r[squares]))
            for r in rolled.hours()
            if r[n]
        ]
        return stats.MetricRows(metric, kind, [], moments)
    if metric == "errorRate":
        rows: list[tuple[str, str, Any, int]] = []
        for r in rolled.hours():
            ones, flagged = int(r["errors"]), int(r["flagged"])
            for value, count in ((0.0, flagged - ones), (1.0, ones)):
                if count:
                    rows.append((str(r["variant"]), str(r["hour"]), value, count))
        return stats.MetricRows(metric, kind, rows)
    labels = kind == "categorical"
    rows = [
        (v, h, str(x) if labels else float(x), n)
        for v, h, x, n in ab_rollups.score_values(
            rolled.conn, rolled.project_id, rolled.test, metric, labels
        )
    ]
    return stats.MetricRows(metric, kind, rows)


def score_kind(conn: Conn, project_id: str, name: str, *, events: Conn | None = None) -> str | None:
    """``numeric``, ``boolean`` or ``categorical`` for a score name (from its config,
    else from a stored score, read on ``events``: ``conn`` by default); None when the
    project has neither."""
    row = conn.one(
        "SELECT data_type FROM score_configs WHERE project_id = ? AND name = ? LIMIT 1",
        (project_id, name),
    ) or (events or conn).one(
        "SELECT data_type FROM scores WHERE project_id = ? AND name = ? LIMIT 1",
        (project_id, name),
    )
    if row is None:
        return None
    return {"NUMERIC": "numeric", "BOOLEAN": "boolean"}.get(row["data_type"], "categorical")


def metric_kind(conn: Conn, project_id: str, metric: str, *, events: Conn | None = None) -> str:
    """The kind of a metric; 400 naming it when it is neither a builtin nor a score."""
    if metric in _TRACE_METRICS:
        return _TRACE_METRICS[metric][1]
    kind = score_kind(conn, project_id, metric, events=events)
    if kind is None:
        raise AbTestError(
            f"metric {metric!r} does not exist: name a score of this project"
            " (a score config or a stored score) or one of cost, latency, errorRate"
        )
    return kind


def metric_rows(
    conn: Conn,
    project_id: str,
    grouping: Grouping,
    metric: str,
    unit: str = "user",
    from_ts: datetime | None = None,
    to_ts: datetime | None = None,
    *,
    rollup: bool = True,
    kind: str | None = None,
) -> stats.MetricRows:
    """The metric's values per variant and hour, grouped (from the A/B rollups when
    they answer and ``rollup``); ``kind``: the metric's, when the caller has it."""
    from ..abtests import stats

    kind = kind or metric_kind(conn, project_id, metric)
    if rollup and grouping.rolled_up(from_ts, to_ts):
        return _rolled_metric(_Rolled(conn, project_id, grouping.value), metric, kind)
    g, args = _traces(conn, project_id, grouping, unit, from_ts, to_ts)
    totals, col, totals_params = _per_trace(conn, "JOIN", g, args, project_id)
    if metric in ("cost", "latency"):  # as many values as traces: sums, not values
        x = col[_TRACE_METRICS[metric][0]]
        found = conn.all(
            f"SELECT g.variant AS variant, g.hour AS hour, COUNT({x}) AS n,"
            f" SUM({x}) AS total, SUM({x} * {x}) AS squares"
            f" FROM {g} g {totals} WHERE {x} IS NOT NULL GROUP BY g.variant, g.hour",
            totals_params,
        )
        moments = [
            (str(r["variant"]), str(r["hour"]), int(r["n"]), float(r["total"]),
             float(r["squares"]))
            for r in found
        ]  # fmt: skip
        return stats.MetricRows(metric, kind, [], moments)
    if metric in _TRACE_METRICS:
        x = col[_TRACE_METRICS[metric][0]]
        sql = (
            f"SELECT g.variant AS variant, g.hour AS hour, {x} AS value, COUNT(*) AS n"
            f" FROM {g} g {totals} WHERE {x} IS NOT NULL GROUP BY g.variant, g.hour, {x}"
        )
        params = totals_params
    else:
        value = "s.string_value" if kind == "categorical" else "s.value"
        sql = (
            f"SELECT g.variant AS variant, g.hour AS hour, {value} AS value, COUNT(*) AS n"
            f" FROM {g} g JOIN scores s ON s.project_id = ? AND s.trace_id = g.trace_id"
            f" AND s.name = ? WHERE {value} IS NOT NULL GROUP BY g.variant, g.hour, {value}"
        )
        params = [*args, project_id, metric]
    rows = [
        (
            str(r["variant"]),
            str(r["hour"]),
            str(r["value"]) if kind == "categorical" else float(r["value"]),
            int(r["n"]),
        )
        for r in conn.all(sql, params)
    ]
    return stats.MetricRows(metric, kind, rows)


def readout(
    conn: Conn,
    project_id: str,
    grouping: Grouping,
    *,
    metric: str,
    guardrails: Sequence[str] = (),
    variants: Sequence[str] | None = None,
    control: str | None = None,
    weights: dict[str, float] | None = None,
    unit: str = "user",
    alpha: float = 0.05,
    mde: float | None = None,
    from_ts: datetime | None = None,
    to_ts: datetime | None = None,
    rollup: bool = True,
    events: Conn | None = None,
) -> dict[str, Any]:
    """The whole readout (the API's ``AbTestReadout``): per variant and metric the
    summaries and comparisons against the control, cost, latency and error rate, the
    SRM check (with ``weights``), the sample size still needed (with ``mde``), the
    cumulative effect over time, the metric's distribution and the verdict.

    Without ``variants`` (an ad-hoc comparison) the variants are the groups found, the
    most frequent first (at most :data:`MAX_GROUPS`), the control the first (or
    ``control``). ``rollup=False`` reads a declared test from the raw rows too (the
    rollups' check). ``events``: where the traces and scores are read (the store's
    ``events_conn``; ``conn`` by default); the ClickHouse event store keeps no rollups
    (:func:`~lanterna.store.rollup_read.totals_kept`), so there the raw rows answer."""
    from ..abtests import stats

    ev = events or conn
    rollup = rollup and rollup_read.totals_kept(ev)
    kinds = {m: metric_kind(conn, project_id, m, events=ev) for m in (metric, *guardrails)}
    rolled = None
    if rollup and grouping.rolled_up(from_ts, to_ts):
        rolled = _Rolled(conn, project_id, grouping.value)
        ops = _rolled_operational(rolled, unit)
    else:
        ops = operational(ev, project_id, grouping, unit, from_ts, to_ts, rollup=False)

    def rows_of(m: str) -> stats.MetricRows:
        if rolled is not None:
            return _rolled_metric(rolled, m, kinds[m])
        return metric_rows(
            ev, project_id, grouping, m, unit, from_ts, to_ts, rollup=False, kind=kinds[m]
        )

    if variants is None:
        found = sorted(ops.traces, key=lambda v: (-ops.traces[v], v))[:MAX_GROUPS]
        if control is not None and control in found:
            found.remove(control)
            found.insert(0, control)
        variants = found
    variants = list(variants)
    if control is None:
        control = variants[0] if variants else ""
    if control not in variants:
        raise AbTestError(f"control {control!r} is not one of the groups found")
    primary_rows = rows_of(metric)
    primary = stats.analyse(primary_rows, variants, control, alpha)
    guards = [stats.analyse(rows_of(g), variants, control, alpha) for g in guardrails]
    op = stats.operational(ops, variants)
    srm = stats.srm(ops.units, weights) if weights else None
    needed = {}
    for v in variants:
        if v == control:
            continue
        ratio = (weights[v] / weights[control]) if weights and weights.get(control) else 1.0
        needed[v] = stats.sample_size(
            primary["kind"], primary["variants"][control], mde, alpha, ratio or 1.0
        )
    return {
        "variants": variants,
        "control": control,
        "alpha": alpha,
        "primary": primary,
        "guardrails": guards,
        "operational": op,
        "srm": srm,
        "minimumDetectableEffect": mde,
        "sampleSizeNeeded": needed,
        "cumulative": stats.cumulative(primary_rows, variants, control, alpha),
        "distribution": stats.distribution(primary_rows, variants),
        "verdict": stats.verdict(primary, control, op, srm, needed),
    }
