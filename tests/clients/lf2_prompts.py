"""Prompt management with the official Langfuse 2.x SDK, as the seed guide uses it."""

from __future__ import annotations

from langfuse import Langfuse
from langfuse.decorators import langfuse_context, observe
from lf2_common import _handler, capture_log, emit

capture_log()
langfuse = Langfuse()

v1 = langfuse.create_prompt(
    name="research_agent_v1",
    prompt="You are a research agent. Topic: {{topic}}",
    config={"model": "gpt-4", "temperature": 0.7},
    labels=["production"],
)
v2 = langfuse.create_prompt(
    name="research_agent_v1",
    prompt="You are a concise research agent. Topic: {{topic}}",
    config={"model": "gpt-4o", "temperature": 0.2},
)
chat = langfuse.create_prompt(
    name="support/triage",
    type="chat",
    prompt=[
        {"role": "system", "content": "You triage for {{team}}."},
        {"role": "user", "content": "{{question}}"},
    ],
    labels=["production"],
)

production = langfuse.get_prompt("research_agent_v1")
latest = langfuse.get_prompt("research_agent_v1", label="latest", cache_ttl_seconds=0)
by_version = langfuse.get_prompt("research_agent_v1", version=2, cache_ttl_seconds=0)
chat_prompt = langfuse.get_prompt("support/triage", type="chat")


@observe(as_type="generation")
def answer(topic: str) -> str:
    compiled = production.compile(topic=topic)
    langfuse_context.update_current_observation(
        model="gpt-4", prompt=production, input=compiled, usage={"input": 12, "output": 3}
    )
    return "an answer"


@observe()
def run() -> str:
    answer("whales")
    return langfuse_context.get_current_trace_id()


trace_id = run()
trace = langfuse.trace(name="low-level")
trace.generation(name="with-v2", model="gpt-4o", prompt=by_version, input=by_version.prompt)
langfuse_context.flush()
langfuse.flush()

try:
    langfuse.get_prompt("does-not-exist", cache_ttl_seconds=0, max_retries=1)
    missing = "no error"
except Exception as exc:  # the SDK raises for a missing prompt without fallback
    missing = type(exc).__name__

fallback = langfuse.get_prompt(
    "does-not-exist", fallback="fallback {{x}}", cache_ttl_seconds=0, max_retries=1
)

# The SDK logs the expected 404 of the missing prompt; anything else stays reported.
_handler.records[:] = [r for r in _handler.records if "does-not-exist" not in r]

emit(
    {
        "created": [v1.version, v2.version, chat.version],
        "production": {
            "version": production.version,
            "prompt": production.prompt,
            "config": production.config,
            "labels": production.labels,
        },
        "latest_version": latest.version,
        "by_version": by_version.version,
        "compiled": production.compile(topic="whales"),
        "chat_compiled": chat_prompt.compile(team="ops", question="why?"),
        "trace_id": trace_id,
        "low_level_trace_id": trace.id,
        "missing": missing,
        "fallback_compiled": fallback.compile(x="1"),
        "fallback_is_fallback": fallback.is_fallback,
    }
)
