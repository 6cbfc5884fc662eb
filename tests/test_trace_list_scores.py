"""The trace list's scores column (``trace_scores``): each trace of the page with its
own and its observations' scores, newest first, values as the list shows them
(numbers, booleans, categories), and no score of another trace or project."""

from __future__ import annotations

import pytest

from helpers import event, ingest, iso
from lanterna.queries.traces import TraceParts, trace_list, trace_scores
from lanterna.store.traces import TraceQuery

pytestmark = pytest.mark.clickhouse


def test_a_pages_traces_with_their_scores_newest_first(api):
    events = [
        event("trace-create", {"id": f"t{i}", "timestamp": iso(seconds=-60 * i)}) for i in range(4)
    ]
    events.append(event("span-create", {"id": "o1", "traceId": "t1", "startTime": iso()}))
    scores = [
        ("s1", "t0", None, "quality", 0.5, "NUMERIC", -50),
        ("s2", "t0", None, "ok", 1.0, "BOOLEAN", -40),
        ("s3", "t1", "o1", "label", "good", "CATEGORICAL", -30),
        ("s4", "t1", None, "quality", 0.25, "NUMERIC", -20),
        ("s5", "t3", None, "quality", 1.0, "NUMERIC", -10),
    ]
    for sid, tid, oid, name, value, kind, at in scores:
        body = {"id": sid, "traceId": tid, "name": name, "value": value, "dataType": kind}
        body["timestamp"] = iso(seconds=at)
        if oid:
            body["observationId"] = oid
        events.append(event("score-create", body))
    assert ingest(api, *events)["errors"] == []
    other = api.new_project()  # same trace id, another project: not shown
    ingest(
        api,
        event("trace-create", {"id": "t0"}),
        event("score-create", {"id": "x", "traceId": "t0", "name": "quality", "value": 9.0}),
        auth=other.auth,
    )
    rt, pid = api.app.state.runtime, api.project.id
    got = rt.read_sync(lambda c: trace_scores(rt.store, c, pid, ["t0", "t1", "t2", "t0"]))
    shown = {
        tid: [(b.name, b.value, b.data_type, b.observation_id) for b in briefs]
        for tid, briefs in got.items()
    }
    assert shown == {
        "t0": [("ok", 1.0, "BOOLEAN", None), ("quality", 0.5, "NUMERIC", None)],
        "t1": [("quality", 0.25, "NUMERIC", None), ("label", "good", "CATEGORICAL", "o1")],
    }
    # At most ``limit``, the newest: t1's two (20 and 30 s ago), none of t0's.
    limited = rt.read_sync(lambda c: trace_scores(rt.store, c, pid, ["t0", "t1"], limit=2))
    assert {tid: [b.name for b in v] for tid, v in limited.items()} == {"t1": ["quality", "label"]}
    # The list page reads the same.
    items, total = rt.read_sync(
        lambda c: trace_list(
            rt.store, c, pid, TraceQuery(), limit=3, offset=0, parts=TraceParts(scores=True)
        )
    )
    assert total == 4
    assert [(i.row["id"], [b.name for b in i.scores]) for i in items] == [
        ("t0", ["ok", "quality"]),
        ("t1", ["quality", "label"]),
        ("t2", []),
    ]
