"""Langfuse 2.x SDK as its docs use it: decorators (sync and async), low-level client, scores.

Configured by LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY / LANGFUSE_HOST. Prints one JSON
object: the ids of every trace it made, the result of ``auth_check()``, what the SDK logged.
"""

from __future__ import annotations

import asyncio

from langfuse import Langfuse
from langfuse.decorators import langfuse_context, observe
from lf2_common import capture_log, emit

capture_log()
langfuse = Langfuse()


# --- sync decorators: trace -> span -> (span, generation) ---------------------------


@observe()
def retrieve(query: str) -> list[str]:
    docs = [f"doc about {query} #{i}" for i in range(2)]
    langfuse_context.update_current_observation(metadata={"index": "wiki", "k": 2})
    return docs


@observe(as_type="generation")
def call_llm(prompt: str) -> str:
    langfuse_context.update_current_observation(
        model="gpt-4o-mini",
        model_parameters={"temperature": 0.2, "max_tokens": 256},
        usage={"input": 120, "output": 30, "total": 150},
    )
    return "Paris is the capital of France."


@observe(name="rag-step")
def rag(question: str) -> str:
    docs = retrieve(question)
    answer = call_llm(f"{question}\n{docs}")
    langfuse_context.update_current_observation(output={"answer": answer, "n_docs": len(docs)})
    return answer


@observe()
def sync_pipeline(question: str, user_id: str) -> dict[str, str]:
    langfuse_context.update_current_trace(
        user_id=user_id,
        session_id="lf2-session-sync",
        metadata={"doc_id": "d-42", "nested": {"a": 1}},
        tags=["lf2", "sync"],
    )
    answer = rag(question)
    trace_id = langfuse_context.get_current_trace_id()
    assert trace_id is not None
    langfuse.score(trace_id=trace_id, name="quality_score", value=0.87)
    langfuse.score(trace_id=trace_id, name="user_rating", value=4, comment="good")
    return {"answer": answer, "trace_id": trace_id}


# --- async decorators: trace -> two concurrent spans, each with a generation ------------


@observe(as_type="generation")
async def acomplete(prompt: str) -> str:
    await asyncio.sleep(0)  # lets the concurrent call run: the two spans interleave
    langfuse_context.update_current_observation(
        model="claude-3-haiku",
        usage_details={"input": 40, "output": 10},
    )
    return prompt.upper()


@observe()
async def research(topic: str) -> str:
    text = await acomplete(f"research {topic}")
    langfuse_context.update_current_observation(output={"topic": topic, "chars": len(text)})
    return text


@observe()
async def async_pipeline(user_id: str) -> str:
    langfuse_context.update_current_trace(
        user_id=user_id, session_id="lf2-session-async", tags=["lf2", "async"]
    )
    await asyncio.gather(research("alpha"), research("beta"))
    langfuse_context.score_current_trace(name="helpfulness", value=1)
    trace_id = langfuse_context.get_current_trace_id()
    assert trace_id is not None
    return trace_id


# --- an exception inside a nested span --------------------------------------------------


@observe()
def failing_tool() -> None:
    raise RuntimeError("tool exploded")


@observe()
def error_pipeline() -> str:
    trace_id = langfuse_context.get_current_trace_id()
    assert trace_id is not None
    try:
        failing_tool()
    except RuntimeError:
        langfuse_context.update_current_trace(metadata={"recovered": True})
    return trace_id


# --- the low-level client ---------------------------------------------------------------


def low_level(user_id: str) -> str:
    trace = langfuse.trace(
        name="low-level",
        user_id=user_id,
        session_id="lf2-session-low",
        input={"question": "2+2?"},
        metadata={"source": "low-level"},
        tags=["lf2", "low-level"],
    )
    span = trace.span(name="prepare", input={"raw": "2+2?"})
    span.end(output={"normalized": "2 + 2"})
    generation = span.generation(
        name="llm-call",
        model="gpt-4",
        model_parameters={"temperature": 0},
        input=[{"role": "user", "content": "2 + 2"}],
        output={"role": "assistant", "content": "4"},
        usage={"input": 12, "output": 1},
    )
    generation.end()
    trace.update(output={"answer": "4"})
    trace.score(name="correct", value=1)
    return str(trace.id)


def main() -> None:
    auth_ok = langfuse.auth_check()
    sync_result = sync_pipeline("What is the capital of France?", user_id="user-sync")
    async_trace = asyncio.run(async_pipeline(user_id="user-async"))
    error_trace = error_pipeline()
    low_trace = low_level(user_id="user-low")
    langfuse_context.flush()
    langfuse.flush()
    emit(
        {
            "auth_check": auth_ok,
            "sync_trace": sync_result["trace_id"],
            "sync_answer": sync_result["answer"],
            "async_trace": async_trace,
            "error_trace": error_trace,
            "low_trace": low_trace,
        }
    )


if __name__ == "__main__":
    main()
