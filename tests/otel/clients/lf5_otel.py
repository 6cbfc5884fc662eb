"""Langfuse Python SDK 5.x against a Lanterna server (run with .venvs/langfuse5's python).

Reads LANGFUSE_BASE_URL / LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY from the environment,
traces a small pipeline through OTLP and prints the ids the test reads back, as JSON.
"""

from __future__ import annotations

import contextlib
import json

from langfuse import Langfuse, get_client, observe, propagate_attributes

langfuse = Langfuse()
ids: dict[str, str] = {}


@observe(name="retrieve")
def retrieve(question: str) -> list[str]:
    ids["retrieve"] = get_client().get_current_observation_id() or ""
    return ["doc-1", "doc-2"]


@observe(name="llm-call", as_type="generation")
def call_llm(question: str, docs: list[str]) -> str:
    ids["generation"] = get_client().get_current_observation_id() or ""
    get_client().update_current_generation(
        model="gpt-4o-mini",
        model_parameters={"temperature": 0.3, "max_tokens": 64},
        usage_details={"input": 12, "output": 7},
        cost_details={"input": 0.0012, "output": 0.0021},
        metadata={"provider": "stand-in"},
    )
    return "42"


@observe(name="failing-step")
def failing_step() -> None:
    ids["failing"] = get_client().get_current_observation_id() or ""
    raise ValueError("the tool broke")


@observe(name="pipeline")
def pipeline(question: str) -> dict[str, object]:
    ids["trace"] = get_client().get_current_trace_id() or ""
    ids["root"] = get_client().get_current_observation_id() or ""
    with propagate_attributes(
        user_id="user-1",
        session_id="session-1",
        tags=["e2e", "otel"],
        metadata={"tenant": "acme", "attempt": "3"},
        trace_name="qa-pipeline",
        version="v5-test",
    ):
        docs = retrieve(question)
        answer = call_llm(question, docs)
        with contextlib.suppress(ValueError):
            failing_step()
        # Scores from inside the trace and by id (they go to /api/public/scores).
        get_client().score_current_trace(name="helpfulness", value=0.75, comment="ok")
        get_client().create_score(
            trace_id=ids["trace"], observation_id=ids["generation"], name="correct",
            value=1, data_type="BOOLEAN",
        )  # fmt: skip
        return {"answer": answer, "docs": docs}


pipeline("what is six times seven?")
langfuse.flush()
langfuse.shutdown()
print(json.dumps(ids))
