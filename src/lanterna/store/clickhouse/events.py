"""Ingestion into ClickHouse: merge in the writer, then one synchronous insert per table.

How updates merge (the same rules as SQLite/PostgreSQL, ``ingest/merge.py``): the request
thread parses, validates and masks the events and groups them by entity
(``write.prepare_events`` without rows-if-new). In the writer, the unit loads the
batch's entities as stored (the merged view, ``FINAL``), merges the events into them with
the one merge function, links prompts and prices generations as the SQL path does, and
inserts each changed entity's whole merged row with a higher ``_version``. The
``ReplacingMergeTree`` then keeps that row. Re-sent events leave the record unchanged
and write nothing. This is Langfuse v3's approach (merge before insert); one writer per
process serialises the merges of that process's batches. Two processes updating the
same entity at the same moment can each merge into the state before the other's write
(the later insert wins): route one entity's updates to one process, or accept it, as
Langfuse does.

The insert is synchronous (no async insert): the writer resolves the request's future,
and the API answers 2xx, only after ClickHouse has acknowledged it.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ... import _json
from ...ingest.events import DomainEvent
from ...timeutil import now
from .. import rollups, write
from ..db import Conn
from ..models import pricing as batch_pricing
from ..prompts import PromptLinker
from ..rollups import Contribution
from ..tables import BOOL, COLUMNS, JSON, TS, to_record
from . import rollups as ch_rollups
from .conn import CLICKHOUSE, EventsDb, naive_utc
from .schema import TABLES

_CHUNK = 500
#: Ids bound in one probe statement of :func:`existing`.
PROBE_IDS = 2000

_version_lock = threading.Lock()
_last_version = 0


def next_version() -> int:
    """A row version: nanoseconds since the epoch, strictly increasing in this process."""
    global _last_version
    with _version_lock:
        _last_version = max(_last_version + 1, time.time_ns())
        return _last_version


def _cell(storage: str | None, value: Any) -> Any:
    if value is None:
        return None
    if storage is TS:
        return naive_utc(value)
    if storage is JSON:
        return _json.dumps(value)
    if storage is BOOL:
        return bool(value)
    return value


def row_columns(kind: str) -> list[str]:
    """The columns an insert into ``kind``'s table names, in order."""
    return ["project_id", "id", *COLUMNS[kind], "created_at", "updated_at", "_version", "_deleted"]


def to_ch_row(
    kind: str,
    project_id: str,
    entity_id: str,
    record: dict[str, Any],
    created: datetime,
    stamp: datetime,
    version: int,
    deleted: int = 0,
) -> list[Any]:
    """``record`` as a row of ``kind``'s table (see :func:`row_columns`)."""
    get = record.get
    cells = [_cell(storage, get(name)) for name, storage in COLUMNS[kind].items()]
    return [project_id, entity_id, *cells, naive_utc(created), naive_utc(stamp), version, deleted]


def existing(events: EventsDb, project_id: str, ids: dict[str, list[str]]) -> dict[str, set[str]]:
    """``kind -> ids`` among ``ids`` (by kind) that have any row, deleted ones too: one
    statement per :data:`PROBE_IDS` ids over the tables themselves, without ``FINAL``
    (the ids' bloom filters skip most granules), so that a batch of new entities (the
    common case) reads nothing more."""
    statements: list[tuple[list[str], list[Any]]] = []
    parts: list[str] = []
    params: list[Any] = []
    for kind, wanted in ids.items():
        # (The observations naming a trace: by ``trace_id`` itself, which its bloom
        # filter index serves; wrapped in a function it would read every granule.)
        table, column, selected = (
            (TABLES["observation"], "trace_id", "assumeNotNull(trace_id)")
            if kind == _NAMED
            else (TABLES[kind], "id", "id")
        )
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            if len(params) + len(chunk) > PROBE_IDS:
                statements.append((parts, params))
                parts, params = [], []
            parts.append(
                f"SELECT DISTINCT '{kind}' AS kind, {selected} AS id FROM {table}"
                f" WHERE project_id = ? AND {column} IN ({', '.join('?' * len(chunk))})"
            )
            params += [project_id, *chunk]
    if parts:
        statements.append((parts, params))
    found: dict[str, set[str]] = {kind: set() for kind in ids}
    conn = events.conn(json_text=True)
    for some, bound in statements:
        for r in conn.all(" UNION ALL ".join(some), bound):
            found[r["kind"]].add(r["id"])
    return found


def load(
    events: EventsDb, kind: str, project_id: str, ids: list[str]
) -> dict[str, tuple[dict[str, Any], datetime]]:
    """``id -> (record, created_at)`` of the stored entities among ``ids`` (the merged,
    latest version of each, through the ``FINAL`` view)."""
    conn = events.conn(json_text=True)
    view = TABLES[kind].removesuffix("_rows")
    cols = ", ".join(["id", "created_at", *COLUMNS[kind]])
    found: dict[str, tuple[dict[str, Any], datetime]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        for row in conn.all(
            f"SELECT {cols} FROM {view} WHERE project_id = ? AND id IN ({marks})",
            [project_id, *chunk],
        ):
            found[row["id"]] = (to_record(conn.dialect, kind, row), row["created_at"])
    return found


class ChPrepared(write.PreparedEvents):
    """A batch's events grouped by entity; called in the writer (with the metadata
    database's connection, for prompt versions and model prices) it merges them into
    ClickHouse's stored rows and inserts the changed ones."""

    target: EventsDb

    @classmethod
    def of(cls, events: EventsDb, prepared: write.PreparedEvents) -> ChPrepared:
        """Wrap the grouped events of ``prepared`` for ``events``."""
        unit = cls(prepared.project_id, prepared.kinds)
        unit.target = events
        return unit

    @classmethod
    def combine(cls, parts: list[write.PreparedEvents]) -> write.PreparedEvents:
        """Neighbouring batches of one project as one unit (see the base class)."""
        combined = super().combine(parts)
        assert isinstance(combined, ChPrepared) and isinstance(parts[0], ChPrepared)
        combined.target = parts[0].target
        return combined

    def __call__(self, conn: Conn) -> int:
        project_id = self.project_id
        stamp = now()
        prompts = PromptLinker(conn, project_id)
        pricing = batch_pricing(conn, project_id)
        events = self.target
        # Which entities exist (one probe for every kind, every trace the batch names
        # included, and whether an observation names those), then the batch's read
        # back whole.
        named = sorted(self._trace_ids())
        wanted = {k: list(e) for k, e in self.kinds.items()}
        wanted["trace"] = named  # the batch's traces and those its observations name
        wanted[_NAMED] = named
        there = existing(events, project_id, wanted)
        merged: _Merged = {}
        rows: dict[str, list[list[Any]]] = {}
        for kind, entities in self.kinds.items():
            known = sorted(there[kind].intersection(entities))
            stored = load(events, kind, project_id, known) if known else {}
            changed = merged[kind] = {}
            out = rows[kind] = []
            for entity_id in sorted(entities):
                old, created = stored.get(entity_id, (None, stamp))
                record = entities[entity_id].merged(kind, old)
                if kind == "observation":
                    prompts.link(record)
                    pricing.apply(record, old)
                if record == old:
                    continue  # a re-sent event: nothing changes, nothing is written
                changed[entity_id] = (old, record)
                out.append(
                    to_ch_row(kind, project_id, entity_id, record, created, stamp, next_version())
                )
        plus, minus, slow = _fresh(there, merged)
        if slow:
            minus.update(ch_rollups.traces_now(events, project_id, slow), totals=True)
        written = 0
        done: set[str] = set()  # the steps of ``ch_rollups.add`` written
        try:
            for kind, out in rows.items():
                if out:
                    events.insert(TABLES[kind], out, row_columns(kind))
                    written += len(out)
            if slow:
                plus.update(ch_rollups.traces_now(events, project_id, slow), totals=True)
            ch_rollups.add(events, project_id, plus, minus, stamp=stamp, done=done)
        except Exception:
            if written:  # part of the batch is stored: the rollups follow it
                self._settle(merged, minus, slow, stamp, done)
            raise
        return written

    def _settle(
        self,
        merged: _Merged,
        minus: Contribution,
        slow: set[str],
        stamp: datetime,
        done: set[str],
    ) -> None:
        """After an insert of the batch failed with some of it stored: move the
        rollups from what the batch's traces and scores held before it (``minus``, and
        nothing for its new traces) to what is stored now, so that the writer's retry
        of each request on its own, which starts from the stored rows, adds only the
        rest. The steps of the rollups' write that went through before the error
        (``done``) are not written again."""
        events, project_id = self.target, self.project_id
        traces = set(slow) | set(merged.get("trace", {}))
        traces.update(
            record["trace_id"]
            for _, record in merged.get("observation", {}).values()
            if record.get("trace_id") is not None
        )
        now = ch_rollups.traces_now(events, project_id, traces) if traces else Contribution()
        scores = sorted(merged.get("score", {}))
        for start in range(0, len(scores), _CHUNK):
            chunk = scores[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            now.update(
                rollups.scores(ch_rollups.score_rows(events, project_id, f"id IN ({marks})", chunk))
            )
        ch_rollups.add(events, project_id, now, minus, stamp=stamp, done=done)

    def _trace_ids(self) -> set[str]:
        """The trace ids the batch's traces and observations name."""
        ids = set(self.kinds.get("trace", ()))
        for entity in self.kinds.get("observation", {}).values():
            for event in entity.events:
                trace_id = event.fields.get("trace_id")
                if trace_id is not None:
                    ids.add(trace_id)
        return ids


#: kind -> entity id -> (its stored record or None, its merged record): a batch's
#: changed entities
_Merged = dict[str, dict[str, tuple[dict[str, Any] | None, dict[str, Any]]]]

#: the probe of :func:`existing` for trace ids that an observation names
_NAMED = "named"


def _fresh(
    there: dict[str, set[str]],
    merged: _Merged,
) -> tuple[Contribution, Contribution, set[str]]:
    """``(plus, minus, slow)`` for the rollups: what the batch's new traces (stored
    nowhere, with only new observations, none stored before) and its scores add and
    take away, computed from the merged records; ``slow``, the other traces the batch
    changes, computed from their rows before and after the insert."""
    plus, minus = Contribution(), Contribution()
    stored_traces = there.get("trace", set())
    stored_observations = there.get("observation", set())
    traces = merged.get("trace", {})
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    slow: set[str] = set()
    for obs_id, (old, record) in merged.get("observation", {}).items():
        trace_id = record.get("trace_id")
        if trace_id is None:
            continue  # counted nowhere (the rollups are by trace), as on SQL
        if old is not None or obs_id in stored_observations:
            slow.add(trace_id)
        by_trace[trace_id].append(record)
    for trace_id in (*traces, *by_trace):
        if trace_id in stored_traces or trace_id in there[_NAMED]:
            slow.add(trace_id)
    for trace_id, (_, record) in traces.items():
        if trace_id not in slow:
            plus.add_trace(CLICKHOUSE, trace_id, record, by_trace.pop(trace_id, []))
    for trace_id, loose in by_trace.items():
        if trace_id not in slow and trace_id not in traces:
            for record in loose:  # observations of a trace not stored (yet)
                plus.add_loose(record)
    for score_id, (old, record) in merged.get("score", {}).items():
        plus.add_score({**record, "id": score_id})
        if old is not None:
            minus.add_score({**old, "id": score_id})
    return plus, minus, slow


def tombstones(events: EventsDb, kind: str, project_id: str, where: str, params: list[Any]) -> int:
    """Mark the rows of ``kind`` matching ``where`` deleted (a newer version with
    ``_deleted = 1``: reads leave them out at once, merges drop them) and take what
    they added out of the rollups; return how many."""
    conn = events.conn(json_text=True)
    view = TABLES[kind].removesuffix("_rows")
    time_column = "start_time" if kind == "observation" else "timestamp"
    extra = {"observation": ", trace_id", "score": f", {ch_rollups.SCORE_COLUMNS}"}.get(kind, "")
    rows = conn.all(
        f"SELECT id, {time_column} AS t, created_at{extra} FROM {view}"
        f" WHERE project_id = ? AND {where}",
        [project_id, *params],
    )
    if not rows:
        return 0
    traces: set[str] = set()
    if kind == "trace":
        traces = {r["id"] for r in rows}
    elif kind == "observation":
        traces = {r["trace_id"] for r in rows if r["trace_id"] is not None}
    before = ch_rollups.traces_now(events, project_id, traces) if traces else Contribution()
    stamp = now()
    marks = []
    for r in rows:
        record: dict[str, Any] = {time_column: r["t"]}
        if kind == "trace":
            record.update(public=False, bookmarked=False, environment="")
        else:
            record["environment"] = ""
        marks.append(
            to_ch_row(kind, project_id, r["id"], record, r["created_at"], stamp, next_version(), 1)
        )
    events.insert(TABLES[kind], marks, row_columns(kind))
    if kind == "score":
        ch_rollups.add(events, project_id, Contribution(), rollups.scores(rows))
    elif traces:
        ch_rollups.add(
            events, project_id, ch_rollups.traces_now(events, project_id, traces), before
        )
    return len(marks)


class ChIngest:
    """The ``Ingest`` resource on ClickHouse (``store/interface.py``)."""

    def __init__(self, events: EventsDb) -> None:
        self.events = events

    def prepare_events(
        self, conn: Conn, project_id: str, events: Iterable[DomainEvent], *, rows: bool = True
    ) -> write.PreparedEvents:
        """Mask and group ``events`` (on a read connection); the merge runs in the writer."""
        grouped = write.prepare_events(conn, project_id, events, rows=False)
        return ChPrepared.of(self.events, grouped)

    def apply_events(self, conn: Conn, project_id: str, events: Iterable[DomainEvent]) -> int:
        """Merge and insert ``events`` now (for callers already in the writer)."""
        return self.prepare_events(conn, project_id, events)(conn)
