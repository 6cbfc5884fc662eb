"""Re-pricing past observations after custom models change (``lanterna costs recompute``).

Observations are walked in start-time order in batches, each batch one transaction; every
one is recalculated from its stored record exactly as ingestion would now calculate it.
A provided cost always wins over a calculated one, so provided costs stay as they are;
only rows whose derived fields change are written, and the rollups move with them.

It may run while a server writes to the same database: each batch's transaction takes
the database's write lock exclusively (:meth:`~lanterna.store.db.Conn.begin`), so it
runs between the server's write transactions, never interleaved with one (an
interleaved ingest could be counted twice in the rollups). On SQLite that is
``BEGIN IMMEDIATE``; on PostgreSQL an advisory lock every write transaction shares.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from ..cost.calculate import DERIVED, Pricing, write
from ..timeutil import now
from . import rollup_write, user_totals
from .db import Conn, Database
from .dialect import Dialect
from .models import price_models
from .tables import COLUMNS, JSON, to_record

log = logging.getLogger(__name__)

_SET = ", ".join(f"{c} = ?" for c in DERIVED)


@dataclass
class Result:
    """What a recompute run did."""

    scanned: int = 0
    changed: int = 0
    failed: int = 0


def batch(
    conn: Conn,
    since: datetime,
    until: datetime | None,
    project_id: str | None,
    after: tuple[Any, str, str] | None,
    size: int,
    *,
    also: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The next ``size`` observations in ``(start_time, project_id, id)`` order after
    ``after`` (their project, id, stored columns and the columns ``also``)."""
    d = conn.dialect
    cols = ", ".join(["project_id", "id", *also, *COLUMNS["observation"]])
    where = ["start_time >= ?"]
    params: list[Any] = [d.ts(since)]
    if until is not None:
        where.append("start_time < ?")
        params.append(d.ts(until))
    if project_id is not None:
        where.append("project_id = ?")
        params.append(project_id)
    if after is not None:
        where.append("(start_time, project_id, id) > (?, ?, ?)")
        params.extend(after)
    return conn.all(
        f"SELECT {cols} FROM observations WHERE {' AND '.join(where)}"
        f" ORDER BY start_time, project_id, id LIMIT ?{d.for_update}",
        [*params, size],
    )


def _update(conn: Conn, project_id: str, obs_id: str, record: dict[str, Any], stamp: Any) -> None:
    d = conn.dialect
    values = [
        d.json(record.get(c)) if COLUMNS["observation"][c] is JSON else record.get(c)
        for c in DERIVED
    ]
    conn.run(
        f"UPDATE observations SET {_SET}, updated_at = ? WHERE project_id = ? AND id = ?",
        [*values, stamp, project_id, obs_id],
    )


def reprice(
    meta: Conn, dialect: Dialect, rows: list[dict[str, Any]], result: Result
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(row, record)`` of each of ``rows`` (observations read with ``dialect``) whose
    derived fields (usage, cost, model) change when calculated as ingestion would now,
    with the models of the metadata database ``meta`` read afresh (never a cache: the
    point is to apply the models as they are now); counts scanned and failed rows."""
    pricings: dict[str, Pricing] = {}
    out = []
    for row in rows:
        pid = row["project_id"]
        pricing = pricings.get(pid)
        if pricing is None:
            pricing = pricings[pid] = Pricing(partial(price_models, meta, pid))
        record = to_record(dialect, "observation", row)
        before = {k: record.get(k) for k in DERIVED}
        try:
            write(record, pricing.calculate(record))
        except Exception:
            log.exception("recompute failed for observation %r", row["id"])
            result.failed += 1
            continue
        if {k: record.get(k) for k in DERIVED} != before:
            out.append((row, record))
    result.scanned += len(rows)
    return out


def recompute(
    db: Database,
    *,
    since: datetime,
    until: datetime | None = None,
    project_id: str | None = None,
    batch_size: int = 500,
    progress: Callable[[Result], None] | None = None,
) -> Result:
    """Recalculate usage and cost of observations that started in ``[since, until)``."""
    result = Result()
    after: tuple[Any, str, str] | None = None
    conn = db.connect_writer()
    try:
        while True:
            with conn.transaction(exclusive=True):
                rows = batch(conn, since, until, project_id, after, batch_size)
                rollups_before = rollup_write.snapshot(conn, rows)  # costs feed the rollups
                stamp = conn.dialect.ts(now())
                for row, record in reprice(conn, conn.dialect, rows, result):
                    _update(conn, row["project_id"], row["id"], record, stamp)
                    result.changed += 1
                user_totals.settle(conn, rollups_before)
            if progress is not None:
                progress(result)
            if len(rows) < batch_size:
                return result
            last = rows[-1]
            after = (last["start_time"], last["project_id"], last["id"])
    finally:
        conn.raw.close()
