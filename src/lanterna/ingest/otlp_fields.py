"""Span attributes -> fields, by the field tables (``lanterna.schema``).

The OTLP mapping reads most fields by hand (each has its semantic-convention keys and
rules); this module applies the field tables' limits to what it reads, and reads the
fields whose line names span attributes (``Field.otlp``) by their kind. OTLP never
refuses a span over a field: a value over the limits the JSON path refuses is cut, and
a value that does not fit the kind is left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .. import _json
from ..schema import Field
from ..schema import field as kinds
from ..timeutil import parse_ts
from .otlp_semconv import first, parse_json


def clip(text: str, f: Field) -> str:
    """``text`` cut to the field's limits: characters, then UTF-8 bytes."""
    max_chars = f.max_chars
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars]
    max_bytes = f.max_bytes
    # Four bytes per character at most: only long strings need encoding.
    if max_bytes is None or len(text) * 4 <= max_bytes:
        return text
    return text.encode()[:max_bytes].decode(errors="ignore")


def _text(value: Any, f: Field) -> str | None:
    # Non-strings are JSON-encoded (as Langfuse does for id-like values).
    text = value if isinstance(value, str) else _json.dumps(value)
    return clip(text, f) if text else None


def _enum(value: Any, f: Field) -> str | None:
    text = str(value).upper()
    return text if text in f.choices else None


def _timestamp(value: Any, f: Field) -> Any:
    try:
        return parse_ts(value)
    except (TypeError, ValueError):
        return None


def _json_value(value: Any, f: Field) -> Any:
    return parse_json(value)


def _object(value: Any, f: Field) -> Any:
    parsed = parse_json(value)
    return parsed if isinstance(parsed, dict) else None


def _strings(value: Any, f: Field) -> list[str] | None:
    parsed = parse_json(value)
    if isinstance(parsed, str):
        parsed = [parsed]
    if not isinstance(parsed, list):
        return None
    return sorted({t if isinstance(t, str) else _json.dumps(t) for t in parsed}) or None


def _bool(value: Any, f: Field) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    return True if text == "true" else False if text == "false" else None


def _number(value: Any, f: Field) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and not isinstance(value, bool) else None


def _int(value: Any, f: Field) -> int | None:
    try:
        return None if isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        return None


_READERS: dict[str, Callable[[Any, Field], Any]] = {
    kinds.TEXT: _text,
    kinds.ID: _text,
    kinds.VERSION: _text,
    kinds.ENUM: _enum,
    kinds.TIMESTAMP: _timestamp,
    kinds.JSON: _json_value,
    kinds.OBJECT: _object,
    kinds.STRINGS: _strings,
    kinds.BOOL: _bool,
    kinds.NUMBER: _number,
    kinds.INT: _int,
}

Plan = tuple[tuple[tuple[str, ...], str, Callable[[Any, Field], Any], Field], ...]


def plan(fields: tuple[Field, ...]) -> Plan:
    """What :func:`read_fields` does for ``fields`` (made once, at import)."""
    return tuple((f.otlp, f.column, _READERS[f.kind], f) for f in fields)


def read_fields(attrs: dict[str, Any], fields: Plan, out: dict[str, Any]) -> None:
    """Each field of ``fields`` found in the span attributes, read by its kind."""
    for keys, column, read, f in fields:
        value = first(attrs, *keys)
        if value is not None:
            value = read(value, f)
            if value is not None:
                out[column] = value
