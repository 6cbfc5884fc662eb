"""The process-wide client, read on every observed call (kept in a module of its own so
that the hot path reads one module attribute and imports nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Lanterna

#: The client ``@observe`` and ``context`` use; set by the first ``Lanterna(...)`` or by
#: ``get_client()``.
client: Lanterna | None = None
