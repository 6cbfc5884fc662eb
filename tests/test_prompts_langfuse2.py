"""The official Langfuse 2.x SDK creates, fetches, compiles and links prompts with no change."""

from __future__ import annotations

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
