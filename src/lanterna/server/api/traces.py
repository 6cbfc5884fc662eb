"""Traces: ``GET /api/public/traces``, ``GET/DELETE /api/public/traces/{traceId}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ...store import traces as q
from ...store.db import Conn
from ...timeutil import seconds_between
from ..auth import ProjectKey
from ..errors import not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import observation_json, score_json, trace_json

router = APIRouter()


def _full_trace(conn: Conn, project_id: str, trace_id: str) -> dict[str, Any] | None:
    row = q.get_trace(conn, project_id, trace_id)
    if row is None:
        return None
    d = conn.dialect
    rows = q.observations_of(conn, project_id, trace_id)
    out = trace_json(d, row, project_id)
    out["observations"] = [observation_json(d, o) for o in rows]
    out["scores"] = [score_json(d, s) for s in q.scores_of(conn, project_id, trace_id)]
    costs = [o["total_cost"] for o in rows if o["total_cost"] is not None]
    out["totalCost"] = float(sum(costs)) if costs else 0.0
    starts = [d.ts_parse(o["start_time"]) for o in rows]
    ends = [d.ts_parse(o["end_time"] or o["start_time"]) for o in rows]
    out["latency"] = seconds_between(min(starts), max(ends)) if rows else 0.0
    return out


@router.get("/api/public/traces/{trace_id:path}")
def get_trace(request: Request, trace_id: str, principal: ProjectKey) -> JSON:
    """A trace with its observations and scores; 404 when the project has no such trace."""
    found = runtime(request).read_sync(lambda c: _full_trace(c, principal.project_id, trace_id))
    if found is None:
        raise not_found(f"Trace {trace_id}")
    return JSON(found)
