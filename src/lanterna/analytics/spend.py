"""Spend: the cost (USD) of the traces of a project, a user, a session or a tag in a
time range, as :mod:`lanterna.analytics.metrics` defines cost (the sum of ``total_cost``
over the traces' observations, traces selected by their ``timestamp``).

Budgets (:mod:`lanterna.alerts.budgets`) read it.
"""

from __future__ import annotations

from datetime import datetime

from ..store.db import Conn
from .metrics import JOIN, USAGE, Scope, Usage


def cost_between(
    conn: Conn,
    project_id: str,
    start: datetime | None,
    end: datetime | None,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    tag: str | None = None,
) -> float:
    """The cost of the project's traces with ``timestamp`` in ``[start, end)`` (either
    end open when None), narrowed to a user, a session and/or a tag."""
    scope = Scope(project_id, start, end, user_id=user_id, tags=() if tag is None else (tag,))
    where, params = scope.where(conn)
    if session_id is not None:
        where += " AND t.session_id = ?"
        params.append(session_id)
    row = conn.one(f"SELECT {USAGE} FROM traces t {JOIN} WHERE {where}", params)
    return Usage.of(row).cost
