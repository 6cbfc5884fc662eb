"""A project's masking rules (``masking_rules``, migration 0030): stored, read, and
applied to a batch's domain events at the start of the write path
(:func:`lanterna.store.write.prepare_events`), so nothing unmasked is ever stored.

The compiled rules are cached per project for ``CACHE_SECONDS`` (another process may
change them; changes through this process apply at once, :func:`forget`). A project
without rules costs one dictionary lookup per batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from ..ingest.events import DomainEvent
from ..ingest.masking import Masker, compile_rules
from ..timeutil import now
from .db import Conn

CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, int, Masker | None]] = {}
_generation = [0]
_lock = threading.Lock()


def get_rules(conn: Conn, project_id: str) -> list[dict[str, Any]]:
    """The project's rules as stored (checked by ``ingest.masking.check_rules``)."""
    row = conn.one("SELECT rules FROM masking_rules WHERE project_id = ?", (project_id,))
    return list(conn.dialect.json_out(row["rules"])) if row else []


def set_rules(conn: Conn, project_id: str, rules: list[dict[str, Any]]) -> None:
    """Replace the project's rules (already checked). Runs in the writer."""
    d = conn.dialect
    conn.run(
        "INSERT INTO masking_rules (project_id, rules, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (project_id) DO UPDATE SET rules = excluded.rules,"
        " updated_at = excluded.updated_at",
        (project_id, d.json(rules), d.ts(now())),
    )


def forget(project_id: str) -> None:
    """Drop the project's cached rules (call after a committed change)."""
    with _lock:
        _generation[0] += 1
        _cache.pop(project_id, None)


def masker(conn: Conn, project_id: str) -> Masker | None:
    """The project's compiled rules (None: none), read at most every ``CACHE_SECONDS``."""
    hit = _cache.get(project_id)
    if hit is not None and hit[0] > time.monotonic() and hit[1] == _generation[0]:
        return hit[2]
    generation = _generation[0]
    compiled = compile_rules(get_rules(conn, project_id))
    with _lock:
        if generation == _generation[0]:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[project_id] = (time.monotonic() + CACHE_SECONDS, generation, compiled)
    return compiled


def masked(conn: Conn, project_id: str, events: Iterable[DomainEvent]) -> Iterable[DomainEvent]:
    """``events`` with the project's rules applied (the same events when it has none)."""
    m = masker(conn, project_id)
    return events if m is None else m.events(events)
