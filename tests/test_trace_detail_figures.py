"""A trace's page and API read its latency and cost from the observation rows they
fetch anyway (one statement less): the figures must be those the trace list reads in
SQL (``trace_figures``) and those a user computes from the observations."""

from __future__ import annotations

import math

import pytest

from helpers import event, ingest, iso
from lanterna.server.ui.traces_page import trace_view

pytestmark = pytest.mark.clickhouse

# (start s, end s or None, total cost or None) per observation, relative to the trace.
TRACES: dict[str, list[tuple[float, float | None, float | None]]] = {
    # The latest end is not the last start's; costs that do not sum exactly in floats.
    "mixed": [(0.0, 1.5, 0.1), (0.25, 3.000001, 0.2), (2.0, 2.5, 0.3), (2.5, None, None)],
    # An open observation that starts last: latency runs to its start.
    "open last": [(0.0, 1.0, None), (4.123456, None, None)],
    "one": [(1.0, 1.0, 0.000123)],
    "no cost": [(0.0, 0.5, None), (0.1, 0.2, None)],
}


def _seed(api) -> None:
    events = []
    for n, (tid, observations) in enumerate(TRACES.items()):
        base = -600.0 * (n + 1)
        events.append(event("trace-create", {"id": tid, "timestamp": iso(seconds=base)}))
        for i, (start, end, cost) in enumerate(observations):
            body: dict[str, object] = {
                "id": f"{tid}-{i}",
                "traceId": tid,
                "name": f"step {i}",
                "startTime": iso(seconds=base + start),
            }
            if end is not None:
                body["endTime"] = iso(seconds=base + end)
            if cost is not None:
                body["costDetails"] = {"total": cost}
            events.append(event("generation-create", body))
    events.append(event("trace-create", {"id": "empty", "timestamp": iso(seconds=-10)}))
    assert ingest(api, *events)["errors"] == []


def test_detail_figures_equal_the_lists_and_the_observations(api):
    _seed(api)
    rt, pid = api.app.state.runtime, api.project.id
    listed, _ = rt.read_sync(lambda c: rt.store.traces.trace_figures(c, pid, [*TRACES, "empty"]))
    for tid, observations in TRACES.items():
        ends = [end if end is not None else start for start, end, _ in observations]
        latency = max(ends) - min(start for start, _, _ in observations)
        cost = math.fsum(c for _, _, c in observations if c is not None)
        got = api.get(f"/api/public/traces/{tid}", auth=api.auth).json()
        assert got["latency"] == pytest.approx(latency, abs=1e-6), tid
        assert got["totalCost"] == pytest.approx(cost, rel=1e-12, abs=0), tid
        assert (got["latency"], got["totalCost"]) == pytest.approx(listed[tid], rel=1e-12), tid
        assert len(got["observations"]) == len(observations), tid
    # No observations: nothing to sum (the API writes 0 for both, as before).
    empty = api.get("/api/public/traces/empty", auth=api.auth).json()
    assert "empty" not in listed
    assert empty["observations"] == []
    assert (empty["latency"], empty["totalCost"]) == (0, 0)
    # The page's view has the same figures.
    view = rt.read_sync(lambda c: trace_view(rt.store, c, pid, "mixed"))
    assert (view["latency"], view["cost"]) == pytest.approx(listed["mixed"], rel=1e-12)
