"""Write domain events: load what is stored, merge, upsert.

The single writer thread is the one place every write waits for, so the work is split:

- :func:`prepare_events` runs *before* the writer (in the request, on a read
  connection): it groups the events by entity and, for each entity, computes the row
  it gets if it is new (merge, prompt link, cost, encoding). That is most of the CPU.
- the returned :class:`PreparedEvents` is called *in* the writer: it loads the
  entities that are already stored and merges only those again (their stored state
  decides the result); every other entity takes its prepared row. Then a few
  multi-row upserts per table.

The outcome is exactly that of merging everything in the writer: a prepared row is
used only when the writer's own transaction finds no stored entity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from operator import itemgetter
from typing import Any

from ..ingest.events import DomainEvent
from ..ingest.merge import merge
from ..timeutil import now
from . import rollups, row_counts, user_totals
from .db import Conn
from .masking import masked
from .models import pricing as batch_pricing
from .prompts import PromptLinker
from .tables import COLUMNS, TABLE, to_record, to_row

# Ids per lookup statement. Kept small so that PostgreSQL plans each lookup as primary
# key probes even before it has statistics: with 320 ids and none, it chose to read the
# whole project through another (project_id, ...) index (100 ms per batch at 100k rows).
_CHUNK = 64


@cache
def _upsert_parts(kind: str) -> tuple[str, str]:
    cols = list(COLUMNS[kind])
    names = ", ".join(["project_id", "id", *cols, "created_at", "updated_at"])
    updates = ", ".join(f"{c} = excluded.{c}" for c in [*cols, "updated_at"])
    return (
        f"INSERT INTO {TABLE[kind]} ({names})",
        f" ON CONFLICT (project_id, id) DO UPDATE SET {updates}",
    )


def _upsert(conn: Conn, kind: str, rows: list[list[Any]]) -> None:
    """Insert or overwrite ``rows`` (distinct ids)."""
    head, tail = _upsert_parts(kind)
    conn.insert(head, rows, tail)


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


def _with_ids(records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Loaded records (by id) with their ``id``, as the rollups take scores."""
    return [{**record, "id": entity_id} for entity_id, record in records.items()]


_SESSION_HEAD = "INSERT INTO sessions (project_id, id, environment, created_at)"
_SESSION_TAIL = " ON CONFLICT (project_id, id) DO NOTHING"
_BY_ID = itemgetter(1)


class _Entity:
    """One entity's events, and its row (plus session) for the case that it is new.

    ``groups`` is set when batches were combined (see :meth:`PreparedEvents.combine`):
    the events of each batch, in batch order, merged one batch after the other exactly
    as if each had been stored before the next arrived.
    """

    __slots__ = ("events", "groups", "row", "session")

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []
        self.groups: list[list[DomainEvent]] | None = None
        self.row: list[Any] | None = None
        self.session: tuple[Any, ...] | None = None

    def merged(self, kind: str, old: dict[str, Any] | None) -> dict[str, Any]:
        """The record after this entity's events, from the stored ``old`` (or None)."""
        if self.groups is None:
            return merge(kind, old, self.events)
        record = old
        for group in self.groups:
            record = merge(kind, record, group)
        assert record is not None
        return record


def _trace_ids(entity: _Entity) -> set[str]:
    return {t for e in entity.events if (t := e.fields.get("trace_id")) is not None}


def _finish(
    conn: Conn,
    prompts: PromptLinker,
    pricing: Any,
    project_id: str,
    kind: str,
    entity_id: str,
    record: dict[str, Any],
    old: dict[str, Any] | None,
    stamp: Any,
) -> tuple[list[Any], tuple[Any, ...] | None] | None:
    """Derived fields, then the row and session of a merged record (None: unchanged)."""
    if kind == "observation":
        prompts.link(record)  # generations point at the prompt version they used
        pricing.apply(record, old)  # usage in one vocabulary, cost, model id
    if record == old:
        return None  # a re-sent event: nothing changes, nothing is written
    row = [project_id, entity_id, *to_row(conn.dialect, kind, record), stamp, stamp]
    session = None
    if kind == "trace" and record.get("session_id"):
        session = (project_id, record["session_id"], record["environment"], stamp)
    return row, session


class PreparedEvents:
    """Events grouped by entity with their rows-if-new; call it with the writer's
    connection (``await rt.write(prepared)``) to merge and store them."""

    def __init__(
        self,
        project_id: str,
        kinds: dict[str, dict[str, _Entity]],
        fresh: dict[str, rollups.Fresh] | None = None,
        fresh_sum: rollups.Contribution | None = None,
    ) -> None:
        self.project_id = project_id
        self.kinds = kinds
        #: rollup values of the batch's traces if they and their observations are new
        self.fresh = fresh or {}
        #: their hourly values summed (None: add them one by one)
        self.fresh_sum = fresh_sum
        #: the writer runs neighbouring batches of one project as one (see ``combine``)
        self.combine_key = ("events", project_id)

    def traces_touched(self) -> set[str]:
        """The trace ids this batch names (its traces and its observations' traces)."""
        touched = set(self.kinds.get("trace", ()))
        for entity in self.kinds.get("observation", {}).values():
            touched |= _trace_ids(entity)
        return touched

    @classmethod
    def combine(cls, parts: list[PreparedEvents]) -> PreparedEvents:
        """One unit doing what ``parts`` (batches of one project, in order) do one after
        the other, in one set of statements.

        An entity in several parts is merged in the writer, part by part in order (so
        a later batch overwrites an earlier one whatever their event times, as when
        they commit separately). A trace that several parts name, or that an entity in
        several parts names, loses its precomputed rollup values.
        """
        kinds: dict[str, dict[str, _Entity]] = defaultdict(dict)
        fresh: dict[str, rollups.Fresh] = {}
        seen: set[str] = set()
        shared: set[str] = set()
        for part in parts:
            touched = part.traces_touched()
            shared |= touched & seen
            seen |= touched
            fresh.update(part.fresh)
            for kind, entities in part.kinds.items():
                into = kinds[kind]
                for entity_id, entity in entities.items():
                    have = into.get(entity_id)
                    if have is None:
                        into[entity_id] = entity
                        continue
                    both = _Entity()  # no row-if-new: merged in the writer
                    both.events = have.events + entity.events
                    both.groups = [*(have.groups or [have.events]), entity.events]
                    into[entity_id] = both
                    # e.g. an update without a traceId, or one naming another trace
                    shared |= _trace_ids(both)
        for trace_id in shared:
            fresh.pop(trace_id, None)
        sums = [part.fresh_sum for part in parts]
        fresh_sum = None
        if not shared and all(x is not None for x in sums):
            fresh_sum = rollups.summed(x for x in sums if x is not None)
        return cls(parts[0].project_id, dict(kinds), fresh, fresh_sum)

    def __call__(self, conn: Conn) -> int:
        """Merge into the stored entities and upsert; return rows written. The hourly
        rollups move by the difference the write made to the touched traces."""
        project_id = self.project_id
        stored = {
            kind: _load(conn, kind, project_id, list(entities))
            for kind, entities in self.kinds.items()
        }
        fresh, other = rollups.classify(conn, project_id, self.kinds, stored, self.fresh)
        before = rollups.recorded(conn, project_id, other) if other else None
        written, new = self._apply(conn, stored)
        row_counts.add(conn, project_id, new)
        if self.fresh_sum is not None and len(fresh) == len(self.fresh):
            # The common case: every trace is as prepared, summed before the writer ran.
            # (Never changed in place: the writer may run this unit again.)
            after = self.fresh_sum
            if other:
                after = rollups.summed([after, rollups.contribution(conn, project_id, other)])
        else:
            after = rollups.contribution(conn, project_id, other)
            for trace_id in fresh:
                self.fresh[trace_id].add_to(after, trace_id)
        scores = list(self.kinds.get("score", ()))
        if scores:  # the scores as stored before and as written (one more lookup)
            before = before or rollups.Contribution()
            before.update(rollups.scores(_with_ids(stored["score"])))
            now_stored = _load(conn, "score", project_id, scores)
            after = rollups.summed([after, rollups.scores(_with_ids(now_stored))])
        user_totals.apply(conn, project_id, after, before)
        return written

    def _apply(
        self, conn: Conn, stored_kinds: dict[str, dict[str, dict[str, Any]]]
    ) -> tuple[int, dict[str, int]]:
        """Write the merged rows; return rows written and rows new by kind."""
        project_id = self.project_id
        stamp = conn.dialect.ts(now())
        written = 0
        new: dict[str, int] = {}
        prompts = PromptLinker(conn, project_id)
        pricing = batch_pricing(conn, project_id)  # custom models load once, on first use
        for kind, entities in self.kinds.items():
            stored = stored_kinds[kind]
            rows = []
            sessions = []
            fresh = 0
            for entity_id, entity in entities.items():
                old = stored.get(entity_id)
                if old is None and entity.row is not None:
                    fresh += 1
                    rows.append(entity.row)
                    if entity.session is not None:
                        sessions.append(entity.session)
                    continue
                record = entity.merged(kind, old)
                done = _finish(
                    conn, prompts, pricing, project_id, kind, entity_id, record, old, stamp
                )
                if done is not None:
                    fresh += old is None
                    rows.append(done[0])
                    if done[1] is not None:
                        sessions.append(done[1])
            if rows:
                rows.sort(key=_BY_ID)
                _upsert(conn, kind, rows)
                written += len(rows)
            if sessions:
                conn.insert(_SESSION_HEAD, sessions, _SESSION_TAIL)
            new[kind] = fresh
        return written, new


def prepare_events(
    conn: Conn, project_id: str, events: Iterable[DomainEvent], *, rows: bool = True
) -> PreparedEvents:
    """Group ``events`` and (with ``rows``) compute each entity's row as if it were new.

    ``conn`` may be a read connection: it is used only to look up prompt versions, the
    project's custom model prices and its masking rules (applied first: nothing
    unmasked reaches a row).
    """
    kinds: dict[str, dict[str, _Entity]] = defaultdict(dict)
    for event in masked(conn, project_id, events):  # the project's redaction rules
        entities = kinds[event.kind]
        entity = entities.get(event.entity_id)
        if entity is None:
            entity = entities[event.entity_id] = _Entity()
        entity.events.append(event)
    if not rows:
        return PreparedEvents(project_id, dict(kinds))
    stamp = conn.dialect.ts(now())
    prompts = PromptLinker(conn, project_id)
    pricing = batch_pricing(conn, project_id)
    traces: dict[str, dict[str, Any]] = {}
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for kind, entities in kinds.items():
        for entity_id, entity in entities.items():
            record = merge(kind, None, entity.events)
            done = _finish(conn, prompts, pricing, project_id, kind, entity_id, record, None, stamp)
            if done is not None:
                entity.row, entity.session = done
            if kind == "trace":
                traces[entity_id] = record
            elif kind == "observation" and "trace_id" in record:
                by_trace[record["trace_id"]].append(record)
    fresh = {
        trace_id: rollups.Fresh(conn.dialect, record, by_trace.get(trace_id, []))
        for trace_id, record in traces.items()
    }
    fresh_sum = rollups.fold(fresh)
    return PreparedEvents(project_id, dict(kinds), fresh, fresh_sum)


def apply_events(conn: Conn, project_id: str, events: Iterable[DomainEvent]) -> int:
    """Merge ``events`` into the project's stored entities; return rows written.

    The one-step form, for callers already in the writer; see :func:`prepare_events`.
    """
    return prepare_events(conn, project_id, events, rows=False)(conn)
