"""``{{variable}}`` substitution for text and chat prompts, and chat placeholders."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")


class MissingVariablesError(KeyError):
    """``compile(strict=True)`` was not given every variable the prompt uses."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.names = names

    def __str__(self) -> str:
        return "missing prompt variables: " + ", ".join(self.names)


def variables(template: str) -> list[str]:
    """The variable names used in ``template``, in order of first use."""
    seen: dict[str, None] = {}
    for match in VARIABLE.finditer(template):
        seen.setdefault(match.group(1))
    return list(seen)


def _fill(template: str, values: Mapping[str, Any], missing: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            value = values[name]
            return value if isinstance(value, str) else str(value)
        if name not in missing:
            missing.append(name)
        return match.group(0)  # left as written, so a reader sees what is unfilled

    return VARIABLE.sub(replace, template)


def compile_text(template: str, values: Mapping[str, Any], *, strict: bool = False) -> str:
    """Fill ``{{name}}`` slots; unknown ones stay as written unless ``strict``."""
    missing: list[str] = []
    out = _fill(template, values, missing)
    if strict and missing:
        raise MissingVariablesError(missing)
    return out


def compile_chat(
    messages: list[dict[str, Any]],
    values: Mapping[str, Any],
    placeholders: Mapping[str, list[dict[str, Any]]] | None = None,
    *,
    strict: bool = False,
) -> list[dict[str, Any]]:
    """Fill variables in every message's content and expand placeholder messages.

    A placeholder (``{"type": "placeholder", "name": ...}``) is replaced by the list of
    messages given for its name; without one it stays in place (or, when ``strict``,
    is reported missing).
    """
    placeholders = placeholders or {}
    missing: list[str] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.get("type") == "placeholder":
            name = message.get("name", "")
            if name in placeholders:
                out.extend(dict(m) for m in placeholders[name])
            elif name in values and isinstance(values[name], list):
                out.extend(dict(m) for m in values[name])
            else:
                if name not in missing:
                    missing.append(name)
                out.append(dict(message))
            continue
        filled = dict(message)
        content = message.get("content")
        if isinstance(content, str):
            filled["content"] = _fill(content, values, missing)
        out.append(filled)
    if strict and missing:
        raise MissingVariablesError(missing)
    return out
