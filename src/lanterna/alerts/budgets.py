"""Cost budgets: what a budget may hold, its period, its status, and the alert messages
of its crossings.

A budget caps the spend (USD, :mod:`lanterna.analytics.spend`) of a project, a user, a
session or a tag over a period:

- ``day``: the UTC calendar day, ``[00:00, next 00:00)``;
- ``week``: the ISO week in UTC, Monday 00:00 to the next Monday 00:00;
- ``month``: the UTC calendar month, the 1st 00:00 to the next month's 1st;
- ``total``: all time (no start, no end).

Traces count toward the period their ``timestamp`` falls in. The **soft threshold**
(``softPercent`` of the limit, default 80; None turns it off) and the **hard limit**
(``limitUsd``) give the state: ``exceeded`` when spent >= limit, else ``soft`` when
spent >= softPercent % of the limit, else ``ok``.

:func:`budget_messages` is what the alert evaluator calls each tick: it records each
crossing of a budget (soft, exceeded) once per period and returns an
:class:`~lanterna.alerts.message.AlertMessage` for each one recorded now, which the
evaluator delivers to the budget's ``channelIds``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from ..analytics.spend import cost_between
from ..errors import InvalidInput
from ..store import budgets as stored
from ..store.db import Conn
from ..store.interface import AlertChannels
from ..store.interface import Budgets as BudgetStore
from ..timeutil import UTC, format_ts
from .message import AlertMessage

SCOPES = ("project", "user", "session", "tag")
PERIODS = ("day", "week", "month", "total")
DEFAULT_SOFT_PERCENT = 80.0
MAX_LIMIT_USD = 1e12
MAX_TEXT = 200
#: The API's names of a budget's fields -> the stored ones.
API_FIELDS = {
    "name": "name",
    "scope": "scope",
    "scopeValue": "scope_value",
    "period": "period",
    "limitUsd": "limit_usd",
    "softPercent": "soft_percent",
    "channelIds": "channel_ids",
}

State = Literal["ok", "soft", "exceeded"]


class InvalidBudget(InvalidInput):
    """400: a budget field is missing or wrong; the message names it."""


def _text(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidBudget(f"{name}: required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidBudget(f"{name}: expected a non-empty string")
    if len(value) > MAX_TEXT:
        raise InvalidBudget(f"{name}: at most {MAX_TEXT} characters")
    return value


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidBudget(f"{name}: expected a number")
    return float(value)


def _channel_ids(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidBudget("channelIds: expected an array of channel ids")
    return list(dict.fromkeys(value))


def check_channels(
    conn: Conn, channels: AlertChannels, project_id: str, fields: dict[str, Any]
) -> None:
    """:class:`InvalidBudget` naming ``channelIds`` when a channel the checked
    ``fields`` name is not one of the project's (run it in the write that stores them)."""
    for channel_id in fields["channel_ids"]:
        if channels.get_channel(conn, project_id, channel_id) is None:
            raise InvalidBudget(f"channelIds: no alert channel {channel_id} in this project")


def check_budget(body: Any) -> dict[str, Any]:
    """The stored fields of a budget from its API body (``name``, ``scope``,
    ``scopeValue``, ``period``, ``limitUsd``, ``softPercent``, ``channelIds``);
    :class:`InvalidBudget` naming the first wrong field. Whether the channels exist is
    :func:`check_channels`'s to say."""
    if not isinstance(body, dict):
        raise InvalidBudget("body: expected a JSON object")
    for key in body:
        if key not in API_FIELDS:
            raise InvalidBudget(f"{key}: unknown field (expected one of {', '.join(API_FIELDS)})")
    name = _text(body, "name", required=True)
    scope = body.get("scope", "project")
    if scope not in SCOPES:
        raise InvalidBudget(f"scope: expected one of {', '.join(SCOPES)}")
    value = _text(body, "scopeValue", required=scope != "project")
    if scope == "project" and value is not None:
        raise InvalidBudget("scopeValue: a project budget names no user, session or tag")
    period = body.get("period", "month")
    if period not in PERIODS:
        raise InvalidBudget(f"period: expected one of {', '.join(PERIODS)}")
    limit = _number(body, "limitUsd")
    if limit is None:
        raise InvalidBudget("limitUsd: required")
    if not 0 < limit <= MAX_LIMIT_USD:
        raise InvalidBudget(f"limitUsd: must be above 0 and at most {MAX_LIMIT_USD:g}")
    soft = _number(body, "softPercent") if "softPercent" in body else DEFAULT_SOFT_PERCENT
    if soft is not None and not 0 < soft < 100:
        raise InvalidBudget("softPercent: must be above 0 and below 100 (or null for none)")
    return {
        "name": name,
        "scope": scope,
        "scope_value": value,
        "period": period,
        "limit_usd": limit,
        "soft_percent": soft,
        "channel_ids": _channel_ids(body.get("channelIds")),
    }


def check_update(stored_row: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The stored fields after applying ``patch`` (API names; omitted ones keep their
    value) to ``stored_row``, checked as a whole."""
    if not isinstance(patch, dict) or not patch:
        raise InvalidBudget("body: expected a JSON object with at least one field")
    current = {api: stored_row[column] for api, column in API_FIELDS.items()}
    if patch.get("scope") == "project" and "scopeValue" not in patch:
        current["scopeValue"] = None
    return check_budget({**current, **patch})


def period_bounds(period: str, at: datetime) -> tuple[datetime | None, datetime | None]:
    """``[start, end)`` of the UTC calendar period containing ``at`` (None, None for
    ``total``)."""
    at = at.astimezone(UTC)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else (start.replace(month=start.month + 1))
        )
        return start, end
    if period == "total":
        return None, None
    raise ValueError(f"unknown period {period!r}")


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budget's spend in the period containing ``at``."""

    spent: float
    limit: float
    soft_percent: float | None
    period_start: datetime | None
    period_end: datetime | None

    @property
    def remaining(self) -> float:
        """What is left of the limit (0 once exceeded)."""
        return max(self.limit - self.spent, 0.0)

    @property
    def percent(self) -> float:
        """Spent as a percentage of the limit."""
        return self.spent / self.limit * 100.0

    @property
    def state(self) -> State:
        """``exceeded`` at or over the limit, ``soft`` at or over the soft threshold."""
        if self.spent >= self.limit:
            return "exceeded"
        if self.soft_percent is not None and self.percent >= self.soft_percent:
            return "soft"
        return "ok"

    @property
    def period_key(self) -> str:
        """The period's start as text (``total`` for all time): crossings are per key."""
        return "total" if self.period_start is None else format_ts(self.period_start)


def status(
    conn: Conn,
    project_id: str,
    budget: dict[str, Any],
    at: datetime,
    *,
    events: Conn | None = None,
) -> BudgetStatus:
    """The budget's status in its period containing ``at``, its spend read on
    ``events`` (the store's ``events_conn``; ``conn`` by default)."""
    start, end = period_bounds(budget["period"], at)
    value = budget["scope_value"]
    spent = cost_between(
        events or conn,
        project_id,
        start,
        end,
        user_id=value if budget["scope"] == "user" else None,
        session_id=value if budget["scope"] == "session" else None,
        tag=value if budget["scope"] == "tag" else None,
    )
    return BudgetStatus(spent, budget["limit_usd"], budget["soft_percent"], start, end)


def describe(budget: dict[str, Any]) -> str:
    """The budget in words, e.g. ``cost of user ada per month``."""
    who = (
        "the project"
        if budget["scope"] == "project"
        else (f"{budget['scope']} {budget['scope_value']}")
    )
    per = "in total" if budget["period"] == "total" else f"per {budget['period']}"
    return f"cost of {who} {per}"


def has_new_crossing(
    conn: Conn,
    project_id: str,
    now: datetime,
    *,
    store: BudgetStore | None = None,
    events: Conn | None = None,
) -> bool:
    """True when a budget of the project has reached a level not yet recorded in its
    current period. Read-only: the evaluator checks it on a read connection so that the
    spend queries hold the write lock (:func:`budget_messages`) only when there is a
    crossing to record."""
    budgets: BudgetStore = stored if store is None else store
    for budget in budgets.list_all(conn, project_id):
        st = status(conn, project_id, budget, now, events=events)
        if st.state == "ok":
            continue
        recorded = {
            c["level"]
            for c in budgets.crossings(conn, project_id, budget["id"])
            if c["period_start"] == st.period_key
        }
        wanted = {"soft", "exceeded"} if st.state == "exceeded" else {"soft"}
        if wanted - recorded:
            return True
    return False


def budget_messages(
    conn: Conn,
    project_id: str,
    now: datetime,
    *,
    base_url: str = "",
    store: BudgetStore | None = None,
    events: Conn | None = None,
) -> list[AlertMessage]:
    """Record each budget of the project that reached its soft threshold or its limit
    in the current period and was not recorded yet, and return one ``fired``
    :class:`AlertMessage` per new record (``details["level"]``: ``soft`` or
    ``exceeded``; a budget that jumps past both at once gives one ``exceeded`` message).

    Run it in a write transaction (the writer, or ``Conn.transaction()``): the record
    and the decision to notify are one, so each crossing is notified once even when
    several processes evaluate at once. ``base_url`` is the server's public URL (the
    messages link to the Budgets page); ``store`` is where budgets are kept (the
    server's ``runtime.store.budgets``; the SQLite/PostgreSQL one by default);
    ``events`` is where the spend is read (``runtime.store.events_conn``; ``conn``).
    """
    budgets: BudgetStore = stored if store is None else store
    out: list[AlertMessage] = []
    for budget in budgets.list_all(conn, project_id):
        st = status(conn, project_id, budget, now, events=events)
        if st.state == "ok":
            continue
        levels = ["soft", "exceeded"] if st.state == "exceeded" else ["soft"]
        new = [
            level
            for level in levels
            if budgets.record_crossing(
                conn, project_id, budget["id"], st.period_key, level, st.spent, st.limit, now
            )
        ]
        if not new:
            continue
        level = new[-1]
        threshold = st.limit if level == "exceeded" else st.limit * (st.soft_percent or 0.0) / 100.0
        words = "the limit" if level == "exceeded" else f"{st.soft_percent:g}% of the limit"
        out.append(
            AlertMessage(
                kind="fired",
                project_id=project_id,
                rule_id=budget["id"],
                rule_name=budget["name"],
                condition=f"{describe(budget)} reached {words} of ${st.limit:,.2f}",
                value=st.spent,
                threshold=threshold,
                at=now,
                url=f"{base_url.rstrip('/')}/project/{project_id}/budgets",
                details={"source": "budget", "level": level, **status_json(st)},
            )
        )
    return out


def status_json(st: BudgetStatus) -> dict[str, Any]:
    """The status object of the API (``GET /api/public/budgets/{id}/status``)."""
    return {
        "spentUsd": st.spent,
        "limitUsd": st.limit,
        "remainingUsd": st.remaining,
        "percent": st.percent,
        "softPercent": st.soft_percent,
        "state": st.state,
        "periodStart": None if st.period_start is None else format_ts(st.period_start),
        "periodEnd": None if st.period_end is None else format_ts(st.period_end),
    }
