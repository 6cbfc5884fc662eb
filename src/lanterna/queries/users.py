"""Users (the ``userId`` of traces): a page of users, one user with their traces and
sessions. The users API (``/api/public/users``) and the dashboard's user pages both read
them here; each user's usage is :mod:`lanterna.analytics.usage`'s."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..analytics.metrics import Scope
from ..analytics.usage import (
    UserTotals,
    get_user,
    list_users,
    user_summaries,
)
from ..store.db import Conn
from ..store.interface import Store, TraceQuery
from .sessions import SessionSummary, session_summaries
from .traces import TraceItem, TraceParts, trace_list

#: A user list's score averages and main features read each user's latest this many
#: traces, and a user's page its latest :data:`PAGE_RECENT` (a busy user's page of the
#: list costs what a new user's does; its totals are exact, from ``user_totals``).
LIST_RECENT = 100
PAGE_RECENT = 1000


def user_totals(store: Store, conn: Conn, scope: Scope, user_id: str) -> UserTotals | None:
    """One user's totals in ``scope``, or None when no trace in it has that ``userId``."""
    return get_user(store.events_conn(conn), scope, user_id)


@dataclass(slots=True)
class UserItem:
    """A user of a list page; score averages and main features when asked for."""

    totals: UserTotals
    scores: dict[str, float] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)


def user_list(
    store: Store,
    conn: Conn,
    scope: Scope,
    *,
    limit: int,
    offset: int,
    details: bool = False,
    order: str = "lastSeen",
    desc: bool = True,
) -> tuple[list[UserItem], int]:
    """A page of the users of the traces in ``scope`` (most recently seen first, or by
    ``order``: see ``analytics.usage.USER_ORDERS``) and the total count; with
    ``details``, each user's score averages and main features (over their latest
    :data:`LIST_RECENT` traces).

    All of it is :mod:`lanterna.analytics.usage`'s, read wherever the store keeps the
    events (``Store.events_conn``)."""
    events = store.events_conn(conn)
    users, total = list_users(
        events,
        scope,
        limit=limit,
        offset=offset,
        order=order,
        desc=desc,
    )
    items = [UserItem(u) for u in users]
    if details:
        ids = [u.user_id for u in users]
        scores, names = user_summaries(events, scope.project_id, ids, recent=LIST_RECENT)
        for item in items:
            item.scores = scores.get(item.totals.user_id, {})
            item.features = [name for _, name in names.get(item.totals.user_id, [])[:3]]
    return items, total


@dataclass(slots=True)
class UserDetail:
    """One user: totals, score averages, main features, recent traces and sessions."""

    totals: UserTotals
    scores: dict[str, float]
    features: list[str]
    traces: list[TraceItem]
    sessions: list[tuple[str, SessionSummary]]


#: What the user view shows of each recent trace (as the trace list does).
USER_TRACE_PARTS = TraceParts(rollups=True, scores=True)


def user_detail(
    store: Store, conn: Conn, project_id: str, user_id: str, *, recent: int = 25
) -> UserDetail | None:
    """One user with their ``recent`` latest traces and their sessions (most recent
    first), or None when no trace has that ``userId``."""
    totals = user_totals(store, conn, Scope(project_id), user_id)
    if totals is None:
        return None
    traces, _ = trace_list(
        store,
        conn,
        project_id,
        TraceQuery(user_id=user_id),
        limit=recent,
        offset=0,
        parts=USER_TRACE_PARTS,
    )
    session_ids = store.sessions.sessions_of_user(conn, project_id, user_id)
    events = store.events_conn(conn)
    scores, names = user_summaries(events, project_id, [user_id], recent=PAGE_RECENT)
    return UserDetail(
        totals=totals,
        scores=scores.get(user_id, {}),
        features=[name for _, name in names.get(user_id, [])[:10]],
        traces=traces,
        sessions=list(session_summaries(store, conn, project_id, session_ids).items()),
    )
