"""JSON encoding used on every hot path (orjson), in one place."""

from __future__ import annotations

from typing import Any

import orjson

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> str:
    """Encode ``value`` as compact JSON text; unknown objects fall back to ``str()``."""
    return dumpb(value).decode()


def dumpb(value: Any) -> bytes:
    """Encode ``value`` as compact JSON bytes; unknown objects fall back to ``str()``;
    integers past 64 bits (PostgreSQL's ``jsonb`` writes ``1e20`` as
    ``100000000000000000000``) as floats, or as text past a float's range."""
    try:
        return orjson.dumps(value, default=str, option=_OPTS)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise
        return orjson.dumps(_narrow(value), default=str, option=_OPTS)


_LOW, _HIGH = -(2**63), 2**64 - 1


def _narrow(value: Any) -> Any:
    """``value`` with integers orjson cannot write made floats (or text)."""
    if isinstance(value, dict):
        return {key: _narrow(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_narrow(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and not _LOW <= value <= _HIGH:
        try:
            return float(value)
        except OverflowError:
            return str(value)
    return value


loads = orjson.loads
JSONDecodeError = orjson.JSONDecodeError


def integral(value: Any) -> Any:
    """``value`` with a whole-number float made an int (``30.0`` -> ``30``): JSON Schema's
    ``integer`` takes both, so a route that wants an integer takes both too."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
