"""The tool calls an observation records, read from its output, for observation rules:
the ``tool_calls`` mapping source and the ``calledToolNames`` / ``toolCalls`` filter
columns.

Lanterna stores no separate tool-call column; the calls are found in the output as
the common SDKs write it: an OpenAI message (``tool_calls``, or the older
``function_call``), a list of messages, a chat completion (``choices[].message``),
Anthropic content blocks (``type: tool_use``) and the Vercel AI SDK's calls
(``toolName``/``args``). Each becomes ``{id, name, arguments, type, index}`` in the
order the model emitted them.
"""

from __future__ import annotations

from typing import Any

from .. import _json
from ..store.filters import Condition, FilterError

#: The filter columns an observation rule evaluates on the tool calls (not in SQL).
TOOL_COLUMNS = ("calledToolNames", "toolCalls")
_DEPTH = 4


def _call(raw: dict[str, Any]) -> dict[str, Any] | None:
    """One call in any of the shapes, or None when ``raw`` is not one."""
    function = raw.get("function")
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        name, arguments = function["name"], function.get("arguments")
    elif raw.get("type") == "tool_use" and isinstance(raw.get("name"), str):
        name, arguments = raw["name"], raw.get("input")
    elif isinstance(raw.get("toolName"), str):
        name, arguments = raw["toolName"], raw.get("args", raw.get("input"))
    elif isinstance(raw.get("name"), str) and ("arguments" in raw or "args" in raw):
        name, arguments = raw["name"], raw.get("arguments", raw.get("args"))
    else:
        return None
    call_id = raw.get("id", raw.get("toolCallId"))
    kind = raw.get("type") if isinstance(raw.get("type"), str) else "function"
    return {"id": call_id, "name": name, "arguments": arguments, "type": kind}


def _collect(value: Any, out: list[dict[str, Any]], depth: int) -> None:
    if depth > _DEPTH:
        return
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and (call := _call(item)) is not None:
                out.append(call)
            else:
                _collect(item, out, depth + 1)
        return
    if not isinstance(value, dict):
        return
    for key in ("tool_calls", "toolCalls"):
        calls = value.get(key)
        if isinstance(calls, list):
            out.extend(c for item in calls if isinstance(item, dict) and (c := _call(item)))
    legacy = value.get("function_call")
    if isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        out.append({"id": None, "name": legacy["name"], "arguments": legacy.get("arguments"),
                    "type": "function"})  # fmt: skip
    for key in ("content", "choices", "message", "messages", "output"):
        if key in value:
            _collect(value[key], out, depth + 1)


def tool_calls_of(output: Any) -> list[dict[str, Any]]:
    """The tool calls in an observation's output (a JSON text is read first)."""
    if isinstance(output, str):
        try:
            output = _json.loads(output)
        except _json.JSONDecodeError:
            return []
    found: list[dict[str, Any]] = []
    _collect(output, found, 0)
    return [{**call, "index": i} for i, call in enumerate(found)]


def check_tool_condition(cond: Condition, where: str) -> None:
    """Raise :class:`FilterError` unless ``cond`` is a usable ``calledToolNames``
    (``arrayOptions``) or ``toolCalls`` (``number``) condition."""
    if cond.column == "calledToolNames":
        ok = cond.type == "arrayOptions" and cond.operator in ("any of", "none of", "all of")
        values = cond.value
        if not ok or not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise FilterError(
                f"{where}: column 'calledToolNames' takes type arrayOptions, operator 'any of',"
                " 'none of' or 'all of' and a list of tool names"
            )
        return
    value = cond.value
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if cond.type != "number" or cond.operator not in ("=", ">", "<", ">=", "<=") or not number:
        raise FilterError(
            f"{where}: column 'toolCalls' takes type number, an operator of =, >, <, >=, <="
            " and a number (how many tool calls the observation made)"
        )


def matches(conditions: list[Condition], calls: list[dict[str, Any]]) -> bool:
    """Whether ``calls`` satisfy every (checked) tool condition."""
    names = {c["name"] for c in calls}
    for cond in conditions:
        if cond.column == "calledToolNames":
            wanted = set(cond.value)
            if cond.operator == "any of" and not names & wanted:
                return False
            if cond.operator == "none of" and names & wanted:
                return False
            if cond.operator == "all of" and not wanted <= names:
                return False
        else:
            n, v = len(calls), float(cond.value)
            ok = {"=": n == v, ">": n > v, "<": n < v, ">=": n >= v, "<=": n <= v}
            if not ok[cond.operator]:
                return False
    return True
