"""Observations by arrival, for evaluation rules that target observations."""

from __future__ import annotations

from ..db import Conn
from .sql import ddl


def up(conn: Conn) -> None:
    """``observations_arrival``: an observation's ``created_at`` is when the server first
    stored it (an update leaves it alone), so the evaluation worker reads the
    observations that arrived after a rule's cursor from this index, as it reads
    traces from ``traces_created``."""
    ddl(conn, "CREATE INDEX observations_arrival ON observations (project_id, created_at)")
