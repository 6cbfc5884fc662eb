"""A trace list of one user (the user page's traces, ``?userId=``): its count, its pages
and its totals row hold that user's traces and no one else's, after traces move to
another user and are deleted, on every backend (ClickHouse finds them in its copy of
the traces ordered by user, ``store/clickhouse/key_totals.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import event, ingest, iso
from lanterna.store.traces import TraceQuery

pytestmark = pytest.mark.clickhouse


def _ids(api: Any, user: str, limit: int) -> tuple[list[str], int]:
    ids: list[str] = []
    page, total = 1, -1
    while True:
        body = api.get(
            "/api/public/traces", params={"userId": user, "limit": limit, "page": page}
        ).json()
        total = body["meta"]["totalItems"]
        ids += [t["id"] for t in body["data"]]
        if not body["data"]:
            return ids, total
        page += 1


def _totals(api: Any, user: str, limit: int) -> Any:
    rt = api.app.state.runtime
    pid = api.project.id
    return rt.read_sync(
        lambda c: rt.store.traces.trace_totals(c, pid, TraceQuery(user_id=user), limit=limit)
    )


def test_one_users_traces_follow_moves_and_deletes(api):
    batch = []
    for i in range(9):
        user = "ann" if i % 3 else "bob"
        batch.append(
            event("trace-create", {"id": f"t{i}", "userId": user, "timestamp": iso(seconds=i)})
        )
        batch.append(
            event(
                "generation-create",
                {
                    "id": f"g{i}",
                    "traceId": f"t{i}",
                    "startTime": iso(seconds=i),
                    "usageDetails": {"input": 10, "output": 1 + i},
                    "costDetails": {"total": 0.5},
                },
            )
        )
    ingest(api, *batch)
    ann = [f"t{i}" for i in reversed(range(9)) if i % 3]
    assert _ids(api, "ann", 4) == (ann, 6)
    # t4 moves to bob, t8 is deleted: ann keeps t7, t5, t2, t1
    ingest(api, event("trace-create", {"id": "t4", "userId": "bob"}))
    assert api.delete("/api/public/traces/t8").status_code == 200
    assert _ids(api, "ann", 3) == (["t7", "t5", "t2", "t1"], 4)
    assert _ids(api, "bob", 50) == (["t6", "t4", "t3", "t0"], 4)
    assert _ids(api, "nobody", 50) == ([], 0)

    totals = _totals(api, "ann", 100)
    assert (totals.traces, totals.more) == (4, False)
    assert totals.cost == pytest.approx(2.0)
    assert totals.tokens == sum(11 + i for i in (7, 5, 2, 1))
    first_two = _totals(api, "ann", 2)  # the latest two, and more
    assert (first_two.traces, first_two.more) == (2, True)
    assert first_two.tokens == (11 + 7) + (11 + 5)
