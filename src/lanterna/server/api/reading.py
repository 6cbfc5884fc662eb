"""The two reads most list and detail routes make: a page of shaped rows in the v1
envelope, and one shaped row or a 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...store.db import Conn
from ..errors import not_found
from ..responses import JSON
from ..runtime import Runtime
from .params import Page

#: Reads one page: ``(conn, page) -> (shaped rows, total)``.
PageRead = Callable[[Conn, Page], tuple[list[dict[str, Any]], int]]


async def page_json(rt: Runtime, paging: Page, read: PageRead) -> JSON:
    """``{data, meta}`` of the page ``read`` gives, read on a read connection."""

    def work(conn: Conn) -> dict[str, Any]:
        data, total = read(conn, paging)
        return paging.envelope(data, total)

    return JSON(await rt.read(work))


async def one_json(rt: Runtime, read: Callable[[Conn], dict[str, Any] | None], what: str) -> JSON:
    """The shaped row ``read`` gives, or a 404 naming ``what``."""
    found = await rt.read(read)
    if found is None:
        raise not_found(what)
    return JSON(found)
