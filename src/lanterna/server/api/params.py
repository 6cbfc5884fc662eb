"""Query parameters shared by the list endpoints: pages, field groups, 400s for bad input."""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query

from ... import _json
from ...store.filters import FilterError
from ...timeutil import parse_ts
from ..doc_models import DocModel
from ..errors import ApiError

DEFAULT_LIMIT = 50
MAX_PAGE_LIMIT = 100
#: The highest ``page`` a list accepts: its offset stays far inside a 64-bit integer.
MAX_PAGE = 1_000_000_000
#: The highest prompt version (versions are 32-bit integers in the database).
MAX_VERSION = 2**31 - 1

#: A v1 list's ``page`` parameter: 1 to :data:`MAX_PAGE`, or absent (page 1).
PageParam = Annotated[int | None, Query(ge=1, le=MAX_PAGE)]
#: A list's ``limit`` as documented: 1 to :data:`MAX_PAGE_LIMIT`, or absent (50). Checked
#: by :func:`page_of` (its 400 names the parameter), so the schema only states the bounds.
LimitParam = Annotated[
    int | None, Query(json_schema_extra={"minimum": 1, "maximum": MAX_PAGE_LIMIT})
]


def one_of(values: tuple[str, ...], alias: str | None = None) -> Any:
    """A query parameter documented as one of ``values``; the route checks it (its 400
    names the parameter and the values)."""
    return Query(alias=alias, json_schema_extra={"enum": list(values)})


#: A prompt ``version`` parameter: 1 to :data:`MAX_VERSION`, or absent.
VersionParam = Annotated[int | None, Query(ge=1, le=MAX_VERSION)]


class Meta(DocModel):
    """The page of a list (the OpenAPI shape of :meth:`Page.envelope`'s ``meta``)."""

    page: int
    limit: int
    totalItems: int
    totalPages: int


class Message(DocModel):
    """The answer of a delete."""

    message: str


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a v1 list: ``page`` starts at 1."""

    page: int
    limit: int

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.page - 1) * self.limit

    def meta(self, total: int) -> dict[str, int]:
        """The ``meta`` of the list envelope."""
        return {
            "page": self.page,
            "limit": self.limit,
            "totalItems": total,
            "totalPages": math.ceil(total / self.limit),
        }

    def envelope(self, data: list[Any], total: int) -> dict[str, Any]:
        """``{data, meta}``."""
        return {"data": data, "meta": self.meta(total)}


def page_of(page: int | None, limit: int | None, *, max_limit: int = MAX_PAGE_LIMIT) -> Page:
    """Validate ``page`` (1..:data:`MAX_PAGE`, default 1) and ``limit`` (1..max, default
    50): what the routes' documents say, also where a route reads them itself."""
    page = 1 if page is None else page
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= page <= MAX_PAGE:
        raise ApiError(400, "Invalid request data", f"page: must be between 1 and {MAX_PAGE}")
    if not 1 <= limit <= max_limit:
        raise ApiError(400, "Invalid request data", f"limit: must be between 1 and {max_limit}")
    return Page(page, limit)


def field_groups(
    value: str | None, known: tuple[str, ...], default: tuple[str, ...]
) -> frozenset[str]:
    """The field groups named in a ``fields=a,b`` parameter.

    Unknown names are ignored, as Langfuse does, so a newer client that asks for a group
    we do not serve still gets an answer. ``core`` is always included.
    """
    if value is None or not value.strip():
        return frozenset(default)
    asked = {part.strip() for part in value.split(",")}
    return frozenset({"core"} | (asked & set(known)))


def order_by(value: str | None, default: tuple[str, bool]) -> tuple[str, bool]:
    """Parse ``field.asc|desc`` into ``(field, descending)``; 400 when malformed."""
    if value is None or value == "":
        return default
    field, dot, direction = value.rpartition(".")
    if not dot or not field or direction.lower() not in ("asc", "desc"):
        raise ApiError(
            400,
            "Invalid request data",
            f"orderBy: expected 'field.asc' or 'field.desc', got {value!r}",
        )
    return field, direction.lower() == "desc"


# --- cursor lists (v2 observations, v3 scores) ---------------------------------------


def encode_cursor(timestamp: str, row_id: str) -> str:
    """The opaque cursor after a row: base64url of its sort key ``[timestamp, id]``."""
    return base64.urlsafe_b64encode(_json.dumpb([timestamp, row_id])).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The sort key inside a cursor; :class:`FilterError` when it is not one of ours."""
    try:
        start, row_id = _json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(row_id, str):
            raise ValueError("id")
        # A row's own time: compared, never computed with, so rows stored before
        # timeutil.MAX_TS was enforced still page.
        return parse_ts(start, bounded=False), row_id
    except (ValueError, TypeError, binascii.Error, _json.JSONDecodeError):
        raise FilterError("cursor: not a cursor returned by this endpoint") from None
