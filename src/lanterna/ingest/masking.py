"""Server-side masking: a project's redaction rules, checked and compiled, applied to
domain events before anything is stored (both wire formats reach the store as domain
events, so Langfuse JSON and OTLP are masked alike).

A rule is a JSON object, one of:

- ``{"type": "builtin", "name": "email" | "credit_card" | "api_key" | "bearer_token"}``
- ``{"type": "regex", "pattern": "...", "replacement": "[REDACTED]"}``: every match in
  every string of the masked fields is replaced (``replacement`` optional);
- ``{"type": "path", "path": "input.user.password", "replacement": "[REDACTED]"}``: the
  value at that JSON path (a field name, ``input``, ``output`` or ``metadata``, then
  keys separated by dots, ``*`` for every key or array item; a leading ``$.`` is
  allowed) is replaced whole.

Patterns compile with RE2 (linear-time matching, as custom model patterns: a pattern
such as ``^(a+)+$`` cannot stall ingestion; Python's ``re`` is never used on them).
Masked fields: the ``input``, ``output`` and ``metadata`` of traces and observations,
an observation's ``status_message``, a score's ``comment`` and string value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from .. import _json
from ..errors import InvalidRequestData
from .events import DomainEvent

#: What a match or a masked value becomes unless a rule says otherwise.
REDACTED = "[REDACTED]"
MAX_RULES = 50
MAX_PATTERN = 1000
#: The fields regular expressions apply to, and the roots a path may start at.
TEXT_FIELDS = ("input", "output", "metadata", "status_message", "comment", "string_value")
PATH_ROOTS = ("input", "output", "metadata")


def _luhn(digits: str) -> bool:
    total, odd = 0, False
    for ch in reversed(digits):
        n = ord(ch) - 48
        if odd:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
        odd = not odd
    return total % 10 == 0


def _card(match: Any, replacement: str) -> str:
    text = match.group(0)
    digits = "".join(c for c in text if c.isdigit())
    return replacement if 13 <= len(digits) <= 19 and _luhn(digits) else text


#: Built-in patterns (RE2 syntax): ``(pattern, Luhn-checked)``.
BUILTINS: dict[str, tuple[str, bool]] = {
    "email": (r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}", False),
    "credit_card": (r"\b(?:\d[ \-]?){12,18}\d\b", True),
    "api_key": (
        r"\b(?:sk|pk|rk)-(?:[A-Za-z0-9]+-)*[A-Za-z0-9_]{16,}"
        r"|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}|\bxox[abprs]-[A-Za-z0-9\-]{10,}"
        r"|\bAIza[0-9A-Za-z_\-]{35}|\bglpat-[A-Za-z0-9_\-]{20,}",
        False,
    ),
    "bearer_token": (r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}", False),
}


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    return options


def _fail(index: int, message: str) -> InvalidRequestData:
    return InvalidRequestData(f"rules[{index}]: {message}")


def _path(index: int, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, str) or not raw or len(raw) > 200:
        raise _fail(index, "path: a non-empty string of at most 200 characters")
    parts = tuple(raw.removeprefix("$.").split("."))
    if parts[0] not in PATH_ROOTS or any(not p for p in parts) or len(parts) < 2:
        raise _fail(
            index, "path: input, output or metadata, then keys separated by dots (input.password)"
        )
    return parts


def check_rules(raw: Any) -> list[dict[str, Any]]:
    """The rules as stored: checked (RE2 compiles each pattern), normalised; raises
    :class:`InvalidRequestData` (400) naming the first bad rule."""
    if not isinstance(raw, list):
        raise InvalidRequestData("rules: a list of rule objects")
    if len(raw) > MAX_RULES:
        raise InvalidRequestData(f"rules: at most {MAX_RULES}")
    out: list[dict[str, Any]] = []
    for i, rule in enumerate(raw):
        if not isinstance(rule, dict):
            raise _fail(i, "an object with a type")
        kind = rule.get("type")
        replacement = rule.get("replacement", REDACTED)
        if not isinstance(replacement, str) or len(replacement) > 100:
            raise _fail(i, "replacement: a string of at most 100 characters")
        if kind == "builtin":
            name = rule.get("name")
            if name not in BUILTINS:
                raise _fail(i, f"name: one of {', '.join(BUILTINS)}")
            out.append({"type": kind, "name": name, "replacement": replacement})
        elif kind == "regex":
            pattern = rule.get("pattern")
            if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN:
                raise _fail(i, f"pattern: a non-empty string of at most {MAX_PATTERN} characters")
            try:
                re2.compile(pattern, _options())
            except re2.error as exc:
                raise _fail(i, f"pattern: not a valid RE2 expression ({exc})") from None
            out.append({"type": kind, "pattern": pattern, "replacement": replacement})
        elif kind == "path":
            _path(i, rule.get("path"))
            out.append({"type": kind, "path": rule["path"], "replacement": replacement})
        else:
            raise _fail(i, "type: builtin, regex or path")
    return out


Sub = Callable[[str], str]


def _sub(pattern: str, replacement: str, luhn: bool) -> Sub:
    compiled = re2.compile(pattern, _options())
    if luhn:
        return lambda text: compiled.sub(lambda m: _card(m, replacement), text)
    # A callable: the replacement is taken literally (no group references).
    return lambda text: compiled.sub(lambda _m: replacement, text)


@dataclass(frozen=True, slots=True)
class Masker:
    """A project's compiled rules. ``any_match`` is every pattern in one alternation:
    most strings hold no secret, and one search tells so (about four times cheaper than
    a search per rule); only a string it matches is rewritten rule by rule."""

    subs: tuple[Sub, ...]
    paths: tuple[tuple[tuple[str, ...], str], ...]
    any_match: Any = None

    def text(self, value: str) -> str:
        """``value`` with every pattern's matches replaced."""
        if self.any_match is not None and self.any_match.search(value) is None:
            return value
        for sub in self.subs:
            value = sub(value)
        return value

    def value(self, value: Any) -> Any:
        """A JSON value with every string in it masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def event(self, event: DomainEvent) -> DomainEvent:
        """``event`` with its masked fields masked (the event is changed in place)."""
        fields = event.fields
        for root in PATH_ROOTS:
            if root in fields:
                for path, replacement in self.paths:
                    if path[0] == root:
                        fields[root] = _replace_at(fields[root], path[1:], replacement)
        if self.subs:
            for name in TEXT_FIELDS:
                if fields.get(name) is not None:
                    fields[name] = self.value(fields[name])
        return event

    def events(self, events: Iterable[DomainEvent]) -> list[DomainEvent]:
        """Every event masked."""
        return [self.event(e) for e in events]


def _replace_at(value: Any, path: Sequence[str], replacement: str) -> Any:
    if not path:
        return replacement
    key, rest = path[0], path[1:]
    if isinstance(value, str) and value[:1] in ("{", "["):
        # A JSON document sent as text (OTLP attributes usually are): mask inside it.
        try:
            parsed = _json.loads(value)
        except _json.JSONDecodeError:
            return value
        return _json.dumps(_replace_at(parsed, path, replacement))
    if isinstance(value, dict):
        keys = list(value) if key == "*" else [key] if key in value else []
        if keys:
            value = dict(value)
            for k in keys:
                value[k] = _replace_at(value[k], rest, replacement)
    elif isinstance(value, list):
        if key == "*":
            value = [_replace_at(v, rest, replacement) for v in value]
        elif key.isdigit() and int(key) < len(value):
            value = list(value)
            value[int(key)] = _replace_at(value[int(key)], rest, replacement)
    return value


def compile_rules(rules: Sequence[dict[str, Any]]) -> Masker | None:
    """Stored rules compiled; None when there are none (nothing to do at ingestion)."""
    if not rules:
        return None
    subs: list[Sub] = []
    patterns: list[str] = []
    paths: list[tuple[tuple[str, ...], str]] = []
    for i, rule in enumerate(rules):
        replacement = rule.get("replacement", REDACTED)
        if rule["type"] == "builtin":
            pattern, luhn = BUILTINS[rule["name"]]
            subs.append(_sub(pattern, replacement, luhn))
            patterns.append(pattern)
        elif rule["type"] == "regex":
            subs.append(_sub(rule["pattern"], replacement, False))
            patterns.append(rule["pattern"])
        else:
            paths.append((_path(i, rule["path"]), replacement))
    try:
        any_match = re2.compile("|".join(f"(?:{p})" for p in patterns), _options())
    except re2.error:  # patterns that do not combine: each is searched on its own
        any_match = None
    return Masker(tuple(subs), tuple(paths), any_match if patterns else None)
