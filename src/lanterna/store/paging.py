"""Offset pages of a list (Langfuse's ``page``/``limit``) that cost about the same at
any depth: the first pages read their rows directly; a deep page reads its ids first
(walking only the index when the filters and order are in it: the time indexes end
with the id, the order's tiebreak) and then its rows by key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .db import Conn

#: From this offset on, a page reads its ids first, then its rows.
DEFER_FROM = 200


def page(
    conn: Conn,
    table: str,
    alias: str,
    *,
    columns: str,
    where: str,
    params: Sequence[Any],
    order: str,
    project_id: str,
    limit: int,
    offset: int,
    join: str = "",
) -> list[dict[str, Any]]:
    """The rows ``offset`` to ``offset + limit`` of ``table alias join`` where ``where``
    holds, in ``order`` (which must be total: it ends with the id)."""
    tail = f"WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
    source = f"{table} {alias} {join}"
    if offset < DEFER_FROM:
        return conn.all(f"SELECT {columns} FROM {source} {tail}", [*params, limit, offset])
    ids = [
        r["id"]
        for r in conn.all(f"SELECT {alias}.id AS id FROM {source} {tail}", [*params, limit, offset])
    ]
    if not ids:
        return []
    found = {
        r["id"]: r
        for r in conn.all(
            f"SELECT {columns} FROM {table} {alias} WHERE {alias}.project_id = ?"
            f" AND {alias}.id IN ({', '.join('?' * len(ids))})",
            [project_id, *ids],
        )
    }
    return [found[i] for i in ids if i in found]
