"""Observation queries: one by id, filtered pages (v1) and cursor pages (v2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..schema import OBSERVATION
from . import event_rows, paging, row_counts
from .db import Conn
from .dialect import Dialect
from .filters import (
    Column,
    Compiled,
    Condition,
    compile_conditions,
    field_columns,
    merge_conditions,
)

#: The join a filter or a v2 field group may need: the observation's trace.
TRACE_JOIN = "LEFT JOIN traces t ON t.project_id = o.project_id AND t.id = o.trace_id"


_OWN_COLUMNS = field_columns(OBSERVATION)


def observation_columns(d: Dialect) -> dict[str, Column]:
    """The columns an observation list can be filtered on (the ``filter`` whitelist): the
    field table's, plus computed ones and the trace's."""
    return {
        **_OWN_COLUMNS,
        "latency": Column(
            f"({d.epoch_seconds('o.end_time')} - {d.epoch_seconds('o.start_time')})", "number"
        ),
        "timeToFirstToken": Column(
            f"({d.epoch_seconds('o.completion_start_time')} - {d.epoch_seconds('o.start_time')})",
            "number",
        ),
        "isRootObservation": Column("(o.parent_observation_id IS NULL)", "boolean"),
        "userId": Column("t.user_id", "string", join="trace"),
        "sessionId": Column("t.session_id", "string", join="trace"),
        "traceName": Column("t.name", "string", join="trace"),
        "traceTags": Column("t.tags", "array", join="trace"),
        "tags": Column("t.tags", "array", join="trace"),
    }


@dataclass(slots=True)
class ObservationQuery:
    """What an observation list asks for: simple parameters and ``filter`` conditions."""

    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    type: str | None = None
    trace_id: str | None = None
    level: str | None = None
    parent_observation_id: str | None = None
    is_root: bool | None = None
    environments: Sequence[str] = ()
    from_start_time: datetime | None = None
    to_start_time: datetime | None = None
    version: str | None = None
    filters: Sequence[Condition] = ()

    def conditions(self) -> list[Condition]:
        """Simple parameters as conditions, merged with (and overridden by) ``filters``."""
        simple: list[Condition] = []
        for column, value in (
            ("name", self.name),
            ("userId", self.user_id),
            ("sessionId", self.session_id),
            ("type", self.type),
            ("traceId", self.trace_id),
            ("level", self.level),
            ("version", self.version),
        ):
            if value is not None:
                simple.append(Condition("string", column, "=", value))
        if self.parent_observation_id == "":
            simple.append(Condition("null", "parentObservationId", "is null"))
        elif self.parent_observation_id is not None:
            simple.append(
                Condition("string", "parentObservationId", "=", self.parent_observation_id)
            )
        if self.is_root is not None:
            simple.append(Condition("boolean", "isRootObservation", "=", self.is_root))
        if self.environments:
            simple.append(
                Condition("stringOptions", "environment", "any of", list(self.environments))
            )
        if self.from_start_time is not None:
            simple.append(Condition("datetime", "startTime", ">=", self.from_start_time))
        if self.to_start_time is not None:
            simple.append(Condition("datetime", "startTime", "<", self.to_start_time))
        return merge_conditions(simple, list(self.filters))


def _compile(conn: Conn, query: ObservationQuery) -> Compiled:
    return compile_conditions(
        query.conditions(),
        observation_columns(conn.dialect),
        conn.dialect,
        resource="observations",
    )


def get_observation(conn: Conn, project_id: str, observation_id: str) -> dict[str, Any] | None:
    """One observation row, or None."""
    return conn.one(
        "SELECT * FROM observations WHERE project_id = ? AND id = ?", (project_id, observation_id)
    )


def list_observations(
    conn: Conn, project_id: str, query: ObservationQuery, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page (newest start first) of matching observations, and the total count.

    Raises :class:`~lanterna.store.filters.FilterError` for a bad filter.
    """
    compiled = _compile(conn, query)
    join = TRACE_JOIN if "trace" in compiled.joins else ""
    where = f"o.project_id = ? AND {compiled.where()}"
    params = [project_id, *compiled.params]
    if compiled.clauses:
        total = int(
            conn.scalar(f"SELECT COUNT(*) FROM observations o {join} WHERE {where}", params)
        )
    else:  # every observation of the project: the count kept in the write path
        total = row_counts.count(conn, project_id, "observation")
    if total <= offset:
        return [], total
    rows = paging.page(
        conn,
        f"observations o {join}",
        columns="o.*",
        where=where,
        params=params,
        order="o.start_time DESC, o.id DESC",
        limit=limit,
        offset=offset,
        key="o.start_time",
    )
    return rows, total


#: Every column but the lazy ones (input, output, metadata: read only when asked for).
_V2_BASE = ", ".join(f"o.{column}" for column in OBSERVATION.eager_columns)
#: The trace's columns a v2 observation carries (as ``trace_<column>``).
_V2_TRACE_COLUMNS = ("name", "tags", "release", "user_id", "session_id", "public", "bookmarked")
_V2_TRACE = ", ".join(f"t.{c} AS trace_{c}" for c in _V2_TRACE_COLUMNS)


def observations_after(
    conn: Conn,
    project_id: str,
    query: ObservationQuery,
    *,
    limit: int,
    after: tuple[datetime, str] | None,
    with_trace: bool,
    with_io: bool,
    with_metadata: bool,
) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` matching observations after the cursor, and whether more exist.

    Order: ``start_time`` descending, then ``id`` descending (a total order, so a walk
    with the cursor sees every row exactly once). ``after`` is the last row's
    ``(start_time, id)`` from the previous page. ``with_trace`` adds the trace's
    columns (``trace_*``); IO and metadata are read only when asked for.
    Where a join's right side is built from the whole traces table
    (``Dialect.whole_right_joins``: ClickHouse) and no filter needs the trace, the page
    is read first and then its traces by id.
    """
    compiled = _compile(conn, query)
    d = conn.dialect
    where = [f"o.project_id = ? AND {compiled.where()}"]
    params: list[Any] = [project_id, *compiled.params]
    if after is not None:
        # Written so the start_time bound alone can drive the index range scan.
        where.append("o.start_time <= ? AND (o.start_time < ? OR o.id < ?)")
        params += [d.ts(after[0]), d.ts(after[0]), after[1]]
    select = [
        _V2_BASE,
        "o.input, o.output" if with_io else "NULL AS input, NULL AS output",
        "o.metadata" if with_metadata else "NULL AS metadata",
    ]
    later = with_trace and d.whole_right_joins and "trace" not in compiled.joins
    join = ""
    if (with_trace and not later) or "trace" in compiled.joins:
        join = TRACE_JOIN
    if with_trace and not later:
        select.append(_V2_TRACE)
    rows = conn.all(
        f"SELECT {', '.join(select)} FROM observations o {join} WHERE {' AND '.join(where)}"
        " ORDER BY o.start_time DESC, o.id DESC LIMIT ?",
        [*params, limit + 1],
    )
    if later:
        event_rows.with_trace_columns(conn, project_id, rows, _V2_TRACE_COLUMNS)
    return rows[:limit], len(rows) > limit
