"""The metrics page's ranges: presets in whole UTC hours, custom ranges exact."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from lanterna.server.ui import ranges

UTC = timezone.utc


@pytest.mark.parametrize(
    ("moment", "preset", "start", "end"),
    [
        # mid-hour: from the start of the hour 24 h back to the end of this one
        ("2026-12-06 10:37:12.5", "24h", "2026-12-05 10:00", "2026-12-06 11:00"),
        ("2026-12-06 10:37:12.5", "7d", "2026-11-29 10:00", "2026-12-06 11:00"),
        ("2026-12-06 10:37:12.5", "", "2026-11-29 10:00", "2026-12-06 11:00"),  # default
        ("2026-12-06 10:37:12.5", "nonsense", "2026-11-29 10:00", "2026-12-06 11:00"),
        # on a whole hour nothing is added
        ("2026-12-06 10:00", "30d", "2026-11-06 10:00", "2026-12-06 10:00"),
    ],
)
def test_a_preset_covers_whole_hours_around_it(
    monkeypatch: pytest.MonkeyPatch, moment: str, preset: str, start: str, end: str
):
    at = datetime.fromisoformat(moment).replace(tzinfo=UTC)
    monkeypatch.setattr(ranges, "now", lambda: at)
    window = ranges.bounded_range({"range": preset})
    assert (window.start, window.end) == (
        datetime.fromisoformat(start).replace(tzinfo=UTC),
        datetime.fromisoformat(end).replace(tzinfo=UTC),
    )
    # never less than the preset asked for
    assert window.start <= at - ranges.METRIC_RANGES.get(preset, timedelta(days=7))
    assert window.end >= at
    assert window.error == ""


def test_a_custom_range_keeps_its_exact_ends(monkeypatch: pytest.MonkeyPatch):
    at = datetime(2026, 12, 6, 10, 37, 12, tzinfo=UTC)
    monkeypatch.setattr(ranges, "now", lambda: at)
    window = ranges.bounded_range(
        {"range": "custom", "from": "2026-12-01T08:15", "to": "2026-12-02T09:45"}
    )
    assert (window.start, window.end) == (
        datetime(2026, 12, 1, 8, 15, tzinfo=UTC),
        datetime(2026, 12, 2, 9, 45, tzinfo=UTC),
    )
    open_end = ranges.bounded_range({"range": "custom", "from": "2026-12-01T08:15"})
    assert open_end.end == at
    backwards = ranges.bounded_range({"range": "custom", "from": "2026-12-03", "to": "2026-12-02"})
    assert backwards.error == "The range must start before it ends."
