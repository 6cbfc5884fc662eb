"""The official Langfuse 5.x SDK (``langfuse==5.0.4``, in ``.venvs/langfuse5``) runs
metrics queries against a live server and parses the answers: v2 through its
``api.metrics.metrics(query=...)``, v1 through the same SDK's HTTP client
(``tests/clients/lf5_metrics.py``). Expected values come from the data ingested here.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

import httpx
import pytest

from helpers import event, iso
from support import run_sdk_script

pytestmark = [pytest.mark.slow, pytest.mark.clickhouse]

FROM, TO = iso(seconds=-60), iso(seconds=7200)
#: (observation id, trace id, model, start, seconds taken, total tokens, cost)
GENERATIONS = [
    ("g-1", "t-1", "gpt-4o", 0.0, 1.2, 120, 0.012),
    ("g-2", "t-1", "gpt-4o", 10.0, 0.8, 80, 0.008),
    ("g-3", "t-2", "claude", 3600.0, 2.5, 300, 0.03),
    ("g-4", "t-2", "gpt-4o", 3610.0, 0.4, 40, 0.004),
]


def _seed(server: Any) -> None:
    batch = [
        event("trace-create", {"id": "t-1", "name": "chat", "userId": "u-1", "timestamp": iso()}),
        event("trace-create", {"id": "t-2", "name": "chat", "userId": "u-2",
                               "timestamp": iso(seconds=3600)}),
        event("score-create", {"id": "s-1", "traceId": "t-1", "name": "helpful",
                               "dataType": "BOOLEAN", "value": 1, "timestamp": iso(seconds=5)}),
        event("score-create", {"id": "s-2", "traceId": "t-2", "name": "helpful",
                               "dataType": "BOOLEAN", "value": 0,
                               "timestamp": iso(seconds=3605)}),
    ]  # fmt: skip
    for oid, tid, model, start, took, tokens, cost in GENERATIONS:
        batch.append(event("generation-create", {
            "id": oid, "traceId": tid, "name": "llm", "model": model,
            "startTime": iso(seconds=start), "endTime": iso(seconds=start + took),
            "usageDetails": {"input": tokens // 2, "output": tokens // 2, "total": tokens},
            "costDetails": {"total": cost}}))  # fmt: skip
    response = httpx.post(
        f"{server.url}/api/public/ingestion", json={"batch": batch}, auth=server.project.auth
    )
    assert response.status_code == 207 and response.json()["errors"] == [], response.text


def _query(view: str, metrics: list[tuple[str, str]], **more: Any) -> dict[str, Any]:
    return {
        "view": view,
        "metrics": [{"measure": m, "aggregation": a} for m, a in metrics],
        "fromTimestamp": FROM,
        "toTimestamp": TO,
        **more,
    }


def test_the_sdk_runs_v1_and_v2_queries_and_parses_the_answers(live_server):
    _seed(live_server)
    by_model = _query(
        "observations",
        [("count", "count"), ("totalCost", "sum"), ("latency", "p50"), ("latency", "histogram")],
        dimensions=[{"field": "providedModelName"}],
        orderBy=[{"field": "providedModelName", "direction": "asc"}],
        config={"bins": 2},
    )
    hourly = _query("observations", [("totalTokens", "sum")], timeDimension={"granularity": "hour"})
    helpful = _query("scores-boolean", [("value", "avg"), ("count", "count")])
    per_user = _query(
        "traces",
        [("totalCost", "sum"), ("count", "count")],
        dimensions=[{"field": "userId"}],
        orderBy=[{"field": "sum_totalCost", "direction": "desc"}],
    )
    bad_v2 = _query("observations", [("count", "count")], dimensions=[{"field": "userId"}])
    queries = [
        {"version": 2, "query": by_model},
        {"version": 2, "query": hourly},
        {"version": 2, "query": helpful},
        {"version": 1, "query": per_user},
        {"version": 1, "query": by_model},
        {"version": 2, "query": bad_v2},
    ]
    result = run_sdk_script("langfuse5", "lf5_metrics.py", live_server, json.dumps(queries))
    v2_models, v2_hourly, v2_helpful, v1_users, v1_models, refused = result["answers"]

    assert v2_models["type"] == "MetricsV2Response", v2_models
    assert [r["providedModelName"] for r in v2_models["data"]] == ["claude", "gpt-4o"]
    for row in v2_models["data"]:
        mine = [g for g in GENERATIONS if g[2] == row["providedModelName"]]
        latencies = sorted(g[4] * 1000 for g in mine)
        assert row["count_count"] == len(mine)
        assert row["sum_totalCost"] == pytest.approx(sum(g[6] for g in mine))
        assert row["p50_latency"] == pytest.approx(statistics.median(latencies))
        assert sum(height for _, _, height in row["histogram_latency"]) == len(mine)
    # v1 answers the same query the same way.
    assert v1_models == v2_models

    assert v2_hourly["data"] == [
        {"time_dimension": "2024-05-01T10:00:00.000Z", "sum_totalTokens": 200},
        {"time_dimension": "2024-05-01T11:00:00.000Z", "sum_totalTokens": 340},
    ]
    assert v2_helpful["data"] == [{"avg_value": 0.5, "count_count": 2}]
    assert v1_users["data"] == [
        {"userId": "u-2", "sum_totalCost": pytest.approx(0.034), "count_count": 1},
        {"userId": "u-1", "sum_totalCost": pytest.approx(0.02), "count_count": 1},
    ]
    # The SDK maps the 400 to its Error, with our message naming the dimension.
    assert (refused["error"], refused["status"]) == ("Error", 400), refused
    assert "'userId'" in refused["body"]["message"]
