"""The ClickHouse event store: traces, observations and scores in ClickHouse, metadata in
SQLite/PostgreSQL (docs/scale-out.md). ``conn.py``: URLs, the client, a ``Conn`` over
ClickHouse; ``schema.py``: tables, views and their migrations; ``events.py``: ingestion
(merge in the writer, synchronous insert) and deletes; ``store.py``: the ``Store``."""

from .conn import EventsDb, EventsUrl, EventsUrlError
from .schema import migrate
from .store import ClickHouseStore, clickhouse_store

__all__ = [
    "ClickHouseStore",
    "EventsDb",
    "EventsUrl",
    "EventsUrlError",
    "clickhouse_store",
    "migrate",
]
