"""References between prompts: ``@@@langfusePrompt:name=N|version=V@@@`` (or ``label=L``).

A reference is replaced by the referenced prompt's text. References nest; a cycle or a
missing prompt is an error naming the reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput

REFERENCE = re.compile(r"@@@langfusePrompt:(.*?)@@@")
MAX_DEPTH = 5
#: The highest prompt version (versions are 32-bit integers in the database).
MAX_VERSION = 2**31 - 1
_DIGITS = re.compile(r"[0-9]+")


class PromptReferenceError(InvalidInput, ValueError):
    """A reference that cannot be resolved (missing prompt, bad syntax, cycle, depth): 400."""


@dataclass(frozen=True, slots=True)
class Reference:
    """One parsed reference."""

    text: str
    name: str
    version: int | None
    label: str | None


def parse(text: str) -> list[Reference]:
    """Every reference in ``text``."""
    found = []
    for match in REFERENCE.finditer(text):
        parts = dict(p.split("=", 1) for p in match.group(1).split("|") if "=" in p)
        name = parts.get("name")
        if not name:
            raise PromptReferenceError(f"prompt reference without a name: {match.group(0)}")
        version = parts.get("version")
        label = parts.get("label")
        if (version is None) == (label is None):
            raise PromptReferenceError(
                f"a prompt reference needs a version or a label: {match.group(0)}"
            )
        if version is not None and not _DIGITS.fullmatch(version):
            raise PromptReferenceError(
                f"prompt reference version must be a number: {match.group(0)}"
            )
        number = None
        if version is not None:
            # Past 10 digits a version is out of range (and int() of thousands of
            # digits fails): any number above MAX_VERSION stands for it.
            number = int(version) if len(version) <= 10 else MAX_VERSION + 1
        found.append(Reference(match.group(0), name, number, label))
    return found


def check_versions(text: str) -> None:
    """Raise :class:`PromptReferenceError` when a reference in ``text`` (a prompt being
    created) gives a version that is not a whole number from 1 to :data:`MAX_VERSION`."""
    if "@@@langfusePrompt:" not in text:
        return
    for match in REFERENCE.finditer(text):
        for part in match.group(1).split("|"):
            key, eq, version = part.partition("=")
            if eq and key == "version" and not _in_range(version):
                raise PromptReferenceError(
                    f"prompt reference version must be a whole number from 1 to"
                    f" {MAX_VERSION}: {match.group(0)[:300]}"
                )


def _in_range(version: str) -> bool:
    # Length first: int() of a long digit string is slow, and past 10 digits is too high.
    return (
        bool(_DIGITS.fullmatch(version)) and len(version) <= 10 and 1 <= int(version) <= MAX_VERSION
    )


Lookup = Callable[[str, int | None, str | None], dict[str, Any] | None]


def _as_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    raise PromptReferenceError("only text prompts can be referenced from another prompt")


def resolve(
    prompt: Any, lookup: Lookup, *, root: tuple[str, int], missing_ok: bool = False
) -> tuple[Any, dict[str, Any] | None]:
    """Replace references in a prompt (text or chat) using ``lookup(name, version, label)``.

    Returns the resolved prompt and the resolution graph (None without references).
    With ``missing_ok`` a reference to a prompt that does not exist stays as written
    (a prompt being created may name one created later); a cycle, too deep a nesting or
    a reference to a chat prompt still raise.
    """
    graph: dict[str, Any] = {"root": {"name": root[0], "version": root[1]}, "dependencies": {}}

    def expand(text: str, parent: str, chain: tuple[str, ...], depth: int) -> str:
        refs = parse(text)
        if not refs:
            return text
        if depth > MAX_DEPTH:
            raise PromptReferenceError(f"prompt references nest deeper than {MAX_DEPTH}")
        for ref in refs:
            # A version no prompt can have (stored before creation refused it) is not
            # looked up: the database's integers would overflow.
            in_range = ref.version is None or 1 <= ref.version <= MAX_VERSION
            if ref.name in chain:  # found or not yet made: resolving it would come back
                raise PromptReferenceError(f"prompt references form a cycle through {ref.name}")
            row = lookup(ref.name, ref.version, ref.label) if in_range else None
            if row is None:
                if missing_ok and in_range:
                    continue
                raise PromptReferenceError(f"referenced prompt not found: {ref.text}")
            key = f"{row['name']}@{row['version']}"
            graph["dependencies"].setdefault(parent, []).append(
                {"name": row["name"], "version": row["version"]}
            )
            inner = expand(_as_text(row["prompt"]), key, (*chain, row["name"]), depth + 1)
            text = text.replace(ref.text, inner)
        return text

    top = f"{root[0]}@{root[1]}"
    if isinstance(prompt, str):
        out: Any = expand(prompt, top, (root[0],), 1)
    else:
        out = []
        for message in prompt:
            content = message.get("content")
            if isinstance(content, str):
                message = {**message, "content": expand(content, top, (root[0],), 1)}
            out.append(message)
    return out, (graph if graph["dependencies"] else None)
