"""Rollups of A/B tests: what a test's readout needs, kept in the write transaction, so
that a readout over a million traces reads a few thousand rows and counts its units.

A trace takes part when its metadata ``experiment`` and ``variant`` are strings (what
the SDK's ``assign`` records); its *key* is (experiment, variant, UTC hour of the
trace's timestamp), the hour labelled as ``utc_hour()`` labels it on both backends.

- ``ab_members``: one row per taking-part trace: its key, user, session, and the cost,
  latency and error flag of its ``trace_totals`` row, i.e. exactly what it added (the
  before side of its next change, as ``trace_totals`` is for the hourly rollups).
- ``ab_rollup_hours`` per key: traces, traces without a user / session, and for cost,
  latency and the error flag how many traces have one, their sum and sum of squares
  (Welch's test and the mean's interval depend on these only, so they are exact).
- ``ab_rollup_units`` per experiment, unit kind (``user``, ``session``), variant and
  unit: its traces. The distinct units of a variant are its rows with traces plus its
  traces without a unit (each its own unit, as the raw readout counts them).
- ``ab_rollup_scores`` / ``ab_rollup_labels`` per experiment, score name, variant,
  hour and numeric value / string value: the scores of the test's traces with it (the
  exact values, so Mann-Whitney U, the distribution and the chi-square test equal the
  raw rows').

Every write that moves the hourly rollups (:func:`.user_totals.apply`, with the traces'
``trace_totals`` rows before and after it, and the scores it wrote or deleted) calls
:func:`apply`. Traces outside any test cost a dictionary lookup each (the fresh ones:
their metadata is at hand) or an ``instr`` on their metadata text in the statement
that reads them anyway, and a batch that updates stored traces or writes scores one
primary-key lookup in ``ab_members`` (usually empty for them). Sums of rows that lose
their last value are reset to zero, so float residue never outlives the data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .db import Conn
from .dialect import Dialect

if TYPE_CHECKING:
    from .rollups import Contribution

#: (experiment, variant, hour): where a trace and its scores count
Key = tuple[str, str, str]
#: an ``ab_members`` row after project and trace: key, user, session, cost, latency,
#: error
Member = tuple[str, str, str, str | None, str | None, float | None, float | None, int | None]
#: a score as the write path sees it: id, trace id, name, value, string value
ScoreRow = tuple[str, str | None, str, float | None, str | None]

_CHUNK = 500
_MEMBER_COLS = (
    "experiment", "variant", "hour", "user_id", "session_id", "cost", "latency", "error"
)  # fmt: skip
_HOUR_VALUES = ("traces", "no_user", "no_session", "costed", "cost_sum", "cost_squares",
                "timed", "latency_sum", "latency_squares", "flagged", "errors")  # fmt: skip
#: each summed float column and the count that says whether it holds anything
_RESET = {
    "cost_sum": "costed",
    "cost_squares": "costed",
    "latency_sum": "timed",
    "latency_squares": "timed",
}


def member_of(trace: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (experiment, variant) a trace record or row names; None when it takes no
    part. Rows read by :func:`member_columns` carry ``ab_experiment``/``ab_variant``;
    records their ``metadata``."""
    if "ab_experiment" in trace:
        experiment, variant = trace["ab_experiment"], trace["ab_variant"]
    else:
        metadata = trace.get("metadata")
        if type(metadata) is not dict or "experiment" not in metadata:
            return None
        experiment, variant = metadata["experiment"], metadata.get("variant")
    if type(experiment) is str and type(variant) is str:
        return experiment, variant
    return None


def member_sql(dialect: Dialect, column: str = "metadata") -> tuple[str, str]:
    """SQL for the experiment and the variant a trace's JSON ``column`` names (both NULL
    unless both are strings): the one definition the raw readout shares."""
    if dialect.name == "postgresql":
        both = (
            f"jsonb_typeof({column} -> 'experiment') = 'string'"
            f" AND jsonb_typeof({column} -> 'variant') = 'string'"
        )
        return (
            f"(CASE WHEN {both} THEN {column} ->> 'experiment' END)",
            f"(CASE WHEN {both} THEN {column} ->> 'variant' END)",
        )
    if dialect.name == "clickhouse":  # metadata as JSON text
        text = f"ifNull({column}, '{{}}')"
        both = (
            f"JSONType({text}, 'experiment') = 'String' AND JSONType({text}, 'variant') = 'String'"
        )
        return (
            f"(CASE WHEN {both} THEN JSONExtractString({text}, 'experiment') END)",
            f"(CASE WHEN {both} THEN JSONExtractString({text}, 'variant') END)",
        )
    both = (
        f"instr({column}, '\"experiment\"') > 0"  # cheap: most metadata has no test
        f" AND json_type({column}, '$.experiment') = 'text'"
        f" AND json_type({column}, '$.variant') = 'text'"
    )
    return (
        f"(CASE WHEN {both} THEN json_extract({column}, '$.experiment') END)",
        f"(CASE WHEN {both} THEN json_extract({column}, '$.variant') END)",
    )


def member_columns(dialect: Dialect, column: str = "metadata") -> str:
    """Select-list SQL for ``ab_experiment`` and ``ab_variant`` (:func:`member_sql`)."""
    experiment, variant = member_sql(dialect, column)
    return f"{experiment} AS ab_experiment, {variant} AS ab_variant"


def score_row(score: Mapping[str, Any]) -> ScoreRow:
    """What a score record or row (with ``id``) adds to the A/B rollups."""
    value = score.get("value")
    return (
        score["id"],
        score.get("trace_id"),
        score["name"],
        None if value is None else float(value),
        score.get("string_value"),
    )


def _members(conn: Conn, project_id: str, trace_ids: Iterable[str]) -> dict[str, Member]:
    out: dict[str, Member] = {}
    ordered = sorted(set(trace_ids))
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        for r in conn.all(
            f"SELECT trace_id, {', '.join(_MEMBER_COLS)} FROM ab_members"
            f" WHERE project_id = ? AND trace_id IN ({', '.join('?' * len(chunk))})",
            [project_id, *chunk],
        ):
            out[r["trace_id"]] = tuple(r[c] for c in _MEMBER_COLS)
    return out


class _Deltas:
    """The differences a write makes to the four rollup tables."""

    def __init__(self) -> None:
        self.hours: dict[Key, list[float]] = defaultdict(lambda: [0] * len(_HOUR_VALUES))
        self.units: dict[tuple[str, str, str, str], int] = defaultdict(int)
        self.scores: dict[tuple[str, str, str, str, float], int] = defaultdict(int)
        self.labels: dict[tuple[str, str, str, str, str], int] = defaultdict(int)

    def trace(self, m: Member, sign: int) -> None:
        experiment, variant, hour, user, session, cost, latency, error = m
        h = self.hours[(experiment, variant, hour)]
        h[0] += sign
        h[1] += sign * (user is None)
        h[2] += sign * (session is None)
        if cost is not None:
            h[3] += sign
            h[4] += sign * cost
            h[5] += sign * cost * cost
        if latency is not None:
            h[6] += sign
            h[7] += sign * latency
            h[8] += sign * latency * latency
        if error is not None:
            h[9] += sign
            h[10] += sign * error
        if user is not None:
            self.units[(experiment, "user", variant, user)] += sign
        if session is not None:
            self.units[(experiment, "session", variant, session)] += sign

    def score(self, key: Key, s: ScoreRow, sign: int) -> None:
        experiment, variant, hour = key
        _, _, name, value, label = s
        if value is not None:
            self.scores[(experiment, name, variant, hour, value)] += sign
        if label is not None:
            self.labels[(experiment, name, variant, hour, label)] += sign


def apply(conn: Conn, project_id: str, plus: Contribution, minus: Contribution | None) -> None:
    """Move the A/B rollups by what a write changed: ``plus`` and ``minus`` are the
    after and before :class:`~.rollups.Contribution` of the traces it touched (their
    ``trace_totals`` rows and ``ab`` keys) and of the scores it wrote or deleted
    (``score_rows``); called before ``trace_totals`` and ``ab_members`` move."""
    old_totals = minus.totals if minus is not None else {}
    old_scores = minus.score_rows if minus is not None else []
    # Only traces stored before the write can have been members: the fresh ones (in
    # ``plus`` alone) cost nothing unless their metadata names a test.
    asked = set(old_totals)
    asked.update(s[1] for s in old_scores if s[1] is not None)
    asked.update(s[1] for s in plus.score_rows if s[1] is not None)
    if not asked and not plus.ab:
        return
    before = _members(conn, project_id, asked) if asked else {}
    after: dict[str, Member | None] = {}
    for trace_id in set(plus.totals) | set(old_totals):
        row = plus.totals.get(trace_id)
        key = plus.ab.get(trace_id)
        if row is None or key is None:
            after[trace_id] = None
        else:  # trace_totals: timestamp, env, name, user, session, n, cost, tokens, latency, error
            after[trace_id] = (*key, row[3], row[4], row[6], row[8], row[9])
    d = _Deltas()
    moved: dict[str, tuple[Key | None, Key | None]] = {}
    stored: list[list[Any]] = []
    gone: list[str] = []
    for trace_id, new in after.items():
        old = before.get(trace_id)
        if old == new:
            continue
        if old is not None:
            d.trace(old, -1)
        if new is not None:
            d.trace(new, 1)
            stored.append([project_id, trace_id, *new])
        else:
            gone.append(trace_id)
        old_key = None if old is None else old[:3]
        new_key = None if new is None else new[:3]
        if old_key != new_key:
            moved[trace_id] = (old_key, new_key)

    def key_before(trace_id: str | None) -> Key | None:
        m = before.get(trace_id) if trace_id is not None else None
        return None if m is None else m[:3]

    def key_after(trace_id: str | None) -> Key | None:
        if trace_id is not None and trace_id in after:
            m = after[trace_id]
            return None if m is None else m[:3]
        return key_before(trace_id)

    written = set()
    for s in old_scores:
        written.add(s[0])
        if (k := key_before(s[1])) is not None:
            d.score(k, s, -1)
    for s in plus.score_rows:
        written.add(s[0])
        if (k := key_after(s[1])) is not None:
            d.score(k, s, 1)
    if moved:  # their other scores move with them
        for s in _scores_of(conn, project_id, moved):
            if s[0] in written:
                continue
            old_key, new_key = moved[s[1]]  # type: ignore[index]
            if old_key is not None:
                d.score(old_key, s, -1)
            if new_key is not None:
                d.score(new_key, s, 1)
    _write(conn, project_id, d, stored, gone)


def _scores_of(conn: Conn, project_id: str, trace_ids: Iterable[str]) -> list[ScoreRow]:
    out = []
    ordered = sorted(set(trace_ids))
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        out += [
            score_row(r)
            for r in conn.all(
                "SELECT id, trace_id, name, value, string_value FROM scores"
                f" WHERE project_id = ? AND trace_id IN ({', '.join('?' * len(chunk))})",
                [project_id, *chunk],
            )
        ]
    return out


def _upsert(table: str, keys: Sequence[str], values: Sequence[str]) -> tuple[str, str]:
    head = f"INSERT INTO {table} (project_id, {', '.join(keys)}, {', '.join(values)})"
    sets = []
    for v in values:
        count = _RESET.get(v)
        add = f"{table}.{v} + excluded.{v}"
        if count is not None:  # the last value gone: exactly zero, no float residue
            add = f"CASE WHEN {table}.{count} + excluded.{count} = 0 THEN 0 ELSE {add} END"
        sets.append(f"{v} = {add}")
    return head, f" ON CONFLICT (project_id, {', '.join(keys)}) DO UPDATE SET {', '.join(sets)}"


_HOURS = _upsert("ab_rollup_hours", ("experiment", "variant", "hour"), _HOUR_VALUES)
_UNITS = _upsert("ab_rollup_units", ("experiment", "kind", "variant", "unit"), ("traces",))
_SCORES = _upsert(
    "ab_rollup_scores", ("experiment", "name", "variant", "hour", "value"), ("scores",)
)
_LABELS = _upsert(
    "ab_rollup_labels", ("experiment", "name", "variant", "hour", "label"), ("scores",)
)
_MEMBERS = (
    f"INSERT INTO ab_members (project_id, trace_id, {', '.join(_MEMBER_COLS)})",
    " ON CONFLICT (project_id, trace_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _MEMBER_COLS),
)


def _write(
    conn: Conn, project_id: str, d: _Deltas, stored: list[list[Any]], gone: list[str]
) -> None:
    hours = [[project_id, *k, *v] for k, v in sorted(d.hours.items()) if any(v)]
    conn.insert(_HOURS[0], hours, _HOURS[1])
    units = [[project_id, *k, n] for k, n in sorted(d.units.items()) if n]
    conn.insert(_UNITS[0], units, _UNITS[1])
    conn.insert(_SCORES[0], [[project_id, *k, n] for k, n in sorted(d.scores.items()) if n],
                _SCORES[1])  # fmt: skip
    conn.insert(_LABELS[0], [[project_id, *k, n] for k, n in sorted(d.labels.items()) if n],
                _LABELS[1])  # fmt: skip
    emptied = [k for k, n in d.units.items() if n < 0]
    for k in emptied:  # a unit without traces no longer counts (read filters, too)
        conn.run(
            "DELETE FROM ab_rollup_units WHERE project_id = ? AND experiment = ? AND kind = ?"
            " AND variant = ? AND unit = ? AND traces <= 0",
            [project_id, *k],
        )
    stored.sort(key=lambda r: r[1])
    conn.insert(_MEMBERS[0], stored, _MEMBERS[1])
    gone.sort()
    for start in range(0, len(gone), _CHUNK):
        chunk = gone[start : start + _CHUNK]
        conn.run(
            f"DELETE FROM ab_members WHERE project_id = ? AND trace_id IN"
            f" ({', '.join('?' * len(chunk))})",
            [project_id, *chunk],
        )


# --- reads -------------------------------------------------------------------------


def hours(conn: Conn, project_id: str, experiment: str) -> list[dict[str, Any]]:
    """The test's ``ab_rollup_hours`` rows with traces (variant, hour and the sums)."""
    return conn.all(
        f"SELECT variant, hour, {', '.join(_HOUR_VALUES)} FROM ab_rollup_hours"
        " WHERE project_id = ? AND experiment = ? AND traces > 0",
        [project_id, experiment],
    )


def units(conn: Conn, project_id: str, experiment: str, kind: str) -> dict[str, int]:
    """Per variant, its units of ``kind`` (``user``, ``session``) with traces (those
    without a unit are counted from :func:`hours`)."""
    rows = conn.all(
        "SELECT variant, COUNT(*) AS n FROM ab_rollup_units WHERE project_id = ?"
        " AND experiment = ? AND kind = ? AND traces > 0 GROUP BY variant",
        [project_id, experiment, kind],
    )
    return {r["variant"]: int(r["n"]) for r in rows}


def score_values(
    conn: Conn, project_id: str, experiment: str, name: str, labels: bool = False
) -> list[tuple[str, str, Any, int]]:
    """The test's scores named ``name``: (variant, hour, value, scores) per numeric
    value, or with ``labels`` per string value."""
    table, col = ("ab_rollup_labels", "label") if labels else ("ab_rollup_scores", "value")
    rows = conn.all(
        f"SELECT variant, hour, {col} AS v, scores FROM {table}"
        " WHERE project_id = ? AND experiment = ? AND name = ? AND scores > 0",
        [project_id, experiment, name],
    )
    return [(r["variant"], r["hour"], r["v"], int(r["scores"])) for r in rows]


# --- backfill ----------------------------------------------------------------------


def backfill(conn: Conn) -> None:
    """Build the tables from the stored traces, their ``trace_totals`` rows and their
    scores (the migration that adds them; the tables must be empty). In SQL: one pass
    over the traces, then grouped passes over ``ab_members``."""
    d = conn.dialect
    conn.run(
        f"INSERT INTO ab_members (project_id, trace_id, {', '.join(_MEMBER_COLS)})"
        " SELECT p.project_id, p.id, p.ab_experiment, p.ab_variant, p.hour, p.user_id,"
        " p.session_id, tt.cost, tt.latency, tt.error FROM (SELECT t.project_id, t.id,"
        f" {d.utc_hour('t.timestamp')} AS hour, t.user_id, t.session_id,"
        f" {member_columns(d, 't.metadata')} FROM traces t) p"
        " LEFT JOIN trace_totals tt ON tt.project_id = p.project_id AND tt.trace_id = p.id"
        " WHERE p.ab_experiment IS NOT NULL"
    )
    one = "CASE WHEN {} IS NULL THEN 1 ELSE 0 END"
    conn.run(
        f"INSERT INTO ab_rollup_hours (project_id, experiment, variant, hour,"
        f" {', '.join(_HOUR_VALUES)}) SELECT project_id, experiment, variant, hour, COUNT(*),"
        f" SUM({one.format('user_id')}), SUM({one.format('session_id')}), COUNT(cost),"
        " COALESCE(SUM(cost), 0), COALESCE(SUM(cost * cost), 0), COUNT(latency),"
        " COALESCE(SUM(latency), 0), COALESCE(SUM(latency * latency), 0), COUNT(error),"
        " COALESCE(SUM(error), 0) FROM ab_members"
        " GROUP BY project_id, experiment, variant, hour"
    )
    for kind, col in (("user", "user_id"), ("session", "session_id")):
        conn.run(
            "INSERT INTO ab_rollup_units (project_id, experiment, kind, variant, unit, traces)"
            f" SELECT project_id, experiment, '{kind}', variant, {col}, COUNT(*) FROM ab_members"
            f" WHERE {col} IS NOT NULL GROUP BY project_id, experiment, variant, {col}"
        )
    for table, col, source in (
        ("ab_rollup_scores", "value", "s.value"),
        ("ab_rollup_labels", "label", "s.string_value"),
    ):
        conn.run(
            f"INSERT INTO {table} (project_id, experiment, name, variant, hour, {col}, scores)"
            f" SELECT m.project_id, m.experiment, s.name, m.variant, m.hour, {source}, COUNT(*)"
            " FROM ab_members m JOIN scores s ON s.project_id = m.project_id"
            f" AND s.trace_id = m.trace_id WHERE {source} IS NOT NULL"
            f" GROUP BY m.project_id, m.experiment, s.name, m.variant, m.hour, {source}"
        )
