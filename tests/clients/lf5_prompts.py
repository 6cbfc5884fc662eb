"""Prompt management with the official Langfuse 5.x SDK; run under .venvs/langfuse5.

Configured like any user's app, by LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and
LANGFUSE_BASE_URL. Creates prompt versions, fetches them by label and by version,
compiles them, relabels one, and links generations to them (the generations go out as
OTLP spans). Prints one JSON line with what it saw and everything the SDK logged.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.levelname} {record.name}: {record.getMessage()}")


_log = _Collect()
logging.getLogger("langfuse").addHandler(_log)
logging.getLogger("langfuse").setLevel(logging.WARNING)

from langfuse import Langfuse, observe  # noqa: E402  (after the log handler)
from langfuse.api import NotFoundError  # noqa: E402

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
    commit_message="shorter",
)
chat = langfuse.create_prompt(
    name="support/triage",
    type="chat",
    prompt=[
        {"role": "system", "content": "You triage for {{team}}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{question}}"},
    ],
    labels=["production"],
)

production = langfuse.get_prompt("research_agent_v1")
latest = langfuse.get_prompt("research_agent_v1", label="latest", cache_ttl_seconds=0)
by_version = langfuse.get_prompt("research_agent_v1", version=2, cache_ttl_seconds=0)
chat_prompt = langfuse.get_prompt("support/triage", type="chat")
fallback = langfuse.get_prompt(
    "does-not-exist", fallback="fallback {{x}}", cache_ttl_seconds=0, max_retries=0
)
try:
    langfuse.get_prompt("does-not-exist", cache_ttl_seconds=0, max_retries=0)
    missing = "no error"
except NotFoundError as exc:
    missing = f"NotFoundError {exc.status_code}"

# Generations that use a prompt: opened explicitly, and through @observe.
with langfuse.start_as_current_observation(name="run", as_type="span") as root:
    with langfuse.start_as_current_observation(
        name="with-v1",
        as_type="generation",
        model="gpt-4",
        prompt=production,
        input=production.compile(topic="whales"),
    ) as gen:
        gen.update(output="an answer", usage_details={"input": 12, "output": 3})

    @observe(as_type="generation", name="with-v2")
    def answer(topic: str) -> str:
        langfuse.update_current_generation(
            prompt=by_version, model="gpt-4o", input=by_version.compile(topic=topic)
        )
        return "short"

    answer("owls")

    @observe(as_type="generation", name="with-fallback")
    def offline() -> str:
        langfuse.update_current_generation(prompt=fallback)
        return "offline"

    offline()
    trace_id = root.trace_id

relabelled = langfuse.update_prompt(name="research_agent_v1", version=2, new_labels=["production"])
after = langfuse.get_prompt("research_agent_v1")  # the update cleared the SDK's cache
langfuse.flush()
langfuse.shutdown()

# The 404s above are the SDK reporting what the script asked for; anything else stays.
log = [r for r in _log.records if "does-not-exist" not in r]

result: dict[str, Any] = {
    "created": [v1.version, v2.version, chat.version],
    "production": {
        "version": production.version,
        "prompt": production.prompt,
        "config": production.config,
        "labels": production.labels,
    },
    "latest": [latest.version, latest.commit_message],
    "by_version": by_version.version,
    "compiled": production.compile(topic="whales"),
    "chat_compiled": chat_prompt.compile(
        team="ops", question="why?", history=[{"role": "user", "content": "earlier"}]
    ),
    "langchain": chat_prompt.get_langchain_prompt(history=[]),
    "fallback": [fallback.is_fallback, fallback.compile(x="1")],
    "missing": missing,
    "relabelled": sorted(relabelled.labels),
    "after_relabel": after.version,
    "trace_id": trace_id,
    "sdk_log": log,
}
sys.stdout.write(json.dumps(result) + "\n")
sys.stdout.flush()
