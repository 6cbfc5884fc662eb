"""JSON encoding used on every hot path (orjson), in one place."""

from __future__ import annotations

from typing import Any

import orjson

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> str:
    """Encode ``value`` as compact JSON text; unknown objects fall back to ``str()``."""
    return orjson.dumps(value, default=str, option=_OPTS).decode()


def dumpb(value: Any) -> bytes:
    """Encode ``value`` as compact JSON bytes; unknown objects fall back to ``str()``."""
    return orjson.dumps(value, default=str, option=_OPTS)


loads = orjson.loads
JSONDecodeError = orjson.JSONDecodeError
