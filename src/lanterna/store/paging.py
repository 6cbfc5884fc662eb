"""Offset pages of a list (Langfuse's ``page``/``limit``) that cost about the same at
any depth when the list is in time order: the first pages read their rows directly; a
deep page finds the timestamp at its offset and counts the rows before that timestamp
(two walks of the time index alone when the filters are in it: no row is read), then
reads its rows from that timestamp on, skipping only the rows that share it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .db import Conn

#: From this offset on, a page in time order finds its start in the time index first.
DEFER_FROM = 200


def page(
    conn: Conn,
    source: str,
    *,
    columns: str,
    where: str,
    params: Sequence[Any],
    order: str,
    limit: int,
    offset: int,
    key: str | None = None,
    desc: bool = True,
) -> list[dict[str, Any]]:
    """The rows ``offset`` to ``offset + limit`` of ``source`` where ``where`` holds, in
    ``order``. ``key``: the order's leading column when ``order`` is that column (never
    NULL) in direction ``desc``, then a tiebreak; only then is a deep page found in the
    index."""
    tail = "LIMIT ? OFFSET ?"
    if offset < DEFER_FROM or key is None:
        return conn.all(
            f"SELECT {columns} FROM {source} WHERE {where} ORDER BY {order} {tail}",
            [*params, limit, offset],
        )
    direction, before, from_ = ("DESC", ">", "<=") if desc else ("ASC", "<", ">=")
    boundary = conn.scalar(
        f"SELECT {key} FROM {source} WHERE {where} ORDER BY {key} {direction} LIMIT 1 OFFSET ?",
        [*params, offset],
    )
    if boundary is None:
        return []
    ahead = int(
        conn.scalar(
            f"SELECT COUNT(*) FROM {source} WHERE {where} AND {key} {before} ?",
            [*params, boundary],
        )
        or 0
    )
    return conn.all(
        f"SELECT {columns} FROM {source} WHERE {where} AND {key} {from_} ? ORDER BY {order} {tail}",
        [*params, boundary, limit, offset - ahead],
    )
