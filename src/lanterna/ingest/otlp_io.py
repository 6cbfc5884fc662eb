"""Input and output of a span, from whichever convention carries them (contract 3.6).

Rules are tried in Langfuse's order; the first one that yields an input or an output
decides both. Each rule also names the attribute keys it read, so the copy of raw
attributes kept in metadata does not repeat them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .otlp_semconv import first, parse_io

Events = list[tuple[str, dict[str, Any]]]
Found = tuple[Any, Any, set[str]]
_MAX_INDEX = 10_000

# Families always left out of the raw attribute copy: they are read as input/output
# or metadata even when another rule won.
CONSUMED_PREFIXES = (
    "gen_ai.prompt",
    "gen_ai.completion",
    "llm.input_messages",
    "llm.output_messages",
    "langfuse.trace.metadata",
    "langfuse.observation.metadata",
    "ai.telemetry.metadata",
)


def _value(value: Any) -> Any:
    return parse_io(value)


def _pair(attrs: dict[str, Any], in_keys: tuple[str, ...], out_keys: tuple[str, ...]) -> Found:
    used: set[str] = set()
    inp = out = None
    for key in in_keys:
        if attrs.get(key) not in (None, ""):
            inp = _value(attrs[key])
            used.add(key)
            break
    for key in out_keys:
        if attrs.get(key) not in (None, ""):
            out = _value(attrs[key])
            used.add(key)
            break
    return inp, out, used


# --- rules -----------------------------------------------------------------------------


def _langfuse(attrs: dict[str, Any], scope: str, events: Events) -> Found:
    return _pair(attrs, ("langfuse.observation.input",), ("langfuse.observation.output",))


def _vercel(attrs: dict[str, Any], scope: str, events: Events) -> Found:
    if scope != "ai":
        return None, None, set()
    inp, _, used = _pair(attrs, ("ai.prompt.messages", "ai.prompt", "ai.toolCall.args"), ())
    text = attrs.get("ai.response.text")
    calls = attrs.get("ai.response.toolCalls")
    out: Any = None
    if text not in (None, "") and calls not in (None, ""):
        out = {"role": "assistant", "content": text, "tool_calls": _value(calls)}
        used |= {"ai.response.text", "ai.response.toolCalls"}
    else:
        _, out, out_used = _pair(
            attrs,
            (),
            (
                "ai.response.text",
                "ai.result.text",
                "ai.toolCall.result",
                "ai.response.object",
                "ai.result.object",
                "ai.response.toolCalls",
                "ai.result.toolCalls",
            ),
        )
        used |= out_used
    if inp is None or out is None:
        # Gaps are filled from the GenAI message attributes.
        gen_in, gen_out, gen_used = _genai_messages(attrs, scope, events)
        if inp is None and gen_in is not None:
            inp, used = gen_in, used | gen_used
        if out is None and gen_out is not None:
            out, used = gen_out, used | gen_used
    return inp, out, used


def _flue(attrs: dict[str, Any], scope: str, events: Events) -> Found:
    if scope != "@flue/opentelemetry":
        return None, None, set()
    return _pair(
        attrs,
        ("flue.turn.input", "flue.tool.arguments", "flue.task.prompt", "flue.workflow.payload"),
        (
            "flue.turn.output",
            "flue.tool.result",
            "flue.task.result",
            "flue.operation.result",
            "flue.workflow.result",
        ),
    )


def _operation_details(attrs: dict[str, Any], scope: str, events: Events) -> Found:
    for name, event_attrs in events:
        if name == "gen_ai.client.inference.operation.details":
            inp, out, _ = _pair(
                event_attrs,
                ("gen_ai.input.messages", "gen_ai.tool.call.arguments"),
                ("gen_ai.output.messages", "gen_ai.tool.call.result"),
            )
            if inp is not None or out is not None:
                return inp, out, set()
    return None, None, set()


_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def _message_events(attrs: dict[str, Any], scope: str, events: Events) -> Found:
    inputs: list[dict[str, Any]] = []
    choices: list[Any] = []
    for name, event_attrs in events:
        role = _MESSAGE_EVENTS.get(name)
        if role is not None:
            message = {k: _value(v) for k, v in event_attrs.items()}
            inputs.append({"role": message.pop("role", role), **message})
        elif name == "gen_ai.choice":
            choices.append({k: _value(v) for k, v in event_attrs.items()})
    out: Any = choices[0] if len(choices) == 1 else (choices or None)
    return (inputs or None), out, set()


def _content_events(attrs: dict[str, Any], scope: str, events: Events) -> Found:
    inp = out = None
    for name, event_attrs in events:
        if name == "gen_ai.content.prompt" and inp is None:
            inp = _value(event_attrs.get("gen_ai.prompt"))
        elif name == "gen_ai.content.completion" and out is None:
            out = _value(event_attrs.get("gen_ai.completion"))
    return inp, out, set()


def _vertex(attrs: dict[str, Any], scope: str, events: Events) -> Found:
    def usable(key: str) -> bool:
        return attrs.get(key) not in (None, "", "{}")

    inp = out = None
    used: set[str] = set()
    for keys, is_input in (
        (("gcp.vertex.agent.llm_request", "gcp.vertex.agent.tool_call_args"), True),
        (("gcp.vertex.agent.llm_response", "gcp.vertex.agent.tool_response"), False),
    ):
        for key in keys:
            if usable(key):
                used.add(key)
                if is_input:
                    inp = _value(attrs[key])
                else:
                    out = _value(attrs[key])
                break
    return inp, out, used


def _logfire_events(value: Any) -> tuple[Any, Any]:
    events = _value(value)
    if not isinstance(events, list):
        return None, None
    inputs = [e for e in events if isinstance(e, dict) and e.get("event.name") != "gen_ai.choice"]
    choices = [e for e in events if isinstance(e, dict) and e.get("event.name") == "gen_ai.choice"]
    out: Any = choices[0] if len(choices) == 1 else (choices or None)
    return inputs or None, out


def _logfire_livekit(attrs: dict[str, Any], scope: str, events: Events) -> Found:
    inp, out, used = _pair(attrs, ("prompt",), ("all_messages_events",))
    if inp is not None or out is not None:
        return inp, out, used
    inp, out, used = _pair(
        attrs,
        ("lk.input_text", "lk.user_transcript", "lk.chat_ctx"),
        ("lk.function_tool.output", "lk.response.text"),
    )
    if inp is not None or out is not None:
        return inp, out, used
    if attrs.get("events") not in (None, ""):
        inp, out = _logfire_events(attrs["events"])
        if inp is not None or out is not None:
            return inp, out, {"events"}
    return None, None, set()


def _system_first(messages: Any, instructions: Any) -> Any:
    """Prepend GenAI system instructions unless the messages carry a system message."""
    if instructions in (None, "") or not isinstance(messages, list):
        return messages
    if any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
        return messages
    return [{"role": "system", "content": _value(instructions)}, *messages]


def _io_pairs(attrs: dict[str, Any], scope: str, events: Events) -> Found:
    for in_key, out_key in (
        ("mlflow.spanInputs", "mlflow.spanOutputs"),
        ("traceloop.entity.input", "traceloop.entity.output"),
        ("input.value", "output.value"),
        ("input", "output"),
    ):
        inp, out, used = _pair(attrs, (in_key,), (out_key,))
        if inp is not None or out is not None:
            return inp, out, used
    if scope == "pydantic-ai":
        inp, out, used = _pair(attrs, ("pydantic_ai.all_messages",), ("final_result",))
        if inp is not None or out is not None:
            inp = _system_first(inp, attrs.get("gen_ai.system_instructions"))
            return inp, out, used
    return _pair(attrs, ("tool_arguments",), ("tool_response",))


_INDEXED = re.compile(r"(\d+)\.(.+)")


def _unflatten(attrs: dict[str, Any], prefix: str) -> list[Any] | None:
    """``prefix.<i>.<a>.<b>`` keys rebuilt into a list of nested objects."""
    root: dict[int, Any] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        match = _INDEXED.fullmatch(key[len(prefix) :])
        if match is None or int(match.group(1)) >= _MAX_INDEX:
            continue
        node: dict[Any, Any] = root.setdefault(int(match.group(1)), {})
        parts = match.group(2).split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    if not root:
        return None
    return [_listify(root[i]) for i in sorted(root)]


def _listify(node: Any) -> Any:
    """Objects whose keys are all small integers become lists (``tool_calls.0...``)."""
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(isinstance(k, str) and k.isdigit() and int(k) < _MAX_INDEX for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def _flattened(attrs: dict[str, Any], scope: str, events: Events) -> Found:
    for in_prefix, out_prefix in (
        ("gen_ai.prompt.", "gen_ai.completion."),
        ("llm.input_messages.", "llm.output_messages."),
    ):
        inp = _unflatten(attrs, in_prefix)
        out = _unflatten(attrs, out_prefix)
        if inp is not None or out is not None:
            return inp, out, set()
    return None, None, set()


def _genai_messages(attrs: dict[str, Any], scope: str, events: Events) -> Found:
    inp, out, used = _pair(attrs, ("gen_ai.input.messages",), ("gen_ai.output.messages",))
    if inp is not None:
        inp = _system_first(inp, attrs.get("gen_ai.system_instructions"))
    if inp is not None or out is not None:
        return inp, out, used
    return _pair(attrs, ("gen_ai.tool.call.arguments",), ("gen_ai.tool.call.result",))


Rule = Callable[[dict[str, Any], str, Events], Found]
# In order; input_output() runs the first one (_langfuse) inline.
RULES: tuple[Rule, ...] = (
    _langfuse,
    _vercel,
    _flue,
    _operation_details,
    _message_events,
    _content_events,
    _vertex,
    _logfire_livekit,
    _io_pairs,
    _flattened,
    _genai_messages,
)


_LANGFUSE_IN = "langfuse.observation.input"
_LANGFUSE_OUT = "langfuse.observation.output"


def input_output(attrs: dict[str, Any], scope: str, events: Events) -> Found:
    """``(input, output, keys read)`` from the first rule that yields either."""
    # The first rule (_langfuse) inline: the Langfuse SDKs' spans end here.
    inp = attrs.get(_LANGFUSE_IN)
    out = attrs.get(_LANGFUSE_OUT)
    has_in = inp is not None and inp != ""
    has_out = out is not None and out != ""
    if has_in or has_out:
        used: set[str] = set()
        if has_in:
            inp = parse_io(inp)
            used.add(_LANGFUSE_IN)
        else:
            inp = None
        if has_out:
            out = parse_io(out)
            used.add(_LANGFUSE_OUT)
        else:
            out = None
        if inp is not None or out is not None:
            return inp, out, used
    for rule in RULES[1:]:
        inp, out, used = rule(attrs, scope, events)
        if inp is not None or out is not None:
            return inp, out, used
    return None, None, set()


def trace_input_output(attrs: dict[str, Any]) -> tuple[Any, Any]:
    """The trace's own input/output keys (``langfuse.trace.input``/``output``)."""
    inp = first(attrs, "langfuse.trace.input")
    out = first(attrs, "langfuse.trace.output")
    return parse_io(inp), parse_io(out)
