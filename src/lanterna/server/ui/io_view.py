"""Input/output values shaped for reading: chat messages as a conversation, the rest
as a collapsible JSON tree or plain text. Nothing here produces markup: templates
render the returned structures, escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ... import _json

#: Values larger than this (as JSON) are shown as indented text, not as a tree.
TREE_LIMIT_CHARS = 200_000
#: Text longer than this is cut for display (the API has the full value).
TEXT_LIMIT_CHARS = 500_000


@dataclass
class Message:
    """One chat message: role, its text parts, and whatever else it carries."""

    role: str
    texts: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    parts: list[Any] = field(default_factory=list)


@dataclass
class IOView:
    """How to show one value: ``none``, ``text``, ``chat``, ``tree`` or ``big``."""

    kind: str
    value: Any = None
    messages: list[Message] = field(default_factory=list)
    rest: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False


#: The ``type`` of a LangChain message (as its ``dict()`` has it, which the langfuse
#: SDKs send) -> the chat role it stands for.
LANGCHAIN_ROLES = {
    "ai": "assistant",
    "AIMessageChunk": "assistant",
    "human": "user",
    "HumanMessageChunk": "user",
    "system": "system",
    "SystemMessageChunk": "system",
    "tool": "tool",
    "ToolMessageChunk": "tool",
    "function": "function",
    "FunctionMessageChunk": "function",
    "chat": "chat",
    "ChatMessageChunk": "chat",
}


def _is_langchain(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and not isinstance(item.get("role"), str)
        and item.get("type") in LANGCHAIN_ROLES
        and "content" in item
    )


def _is_message(item: Any) -> bool:
    if _is_langchain(item):
        return True
    return (
        isinstance(item, dict)
        and isinstance(item.get("role"), str)
        and ("content" in item or "tool_calls" in item or "function_call" in item)
    )


def _message(item: dict[str, Any]) -> Message:
    if _is_langchain(item):
        # A LangChain message: its role from ``type``; the empty fields it always
        # carries (additional_kwargs, tool_calls, example, ...) are left out.
        role = LANGCHAIN_ROLES[item["type"]]
        if role == "chat" and isinstance(item.get("role"), str):
            role = item["role"]
        item = {"role": role} | {
            k: v
            for k, v in item.items()
            if k not in ("type", "role") and v not in (None, "", {}, [], False)
        }
        item.setdefault("content", "")
    message = Message(role=item["role"])
    content = item.get("content")
    if isinstance(content, str):
        message.texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                message.texts.append(part["text"])
            elif isinstance(part, str):
                message.texts.append(part)
            else:
                message.parts.append(part)
    elif content is not None:
        message.parts.append(content)
    message.extra = {k: v for k, v in item.items() if k not in ("role", "content")}
    return message


def _cut(text: str) -> tuple[str, bool]:
    if len(text) > TEXT_LIMIT_CHARS:
        return text[:TEXT_LIMIT_CHARS], True
    return text, False


def io_view(value: Any) -> IOView:
    """Decide how to show ``value``."""
    if value is None:
        return IOView("none")
    if isinstance(value, str):
        text, cut = _cut(value)
        return IOView("text", text, truncated=cut)
    if _is_message(value):
        return IOView("chat", messages=[_message(value)])
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        return IOView("chat", messages=[_message(m) for m in value])
    if isinstance(value, dict):
        messages = value.get("messages")
        if isinstance(messages, list) and messages and all(_is_message(m) for m in messages):
            rest = {k: v for k, v in value.items() if k != "messages"}
            return IOView("chat", messages=[_message(m) for m in messages], rest=rest)
    size = len(_json.dumps(value))
    if size > TREE_LIMIT_CHARS:
        from .fmt import pretty

        text, cut = _cut(pretty(value))
        return IOView("big", text, truncated=cut)
    return IOView("tree", value)
