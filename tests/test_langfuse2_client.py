"""The official Langfuse 2.x Python SDK (``langfuse==2.60.10``) against a live server.

The SDK runs in its own virtualenv (``.venvs/langfuse2``, made by ``scripts/test`` from
``tests/clients/langfuse2.txt``) as a subprocess: ``tests/clients/lf2_*.py`` use it the way
Langfuse's docs and the seed guide do, flush, and print the trace ids they made. Each
trace is then read back through ``GET /api/public/traces/{id}`` and checked field by
field. No polling: the server answers 207 only after commit, and the SDK's ``flush()``
returns only after every batch got its answer.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support import run_sdk_script

pytestmark = [pytest.mark.slow, pytest.mark.clickhouse]


def run_client(script: str, server: Any) -> dict[str, Any]:
    """Run ``tests/clients/<script>`` with the 2.x SDK against ``server``; its JSON result."""
    result = run_sdk_script("langfuse2", script, server)
    # The SDK logs (never raises) when the server rejects an event or a request fails.
    assert result["sdk_log"] == [], result["sdk_log"]
    return result


def get_trace(server: Any, trace_id: str) -> dict[str, Any]:
    """A trace as our API returns it (with observations and scores)."""
    response = httpx.get(
        f"{server.url}/api/public/traces/{trace_id}", auth=server.project.auth, timeout=30
    )
    assert response.status_code == 200, response.text
    trace: dict[str, Any] = response.json()
    assert trace["id"] == trace_id
    for obs in trace["observations"]:
        assert obs["traceId"] == trace_id
        assert obs["startTime"] is not None and obs["endTime"] is not None
        assert obs["endTime"] >= obs["startTime"]
    return trace


def by_name(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The trace's observations keyed by name (names are unique in these traces)."""
    names = [o["name"] for o in trace["observations"]]
    assert len(names) == len(set(names)), names
    return {o["name"]: o for o in trace["observations"]}


def scores(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The trace's scores keyed by name, each checked to point at the trace."""
    out = {}
    for score in trace["scores"]:
        assert score["traceId"] == trace["id"]
        assert score["source"] == "API"
        out[score["name"]] = score
    return out


def usage(obs: dict[str, Any]) -> tuple[int, int, int]:
    return obs["usage"]["input"], obs["usage"]["output"], obs["usage"]["total"]


def test_sdk_decorators_low_level_client_and_scores(live_server):
    result = run_client("lf2_observe.py", live_server)
    assert result["auth_check"] is True

    # sync @observe: trace -> rag-step -> (retrieve, call_llm generation) + two scores
    trace = get_trace(live_server, result["sync_trace"])
    assert trace["name"] == "sync_pipeline"
    assert trace["userId"] == "user-sync"
    assert trace["sessionId"] == "lf2-session-sync"
    assert trace["tags"] == ["lf2", "sync"]
    assert trace["metadata"] == {"doc_id": "d-42", "nested": {"a": 1}}
    assert trace["input"] == {
        "args": ["What is the capital of France?"],
        "kwargs": {"user_id": "user-sync"},
    }
    assert trace["output"] == {"answer": result["sync_answer"], "trace_id": trace["id"]}
    obs = by_name(trace)
    assert set(obs) == {"rag-step", "retrieve", "call_llm"}
    rag, retrieve, llm = obs["rag-step"], obs["retrieve"], obs["call_llm"]
    assert rag["type"] == "SPAN" and rag["parentObservationId"] is None
    assert rag["output"] == {"answer": "Paris is the capital of France.", "n_docs": 2}
    assert retrieve["type"] == "SPAN" and retrieve["parentObservationId"] == rag["id"]
    assert retrieve["metadata"] == {"index": "wiki", "k": 2}
    assert len(retrieve["output"]) == 2
    assert llm["type"] == "GENERATION" and llm["parentObservationId"] == rag["id"]
    assert llm["model"] == "gpt-4o-mini"
    # The 2.x SDK's MapValue type has no float: it sends the temperature as "0.2".
    assert float(llm["modelParameters"]["temperature"]) == 0.2
    assert llm["modelParameters"]["max_tokens"] == 256
    assert usage(llm) == (120, 30, 150)
    assert llm["usageDetails"] == {"input": 120, "output": 30, "total": 150}
    assert llm["output"] == "Paris is the capital of France."
    assert rag["startTime"] <= retrieve["startTime"] <= llm["startTime"] <= rag["endTime"]
    got = scores(trace)
    assert set(got) == {"quality_score", "user_rating"}
    assert got["quality_score"]["value"] == 0.87
    assert got["quality_score"]["dataType"] == "NUMERIC"
    assert got["user_rating"]["value"] == 4
    assert got["user_rating"]["comment"] == "good"

    # async @observe: two concurrent research spans, each with its own generation
    trace = get_trace(live_server, result["async_trace"])
    assert trace["name"] == "async_pipeline"
    assert (trace["userId"], trace["sessionId"]) == ("user-async", "lf2-session-async")
    assert trace["tags"] == ["async", "lf2"]
    spans = [o for o in trace["observations"] if o["name"] == "research"]
    generations = [o for o in trace["observations"] if o["name"] == "acomplete"]
    assert len(spans) == 2 and len(generations) == 2
    assert all(s["parentObservationId"] is None and s["type"] == "SPAN" for s in spans)
    assert sorted(s["output"]["topic"] for s in spans) == ["alpha", "beta"]
    assert sorted(g["parentObservationId"] for g in generations) == sorted(s["id"] for s in spans)
    for generation in generations:
        assert generation["type"] == "GENERATION"
        assert generation["model"] == "claude-3-haiku"
        assert usage(generation) == (40, 10, 50)
    assert sorted(g["output"] for g in generations) == ["RESEARCH ALPHA", "RESEARCH BETA"]
    assert {n: s["value"] for n, s in scores(trace).items()} == {"helpfulness": 1}

    # an exception in a nested span: the span is an ERROR with the message
    trace = get_trace(live_server, result["error_trace"])
    failing = by_name(trace)["failing_tool"]
    assert failing["level"] == "ERROR"
    assert failing["statusMessage"] == "tool exploded"
    assert trace["metadata"] == {"recovered": True}

    # the low-level client: trace -> span -> generation, updates and a score
    trace = get_trace(live_server, result["low_trace"])
    assert trace["name"] == "low-level"
    assert (trace["userId"], trace["sessionId"]) == ("user-low", "lf2-session-low")
    assert trace["input"] == {"question": "2+2?"}
    assert trace["output"] == {"answer": "4"}
    assert trace["metadata"] == {"source": "low-level"}
    assert trace["tags"] == ["lf2", "low-level"]
    obs = by_name(trace)
    prepare, call = obs["prepare"], obs["llm-call"]
    assert prepare["parentObservationId"] is None
    assert prepare["input"] == {"raw": "2+2?"} and prepare["output"] == {"normalized": "2 + 2"}
    assert call["type"] == "GENERATION" and call["parentObservationId"] == prepare["id"]
    assert call["model"] == "gpt-4" and call["modelParameters"] == {"temperature": 0}
    assert call["input"] == [{"role": "user", "content": "2 + 2"}]
    assert call["output"] == {"role": "assistant", "content": "4"}
    assert usage(call) == (12, 1, 13)
    assert {n: s["value"] for n, s in scores(trace).items()} == {"correct": 1}


def test_seed_guide_examples(live_server):
    result = run_client("lf2_seed_guide.py", live_server)

    # 3.4: a quality score from inside the trace, user feedback after it
    report = result["report"]
    assert report["raised"] is None
    trace = get_trace(live_server, report["trace_id"])
    assert trace["name"] == "generate_report"
    assert by_name(trace)["agent_run"]["output"] == "report on quarterly numbers"
    got = scores(trace)
    assert got["quality_score"]["value"] == 0.75
    assert got["user_rating"]["value"] == 5
    assert got["user_rating"]["comment"] == "spot on"

    # 5.1: structured metadata and tags on the trace, output set on the observation
    workflow = result["workflow"]
    assert workflow["raised"] is None
    trace = get_trace(live_server, workflow["trace_id"])
    assert trace["userId"] == "u-51"
    assert trace["metadata"] == {
        "task_type": "summarize",
        "environment": "production",
        "version": "1.2.0",
        "feature_flags": {"new_ui": True, "beta_feature": False},
    }
    assert trace["tags"] == ["high-priority", "production"]
    assert trace["output"] == {
        "result": "summarize done",
        "metrics": {"processing_time": 1.23, "items_processed": 42},
    }
    # metadata "environment" is user data; the trace's own environment is untouched
    assert trace["environment"] == "default"

    # 5.2 as written: the 2.x SDK has no level/status_message on update_current_trace,
    # so the guide's except block raises TypeError; the failed step is still recorded.
    guide = result["guide_52"]
    assert guide["raised"] == "TypeError"
    assert "status_message" in guide["message"]
    trace = get_trace(live_server, guide["trace_id"])
    assert trace["name"] == "resilient_agent_run"
    step = by_name(trace)["agent_run"]
    assert step["level"] == "ERROR"
    assert step["statusMessage"] == "upstream model unavailable for 'please fail'"

    # 5.2 in the form 2.x accepts: error details in trace metadata, the error re-raised
    adapted = result["v2_52"]
    assert adapted["raised"] == "ConnectionError"
    trace = get_trace(live_server, adapted["trace_id"])
    assert trace["metadata"] == {
        "error_type": "ConnectionError",
        "error_details": "upstream model unavailable for 'please fail too'",
        "user_id": "u-52b",
        "prompt": "please fail too",
    }
    step = by_name(trace)["agent_run"]
    assert step["level"] == "ERROR"
    assert step["statusMessage"] == adapted["message"]
