"""A trace list of one user (the user page's traces, ``?userId=``): its count, its pages
and its totals row hold that user's traces and no one else's, after traces move to
another user and are deleted, on every backend (ClickHouse finds them in its copy of
the traces ordered by user, ``store/clickhouse/key_totals.py``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from helpers import T0, event, ingest, iso
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


@pytest.mark.parametrize("busy", [False, True])
def test_one_users_traces_with_a_name_and_a_time_range(api, monkeypatch, busy):
    """A user's list narrowed by name and time (the UI's filters) counts and totals the
    same traces as the raw rows, whether the user's traces are few (found by key) or
    many (ClickHouse: counted in the copy ordered by user, which holds name and time)."""
    from lanterna.store import traces as traces_module

    if busy:
        monkeypatch.setattr(traces_module, "FEW_USER_TRACES", 0)
    batch = []
    for i in range(12):
        body = {"id": f"t{i}", "userId": "ann" if i % 4 else "bob", "timestamp": iso(seconds=i)}
        body["name"] = "chat" if i % 2 else "search"
        batch.append(event("trace-create", body))
        batch.append(
            event(
                "span-create",
                {"id": f"s{i}", "traceId": f"t{i}", "startTime": iso(seconds=i)},
            )
        )
    ingest(api, *batch)
    ingest(api, event("trace-create", {"id": "t5", "name": "search"}))  # leaves "chat"
    params = {"userId": "ann", "name": "chat", "fromTimestamp": iso(seconds=2), "limit": 2}
    ids: list[str] = []
    for page in (1, 2, 3):
        body = api.get("/api/public/traces", params={**params, "page": page}).json()
        ids += [t["id"] for t in body["data"]]
        assert body["meta"]["totalItems"] == 4
    assert ids == ["t11", "t9", "t7", "t3"]
    rt = api.app.state.runtime
    pid = api.project.id
    query = TraceQuery(user_id="ann", name="chat", from_timestamp=T0 + timedelta(seconds=2))
    totals = rt.read_sync(lambda c: rt.store.traces.trace_totals(c, pid, query, limit=100))
    assert (totals.traces, totals.more) == (4, False)
