"""The paged, time-filtered list pages (sessions, users): query parsing and context.

Both lists take the same ``range``/``from``/``to``/``page`` query and render the same
filter form and pager, so the parsing and the template context live here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request

from ...store.filters import FilterError
from .ranges import LIST_RANGES, time_range

PAGE_SIZE = 50


@dataclass(frozen=True)
class ListQuery:
    """One request's page number and time window; a bad window becomes ``error``."""

    params: dict[str, str]
    number: int
    start: datetime | None
    end: datetime | None
    error: str

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.number - 1) * PAGE_SIZE

    def context(self, rows: list[dict[str, Any]], total: int) -> dict[str, Any]:
        """What the list template needs: the rows, the filter form and the pager."""
        return {
            "rows": rows,
            "total": total,
            "p": {**self.params, "page": self.number},
            "current": self.number,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "ranges": tuple(LIST_RANGES),
            "error": self.error,
        }


def list_query(request: Request) -> ListQuery:
    """Read ``range``/``from``/``to``/``page``; junk page numbers mean page 1."""
    q = request.query_params
    params = {k: q.get(k, "") for k in ("range", "from", "to")}
    try:
        number = max(1, int(q.get("page") or 1))
    except ValueError:
        number = 1
    try:
        start, end = time_range(params)
    except FilterError as exc:
        # An unreadable custom date shows as a message over an unfiltered list, not a 4xx.
        return ListQuery(params, number, None, None, str(exc))
    return ListQuery(params, number, start, end, "")
