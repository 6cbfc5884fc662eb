"""Validation of prompt create requests, names and labels (contract 4.3)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInput
from .references import check_versions

LABEL = re.compile(r"[a-z0-9_\-.]+")
RESERVED_NAMES = frozenset({"new", "metrics", "prompt-detail"})
LATEST = "latest"
PRODUCTION = "production"


class PromptError(InvalidInput, ValueError):
    """A request that cannot be accepted (400); the message says why."""


@dataclass
class NewPrompt:
    """A validated request to create a prompt version."""

    name: str
    type: str
    prompt: Any
    config: Any = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    tags: list[str] | None = None
    commit_message: str | None = None


def check_name(name: Any) -> str:
    """A prompt name: 1-255 characters, no ``|``, not a reserved word."""
    if not isinstance(name, str) or not name.strip():
        raise PromptError("name: required, a non-empty string")
    if len(name) > 255:
        raise PromptError("name: at most 255 characters")
    if "|" in name:
        raise PromptError("name: must not contain '|'")
    if name in RESERVED_NAMES:
        raise PromptError(f"name: {name!r} is reserved")
    if name.startswith("/") or name.endswith("/") or "//" in name:
        raise PromptError("name: folders are separated by single '/' with no empty part")
    return name


def check_labels(labels: Any, *, allow_latest: bool = False) -> list[str]:
    """Labels: lower-case ``[a-z0-9_-.]``, at most 36 characters, ``latest`` reserved."""
    if labels is None:
        return []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise PromptError("labels: expected a list of strings")
    for label in labels:
        if not LABEL.fullmatch(label) or len(label) > 36:
            raise PromptError(
                f"label {label!r}: use 1-36 lower-case letters, digits, '_', '-' or '.'"
            )
        if label == LATEST and not allow_latest:
            raise PromptError("label 'latest' is reserved: it always marks the newest version")
    return list(dict.fromkeys(labels))


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        raise PromptError("prompt: a chat prompt is a list of messages")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise PromptError(f"prompt[{i}]: expected an object")
        if message.get("type") == "placeholder":
            if not isinstance(message.get("name"), str) or not message["name"]:
                raise PromptError(f"prompt[{i}]: a placeholder needs a name")
            out.append({"type": "placeholder", "name": message["name"]})
            continue
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise PromptError(f"prompt[{i}]: a chat message needs string 'role' and 'content'")
        out.append({"role": role, "content": content, "type": "chatmessage"})
    return out


def check_create(body: Any) -> NewPrompt:
    """Validate a ``POST /api/public/v2/prompts`` body."""
    if not isinstance(body, dict):
        raise PromptError("expected a JSON object")
    name = check_name(body.get("name"))
    kind = body.get("type") or ("chat" if isinstance(body.get("prompt"), list) else "text")
    if kind not in ("text", "chat"):
        raise PromptError("type: must be 'text' or 'chat'")
    if kind == "text":
        if not isinstance(body.get("prompt"), str):
            raise PromptError("prompt: a text prompt is a string")
        prompt: Any = body["prompt"]
    else:
        prompt = _check_messages(body.get("prompt"))
    for text in [prompt] if kind == "text" else [m.get("content", "") for m in prompt]:
        check_versions(text)
    config = body.get("config")
    tags = body.get("tags")
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
    ):
        raise PromptError("tags: expected a list of strings")
    commit = body.get("commitMessage")
    if commit is not None and not isinstance(commit, str):
        raise PromptError("commitMessage: expected a string")
    return NewPrompt(
        name=name,
        type=kind,
        prompt=prompt,
        config=config if config is not None else {},
        labels=check_labels(body.get("labels")),
        tags=sorted(set(tags)) if tags is not None else None,
        commit_message=commit,
    )
