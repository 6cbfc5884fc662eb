"""Cost per trace, session, user and day, read through the public API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cost_helpers import generation

from helpers import T0, event, ingest, iso
from lanterna.analytics import metrics

DAY = 86400


def chat(prompt: int, completion: int) -> dict[str, Any]:
    return {"usageDetails": {"prompt_tokens": prompt, "completion_tokens": completion}}


def seed(api: Any) -> None:
    """Two users over two days; generations with built-in, provided and no prices."""
    ingest(
        api,
        event("trace-create", {"id": "t1", "userId": "alice", "sessionId": "s1", "name": "chat",
                               "tags": ["prod", "web"], "timestamp": iso()}),
        event("generation-create", generation("g1", "gpt-4o", "t1", **chat(1000, 100))),
        event("generation-create", generation("g2", "gpt-4o-mini", "t1", **chat(2000, 200))),
        event("span-create", {"id": "sp1", "traceId": "t1", "name": "retrieve"}),
        event("trace-create", {"id": "t2", "userId": "alice", "sessionId": "s1", "name": "chat",
                               "tags": ["prod"], "timestamp": iso(seconds=DAY + 60)}),
        event("generation-create", generation("g3", "gpt-4o", "t2", **chat(500, 50),
                                              costDetails={"total": 0.25}), at=DAY + 60),
        event("trace-create", {"id": "t3", "userId": "bob", "name": "batch",
                               "timestamp": iso(seconds=DAY + 120), "environment": "staging"}),
        event("generation-create", generation("g4", "claude-3-haiku-20240307", "t3",
                                              **chat(4000, 400)), at=DAY + 120),
        event("generation-create", generation("g5", "acme-llm", "t3", **chat(10, 1)),
              at=DAY + 120),
        event("trace-create", {"id": "t4", "name": "anonymous", "timestamp": iso()}),
    )  # fmt: skip


G1 = 1000 * 2.5e-6 + 100 * 1e-5  # gpt-4o
G2 = 2000 * 0.15e-6 + 200 * 0.6e-6  # gpt-4o-mini
G3 = 0.25  # provided
G4 = 4000 * 0.25e-6 + 400 * 1.25e-6  # claude-3-haiku


def costs(api: Any) -> dict[str, float]:
    rows = api.get("/api/public/observations", params={"limit": 100}).json()["data"]
    return {o["id"]: o["calculatedTotalCost"] or 0.0 for o in rows}


@pytest.mark.clickhouse  # also with the ClickHouse event store
def test_trace_total_cost_is_the_sum_of_its_observations(api):
    seed(api)
    by_obs = costs(api)
    assert by_obs["g1"] == pytest.approx(G1) and by_obs["g4"] == pytest.approx(G4)
    traces = {t["id"]: t for t in api.get("/api/public/traces").json()["data"]}
    assert traces["t1"]["totalCost"] == pytest.approx(G1 + G2)
    assert traces["t3"]["totalCost"] == pytest.approx(G4)  # acme-llm has no price
    assert traces["t4"]["totalCost"] == 0


@pytest.mark.clickhouse  # also with the ClickHouse event store
def test_a_session_carries_its_cost_and_tokens(api):
    seed(api)
    session = api.get("/api/public/sessions/s1").json()
    by_obs = costs(api)
    assert session["totalCost"] == pytest.approx(by_obs["g1"] + by_obs["g2"] + by_obs["g3"])
    assert session["totalCost"] == pytest.approx(G1 + G2 + G3)
    assert (session["inputTokens"], session["outputTokens"]) == (3500, 350)
    assert session["totalTokens"] == 3850
    assert session["countObservations"] == 4
    assert [t["id"] for t in session["traces"]] == ["t1", "t2"]


@pytest.mark.clickhouse  # also with the ClickHouse event store
def test_users_list_and_one_user(api):
    seed(api)
    page = api.get("/api/public/users").json()
    assert page["meta"] == {"page": 1, "limit": 50, "totalItems": 2, "totalPages": 1}
    assert [u["userId"] for u in page["data"]] == ["bob", "alice"]  # last seen first
    alice = page["data"][1]
    assert alice == {
        "userId": "alice",
        "firstSeen": "2024-05-01T10:00:00.000000Z",
        "lastSeen": "2024-05-02T10:01:00.000000Z",
        "countTraces": 2,
        "countObservations": 4,
        "inputTokens": 3500,
        "outputTokens": 350,
        "totalTokens": 3850,
        "totalCost": pytest.approx(G1 + G2 + G3),
    }
    assert api.get("/api/public/users/alice").json() == alice
    bob = api.get("/api/public/users/bob").json()
    assert (bob["countTraces"], bob["totalCost"]) == (1, pytest.approx(G4))
    assert bob["inputTokens"] == 4010  # the unpriced model's tokens still count
    assert api.get("/api/public/users/carol").status_code == 404

    first_day = api.get("/api/public/users", params={"toTimestamp": iso(seconds=DAY)}).json()
    assert [(u["userId"], u["countTraces"]) for u in first_day["data"]] == [("alice", 1)]
    staging = api.get("/api/public/users", params={"environment": "staging"}).json()
    assert [u["userId"] for u in staging["data"]] == ["bob"]
    paged = api.get("/api/public/users", params={"limit": 1, "page": 2}).json()
    assert [u["userId"] for u in paged["data"]] == ["alice"]
    assert paged["meta"]["totalPages"] == 2
    bad = api.get("/api/public/users", params={"fromTimestamp": "yesterday"})
    assert bad.status_code == 400


@pytest.mark.clickhouse  # also with the ClickHouse event store
def test_daily_metrics_in_langfuse_shape(api):
    seed(api)
    page = api.get("/api/public/metrics/daily").json()
    assert page["meta"] == {"page": 1, "limit": 50, "totalItems": 2, "totalPages": 1}
    second, first = page["data"]
    assert first["date"] == "2024-05-01" and second["date"] == "2024-05-02"
    assert (first["countTraces"], first["countObservations"]) == (2, 3)
    assert first["totalCost"] == pytest.approx(G1 + G2)
    assert first["usage"] == [
        {"model": "gpt-4o", "inputUsage": 1000, "outputUsage": 100, "totalUsage": 1100,
         "countTraces": 1, "countObservations": 1, "totalCost": pytest.approx(G1)},
        {"model": "gpt-4o-mini", "inputUsage": 2000, "outputUsage": 200, "totalUsage": 2200,
         "countTraces": 1, "countObservations": 1, "totalCost": pytest.approx(G2)},
    ]  # fmt: skip
    assert second["totalCost"] == pytest.approx(G3 + G4)
    assert [u["model"] for u in second["usage"]] == ["acme-llm", "claude-3-haiku-20240307",
                                                     "gpt-4o"]  # fmt: skip
    assert second["usage"][0]["totalCost"] == 0

    def dates(**params: Any) -> list[tuple[str, int]]:
        body = api.get("/api/public/metrics/daily", params=params).json()
        return [(d["date"], d["countTraces"]) for d in body["data"]]

    assert dates(userId="bob") == [("2024-05-02", 1)]
    assert dates(traceName="chat") == [("2024-05-02", 1), ("2024-05-01", 1)]
    assert dates(tags=["prod", "web"]) == [("2024-05-01", 1)]
    assert dates(environment="staging") == [("2024-05-02", 1)]
    assert dates(fromTimestamp=iso(seconds=DAY)) == [("2024-05-02", 2)]
    assert dates(limit=1, page=2) == [("2024-05-01", 2)]
    assert api.get("/api/public/metrics/daily", params={"limit": 0}).status_code == 400


def test_daily_metrics_users_and_dashboard_agree(api):
    """One definition of each metric: the daily metrics API, the users API and the
    dashboard's totals give the same traces, observations, tokens and cost."""

    seed(api)
    pid = api.project.id
    rt = api.app.state.runtime

    def overview(**filters: Any) -> dict[str, Any]:
        scope = metrics.Scope(pid, T0 - timedelta(hours=1), T0 + timedelta(days=2), **filters)
        return rt.read_sync(lambda c: metrics.overview(c, scope))["totals"]

    days = api.get("/api/public/metrics/daily").json()["data"]
    totals = overview()
    assert totals["traces"] == sum(d["countTraces"] for d in days) == 4
    assert totals["observations"] == sum(d["countObservations"] for d in days) == 6
    assert totals["cost"] == pytest.approx(sum(d["totalCost"] for d in days))
    by_model = [u for d in days for u in d["usage"]]
    assert totals["totalTokens"] == sum(u["totalUsage"] for u in by_model)

    # A scope the hourly rollups do not key (a user, a trace name) reads raw rows.
    for user in api.get("/api/public/users").json()["data"]:
        mine = overview(user_id=user["userId"])
        assert mine["traces"] == user["countTraces"]
        assert mine["observations"] == user["countObservations"]
        assert mine["cost"] == pytest.approx(user["totalCost"])
        assert (mine["inputTokens"], mine["outputTokens"]) == (
            user["inputTokens"],
            user["outputTokens"],
        )
    chats = api.get("/api/public/metrics/daily", params={"traceName": "chat"}).json()["data"]
    named = overview(trace_name="chat")
    assert named["traces"] == sum(d["countTraces"] for d in chats) == 2
    assert named["cost"] == pytest.approx(sum(d["totalCost"] for d in chats))
    assert overview(environments=["staging"])["traces"] == 1
