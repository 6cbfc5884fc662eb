"""Per-user totals: one row per project and ``userId`` of traces (first and last seen,
traces, observations, cost, input/output/total tokens), so that the users list, the
users API and a user's page read one narrow row per user instead of grouping the
user's traces and observations.

Kept in the write transaction from the same before/after :class:`~.rollups.Contribution`
the hourly rollups move by (:func:`add`, called with every :func:`.rollup_write.add`
through :func:`apply`): the sums move by the user-hour values summed per user; the
first and last seen only widen with a trace that is new to a user, and a user who
lost a trace (deleted, moved to another user, or re-timed) has them read again from
``traces_user`` (two index seeks). So a batch costs one upsert statement for its
users, and the table always equals the raw rows.

The table is small (one row per user) and has no index besides its key: a list
ordered by last seen or cost sorts the project's users (a top-N sort over a few
thousand narrow rows), which costs less than an index's upkeep on every write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from . import ab_rollups, rollup_write, rollups, session_totals
from .db import Conn

#: The summed columns, in the order of a delta.
SUMS = ("traces", "observations", "cost", "input_tokens", "output_tokens", "total_tokens")
#: Where each of :data:`SUMS` sits in a ``rollup_user_hours`` value list of a
#: :class:`~.rollups.Contribution` (traces, observed traces, errors, observations,
#: cost, input, output, total tokens).
_FROM_USER_HOUR = (0, 3, 4, 5, 6, 7)
_COLUMNS = ("first_seen", "last_seen", *SUMS)
_HEAD = f"INSERT INTO user_totals (project_id, user_id, {', '.join(_COLUMNS)})"
_TAIL = (
    " ON CONFLICT (project_id, user_id) DO UPDATE SET"
    " first_seen = CASE WHEN excluded.first_seen IS NULL"
    " OR excluded.first_seen > user_totals.first_seen THEN user_totals.first_seen"
    " ELSE excluded.first_seen END,"
    " last_seen = CASE WHEN excluded.last_seen IS NULL"
    " OR excluded.last_seen < user_totals.last_seen THEN user_totals.last_seen"
    " ELSE excluded.last_seen END, "
    + ", ".join(f"{c} = user_totals.{c} + excluded.{c}" for c in SUMS)
)


def _sums(contribution: rollups.Contribution, sign: int, into: dict[str, list[float]]) -> None:
    for (_hour, _env, user), v in contribution.users.items():
        d = into[user]
        for i, j in enumerate(_FROM_USER_HOUR):
            d[i] += sign * v[j]


def add(
    conn: Conn,
    project_id: str,
    plus: rollups.Contribution,
    minus: rollups.Contribution | None = None,
) -> None:
    """Move the project's user totals by ``plus - minus`` (what a write made of the
    traces it touched: see :func:`.rollup_write.add`)."""
    deltas: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0, 0, 0])
    _sums(plus, 1, deltas)
    old = minus.totals if minus is not None else {}
    if minus is not None:
        _sums(minus, -1, deltas)
    # trace_totals rows: (timestamp, environment, name, user, session, ...)
    seen: dict[str, list[Any]] = {}
    recheck: set[str] = set()
    for trace_id, row in plus.totals.items():
        user, stamp = row[3], row[0]
        before = old.get(trace_id)
        if before is not None:
            if before[3] == user and before[0] == stamp:
                continue
            if before[3] is not None:
                recheck.add(before[3])
        if user is None:
            continue
        span = seen.get(user)
        if span is None:
            seen[user] = [stamp, stamp]
        else:
            span[0] = min(span[0], stamp)
            span[1] = max(span[1], stamp)
    for trace_id, before in old.items():
        if trace_id not in plus.totals and before[3] is not None:
            recheck.add(before[3])
    rows = []
    for user in sorted(set(deltas) | set(seen)):
        d = deltas.get(user) or [0, 0, 0.0, 0, 0, 0]
        span = seen.get(user)
        if span is None and not any(d):
            continue
        first, last = span if span is not None else (None, None)
        rows.append([project_id, user, first, last, *d])
    if rows:
        conn.insert(_HEAD, rows, _TAIL)
    if recheck:
        _recheck(conn, project_id, sorted(recheck))


def _recheck(conn: Conn, project_id: str, users: list[str]) -> None:
    """Users who lost a trace: drop those left without traces, and read the first and
    last seen of the others from their traces (``traces_user``: two seeks each)."""
    session_totals.drop_emptied(conn, "user_totals", "user_id", project_id, users)
    for user in users:
        conn.run(
            "UPDATE user_totals SET"
            " first_seen = (SELECT MIN(timestamp) FROM traces"
            " WHERE project_id = ? AND user_id = ?),"
            " last_seen = (SELECT MAX(timestamp) FROM traces"
            " WHERE project_id = ? AND user_id = ?)"
            " WHERE project_id = ? AND user_id = ?",
            [project_id, user] * 3,
        )


def apply(
    conn: Conn,
    project_id: str,
    plus: rollups.Contribution,
    minus: rollups.Contribution | None = None,
) -> None:
    """:func:`.rollup_write.add` and :func:`add`: every write that moves the rollups moves
    the user totals (and the session totals, :func:`.session_totals.add`, and the A/B
    rollups, :func:`.ab_rollups.apply`) by the same difference."""
    rollup_write.add(conn, project_id, plus, minus)
    add(conn, project_id, plus, minus)
    session_totals.add(conn, project_id, plus, minus)
    ab_rollups.apply(conn, project_id, plus, minus)


def maintained(conn: Conn, project_id: str, trace_ids: set[str], work: Any) -> Any:
    """Run ``work()`` (a
    write touching only ``trace_ids`` and their observations) and move both by the
    difference it made (the rollups, the user totals, see :func:`apply`)."""
    if not trace_ids:
        return work()
    before = rollups.recorded(conn, project_id, trace_ids)
    result = work()
    apply(conn, project_id, rollups.contribution(conn, project_id, trace_ids), before)
    return result


def settle(conn: Conn, before: rollup_write.Snapshot) -> None:
    """After a write that :func:`.rollup_write.snapshot` saw the traces of: move the
    rollups and the user totals by what it changed."""
    for project_id, ids, old in before:
        apply(conn, project_id, rollups.contribution(conn, project_id, ids), old)


def backfill(conn: Conn, project_ids: Iterable[str] | None = None) -> None:
    """Build the table from the stored traces and observations (the migration that
    adds it). Two grouped passes: the traces per user, then their observations."""
    where = ""
    params: list[Any] = []
    if project_ids is not None:
        ids = list(project_ids)
        where = f" AND t.project_id IN ({', '.join('?' * len(ids))})"
        params = ids
    conn.run(
        f"INSERT INTO user_totals (project_id, user_id, {', '.join(_COLUMNS)})"
        " SELECT t.project_id, t.user_id, MIN(t.timestamp), MAX(t.timestamp), COUNT(*),"
        " 0, 0, 0, 0, 0 FROM traces t"
        f" WHERE t.user_id IS NOT NULL{where} GROUP BY t.project_id, t.user_id",
        params,
    )
    for r in conn.all(
        "SELECT t.project_id AS project_id, t.user_id AS user_id, COUNT(o.id) AS n,"
        " COALESCE(SUM(o.total_cost), 0) AS cost, COALESCE(SUM(o.usage_input), 0) AS i,"
        " COALESCE(SUM(o.usage_output), 0) AS o, COALESCE(SUM(o.usage_total), 0) AS total"
        " FROM traces t JOIN observations o ON o.project_id = t.project_id"
        f" AND o.trace_id = t.id WHERE t.user_id IS NOT NULL{where}"
        " GROUP BY t.project_id, t.user_id",
        params,
    ):
        conn.run(
            "UPDATE user_totals SET observations = ?, cost = ?, input_tokens = ?,"
            " output_tokens = ?, total_tokens = ? WHERE project_id = ? AND user_id = ?",
            [r["n"], r["cost"], r["i"], r["o"], r["total"], r["project_id"], r["user_id"]],
        )
