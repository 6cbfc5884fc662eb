"""Time ranges of the dashboard's pages, read from the URL once for every page.

A page's range is a preset (``range=24h``...) or ``range=custom`` with ``from``/``to``
(a date or a ``datetime-local`` value, UTC unless it names an offset). The lists
(traces, sessions, users) default to all time and leave a preset's end open; the
metrics page needs both ends and defaults to the last 7 days, in whole UTC hours (see
:func:`bounded_range`). The filter form is the
``range_fields``/``range_filter`` macros of ``templates/_range_filter.html``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ...store.filters import FilterError
from ...timeutil import UTC, now, parse_ts

#: The lists' presets (``all`` and ``custom`` besides).
LIST_RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
#: The metrics page's presets (``custom`` besides) and its default.
METRIC_RANGES = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
METRIC_DEFAULT = "7d"


def parse_when(value: str, name: str) -> datetime | None:
    """A date or ``datetime-local`` value (UTC when it has no offset); None when empty.

    Raises :class:`FilterError` naming ``name`` for anything else.
    """
    if not value:
        return None
    text = value.strip()
    if len(text) == 10:  # a bare date
        text += "T00:00"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return parse_ts(text)
        except ValueError:
            raise FilterError(f"{name}: not a date or time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def time_range(params: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    """A list's ``[start, end)``: a preset reaches back from now and leaves the end open;
    ``custom`` takes ``from``/``to`` (either may be empty); anything else is all time.

    Raises :class:`FilterError` for an unreadable custom date.
    """
    preset = params.get("range") or "all"
    if preset in LIST_RANGES:
        return now() - LIST_RANGES[preset], None
    if preset == "custom":
        return parse_when(params.get("from", ""), "from"), parse_when(params.get("to", ""), "to")
    return None, None


@dataclass(frozen=True)
class Bounded:
    """A range with both ends (the metrics page's), the form's values, and the message
    for a custom range that could not be read (then the default range is shown)."""

    start: datetime
    end: datetime
    params: dict[str, str]
    error: str = ""


def bounded_range(params: Mapping[str, str]) -> Bounded:
    """The metrics page's range: a preset ending now (:data:`METRIC_DEFAULT` for none or
    an unknown one) or ``custom`` ``from``/``to`` (a missing end is the preset's).

    A preset covers whole UTC hours: from the start of the hour it reaches back to, to
    the end of the current hour. Whole hours are read from the hourly rollups; a
    partial hour at either end would be read from raw rows, and the current hour holds
    everything just ingested (a minute of heavy traffic is as costly as the month).
    A custom range keeps its exact ends."""
    form = {k: (params.get(k) or "").strip() for k in ("range", "from", "to")}
    preset = form["range"] or METRIC_DEFAULT
    form["range"] = preset
    fallback = METRIC_RANGES[METRIC_DEFAULT]
    current = now()
    end = hour_ceil(current)
    start = hour_floor(current - METRIC_RANGES.get(preset, fallback))
    error = ""
    if preset == "custom":
        start, end = current - fallback, current
        try:
            start = parse_when(form["from"], "from") or start
            end = parse_when(form["to"], "to") or end
        except FilterError as exc:
            error = str(exc)
        if start >= end:
            error, start = "The range must start before it ends.", end - fallback
    return Bounded(start, end, form, error)


def hour_floor(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC hour."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: datetime) -> datetime:
    """The end of ``moment``'s UTC hour (``moment`` itself on a whole hour)."""
    floor = hour_floor(moment)
    return floor if floor == moment else floor + timedelta(hours=1)
