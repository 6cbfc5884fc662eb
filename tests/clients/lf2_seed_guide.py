"""The seed guide's examples (sections 3.4, 5.1, 5.2) as written, on the Langfuse 2.x SDK.

Only the guide's undefined helpers (``agent``, ``perform_task``, ``evaluate_quality``)
are filled in, with stand-ins. Prints one JSON object with the trace ids.

Section 5.2 calls ``update_current_trace(status_message=..., level="ERROR")``; the 2.x
SDK's ``update_current_trace`` has neither parameter, so that call raises ``TypeError``
inside the ``except`` block. The script records what the caller saw, and also runs the
form that works on 2.x (error level on the observation, details in trace metadata).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from langfuse import Langfuse
from langfuse.decorators import langfuse_context, observe
from lf2_common import capture_log, emit

capture_log()
langfuse = Langfuse()


class ResearchAgent:
    """Stands in for the guide's LangChain agent: one traced step that may fail."""

    @observe(name="agent_run")
    async def run(self, prompt: str) -> str:
        await asyncio.sleep(0)
        if "fail" in prompt:
            raise ConnectionError(f"upstream model unavailable for {prompt!r}")
        return f"report on {prompt}"


agent = ResearchAgent()


async def perform_task(task_type: str) -> str:
    await asyncio.sleep(0)
    return f"{task_type} done"


def evaluate_quality(result: str) -> float:
    return 0.75 if result else 0.0


# --- 3.4 scores and feedback (as in the guide) ------------------------------------------


def record_user_feedback(trace_id: str, rating: int, comment: str = "") -> None:
    langfuse.score(trace_id=trace_id, name="user_rating", value=rating, comment=comment)  # 1-5


def record_quality_score(trace_id: str, quality: float) -> None:
    langfuse.score(trace_id=trace_id, name="quality_score", value=quality)  # 0-1


@observe()
async def generate_report(prompt: str, user_id: str) -> str:
    result = await agent.run(prompt)
    quality = evaluate_quality(result)  # automatic quality evaluation
    record_quality_score(trace_id=langfuse_context.get_current_trace_id(), quality=quality)
    return result


# --- 5.1 custom metadata (as in the guide) ----------------------------------------------


@observe()
async def complex_workflow(user_id: str, task_type: str) -> str:
    langfuse_context.update_current_trace(
        user_id=user_id,
        metadata={
            "task_type": task_type,
            "environment": "production",
            "version": "1.2.0",
            "feature_flags": {"new_ui": True, "beta_feature": False},
        },
        tags=["production", "high-priority"],
    )
    result = await perform_task(task_type)
    langfuse_context.update_current_observation(
        output={"result": result, "metrics": {"processing_time": 1.23, "items_processed": 42}},
    )
    return result


# --- 5.2 error tracking (as in the guide) -----------------------------------------------


@observe()
async def resilient_agent_run(prompt: str, user_id: str) -> str:
    try:
        return await agent.run(prompt)
    except Exception as e:
        langfuse_context.update_current_trace(
            status_message=str(e),
            level="ERROR",
            metadata={
                "error_type": type(e).__name__,
                "error_details": str(e),
                "user_id": user_id,
                "prompt": prompt,
            },
        )
        raise


# --- 5.2 in the form the 2.x SDK accepts ------------------------------------------------


@observe()
async def resilient_agent_run_v2(prompt: str, user_id: str) -> str:
    try:
        return await agent.run(prompt)
    except Exception as e:
        langfuse_context.update_current_trace(
            metadata={
                "error_type": type(e).__name__,
                "error_details": str(e),
                "user_id": user_id,
                "prompt": prompt,
            },
        )
        # On a top-level @observe the "current observation" is the trace itself.
        langfuse_context.update_current_observation(level="ERROR", status_message=str(e))
        raise


async def run_traced(fn: Callable[..., Awaitable[object]], *args: object) -> dict[str, object]:
    """Call a top-level observed function with a known trace id (the SDK's
    ``langfuse_observation_id`` keyword); report what the caller saw."""
    trace_id = str(uuid.uuid4())
    try:
        await fn(*args, langfuse_observation_id=trace_id)
    except Exception as exc:  # the guide re-raises; report what reached the caller
        return {"trace_id": trace_id, "raised": type(exc).__name__, "message": str(exc)}
    return {"trace_id": trace_id, "raised": None, "message": None}


async def main() -> None:
    report = await run_traced(generate_report, "quarterly numbers", "u-report")
    record_user_feedback(str(report["trace_id"]), rating=5, comment="spot on")
    workflow = await run_traced(complex_workflow, "u-51", "summarize")
    guide_52 = await run_traced(resilient_agent_run, "please fail", "u-52")
    v2_52 = await run_traced(resilient_agent_run_v2, "please fail too", "u-52b")
    langfuse_context.flush()
    langfuse.flush()
    emit({"report": report, "workflow": workflow, "guide_52": guide_52, "v2_52": v2_52})


if __name__ == "__main__":
    asyncio.run(main())
