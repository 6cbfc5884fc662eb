"""Cost and token aggregates: per session, per user, per day and model.

They sum the columns the writer derives for every observation (``total_cost``,
``usage_input``, ``usage_output``, ``usage_total``; see ``lanterna.cost``), so no query
reads JSON. Observations count toward the trace they belong to: a user's or a day's
cost is that of its traces' observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .db import Conn

_JOIN = "JOIN observations o ON o.project_id = t.project_id AND o.trace_id = t.id"
_SUMS = (
    "COUNT(o.id) AS observations, COALESCE(SUM(o.usage_input), 0) AS input,"
    " COALESCE(SUM(o.usage_output), 0) AS output, COALESCE(SUM(o.usage_total), 0) AS total,"
    " COALESCE(SUM(o.total_cost), 0) AS cost"
)


def _usage(row: dict[str, Any] | None) -> dict[str, Any]:
    row = row or {}
    return {
        "countObservations": int(row.get("observations") or 0),
        "inputTokens": int(row.get("input") or 0),
        "outputTokens": int(row.get("output") or 0),
        "totalTokens": int(row.get("total") or 0),
        "totalCost": float(row.get("cost") or 0.0),
    }


def session_totals(conn: Conn, project_id: str, session_id: str) -> dict[str, Any]:
    """Cost and tokens of all the observations of a session's traces."""
    row = conn.one(
        f"SELECT {_SUMS} FROM traces t {_JOIN} WHERE t.project_id = ? AND t.session_id = ?",
        (project_id, session_id),
    )
    return _usage(row)


@dataclass(slots=True)
class TraceScope:
    """Which traces an aggregate covers (the filters of the metrics and users APIs)."""

    from_timestamp: datetime | None = None
    to_timestamp: datetime | None = None
    environments: Sequence[str] = ()
    user_id: str | None = None
    trace_name: str | None = None
    tags: Sequence[str] = field(default_factory=tuple)

    def where(self, conn: Conn, project_id: str) -> tuple[str, list[Any]]:
        """SQL condition on ``traces t`` and its parameters."""
        d = conn.dialect
        clauses = ["t.project_id = ?"]
        params: list[Any] = [project_id]
        if self.from_timestamp is not None:
            clauses.append("t.timestamp >= ?")
            params.append(d.ts(self.from_timestamp))
        if self.to_timestamp is not None:
            clauses.append("t.timestamp < ?")
            params.append(d.ts(self.to_timestamp))
        if self.environments:
            clauses.append(f"t.environment IN ({', '.join('?' * len(self.environments))})")
            params.extend(self.environments)
        if self.user_id is not None:
            clauses.append("t.user_id = ?")
            params.append(self.user_id)
        if self.trace_name is not None:
            clauses.append("t.name = ?")
            params.append(self.trace_name)
        for tag in self.tags:
            clauses.append(d.json_array_contains("t.tags"))
            params.append(tag)
        return " AND ".join(clauses), params


# --- users --------------------------------------------------------------------------------


def _user_json(conn: Conn, head: dict[str, Any], sums: dict[str, Any] | None) -> dict[str, Any]:
    d = conn.dialect
    return {
        "userId": head["user_id"],
        "firstSeen": d.ts_out(d.ts_parse(head["first_seen"])),
        "lastSeen": d.ts_out(d.ts_parse(head["last_seen"])),
        "countTraces": int(head["traces"]),
        **_usage(sums),
    }


def _user_sums(
    conn: Conn, where: str, params: list[Any], user_ids: list[str]
) -> dict[str, dict[str, Any]]:
    if not user_ids:
        return {}
    marks = ", ".join("?" * len(user_ids))
    rows = conn.all(
        f"SELECT t.user_id AS user_id, {_SUMS} FROM traces t {_JOIN}"
        f" WHERE {where} AND t.user_id IN ({marks}) GROUP BY t.user_id",
        [*params, *user_ids],
    )
    return {r["user_id"]: r for r in rows}


def list_users(
    conn: Conn, project_id: str, scope: TraceScope, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of users (the distinct ``userId`` of traces), most recently seen first."""
    where, params = scope.where(conn, project_id)
    where += " AND t.user_id IS NOT NULL"
    total = int(
        conn.scalar(f"SELECT COUNT(DISTINCT t.user_id) FROM traces t WHERE {where}", params)
    )
    if total <= offset:
        return [], total
    heads = conn.all(
        "SELECT t.user_id AS user_id, MIN(t.timestamp) AS first_seen,"
        f" MAX(t.timestamp) AS last_seen, COUNT(*) AS traces FROM traces t WHERE {where}"
        " GROUP BY t.user_id ORDER BY last_seen DESC, user_id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    sums = _user_sums(conn, where, params, [h["user_id"] for h in heads])
    return [_user_json(conn, h, sums.get(h["user_id"])) for h in heads], total


def get_user(conn: Conn, project_id: str, user_id: str, scope: TraceScope) -> dict[str, Any] | None:
    """One user's totals, or None when no trace in scope has that ``userId``."""
    where, params = scope.where(conn, project_id)
    where += " AND t.user_id = ?"
    params.append(user_id)
    head = conn.one(
        "SELECT t.user_id AS user_id, MIN(t.timestamp) AS first_seen,"
        f" MAX(t.timestamp) AS last_seen, COUNT(*) AS traces FROM traces t WHERE {where}"
        " GROUP BY t.user_id",
        params,
    )
    if head is None:
        return None
    sums = _user_sums(conn, where, params, [user_id])
    return _user_json(conn, head, sums.get(user_id))


# --- daily metrics ------------------------------------------------------------------------


def daily_metrics(
    conn: Conn, project_id: str, scope: TraceScope, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Per UTC day with traces (newest first): traces, observations, cost, usage by model.

    Langfuse's ``/api/public/metrics/daily`` shape. Days are those of the traces'
    timestamps; ``usage`` lists the observations that name a model.
    """
    d = conn.dialect
    day = d.utc_day("t.timestamp")
    where, params = scope.where(conn, project_id)
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
    sums = {
        r["day"]: r
        for r in conn.all(
            f"SELECT {day} AS day, {_SUMS} FROM traces t {_JOIN}"
            f" WHERE {where} AND {in_days} GROUP BY day",
            [*params, *days],
        )
    }
    by_model: dict[str, list[dict[str, Any]]] = {x: [] for x in days}
    for r in conn.all(
        f"SELECT {day} AS day, o.model AS model, COUNT(DISTINCT t.id) AS traces, {_SUMS}"
        f" FROM traces t {_JOIN} WHERE {where} AND {in_days} AND o.model IS NOT NULL"
        " GROUP BY day, o.model ORDER BY day, o.model",
        [*params, *days],
    ):
        usage = _usage(r)
        by_model[r["day"]].append(
            {
                "model": r["model"],
                "inputUsage": usage["inputTokens"],
                "outputUsage": usage["outputTokens"],
                "totalUsage": usage["totalTokens"],
                "countTraces": int(r["traces"]),
                "countObservations": usage["countObservations"],
                "totalCost": usage["totalCost"],
            }
        )
    out = []
    for h in heads:
        usage = _usage(sums.get(h["day"]))
        out.append(
            {
                "date": h["day"],
                "countTraces": int(h["traces"]),
                "countObservations": usage["countObservations"],
                "totalCost": usage["totalCost"],
                "usage": by_model[h["day"]],
            }
        )
    return out, total
