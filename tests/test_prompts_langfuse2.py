"""The official Langfuse 2.x SDK creates, fetches, compiles and links prompts with no change;
and the seed guide's prompt examples (sections 4 and 5.3) on it."""

from __future__ import annotations

import json

import httpx
import pytest

from test_langfuse2_client import run_client

pytestmark = pytest.mark.slow


def test_langfuse2_prompts_end_to_end(live_server):
    result = run_client("lf2_prompts.py", live_server)
    assert result["created"] == [1, 2, 1]
    assert result["production"] == {
        "version": 1,
        "prompt": "You are a research agent. Topic: {{topic}}",
        "config": {"model": "gpt-4", "temperature": 0.7},
        "labels": ["production"],
    }
    assert result["latest_version"] == 2 and result["by_version"] == 2
    assert result["compiled"] == "You are a research agent. Topic: whales"
    assert result["chat_compiled"] == [
        {"role": "system", "content": "You triage for ops."},
        {"role": "user", "content": "why?"},
    ]
    assert result["missing"] != "no error"  # a 404 surfaces as an SDK error
    assert result["fallback_compiled"] == "fallback 1" and result["fallback_is_fallback"]

    with httpx.Client(base_url=live_server.url, auth=live_server.project.auth) as client:
        trace = client.get(f"/api/public/traces/{result['trace_id']}").json()
        generation = next(o for o in trace["observations"] if o["type"] == "GENERATION")
        assert (generation["promptName"], generation["promptVersion"]) == ("research_agent_v1", 1)
        prompt_v1 = client.get("/api/public/v2/prompts/research_agent_v1?version=1").json()
        assert generation["promptId"] == prompt_v1["id"]
        low = client.get(f"/api/public/traces/{result['low_level_trace_id']}").json()
        assert [(o["promptName"], o["promptVersion"]) for o in low["observations"]] == [
            ("research_agent_v1", 2)
        ]
        metrics = client.get("/api/public/prompts/metrics?name=research_agent_v1").json()["data"]
        assert [(m["version"], m["generations"]) for m in metrics] == [(1, 1), (2, 1)]


def test_seed_guide_prompt_sections_on_langfuse2(live_server):
    result = run_client("lf2_seed_prompts.py", live_server)
    # Section 4 as written: the first version of a new prompt is served by default.
    assert result["section_4"] == {
        "raised": None,
        "result": "answer to: You are a research agent...",
    }
    assert result["labelled"] == {
        "version": 1,
        "result": "answer to: You are a research agent...",
    }
    with httpx.Client(base_url=live_server.url, auth=live_server.project.auth) as client:
        # v1 against v2: one generation each, with its quality score and cost.
        v1, v2 = client.get("/api/public/prompts/metrics?name=research_agent_v1").json()["data"]
        assert [(v["version"], v["generations"]) for v in (v1, v2)] == [(1, 1), (2, 1)]
        assert v1["scores"]["quality_score"]["avg"] == pytest.approx(0.6)
        assert v2["scores"]["quality_score"]["avg"] == pytest.approx(0.9)
        assert v1["avgCost"] > v2["avgCost"] > 0  # gpt-4 against gpt-4o-mini

        # 5.3: filter traces by metadata.variant, compare the average user_rating.
        def traces_of(variant: str) -> set[str]:
            condition = {"type": "stringObject", "column": "metadata", "key": "variant",
                         "operator": "=", "value": variant}  # fmt: skip
            params = {"filter": json.dumps([condition]), "limit": 100}
            return {t["id"] for t in client.get("/api/public/traces", params=params).json()["data"]}

        a, b = traces_of("A"), traces_of("B")
        assert a and b and a | b == set(result["ab_traces"]) and not a & b
        scores = client.get("/api/public/v2/scores", params={"name": "user_rating", "limit": 100})
        rating = {s["traceId"]: s["value"] for s in scores.json()["data"]}
        assert {rating[t] for t in a} == {3} and {rating[t] for t in b} == {5}
        trace = client.get(f"/api/public/traces/{sorted(b)[0]}").json()
        assert trace["metadata"] == {"ab_test": True, "variant": "B"}
        assert trace["output"].startswith("answer to: Research in depth: topic")
