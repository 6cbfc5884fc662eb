"""Template filters and helpers: times, durations, money, numbers, JSON, query strings."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment
from markupsafe import Markup

from ... import _json
from ...timeutil import parse_ts


def when(value: Any) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS`` UTC ('' for none)."""
    if value is None or value == "":
        return ""
    if not isinstance(value, datetime):
        try:
            value = parse_ts(str(value), bounded=False)
        except ValueError:
            return str(value)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: Any) -> str:
    """Seconds as ``850 ms``, ``1.23 s``, ``2m 03s`` ('' for none)."""
    if seconds is None or not isinstance(seconds, (int, float)) or math.isnan(seconds):
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def money(value: Any) -> str:
    """A cost in USD with enough digits to show small amounts ('' for none)."""
    if value is None:
        return ""
    amount = float(value)
    if amount == 0:
        return "$0"
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    if abs(amount) >= 0.01:
        return f"${amount:.4f}"
    return f"${amount:.6f}".rstrip("0").rstrip(".")


def number(value: Any, digits: int = 0) -> str:
    """A number with thousands separators ('' for none)."""
    if value is None:
        return ""
    if isinstance(value, float) and digits == 0 and not value.is_integer():
        digits = 2
    return f"{value:,.{digits}f}"


def percent(value: Any) -> str:
    """A ratio 0..1 as a percentage."""
    if value is None:
        return ""
    return f"{float(value) * 100:.1f}%"


def pretty(value: Any) -> str:
    """A JSON value as indented text (strings as they are)."""
    if isinstance(value, str):
        return value
    try:
        import orjson

        return orjson.dumps(
            value, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
        ).decode()
    except TypeError:
        return str(value)


def json_island(value: Any) -> Markup:
    """JSON to embed in ``<script type="application/json">``: ``<``, ``>``, ``&`` and the
    line separators are escaped, so no value can close the element or start markup."""
    text = (
        _json.dumps(value)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    # Safe: every markup-significant character is escaped above.
    return Markup(text)


def query(params: dict[str, Any], **changes: Any) -> str:
    """``?a=1&b=2`` from ``params`` with ``changes`` applied (None removes a key)."""
    merged: dict[str, Any] = {**params, **changes}
    pairs: list[tuple[str, str]] = []
    for key, value in merged.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, (list, tuple)):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return "?" + urlencode(pairs) if pairs else "?"


def urlpart(value: Any) -> str:
    """A path segment or query value percent-encoded whole: ``/`` too (Jinja's
    ``urlencode`` keeps it, so an id holding ``../`` would make a link lead to another
    page); '' for none. Routes taking such ids use ``{x:path}`` and get them decoded."""
    return "" if value is None else quote(str(value), safe="")


def short_id(value: Any, size: int = 8) -> str:
    """The first characters of an id."""
    text = "" if value is None else str(value)
    return text if len(text) <= size + 1 else text[:size] + "…"


def score_value(value: Any) -> str:
    """A score's value: integers without ``.0``, other numbers to 3 decimals, text as is."""
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.3f}".rstrip("0")
    return str(value)


def model_parameters(value: Any) -> Any:
    """Model parameters as shown: a top-level value that is a number written as text
    (the langfuse 2.x SDKs send ``"0.2"``) shows as the number; stored as sent."""
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        text = item.strip() if isinstance(item, str) else ""
        if text and _NUMBER.fullmatch(text):
            out[key] = int(text) if text.lstrip("-").isdigit() else float(text)
        else:
            out[key] = item
    return out


_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def install(env: Environment) -> None:
    """Register the filters and globals on a Jinja environment."""
    env.filters.update(
        when=when,
        duration=duration,
        money=money,
        number=number,
        percent=percent,
        pretty=pretty,
        json_island=json_island,
        short_id=short_id,
        urlpart=urlpart,
        score_value=score_value,
        model_parameters=model_parameters,
    )
    env.globals.update(query=query)
