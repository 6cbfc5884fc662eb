"""The process-wide client, read on every observed call (kept in a module of its own so
that the hot path reads one module attribute and imports nothing)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Lanterna
    from .records import Observation

#: The client ``@observe`` and ``context`` use; set by the first ``Lanterna(...)`` or by
#: ``get_client()``.
client: Lanterna | None = None

#: The observation of the innermost observed call or block, or None outside any
#: (``observe.CURRENT``; here so that modules the client imports, such as ``ab_tests``,
#: read it without importing ``observe``).
CURRENT: ContextVar[Observation | None] = ContextVar("lanterna_observation", default=None)
