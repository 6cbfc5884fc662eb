"""Usage per session, per user and per day: observations, cost and tokens as
:mod:`lanterna.analytics.metrics` defines them, over the traces of a :class:`Scope`.

The daily metrics API (``GET /api/public/metrics/daily``), the users API and the
session and user views all read them here. Days come from the hourly rollups when the
scope allows (no user or tag filter): whole hours from them, the partial hours at the
ends of a range from raw rows, so the figures equal those of the raw rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..store import rollup_read
from ..store.db import Conn
from .metrics import JOIN, USAGE, Scope, Usage


def _usage_by(
    conn: Conn, key: str, where: str, params: list[Any], keys: list[Any]
) -> dict[Any, Usage]:
    """Usage per value of the SQL expression ``key`` (those in ``keys``) over the traces
    that ``where`` (on ``traces t``) selects."""
    if not keys:
        return {}
    rows = conn.all(
        f"SELECT {key} AS key, {USAGE} FROM traces t {JOIN}"
        f" WHERE {where} AND {key} IN ({', '.join('?' * len(keys))}) GROUP BY {key}",
        [*params, *keys],
    )
    return {r["key"]: Usage.of(r) for r in rows}


def session_totals(conn: Conn, project_id: str, session_id: str) -> Usage:
    """Cost and tokens of all the observations of a session's traces."""
    # The session's traces' observations (each observation is one trace's, so this
    # sums what joining the traces would).
    where, params = conn.dialect.event_rows(
        "observations",
        "start_time",
        "{a}project_id = ? AND {a}trace_id IN"
        " (SELECT id FROM {traces} WHERE project_id = ? AND session_id = ?)",
        [project_id, project_id, session_id],
        alias="o.",
    )
    row = conn.one(f"SELECT {USAGE} FROM observations o WHERE {where}", params)
    return Usage.of(row)


# --- users --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserTotals:
    """A user (a ``userId`` of traces): when first and last seen, traces and usage."""

    user_id: str
    first_seen: datetime
    last_seen: datetime
    traces: int
    usage: Usage


_USER_HEAD = (
    "SELECT t.user_id AS user_id, MIN(t.timestamp) AS first_seen,"
    " MAX(t.timestamp) AS last_seen, COUNT(*) AS traces FROM traces t"
)


def _users(
    conn: Conn,
    where: str,
    params: list[Any],
    heads: list[dict[str, Any]],
) -> list[UserTotals]:
    """The users of ``heads`` (rows of :data:`_USER_HEAD`) with their usage."""
    d = conn.dialect
    users = [h["user_id"] for h in heads]
    sums = _usage_by(conn, "t.user_id", where, params, users)
    out = []
    for h in heads:
        first, last = d.ts_parse(h["first_seen"]), d.ts_parse(h["last_seen"])
        assert first is not None and last is not None  # grouped rows have timestamps
        out.append(
            UserTotals(h["user_id"], first, last, int(h["traces"]), sums.get(h["user_id"], Usage()))
        )
    return out


#: What a user list can be ordered by -> the column of :data:`_USER_HEAD` (or of
#: :data:`USAGE`, for ``cost`` and ``tokens``).
USER_ORDERS = {
    "userId": "user_id",
    "traces": "traces",
    "tokens": "total",
    "cost": "cost",
    "firstSeen": "first_seen",
    "lastSeen": "last_seen",
}


#: :data:`USER_ORDERS` on ``user_totals``.
_TOTALS_ORDERS = {**USER_ORDERS, "tokens": "total_tokens"}


def _whole(scope: Scope) -> bool:
    """True when ``scope`` is a whole project (no time range, no filter): then the
    per-user totals kept in the write path (``store.user_totals``) answer."""
    return scope == Scope(scope.project_id)


def _totals_row(conn: Conn, r: dict[str, Any]) -> UserTotals:
    d = conn.dialect
    first, last = d.ts_parse(r["first_seen"]), d.ts_parse(r["last_seen"])
    assert first is not None and last is not None  # a user with traces has both
    usage = Usage(
        int(r["observations"]),
        float(r["cost"]),
        int(r["input_tokens"]),
        int(r["output_tokens"]),
        int(r["total_tokens"]),
    )
    return UserTotals(r["user_id"], first, last, int(r["traces"]), usage)


def _list_from_totals(
    conn: Conn, project_id: str, *, limit: int, offset: int, order: str, desc: bool
) -> tuple[list[UserTotals], int]:
    total = int(
        conn.scalar("SELECT COUNT(*) FROM user_totals WHERE project_id = ?", [project_id]) or 0
    )
    if total <= offset:
        return [], total
    column = _TOTALS_ORDERS.get(order, "last_seen")
    rows = conn.all(
        "SELECT * FROM user_totals WHERE project_id = ?"
        f" ORDER BY {column} {'DESC' if desc else 'ASC'}, user_id LIMIT ? OFFSET ?",
        [project_id, limit, offset],
    )
    return [_totals_row(conn, r) for r in rows], total


def list_users(
    conn: Conn,
    scope: Scope,
    *,
    limit: int,
    offset: int,
    order: str = "lastSeen",
    desc: bool = True,
) -> tuple[list[UserTotals], int]:
    """A page of users (the distinct ``userId`` of traces), ordered by ``order`` (a key
    of :data:`USER_ORDERS`; most recently seen first by default), ties by user id.

    A whole project's users come from ``user_totals`` (one row per user, kept by the
    write path on every backend); a scope with a time range or filter groups its
    traces."""
    if _whole(scope):
        return _list_from_totals(
            conn, scope.project_id, limit=limit, offset=offset, order=order, desc=desc
        )
    where, params = scope.where(conn)
    where += " AND t.user_id IS NOT NULL"
    total = int(
        conn.scalar(f"SELECT COUNT(DISTINCT t.user_id) FROM traces t WHERE {where}", params)
    )
    if total <= offset:
        return [], total
    column = USER_ORDERS.get(order, "last_seen")
    by = f"{column} {'DESC' if desc else 'ASC'}, user_id"
    if column in ("cost", "total"):
        # Usage sums decide the page: find its users first, then their heads.
        page = conn.all(
            f"SELECT t.user_id AS user_id, {USAGE} FROM traces t LEFT {JOIN}"
            f" WHERE {where} GROUP BY t.user_id ORDER BY {by} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        ids = [r["user_id"] for r in page]
        heads = conn.all(
            f"{_USER_HEAD} WHERE {where} AND t.user_id IN ({', '.join('?' * len(ids))})"
            " GROUP BY t.user_id",
            [*params, *ids],
        )
        heads.sort(key=lambda h: ids.index(h["user_id"]))
    else:
        heads = conn.all(
            f"{_USER_HEAD} WHERE {where} GROUP BY t.user_id ORDER BY {by} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
    return _users(conn, where, params, heads), total


def get_user(conn: Conn, scope: Scope, user_id: str) -> UserTotals | None:
    """One user's totals, or None when no trace in scope has that ``userId`` (a
    whole project's from ``user_totals``, as in :func:`list_users`)."""
    if _whole(scope):
        row = conn.one(
            "SELECT * FROM user_totals WHERE project_id = ? AND user_id = ?",
            [scope.project_id, user_id],
        )
        return None if row is None else _totals_row(conn, row)
    where, params = scope.where(conn)
    where += " AND t.user_id = ?"
    params.append(user_id)
    head = conn.one(f"{_USER_HEAD} WHERE {where} GROUP BY t.user_id", params)
    found = _users(conn, where, params, [head] if head else [])
    return found[0] if found else None


def _latest(conn: Conn, project_id: str, user_id: str, recent: int | None) -> list[dict[str, Any]]:
    """Ids and names of a user's traces: all of them, or their latest ``recent``."""
    sql = f"SELECT id, name FROM {conn.dialect.user_traces} WHERE project_id = ? AND user_id = ?"
    if recent is None:
        return conn.all(sql, [project_id, user_id])
    return conn.all(f"{sql} ORDER BY timestamp DESC LIMIT ?", [project_id, user_id, recent])


def user_summaries(
    conn: Conn, project_id: str, user_ids: list[str], *, recent: int | None = None
) -> tuple[dict[str, dict[str, float]], dict[str, list[tuple[int, str]]]]:
    """Per user, the average of each numeric/boolean score name over their traces'
    scores, and how many of their traces have each name (most first, ties by name).
    With ``recent``, over their latest ``recent`` traces only, so that a busy user
    costs no more than a new one (one read of the user's traces for both)."""
    scores: dict[str, dict[str, float]] = {}
    names: dict[str, list[tuple[int, str]]] = {}
    users = list(dict.fromkeys(user_ids))
    if conn.dialect.few_statements and len(users) > 1:
        return _summaries_at_once(conn, project_id, users, recent)
    for user in users:
        traces = _latest(conn, project_id, user, recent)
        counts: dict[str, int] = defaultdict(int)
        for t in traces:
            if t["name"] is not None:
                counts[t["name"]] += 1
        if counts:
            names[user] = _ranked(counts)
        sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        ids = [t["id"] for t in traces]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for r in conn.all(
                "SELECT name, SUM(value) AS total, COUNT(value) AS n FROM scores"
                f" WHERE project_id = ? AND trace_id IN ({', '.join('?' * len(chunk))})"
                " AND data_type IN ('NUMERIC', 'BOOLEAN') AND value IS NOT NULL GROUP BY name",
                [project_id, *chunk],
            ):
                v = sums[r["name"]]
                v[0] += float(r["total"])
                v[1] += int(r["n"])
        if sums:
            scores[user] = _averages(sums)
    return scores, names


def _ranked(counts: dict[str, int]) -> list[tuple[int, str]]:
    """``(count, name)`` by count, most first, ties by name."""
    return sorted(((n, name) for name, n in counts.items()), key=lambda x: (-x[0], x[1]))


def _averages(sums: dict[str, list[float]]) -> dict[str, float]:
    """Each name's ``[total, n]`` as its average, by name."""
    return {name: v[0] / v[1] for name, v in sorted(sums.items()) if v[1]}


def _summaries_at_once(
    conn: Conn, project_id: str, users: list[str], recent: int | None
) -> tuple[dict[str, dict[str, float]], dict[str, list[tuple[int, str]]]]:
    """:func:`user_summaries` in two statements for all ``users`` (where a statement
    costs much whatever it reads: ClickHouse): their latest traces by a window, then
    those traces' scores grouped by trace and name."""
    marks = ", ".join("?" * len(users))
    cut = "" if recent is None else " WHERE r.n <= ?"
    traces = conn.all(
        "SELECT r.user_id AS user_id, r.id AS id, r.name AS name FROM (SELECT user_id, id,"
        " name, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY timestamp DESC, id DESC) AS n"
        f" FROM {conn.dialect.user_traces} WHERE project_id = ? AND user_id IN ({marks}))"
        f" AS r{cut}",
        [project_id, *users, *([] if recent is None else [recent])],
    )
    owner: dict[str, str] = {}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for t in traces:
        owner[t["id"]] = t["user_id"]
        if t["name"] is not None:
            counts[t["user_id"]][t["name"]] += 1
    names = {user: _ranked(by_name) for user, by_name in counts.items()}
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    if owner:
        ids = list(owner)
        for r in conn.all(
            "SELECT trace_id, name, SUM(value) AS total, COUNT(value) AS n FROM scores"
            f" WHERE project_id = ? AND trace_id IN ({', '.join('?' * len(ids))})"
            " AND data_type IN ('NUMERIC', 'BOOLEAN') AND value IS NOT NULL"
            " GROUP BY trace_id, name",
            [project_id, *ids],
        ):
            v = sums[owner[r["trace_id"]]][r["name"]]
            v[0] += float(r["total"])
            v[1] += int(r["n"])
    scores = {user: _averages(by_name) for user, by_name in sums.items()}
    return scores, {u: names[u] for u in users if u in names}


# --- days ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """One model's observations on a day, and how many traces they belong to."""

    model: str
    traces: int
    usage: Usage


@dataclass(frozen=True, slots=True)
class DayUsage:
    """A UTC day with traces: their count, their observations' usage, usage by model."""

    date: str
    traces: int
    usage: Usage
    models: list[ModelUsage] = field(default_factory=list)


def daily_usage(
    conn: Conn, scope: Scope, *, limit: int, offset: int, rollups: bool = True
) -> tuple[list[DayUsage], int]:
    """Per UTC day with traces (newest first): traces, observations, cost, usage by model.

    Days are those of the traces' timestamps; ``models`` lists the observations that
    name a model. ``rollups``: read the whole hours from the hourly rollups (every
    backend keeps them; False reads every scope from raw rows).
    """
    if rollups and scope.rolled_up:
        found = sorted(_days_from_rollups(conn, scope).values(), key=lambda x: x.date)
        found = [x for x in reversed(found) if x.traces]
        return found[offset : offset + limit], len(found)
    return _daily_raw(conn, scope, limit=limit, offset=offset)


def _daily_raw(conn: Conn, scope: Scope, *, limit: int, offset: int) -> tuple[list[DayUsage], int]:
    """:func:`daily_usage` from raw rows (any scope)."""
    d = conn.dialect
    day = d.utc_day("t.timestamp")
    where, params = scope.where(conn)
    total = int(conn.scalar(f"SELECT COUNT(DISTINCT {day}) FROM traces t WHERE {where}", params))
    if total <= offset:
        return [], total
    heads = conn.all(
        f"SELECT {day} AS day, COUNT(*) AS traces FROM traces t WHERE {where}"
        " GROUP BY day ORDER BY day DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    days = [h["day"] for h in heads]
    in_days = f"{day} IN ({', '.join('?' * len(days))})"
    sums = _usage_by(conn, day, where, params, days)
    by_model: dict[str, list[ModelUsage]] = {x: [] for x in days}
    for r in conn.all(
        f"SELECT {day} AS day, o.model AS model, COUNT(DISTINCT t.id) AS traces, {USAGE}"
        f" FROM traces t {JOIN} WHERE {where} AND {in_days} AND o.model IS NOT NULL"
        " GROUP BY day, o.model ORDER BY day, o.model",
        [*params, *days],
    ):
        by_model[r["day"]].append(ModelUsage(r["model"], int(r["traces"]), Usage.of(r)))
    out = [
        DayUsage(h["day"], int(h["traces"]), sums.get(h["day"], Usage()), by_model[h["day"]])
        for h in heads
    ]
    return out, total


_EARLIEST = datetime(1, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(9999, 12, 31, tzinfo=timezone.utc)
_SUMS = ("observations", "cost", "input_tokens", "output_tokens", "total_tokens")


def _add(into: list[float], row: dict[str, Any], names: tuple[str, ...]) -> None:
    for i, name in enumerate(names):
        into[i] += row[name] or 0


def _days_from_rollups(conn: Conn, scope: Scope) -> dict[str, DayUsage]:
    """Every day with traces in the scope: whole hours from the rollups, partial ones
    (at a range's ends) from raw rows."""
    d = conn.dialect
    hours, partial = rollup_read.split_hours(scope.start or _EARLIEST, scope.end or _LATEST)
    partial = [(a, b) for a, b in partial if a != _EARLIEST and b != _LATEST]
    traces: dict[str, int] = defaultdict(int)
    usage: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0, 0])
    models: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0, 0, 0])
    raw_names = ("observations", "cost", "input", "output", "total")
    day = d.utc_day("t.timestamp")
    for start, end in partial:
        where, params = scope.where(conn, start, end)
        for r in conn.all(
            f"SELECT {day} AS day, COUNT(*) AS traces FROM traces t WHERE {where} GROUP BY day",
            params,
        ):
            traces[r["day"]] += int(r["traces"])
        for r in conn.all(
            f"SELECT {day} AS day, {USAGE} FROM traces t {JOIN} WHERE {where} GROUP BY day",
            params,
        ):
            _add(usage[r["day"]], r, raw_names)
        for r in conn.all(
            f"SELECT {day} AS day, o.model AS model, COUNT(DISTINCT t.id) AS traces, {USAGE}"
            f" FROM traces t {JOIN} WHERE {where} AND o.model IS NOT NULL GROUP BY day, o.model",
            params,
        ):
            _add(models[(r["day"], r["model"])], r, ("traces", *raw_names))
    if hours is not None:
        filters: dict[str, Any] = {}
        environments = scope.environment_filter()
        if environments is not None:
            filters["environment"] = environments
        if scope.trace_name is not None:
            filters["trace_name"] = [scope.trace_name]

        def read(table: str, measures: tuple[str, ...], *by: str) -> list[dict[str, Any]]:
            return rollup_read.read(
                conn,
                table,
                scope.project_id,
                *hours,
                measures=measures,
                group_by=("day", *by),
                filters=filters,
            )

        for r in read("rollup_trace_hours", ("traces",)):
            traces[r["day"]] += int(r["traces"])
        for r in read("rollup_observation_hours", _SUMS):
            _add(usage[r["day"]], r, _SUMS)
        for r in read("rollup_observation_hours", _SUMS, "model"):
            if r["model"] is not None:
                _add(models[(r["day"], r["model"])], {**r, "traces": 0}, ("traces", *_SUMS))
        for r in read("rollup_model_traces", ("traces",), "model"):
            if r["model"] is not None:  # the coarse level has a row for "no model"
                models[(r["day"], r["model"])][0] += int(r["traces"])
    by_day: dict[str, list[ModelUsage]] = defaultdict(list)
    for (at, model), v in sorted(models.items()):
        if v[1]:
            by_day[at].append(ModelUsage(model, int(v[0]), _usage(v[1:])))
    return {
        at: DayUsage(at, n, _usage(usage.get(at, [0, 0.0, 0, 0, 0])), by_day.get(at, []))
        for at, n in traces.items()
    }


def _usage(v: list[float]) -> Usage:
    return Usage(int(v[0]), float(v[1]), int(v[2]), int(v[3]), int(v[4]))
