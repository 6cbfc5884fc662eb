"""What an alert rule may hold, checked before anything is stored: :func:`check_rule`
turns an API body (camelCase) into the stored fields (snake_case) or raises
:class:`InvalidRule` (400) naming the field.

A rule watches one metric (:data:`lanterna.analytics.alert_metrics.METRICS`) of its
project over the last ``windowSeconds`` (1 minute to 24 hours), narrowed by
``filters``, every ``intervalSeconds``. In ``threshold`` mode it fires when ``value
<comparator> threshold``; in ``baseline`` mode when ``value <comparator> factor x
baseline``, the baseline being the same window one week earlier
(``same_hour_last_week``) or the last 24 hours before the window scaled to the
window's length for sums (``last_24_hours``).
"""

from __future__ import annotations

import math
from typing import Any

from .._json import integral
from ..analytics.alert_metrics import FILTERS, METRICS
from ..errors import InvalidInput

COMPARATORS = (">", ">=", "<", "<=")
MODES = ("threshold", "baseline")
BASELINES = ("same_hour_last_week", "last_24_hours")
WINDOW_MIN, WINDOW_MAX = 60, 86400
INTERVAL_MIN, INTERVAL_MAX = 10, 86400
#: The longest cooldown and re-notify interval: a week.
QUIET_MAX = 7 * 86400
NAME_MAX = 200

#: Defaults of a new rule's optional fields (API names).
DEFAULTS: dict[str, Any] = {
    "description": "",
    "filters": {},
    "scoreName": None,
    "comparator": ">",
    "threshold": None,
    "mode": "threshold",
    "baseline": None,
    "factor": None,
    "windowSeconds": 300,
    "intervalSeconds": 60,
    "minSamples": 1,
    "cooldownSeconds": 600,
    "renotifySeconds": 0,
    "notifyResolved": True,
    "channelIds": [],
    "enabled": True,
}

#: API name -> stored column.
COLUMNS: dict[str, str] = {
    "name": "name",
    "description": "description",
    "metric": "metric",
    "scoreName": "score_name",
    "filters": "filters",
    "comparator": "comparator",
    "threshold": "threshold",
    "mode": "mode",
    "baseline": "baseline",
    "factor": "factor",
    "windowSeconds": "window_s",
    "intervalSeconds": "interval_s",
    "minSamples": "min_samples",
    "cooldownSeconds": "cooldown_s",
    "renotifySeconds": "renotify_s",
    "notifyResolved": "notify_resolved",
    "channelIds": "channel_ids",
    "enabled": "enabled",
}


class InvalidRule(InvalidInput):
    """400: an alert rule the server cannot store; the message names the field."""


def _int(body: dict[str, Any], key: str, low: int, high: int) -> int:
    value = integral(body[key])
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidRule(f"{key}: expected an integer from {low} to {high}")
    return value


def _number(body: dict[str, Any], key: str, *, positive: bool = False) -> float | None:
    value = body[key]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRule(f"{key}: expected a number")
    if positive and value <= 0:
        raise InvalidRule(f"{key}: must be greater than 0")
    return float(value)


def _text(body: dict[str, Any], key: str, *, required: bool, most: int) -> str | None:
    value = body[key]
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidRule(
            f"{key}: required, a non-empty string" if required else f"{key}: expected a string"
        )
    if len(value) > most:
        raise InvalidRule(f"{key}: at most {most} characters")
    return value


def _choice(body: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = body[key]
    if value not in choices:
        raise InvalidRule(f"{key}: unknown value {value!r}; use one of {', '.join(choices)}")
    return str(value)


def _filters(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRule("filters: expected an object {field: value}")
    out: dict[str, Any] = {}
    for key, wanted in value.items():
        if key not in FILTERS:
            raise InvalidRule(
                f"filters.{key}: unknown filter field; use one of {', '.join(FILTERS)}"
            )
        if FILTERS[key][2] == "object":  # {key: value} pairs (metadata)
            if (
                not isinstance(wanted, dict)
                or not wanted
                or not all(
                    isinstance(k, str)
                    and k
                    and isinstance(v, (str, int, float))
                    and not isinstance(v, bool)
                    for k, v in wanted.items()
                )
            ):
                raise InvalidRule(f"filters.{key}: expected an object {{key: value}} of strings")
            out[key] = {k: str(v) for k, v in wanted.items()}
        elif not isinstance(wanted, str) or not wanted:
            raise InvalidRule(f"filters.{key}: expected a non-empty string")
        else:
            out[key] = wanted
    return out


def _channel_ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidRule("channelIds: expected an array of channel ids")
    return list(dict.fromkeys(value))


def check_rule(body: Any, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stored fields of a rule made from ``body`` (a create), or from ``stored``
    (API names, as :func:`api_fields` gives them) with ``body`` laid over it (an
    update); :class:`InvalidRule` names the first field in error."""
    if not isinstance(body, dict):
        raise InvalidRule("body: expected a JSON object")
    unknown = sorted(set(body) - set(COLUMNS))
    if unknown:
        raise InvalidRule(f"{unknown[0]}: unknown field; use one of {', '.join(COLUMNS)}")
    if stored is not None and not body:
        raise InvalidRule("body: name at least one field to change")
    merged = {**DEFAULTS, **(stored or {}), **body}
    for key in ("name", "metric"):
        if key not in merged:
            raise InvalidRule(f"{key}: required")
    out: dict[str, Any] = {
        "name": _text(merged, "name", required=True, most=NAME_MAX),
        "description": _text(merged, "description", required=False, most=2000) or "",
        "metric": _choice(merged, "metric", tuple(METRICS)),
        "filters": _filters(merged["filters"]),
        "comparator": _choice(merged, "comparator", COMPARATORS),
        "mode": _choice(merged, "mode", MODES),
        "window_s": _int(merged, "windowSeconds", WINDOW_MIN, WINDOW_MAX),
        "interval_s": _int(merged, "intervalSeconds", INTERVAL_MIN, INTERVAL_MAX),
        "min_samples": _int(merged, "minSamples", 0, 10**9),
        "cooldown_s": _int(merged, "cooldownSeconds", 0, QUIET_MAX),
        "renotify_s": _int(merged, "renotifySeconds", 0, QUIET_MAX),
        "channel_ids": _channel_ids(merged["channelIds"]),
    }
    for key in ("notifyResolved", "enabled"):
        if not isinstance(merged[key], bool):
            raise InvalidRule(f"{key}: expected true or false")
        out[COLUMNS[key]] = merged[key]
    score = _text(merged, "scoreName", required=out["metric"] == "score_avg", most=NAME_MAX)
    out["score_name"] = score if out["metric"] == "score_avg" else None
    if out["mode"] == "threshold":
        threshold = _number(merged, "threshold")
        if threshold is None:
            raise InvalidRule("threshold: required in threshold mode, a number")
        out.update(threshold=threshold, baseline=None, factor=None)
    else:
        if merged["baseline"] is None:
            raise InvalidRule(
                f"baseline: required in baseline mode; use one of {', '.join(BASELINES)}"
            )
        factor = _number(merged, "factor", positive=True)
        if factor is None:
            raise InvalidRule("factor: required in baseline mode, a number greater than 0")
        out.update(threshold=None, baseline=_choice(merged, "baseline", BASELINES), factor=factor)
    return out


def api_fields(row: dict[str, Any]) -> dict[str, Any]:
    """A stored rule's definition under its API names (what :func:`check_rule` takes)."""
    out = {api: row[column] for api, column in COLUMNS.items()}
    out["notifyResolved"] = bool(out["notifyResolved"])
    out["enabled"] = bool(out["enabled"])
    return out


def describe(row: dict[str, Any]) -> str:
    """The rule's condition in words, e.g. ``error rate > 5 % over 5 minutes``."""
    m = METRICS[row["metric"]]
    unit = f" {m.unit}" if m.unit and m.unit != "%" else m.unit
    minutes = row["window_s"] / 60
    window = f"{minutes:g} minute{'s' if minutes != 1 else ''}"
    what = m.label if row["metric"] != "score_avg" else f"average score {row['score_name']}"
    if row["mode"] == "baseline":
        base = (
            "the same window last week"
            if row["baseline"] == "same_hour_last_week"
            else "the last 24 hours"
        )
        return f"{what} {row['comparator']} {row['factor']:g}x {base} over {window}"
    return f"{what} {row['comparator']} {row['threshold']:g}{unit} over {window}"
