"""The event tables of a copy sent to the ClickHouse event store (``lanterna migrate
--from ... --to ... --events clickhouse://...``): see :mod:`lanterna.store.copy`.

Traces, observations and scores are read from the source like every other table and
inserted into ClickHouse's ``<table>_rows`` tables as whole rows with a new
``_version`` (the merged entity, as the ClickHouse writer stores one), keeping their
``created_at`` and ``updated_at``. Each batch is inserted synchronously (acknowledged)
before its progress row commits in the metadata database; a batch that was inserted
but whose progress row did not commit (the copy died in between) is inserted again when
the copy continues, and ``ReplacingMergeTree`` keeps one version of each row (reads
go through the ``FINAL`` views), so no row is seen twice. Verification compares the
columns ClickHouse keeps (today every column of the SQLite/PostgreSQL tables; one added
there and not to ClickHouse would not be copied).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .clickhouse.conn import EventsDb
from .clickhouse.events import next_version, row_columns, to_ch_row
from .clickhouse.schema import TABLES
from .tables import TABLE

#: Table name -> entity kind, for the tables kept in the event store.
KINDS = {table: kind for kind, table in TABLE.items()}
_NOT_STORED = frozenset({"_version", "_deleted"})


def stored_columns(kind: str) -> set[str]:
    """The columns of ``kind`` that ClickHouse keeps (what is copied and verified)."""
    return set(row_columns(kind)) - _NOT_STORED


def sort_key(kind: str) -> tuple[str, ...]:
    """The ClickHouse table's sorting key (``schema.py``): verification pages by it."""
    return ("project_id", "start_time" if kind == "observation" else "timestamp", "id")


def sink(events: EventsDb, kind: str) -> Callable[[Sequence[str], list[list[Any]]], None]:
    """A writer of rows (canonical values of the named columns) into ``kind``'s table."""
    columns = row_columns(kind)
    wanted = stored_columns(kind)

    def write(names: Sequence[str], rows: list[list[Any]]) -> None:
        out = []
        for values in rows:
            row = dict(zip(names, values, strict=True))
            record = {
                name: row.get(name)
                for name in wanted - {"project_id", "id", "created_at", "updated_at"}
            }
            out.append(
                to_ch_row(
                    kind,
                    row["project_id"],
                    row["id"],
                    record,
                    row["created_at"],
                    row["updated_at"],
                    next_version(),
                )
            )
        if out:
            events.insert(TABLES[kind], out, columns)

    return write


def is_empty(events: EventsDb) -> bool:
    """Whether the event store holds no trace, observation or score."""
    for table in TABLES.values():
        _names, rows = events.query(f"SELECT count() FROM {table.removesuffix('_rows')}")
        if rows and int(rows[0][0]):
            return False
    return True
