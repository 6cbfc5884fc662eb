"""The official Langfuse 5.x SDK creates, fetches (by label and by version), compiles and
relabels prompts with no change, and its generations (OTLP spans) link to the version.

The SDK runs in ``.venvs/langfuse5`` as a subprocess (``tests/clients/lf5_prompts.py``);
what it stored is read back through our API.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support import run_sdk_script

pytestmark = pytest.mark.slow


def run_script(server: Any) -> dict[str, Any]:
    result = run_sdk_script("langfuse5", "lf5_prompts.py", server, quiet_about="Failed to export")
    assert result["sdk_log"] == [], result["sdk_log"]
    return result


def test_langfuse5_prompts_end_to_end(live_server):
    result = run_script(live_server)
    assert result["created"] == [1, 2, 1]
    assert result["production"] == {
        "version": 1,
        "prompt": "You are a research agent. Topic: {{topic}}",
        "config": {"model": "gpt-4", "temperature": 0.7},
        "labels": ["production"],
    }
    assert result["latest"] == [2, "shorter"] and result["by_version"] == 2
    assert result["compiled"] == "You are a research agent. Topic: whales"
    assert result["chat_compiled"] == [
        {"role": "system", "content": "You triage for ops."},
        {"role": "user", "content": "earlier"},
        {"role": "user", "content": "why?"},
    ]
    assert result["langchain"] == [
        ["system", "You triage for {team}."],
        ["user", "{question}"],
    ]
    assert result["fallback"] == [True, "fallback 1"]
    assert result["missing"] == "NotFoundError 404"
    assert result["relabelled"] == ["latest", "production"]
    assert result["after_relabel"] == 2

    with httpx.Client(base_url=live_server.url, auth=live_server.project.auth) as client:
        trace = client.get(f"/api/public/traces/{result['trace_id']}").json()
        generations = {o["name"]: o for o in trace["observations"] if o["type"] == "GENERATION"}
        assert set(generations) == {"with-v1", "with-v2", "with-fallback"}
        versions = {
            v: client.get("/api/public/v2/prompts/research_agent_v1", params={"version": v}).json()
            for v in (1, 2)
        }
        for name, version in (("with-v1", 1), ("with-v2", 2)):
            gen = generations[name]
            assert (gen["promptName"], gen["promptVersion"]) == ("research_agent_v1", version)
            assert gen["promptId"] == versions[version]["id"]
        # The SDK sends no link for a fallback prompt.
        assert generations["with-fallback"]["promptName"] is None
        assert generations["with-fallback"]["promptId"] is None
        metrics = client.get("/api/public/prompts/metrics?name=research_agent_v1").json()["data"]
        assert [(m["version"], m["generations"]) for m in metrics] == [(1, 1), (2, 1)]
