"""Per-trace aggregates for a page of the trace list (beyond latency and cost, which
``store.traces.trace_metrics`` defines): tokens, observation count and the worst level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..store import scores as score_store
from ..store.db import Conn
from ..store.filters import Condition

#: Levels from least to most severe; a trace's level is its worst observation's.
LEVELS = ("DEBUG", "DEFAULT", "WARNING", "ERROR")
_SEVERITY = "CASE level WHEN 'ERROR' THEN 3 WHEN 'WARNING' THEN 2 WHEN 'DEFAULT' THEN 1 ELSE 0 END"


@dataclass(slots=True)
class TraceRollup:
    """What a trace's observations add up to."""

    observations: int = 0
    tokens: int = 0
    level: str = "DEFAULT"
    errors: int = 0


@dataclass(slots=True)
class ScoreBrief:
    """A score as the trace list shows it."""

    name: str
    value: Any
    data_type: str
    observation_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def trace_rollups(conn: Conn, project_id: str, trace_ids: Sequence[str]) -> dict[str, TraceRollup]:
    """``trace id -> TraceRollup`` for up to a page of traces, in one grouped query."""
    ids = list(dict.fromkeys(trace_ids))
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    rows = conn.all(
        "SELECT trace_id, COUNT(*) AS n, COALESCE(SUM(usage_total), 0) AS tokens,"
        f" MAX({_SEVERITY}) AS severity,"
        " SUM(CASE WHEN level = 'ERROR' THEN 1 ELSE 0 END) AS errors"
        f" FROM observations WHERE project_id = ? AND trace_id IN ({marks}) GROUP BY trace_id",
        [project_id, *ids],
    )
    return {
        r["trace_id"]: TraceRollup(
            observations=int(r["n"]),
            tokens=int(r["tokens"] or 0),
            level=LEVELS[int(r["severity"] or 0)],
            errors=int(r["errors"] or 0),
        )
        for r in rows
    }


def trace_scores(
    conn: Conn, project_id: str, trace_ids: Sequence[str], *, limit: int = 1000
) -> dict[str, list[ScoreBrief]]:
    """``trace id -> its scores`` (newest first) for a page of traces."""
    ids = list(dict.fromkeys(trace_ids))
    if not ids:
        return {}
    query = score_store.ScoreQuery(filters=[Condition("stringOptions", "traceId", "any of", ids)])
    rows, _total = score_store.list_scores(conn, project_id, query, limit=limit, offset=0)
    out: dict[str, list[ScoreBrief]] = {}
    for r in rows:
        value = r["value"] if r["data_type"] in ("NUMERIC", "BOOLEAN") else r["string_value"]
        out.setdefault(r["trace_id"], []).append(
            ScoreBrief(r["name"], value, r["data_type"], r["observation_id"])
        )
    return out
