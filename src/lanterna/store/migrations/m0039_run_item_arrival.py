"""Dataset run items by arrival, for evaluation rules that target experiments."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """``dataset_run_items_arrival``: a run item's ``updated_at`` is when the server stored
    it (run items are never rewritten), so the evaluation worker reads the items that
    arrived after its cursor from this index (keyed by time: inserts append)."""
    ddl(
        conn,
        "CREATE INDEX dataset_run_items_arrival ON dataset_run_items (project_id, updated_at)",
    )
