"""The seed guide's prompt examples (sections 4 and 5.3) on the Langfuse 2.x SDK.

Only what the guide leaves to the app (``llm``) is stood in for. Section 4 creates the
prompt without a label and then fetches it with ``get_prompt(name)``, which asks for the
``production`` label: Lanterna gives the first version of a new prompt that label, so
the guide works as written (on Langfuse it is a 404). The script then compares v1 and
v2 through generations linked to each version. Prints one JSON object.
"""

from __future__ import annotations

import asyncio
import random

from langfuse import Langfuse
from langfuse.decorators import langfuse_context, observe
from lf2_common import capture_log, emit

capture_log()
langfuse = Langfuse()


class LLM:
    """Stands in for the guide's model: ``invoke`` returns text, awaitable for 5.3."""

    def invoke(self, text: str) -> str:
        return f"answer to: {text}"


class AsyncLLM:
    async def invoke(self, text: str) -> str:
        return f"answer to: {text}"


llm = LLM()

# --- 4. prompts (as in the guide) -------------------------------------------------------
langfuse.create_prompt(
    name="research_agent_v1",
    prompt="You are a research agent...",
    config={"model": "gpt-4", "temperature": 0.7},
)
try:
    prompt = langfuse.get_prompt("research_agent_v1")
    result = llm.invoke(prompt.prompt)
    section_4 = {"raised": None, "result": result}
except Exception as exc:  # reported to the test, which expects no error
    section_4 = {"raised": type(exc).__name__, "result": None}

langfuse.update_prompt(name="research_agent_v1", version=1, new_labels=["production"])
prompt = langfuse.get_prompt("research_agent_v1", cache_ttl_seconds=0)
labelled = {"version": prompt.version, "result": llm.invoke(prompt.prompt)}


# "then compare v1 vs v2 in the dashboard": generations linked to the version used.
@observe(as_type="generation")
def research(question: str) -> str:
    current = langfuse.get_prompt("research_agent_v1", cache_ttl_seconds=0)
    langfuse_context.update_current_observation(
        prompt=current,
        model=current.config["model"],
        usage={"input": 12, "output": 5},
    )
    return llm.invoke(current.prompt + " " + question)


@observe()
def ask(question: str, quality: float) -> None:
    research(question)
    langfuse_context.score_current_trace(name="quality_score", value=quality)


ask("lanterns?", 0.6)
langfuse.create_prompt(
    name="research_agent_v1",
    prompt="You are a concise research agent...",
    config={"model": "gpt-4o-mini", "temperature": 0.2},
    labels=["production"],
)
ask("lamps?", 0.9)

# --- 5.3 A/B testing (as in the guide) --------------------------------------------------
langfuse.create_prompt(name="ab_v1", prompt="Research briefly: {input}", labels=["production"])
langfuse.create_prompt(name="ab_v2", prompt="Research in depth: {input}", labels=["production"])
llm = AsyncLLM()  # the guide awaits llm.invoke(...)
trace_ids: list[str] = []


@observe()
async def ab_test_prompts(user_input: str, user_id: str):
    variant = "A" if random.random() < 0.5 else "B"  # 50/50 assignment
    langfuse_context.update_current_trace(metadata={"ab_test": True, "variant": variant})
    prompt = langfuse.get_prompt("ab_v1" if variant == "A" else "ab_v2")
    result = await llm.invoke(prompt.prompt.format(input=user_input))
    langfuse_context.update_current_observation(output=result)
    trace_ids.append(langfuse_context.get_current_trace_id())
    return result


random.seed(5)
results = [asyncio.run(ab_test_prompts(f"topic {i}", f"u-{i}")) for i in range(12)]
for trace_id, result in zip(trace_ids, results, strict=True):
    langfuse.score(trace_id=trace_id, name="user_rating", value=5 if "in depth" in result else 3)

langfuse_context.flush()
langfuse.flush()
emit(
    {
        "section_4": section_4,
        "labelled": labelled,
        "ab_traces": trace_ids,
        "ab_results": results,
    }
)
