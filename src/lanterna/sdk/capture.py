"""Copy user values into JSON-ready data, bounded in size, on the caller's thread.

Why copy at all: a traced function's arguments and result may be mutated after it
returns, and the exporter encodes them later on its own thread. Immutable values are
kept as they are (no copy); containers are copied. Why bounded: one 100 MB argument
must neither be copied whole nor held until export, so every string longer than the
budget is cut, containers stop after the budget, and a marker says what was cut.
"""

from __future__ import annotations

import datetime as _dt
import enum
import sys
from collections.abc import Mapping
from typing import Any

#: Appended to a cut string: ``...[lanterna: truncated 104857600 chars to 1000000]``.
MARKER = "...[lanterna: truncated {total} chars to {kept}]"
_MAX_DEPTH = 20
_SCALARS = (int, float, bool, type(None))


class _Budget:
    """Characters left to spend on one captured value (a rough JSON size)."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters plus the truncation marker."""
    if len(text) <= limit:
        return text
    return text[: max(limit, 0)] + MARKER.format(total=len(text), kept=max(limit, 0))


def capture(value: Any, limit: int) -> Any:
    """A JSON-ready copy of ``value`` holding at most about ``limit`` characters."""
    kind = type(value)
    if kind is str:
        return value if len(value) <= limit else cut(value, limit)
    if kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict and len(value) <= 16:
        # A small dict of numbers (usage, costs, model parameters): the copy _walk
        # would make, without its per-item bookkeeping, when it fits the budget.
        left = limit
        for key, item in value.items():
            t = type(item)
            if type(key) is not str or not (t is int or t is float or t is bool or item is None):
                break
            left -= len(key) + 12  # what _walk charges: the key + 4, a number 8
        else:
            if left > 0:
                return dict(value)
    return _walk(value, _Budget(limit), 0)


#: Captured values at least this large count against the exporter's memory budget.
LARGE = 64 * 1024


def captured_size(value: Any, limit: int) -> tuple[Any, int]:
    """:func:`capture`, plus the characters it kept (0 when that is below :data:`LARGE`)."""
    kind = type(value)
    if kind is str:
        n = len(value)
        if n > limit:
            return cut(value, limit), (limit if limit >= LARGE else 0)
        return value, (n if n >= LARGE else 0)
    if kind in _SCALARS:
        return value, 0
    budget = _Budget(limit)
    out = _walk(value, budget, 0)
    used = limit - budget.left
    return out, used if used >= LARGE else 0


def capture_args(
    names: tuple[str, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    limit: int,
    budget: _Budget | None = None,
) -> dict[str, Any]:
    """A function's arguments by parameter name (extra positionals under ``args``)."""
    if budget is None:
        budget = _Budget(limit)
    out: dict[str, Any] = {}
    n = len(names)
    for i, value in enumerate(args):
        if i < n:
            out[names[i]] = _walk(value, budget, 1)
        else:
            out.setdefault("args", []).append(_walk(value, budget, 1))
    for key, value in kwargs.items():
        out[key] = _walk(value, budget, 1)
    return out


def positional(
    names: tuple[str, ...], args: tuple[Any, ...], limit: int
) -> tuple[dict[str, Any], int] | None:
    """Positional arguments that are all strings and numbers and fit in ``limit``: what
    :func:`capture_args` makes of them and the characters it charges; else None.

    Most observed calls pass just such arguments; this takes them without a
    :class:`_Budget` or a :func:`_walk` per argument."""
    n = len(args)
    if n > len(names):
        return None
    left = limit
    for value in args:
        kind = type(value)
        if kind is str:
            left -= len(value)
            if left < 0:
                return None
        elif kind is int or kind is float or kind is bool or value is None:
            left -= 8
        else:
            return None
    out = {names[0]: args[0]} if n == 1 else dict(zip(names, args, strict=False))
    return out, limit - left


def _walk(value: Any, budget: _Budget, depth: int) -> Any:
    kind = type(value)
    if kind is str:
        if len(value) > budget.left:
            kept = max(budget.left, 0)
            budget.left = 0
            return cut(value, kept)
        budget.left -= len(value)
        return value
    if kind is int or kind is float or kind is bool or value is None:
        budget.left -= 8
        return value
    if budget.left <= 0:
        return "...[lanterna: truncated]"
    if depth >= _MAX_DEPTH:
        return f"<{kind.__name__}: nested too deep>"
    # Exact types first: isinstance() against the Mapping ABC is slow.
    if kind is dict or (kind is not list and kind is not tuple and isinstance(value, Mapping)):
        # Scalars and strings that fit are taken in the loop (the budget in a local), the
        # rest recursively: the same result as recursing for each, at a third of the cost.
        out: dict[Any, Any] = {}
        left = budget.left
        for i, (key, item) in enumerate(value.items()):
            if left <= 0:
                out["..."] = f"[lanterna: truncated {len(value) - i} more items]"
                break
            k = key if type(key) is str else str(key)
            left -= len(k) + 4
            t = type(item)
            if t is int or t is float or t is bool or item is None:
                left -= 8
                out[k] = item
            elif t is str and len(item) <= left:
                left -= len(item)
                out[k] = item
            else:
                budget.left = left
                out[k] = _walk(item, budget, depth + 1)
                left = budget.left
        budget.left = left
        return out
    if kind is list or kind is tuple or isinstance(value, (list, tuple, set, frozenset)):
        items: list[Any] = []
        left = budget.left
        for i, item in enumerate(value):
            if left <= 0:
                items.append(f"...[lanterna: truncated {len(value) - i} more items]")
                break
            left -= 2
            t = type(item)
            if t is int or t is float or t is bool or item is None:
                left -= 8
                items.append(item)
            elif t is str and len(item) <= left:
                left -= len(item)
                items.append(item)
            else:
                budget.left = left
                items.append(_walk(item, budget, depth + 1))
                left = budget.left
        budget.left = left
        return items
    return _walk(_plain(value), budget, depth + 1)


def _plain(value: Any) -> Any:
    """A JSON-friendly stand-in for an object that is not plain data."""
    if isinstance(value, str):  # str subclasses
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, int):  # int subclasses other than enums
        return int(value)
    if isinstance(value, float):
        return float(value)
    # uuid and dataclasses are looked up, not imported: a value of their types can only
    # exist once its module was imported, and importing them costs start-up time.
    uuid = sys.modules.get("uuid")
    if uuid is not None and isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    dump = getattr(value, "model_dump", None)  # pydantic v2 (OpenAI, LangChain objects)
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:
            pass
    dataclasses = sys.modules.get("dataclasses")
    if dataclasses is not None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    to_dict = getattr(value, "dict", None)  # pydantic v1
    if callable(to_dict) and hasattr(value, "__fields__"):
        try:
            return to_dict()
        except Exception:
            pass
    try:
        return f"<{type(value).__name__}> {value!s}"[:10_000]
    except Exception:
        return f"<{type(value).__name__}>"
