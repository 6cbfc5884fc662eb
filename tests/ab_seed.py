"""The seed guide's ``ab_test_prompts`` flow with server-side assignment, as data: two
versions of ``research_agent``, a ``user_rating`` score config, an A/B test between the
versions and traces of simulated users (each with the server's variant, as the SDK
computes it, and a rating; B is rated higher). Used by the API and the browser tests."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from lanterna.abtests.assign import variant_for

T0 = "2026-03-02T10:00:00.000Z"


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def prompts_and_score_config(api: Any) -> None:
    for text in ("Research v1: {{input}}", "Research v2, step by step: {{input}}"):
        body = {"name": "research_agent", "type": "text", "prompt": text, "labels": []}
        ok(api.post("/api/public/v2/prompts", json=body))
    ok(
        api.patch(
            "/api/public/v2/prompts/research_agent/versions/1", json={"newLabels": ["production"]}
        )
    )
    ok(
        api.post(
            "/api/public/score-configs",
            json={"name": "user_rating", "dataType": "NUMERIC", "minValue": 1, "maxValue": 5},
        )
    )


def definition(**extra: Any) -> dict[str, Any]:
    return {
        "name": "research-agent-prompt",
        "prompt": "research_agent",
        "variants": [
            {"name": "A", "weight": 50, "promptVersion": 1},
            {"name": "B", "weight": 50, "promptVersion": 2},
        ],
        "primaryMetric": "user_rating",
        "guardrailMetrics": ["cost", "errorRate"],
        "minimumDetectableEffect": 0.2,
        "salt": "seed-guide",
        **extra,
    }


def hour(i: int) -> str:
    return f"2026-03-02T{10 + i % 6:02d}:{i % 60:02d}:00.000Z"


def run_flow(api: Any, test: dict[str, Any], users: int = 300) -> dict[str, list[float]]:
    """The guide's ab_test_prompts for ``users`` users, 7/15 of them in A: each
    gets the server's variant (computed as the SDK does), its trace records it and a
    user_rating score follows; B is rated higher. Returns the ratings per variant.

    The split hashes the test's id, which the server draws at random, so which users
    land in which variant changes from run to run. The ratings do not: each variant
    draws from its own fixed stream, and the users are taken until each variant has
    its quota (so the verdict and the SRM check are the same every run; one shared stream
    left B's lead to the split and missed significance in about 0.6 % of runs)."""
    streams = {"A": np.random.default_rng(42), "B": np.random.default_rng(43)}
    ratings: dict[str, list[float]] = {"A": [], "B": []}
    batch = []
    quota, i = {"A": users * 7 // 15, "B": users - users * 7 // 15}, -1
    while len(ratings["A"]) + len(ratings["B"]) < users:
        i += 1
        user = f"user-{i}"
        variant = variant_for(test, user)
        if len(ratings[variant]) >= quota[variant]:
            continue
        trace_id = str(uuid.uuid4())
        mean = 3.3 if variant == "A" else 3.8
        rating = float(np.clip(np.round(streams[variant].normal(mean, 1)), 1, 5))
        ratings[variant].append(rating)
        trace = {
            "id": trace_id, "name": "ab_test_prompts", "timestamp": hour(i), "userId": user,
            "metadata": {"ab_test": True, "experiment": test["name"], "variant": variant},
            "tags": [f"ab-test:{test['name']}:{variant}"],
        }  # fmt: skip
        generation = {
            "id": str(uuid.uuid4()), "traceId": trace_id, "name": "llm", "startTime": hour(i),
            "endTime": hour(i), "promptName": "research_agent",
            "promptVersion": 1 if variant == "A" else 2,
            "costDetails": {"total": 0.010 if variant == "A" else 0.011},
        }  # fmt: skip
        score = {"id": str(uuid.uuid4()), "traceId": trace_id, "name": "user_rating",
                 "value": rating, "dataType": "NUMERIC"}  # fmt: skip
        for kind, body in (("trace-create", trace), ("generation-create", generation),
                           ("score-create", score)):  # fmt: skip
            batch.append({"id": str(uuid.uuid4()), "type": kind, "timestamp": T0, "body": body})
    reply = api.post("/api/public/ingestion", json={"batch": batch})
    assert reply.status_code == 207 and not reply.json()["errors"], reply.text
    return ratings
