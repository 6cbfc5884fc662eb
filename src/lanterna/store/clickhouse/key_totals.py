"""Per-user and per-session totals on ClickHouse: one row per ``userId`` and per
session id of a project's traces, so that the users list, a user's page, the sessions
list and a page of sessions read one narrow row per user or session instead of grouping
every trace of the project (at 10 M observations, 615,000 sessions and 50,000 users of
2 M traces: 0.2-0.7 s a statement).

Storage: ``key_totals_rows``, a ``ReplacingMergeTree(_version, _deleted)`` ordered by
``(project_id, kind, key)`` (``kind`` is ``user`` or ``session``), each row the whole
state of one user or session: first and last trace time, traces, their observations,
cost and tokens (input, output, total); for a session also the environment and the time
of the trace that began it (``created_at``, as the SQL store's ``sessions`` row keeps
them) and its traces per user (``users``). The views ``user_totals`` (the SQL table's
name and columns) and ``kept_sessions`` (the SQL ``sessions`` table's columns) read it
``FINAL``.

Kept by the writer with the trace figures (:func:`.rollups.add`, so every write,
delete, retention, cost recompute and rebuild moves them): from the same before/after
per-trace rows as the rollups (:class:`~lanterna.store.rollups.Contribution`), a
batch's users and sessions are read (one statement), moved by the batch's differences
(a trace joining adds its sums and widens the first/last time; one leaving takes its
sums away) and written whole with a higher version (one insert). Where a user or
session lost a trace, its first and last time are read again from its traces'
``trace_figures`` rows; one left with no trace gets a deleted row. A trace's time never
changes on ClickHouse (the merge fixes it at the first write), so only a trace that
leaves can move them inwards.

As the event rows themselves (``events.py``), this is a merge in the writer, which
runs inside a write transaction of the metadata database: on SQLite every writer (each
server's, ``lanterna costs recompute``) holds its one write lock, so they take turns;
on PostgreSQL servers share the lock, and two of them moving the same user or session
at the same moment each start from the row before the other's write (as they would
merge one trace's updates). ``lanterna rollups rebuild`` writes every row again from
the figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..rollups import Contribution, Figures
from .conn import EventsDb, bind, naive_utc
from .schema import replacing_ddl

TABLE = "key_totals_rows"
_TS = "DateTime64(6, 'UTC')"
#: the summed columns, in the order :func:`_sums` gives a trace's values
SUMS = ("observations", "cost", "input_tokens", "output_tokens", "total_tokens")
_LAYOUT = [
    ("project_id", "String"),
    ("kind", "LowCardinality(String)"),
    ("key", "String"),
    ("environment", "String"),
    ("created_at", _TS),
    ("first_seen", _TS),
    ("last_seen", _TS),
    ("traces", "Int64"),
    ("observations", "Int64"),
    ("cost", "Float64"),
    ("input_tokens", "Int64"),
    ("output_tokens", "Int64"),
    ("total_tokens", "Int64"),
    ("users", "Map(String, Int64)"),
    ("_version", "UInt64"),
    ("_deleted", "UInt8"),
]
COLUMNS = [name for name, _ in _LAYOUT]
DDL = replacing_ddl(TABLE, _LAYOUT, "project_id, kind, key")
USERS_VIEW = (
    "CREATE VIEW IF NOT EXISTS user_totals AS SELECT project_id, key AS user_id,"
    f" first_seen, last_seen, traces, {', '.join(SUMS)} FROM {TABLE} FINAL"
    " WHERE kind = 'user'"
)
SESSIONS_VIEW = (
    "CREATE VIEW IF NOT EXISTS kept_sessions AS SELECT project_id, key AS id, environment,"
    f" created_at FROM {TABLE} FINAL WHERE kind = 'session'"
)
#: A copy of each trace's user, time, id, name and session ordered by user (the traces
#: themselves are ordered by time, so a user's few traces are spread over all of them):
#: a user's page and the users list read their latest traces here (``Dialect.user_traces``).
USER_TRACES = "user_traces_rows"
_USER_TRACES_LAYOUT = [
    ("project_id", "String"),
    ("user_id", "String"),
    ("timestamp", _TS),
    ("id", "String"),
    ("name", "Nullable(String)"),
    ("session_id", "Nullable(String)"),
    ("_version", "UInt64"),
    ("_deleted", "UInt8"),
]
USER_TRACES_COLUMNS = [name for name, _ in _USER_TRACES_LAYOUT]
USER_TRACES_DDL = replacing_ddl(
    USER_TRACES, _USER_TRACES_LAYOUT, "project_id, user_id, timestamp, id", granularity=1024
)
USER_TRACES_VIEW = (
    "CREATE VIEW IF NOT EXISTS user_traces AS"
    f" SELECT * EXCEPT (_version, _deleted) FROM {USER_TRACES} FINAL"
)
#: Which field of a ``Contribution.totals`` row names each kind's key.
_KEY_AT = {"user": 3, "session": 4}


@dataclass(slots=True)
class _Move:
    """What a write does to one user or session."""

    traces: int = 0
    sums: list[float] = field(default_factory=lambda: [0, 0.0, 0, 0, 0])
    first: datetime | None = None
    last: datetime | None = None
    #: the environment of its earliest trace joining (a new session's)
    environment: str = ""
    users: Counter[str] = field(default_factory=Counter)
    #: a trace left it (deleted, or moved to another user or session)
    shrinks: bool = False
    earliest: tuple[datetime, str] | None = None

    def take(self, sign: int, totals: tuple[Any, ...], extra: Figures) -> None:
        self.traces += sign
        for i, value in enumerate(_sums(totals, extra)):
            self.sums[i] += sign * value

    def widen(self, stamp: datetime, trace_id: str, environment: str) -> None:
        if self.first is None or stamp < self.first:
            self.first = stamp
        if self.last is None or stamp > self.last:
            self.last = stamp
        if self.earliest is None or (stamp, trace_id) < self.earliest:
            # a new session's environment: its earliest trace's (by time, then id),
            # as the fill (:data:`_FILL_SESSIONS`) picks among traces stored together
            self.earliest, self.environment = (stamp, trace_id), environment


def _sums(totals: tuple[Any, ...], extra: Figures) -> tuple[Any, ...]:
    # totals: timestamp, environment, name, user, session, observations, cost, tokens,
    # latency, error flag; extra: input tokens, output tokens, severity, errors
    return (totals[5], float(totals[6]), extra[0], extra[1], totals[7])


def moves(plus: Contribution, minus: Contribution | None) -> dict[tuple[str, str], _Move]:
    """``(kind, key) -> _Move`` of every user and session a write of ``plus - minus``
    changes."""
    old_totals = minus.totals if minus is not None else {}
    old_figures = minus.figures if minus is not None else {}
    out: dict[tuple[str, str], _Move] = {}
    for trace_id in plus.totals.keys() | old_totals.keys():
        new, old = plus.totals.get(trace_id), old_totals.get(trace_id)
        new_extra, old_extra = plus.figures.get(trace_id), old_figures.get(trace_id)
        if new == old and new_extra == old_extra:
            continue
        for kind, at in _KEY_AT.items():
            old_key = old[at] if old is not None else None
            new_key = new[at] if new is not None else None
            if old is not None and old_key is not None and old_extra is not None:
                m = out.setdefault((kind, old_key), _Move())
                m.take(-1, old, old_extra)
                if kind == "session" and old[3] is not None:
                    m.users[old[3]] -= 1
                if new is None or new_key != old_key or new[0] != old[0]:
                    m.shrinks = True
            if new is not None and new_key is not None and new_extra is not None:
                m = out.setdefault((kind, new_key), _Move())
                m.take(1, new, new_extra)
                if kind == "session" and new[3] is not None:
                    m.users[new[3]] += 1
                m.widen(naive_utc(new[0]), trace_id, new[1])
    return out


def user_trace_rows(
    project_id: str, plus: Contribution, minus: Contribution | None, version: int
) -> list[list[Any]]:
    """The ``user_traces_rows`` rows of the traces whose user, name or session a write
    of ``plus - minus`` changes, and a deleted row where a trace leaves a user."""
    old_totals = minus.totals if minus is not None else {}
    out: list[list[Any]] = []
    for trace_id in plus.totals.keys() | old_totals.keys():
        new, old = plus.totals.get(trace_id), old_totals.get(trace_id)
        # totals: timestamp, environment, name, user, session, ...: the copy holds all
        # but the environment
        if new is not None and old is not None and new[2:5] == old[2:5] and new[0] == old[0]:
            continue
        if old is not None and old[3] is not None and (new is None or new[3] != old[3]):
            out.append(_copy_row(project_id, trace_id, old, version, 1))
        if new is not None and new[3] is not None:
            out.append(_copy_row(project_id, trace_id, new, version, 0))
    return out


def _copy_row(
    project_id: str, trace_id: str, totals: tuple[Any, ...], version: int, deleted: int
) -> list[Any]:
    """A ``user_traces_rows`` row of a trace's ``Contribution.totals`` row."""
    stamp, _, name, user, session = totals[:5]
    return [project_id, user, naive_utc(stamp), trace_id, name, session, version, deleted]


def _current(
    events: EventsDb, project_id: str, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], list[Any]]:
    """The stored rows (``COLUMNS`` but the version and deleted flag) of ``keys``."""
    by_kind: dict[str, list[str]] = {}
    for kind, key in keys:
        by_kind.setdefault(kind, []).append(key)
    parts, params = [], [project_id]
    for kind, ids in sorted(by_kind.items()):
        parts.append(f"(kind = ? AND key IN ({', '.join('?' * len(ids))}))")
        params += [kind, *ids]
    _, rows = events.query(
        bind(
            f"SELECT {', '.join(COLUMNS[:-2])} FROM {TABLE} FINAL"
            f" WHERE project_id = ? AND ({' OR '.join(parts)})",
            params,
        )
    )
    return {(r[1], r[2]): [*r] for r in rows}


def _bounds(
    events: EventsDb, project_id: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[datetime, datetime]]:
    """The first and last trace time of each of ``keys`` from their stored traces."""
    out: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    # a user's traces by key in the copy ordered by user (written before these rows);
    # a session's through the figures' skip index on it
    for kind, column, source in (
        ("user", "user_id", "user_traces"),
        ("session", "session_id", "trace_figures"),
    ):
        ids = [key for k, key in keys if k == kind]
        if ids:
            _, rows = events.query(
                bind(
                    f"SELECT {column}, min(timestamp), max(timestamp) FROM {source}"
                    f" WHERE project_id = ? AND {column} IN ({', '.join('?' * len(ids))})"
                    f" GROUP BY {column}",
                    [project_id, *ids],
                )
            )
            out.update({(kind, r[0]): (naive_utc(r[1]), naive_utc(r[2])) for r in rows})
    return out


def rows_of(
    events: EventsDb,
    project_id: str,
    plus: Contribution,
    minus: Contribution | None,
    *,
    stamp: datetime,
    version: int,
) -> list[list[Any]]:
    """The ``key_totals_rows`` rows that move the project's users and sessions by
    ``plus - minus`` (written after the traces' figures, which :func:`_bounds` reads);
    ``stamp`` is a new session's ``created_at``."""
    changed = moves(plus, minus)
    if not changed:
        return []
    current = _current(events, project_id, changed)
    bounds = _bounds(events, project_id, [k for k, m in changed.items() if m.shrinks])
    out: list[list[Any]] = []
    for (kind, key), m in changed.items():
        row = current.get((kind, key))
        original = None
        if row is None:
            if m.traces <= 0 or m.first is None or m.last is None:
                continue  # nothing stored gains it (a trace left a key never kept)
            row = [project_id, kind, key, m.environment if kind == "session" else ""]
            row += [naive_utc(stamp), m.first, m.last, 0, 0, 0.0, 0, 0, 0, {}]
        else:
            row = list(row)
            row[4:7] = [naive_utc(v) for v in row[4:7]]
            original = list(row)
            if m.first is not None and m.first < row[5]:
                row[5] = m.first
            if m.last is not None and m.last > row[6]:
                row[6] = m.last
        row[7] += m.traces
        for i, value in enumerate(m.sums):
            row[8 + i] += value
        users = Counter(row[13])
        users.update(m.users)
        row[13] = {user: n for user, n in sorted(users.items()) if n > 0}
        gone = row[7] <= 0
        if m.shrinks and not gone:
            found = bounds.get((kind, key))
            gone = found is None
            if found is not None:
                row[5], row[6] = found
        if gone and original is None:
            continue
        if row == original and not gone:
            continue
        out.append([*(original if gone and original is not None else row), version, int(gone)])
    return out


#: Every user's and session's row from the traces' figures, one statement per project
#: and kind (migration 4 and :func:`.rollups.rebuild`). A session's environment and
#: ``created_at`` are its earliest stored trace's (the writer keeps those of the traces
#: that began it, as the SQL store's ``sessions`` row does, even once they are gone).
_FILL_USERS = f"""INSERT INTO {TABLE} ({", ".join(COLUMNS)})
SELECT project_id, 'user', user_id, '', min(timestamp), min(timestamp), max(timestamp),
    count(), sum(observations), sum(cost), sum(input_tokens), sum(output_tokens),
    sum(tokens), map(), {{version}}, 0
FROM trace_figures WHERE project_id = ? AND user_id IS NOT NULL
GROUP BY project_id, user_id"""
_FILL_SESSIONS = f"""INSERT INTO {TABLE} ({", ".join(COLUMNS)})
SELECT f.project_id, 'session', f.session_id,
    argMin(t.environment, (t.created_at, t.timestamp, t.id)), min(t.created_at),
    min(f.timestamp), max(f.timestamp), count(), sum(f.observations), sum(f.cost),
    sum(f.input_tokens), sum(f.output_tokens), sum(f.tokens),
    sumMapIf(map(assumeNotNull(f.user_id), toInt64(1)), f.user_id IS NOT NULL),
    {{version}}, 0
FROM trace_figures AS f INNER JOIN (
    SELECT id, timestamp, environment, created_at FROM traces
    WHERE project_id = ? AND session_id IS NOT NULL
) AS t ON t.id = f.trace_id
WHERE f.project_id = ? AND f.session_id IS NOT NULL
GROUP BY f.project_id, f.session_id"""


_FILL_USER_TRACES = f"""INSERT INTO {USER_TRACES} ({", ".join(USER_TRACES_COLUMNS)})
SELECT project_id, user_id, timestamp, id, name, session_id, {{version}}, 0
FROM traces WHERE project_id = ? AND user_id IS NOT NULL"""


def fill(events: EventsDb, project_ids: Sequence[str], version: int) -> None:
    """Write every user's and session's row of ``project_ids`` from the figures, and
    the copy of their traces ordered by user."""
    conn = events.conn(json_text=True)
    for project_id in project_ids:
        conn.run(_FILL_USER_TRACES.format(version=version), [project_id])
        conn.run(_FILL_USERS.format(version=version), [project_id])
        conn.run(_FILL_SESSIONS.format(version=version), [project_id, project_id])
