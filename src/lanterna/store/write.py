"""Write domain events: load what is stored, merge, upsert. Runs inside the writer."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from typing import Any

from ..ingest.events import DomainEvent
from ..ingest.merge import merge
from ..timeutil import now
from .db import Conn
from .prompts import PromptLinker
from .tables import COLUMNS, TABLE, to_record, to_row

_CHUNK = 500


@cache
def _upsert_sql(kind: str) -> str:
    cols = list(COLUMNS[kind])
    names = ", ".join(["project_id", "id", *cols, "created_at", "updated_at"])
    marks = ", ".join("?" * (len(cols) + 4))
    updates = ", ".join(f"{c} = excluded.{c}" for c in [*cols, "updated_at"])
    return (
        f"INSERT INTO {TABLE[kind]} ({names}) VALUES ({marks}) "
        f"ON CONFLICT (project_id, id) DO UPDATE SET {updates}"
    )


def _load(conn: Conn, kind: str, project_id: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    cols = ", ".join(["id", *COLUMNS[kind]])
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = conn.all(
            f"SELECT {cols} FROM {TABLE[kind]} WHERE project_id = ? AND id IN ({marks})",
            [project_id, *chunk],
        )
        for row in rows:
            found[row["id"]] = to_record(conn.dialect, kind, row)
    return found


def apply_events(conn: Conn, project_id: str, events: Iterable[DomainEvent]) -> int:
    """Merge ``events`` into the project's stored entities; return rows written."""
    grouped: dict[str, dict[str, list[DomainEvent]]] = defaultdict(lambda: defaultdict(list))
    for event in events:
        grouped[event.kind][event.entity_id].append(event)
    stamp = conn.dialect.ts(now())
    written = 0
    prompts = PromptLinker(conn, project_id)
    for kind, by_id in grouped.items():
        stored = _load(conn, kind, project_id, list(by_id))
        rows = []
        sessions = []
        for entity_id, entity_events in by_id.items():
            old = stored.get(entity_id)
            record = merge(kind, old, entity_events)
            if kind == "observation":
                prompts.link(record)  # generations point at the prompt version they used
            if record == old:
                continue  # a re-sent event: nothing changes, nothing is written
            rows.append([project_id, entity_id, *to_row(conn.dialect, kind, record), stamp, stamp])
            if kind == "trace" and record.get("session_id"):
                sessions.append((project_id, record["session_id"], record["environment"], stamp))
        if rows:
            conn.many(_upsert_sql(kind), rows)
            written += len(rows)
        if sessions:
            conn.many(
                "INSERT INTO sessions (project_id, id, environment, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (project_id, id) DO NOTHING",
                sessions,
            )
    return written
