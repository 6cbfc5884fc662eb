"""``lanterna costs recompute`` on the ClickHouse event store.

The observations are walked as on SQLite/PostgreSQL (:mod:`lanterna.store.recompute`:
start-time order, batches, each repriced as ingestion would now price it, with the
models of the metadata database). Each changed observation is written as a new version
of its row, and the rollups move by what its traces add after the batch less what they
added before it, as the ClickHouse writer does for an ingested batch.

Each batch runs inside an exclusive write transaction of the metadata database: a
server's writer inserts its ClickHouse batches inside its own write transaction there,
so the two take turns and neither counts the other's change in its rollup deltas.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ...timeutil import now
from .. import recompute as sql_recompute
from ..db import Database
from ..recompute import Result
from . import rollups as ch_rollups
from .conn import EventsDb
from .events import next_version, row_columns, to_ch_row
from .schema import TABLES


def recompute_events(
    db: Database,
    events: EventsDb,
    *,
    since: datetime,
    until: datetime | None = None,
    project_id: str | None = None,
    batch_size: int = 500,
    progress: Callable[[Result], None] | None = None,
) -> Result:
    """Recalculate usage and cost of the event store's observations that started in
    ``[since, until)`` (as :func:`lanterna.store.recompute.recompute` does on SQL)."""
    result = Result()
    after: tuple[Any, str, str] | None = None
    ev = events.conn(json_text=True)
    meta = db.connect_writer()
    try:
        while True:
            with meta.transaction(exclusive=True):
                rows = sql_recompute.batch(
                    ev, since, until, project_id, after, batch_size, also=("created_at",)
                )
                changed = sql_recompute.reprice(meta, ev.dialect, rows, result)
                by_project: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(
                    list
                )
                for row, record in changed:
                    by_project[row["project_id"]].append((row, record))
                for pid, items in by_project.items():
                    _write(events, pid, items)
                    result.changed += len(items)
            if progress is not None:
                progress(result)
            if len(rows) < batch_size:
                return result
            last = rows[-1]
            after = (last["start_time"], last["project_id"], last["id"])
    finally:
        meta.raw.close()


def _write(
    events: EventsDb, project_id: str, items: list[tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    """Insert the repriced observations' new versions and move the rollups with them."""
    traces = {r["trace_id"] for _, r in items if r.get("trace_id") is not None}
    before = ch_rollups.traces_now(events, project_id, traces)
    stamp = now()
    events.insert(
        TABLES["observation"],
        [
            to_ch_row(
                "observation",
                project_id,
                row["id"],
                record,
                row["created_at"],
                stamp,
                next_version(),
            )
            for row, record in items
        ],
        row_columns("observation"),
    )
    ch_rollups.add(events, project_id, ch_rollups.traces_now(events, project_id, traces), before)
