"""Chart and list layout in a real browser: every top-cost bar labelled, the latency
percentile labels apart, trace names and inputs not cut while the row has room."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from seed import chat_trace, ingest

from conftest import Site, login, shot


def _boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_top_lists_label_every_bar_and_percentiles_do_not_overlap(site: Site, page) -> None:
    now = datetime.now(timezone.utc) - timedelta(hours=2)
    events: list[dict[str, Any]] = []
    # Twelve users and sessions (ids that look like numbers too), latencies close together.
    for i in range(12):
        _, evs = chat_trace(
            at=now + timedelta(minutes=i),
            name="turn",
            user=f"{1000 + i}" if i % 2 else f"user-{i}",
            session=f"session-{i}",
            question=f"question {i}",
            answer="answer",
        )
        events += evs
    ingest(site.url, site.project.auth, events)
    login(page, site.url, site.owner)
    page.goto(site.path("metrics?range=24h"))
    for chart in ("chart-top-users", "chart-top-sessions"):
        page.wait_for_selector(f"[data-testid={chart}][data-rendered=true]")
        box = f"[data-testid={chart}]"
        bars = page.locator(f"{box} .barlayer .point path").count()
        ticks = [t for t in page.locator(f"{box} .ytick text").all_text_contents() if t]
        assert bars == 10 and len(ticks) == 10, (chart, bars, ticks)
    users = page.locator("[data-testid=chart-top-users] .ytick text").all_text_contents()
    assert "1001" in users and "user-0" in users
    page.wait_for_selector("[data-testid=chart-latency][data-rendered=true]")
    labels = page.locator("[data-testid=chart-latency] .annotation")
    assert labels.count() == 3
    texts = labels.all_text_contents()
    assert [t.split()[0] for t in texts] == ["p50", "p95", "p99"]
    boxes = [labels.nth(i).bounding_box() for i in range(3)]
    assert all(boxes)
    for i in range(3):
        for j in range(i + 1, 3):
            assert not _boxes_overlap(boxes[i], boxes[j]), (texts[i], texts[j])
    shot(page, "metrics-top-lists")


def test_trace_list_shows_long_names_and_inputs_when_there_is_room(site: Site, page) -> None:
    name = "summarise-customer-support-ticket-v2"  # 36 characters
    question = "Summarise this ticket about a late refund"  # 41 characters
    _, events = chat_trace(
        at=datetime.now(timezone.utc) - timedelta(minutes=5),
        name=name,
        user="alice",
        session=None,
        question=question,
        answer="ok",
    )
    ingest(site.url, site.project.auth, events)
    login(page, site.url, site.owner)
    row = page.locator("[data-testid=traces-table] tbody tr[data-trace-id]").first

    def cut(cell: Any) -> bool:
        return bool(cell.evaluate("e => e.scrollWidth > e.clientWidth"))

    shot(page, "traces-list-long-names")
    assert not cut(row.locator("td.cut").first), "the name is cut"
    assert not cut(row.locator("td.preview")), "the input is cut"
    # The input takes the width the other columns leave (190 px before).
    box = row.locator("td.preview").bounding_box()
    assert box and box["width"] > 300


def test_chart_labels_show_quotes_and_markup_as_written(site: Site, page) -> None:
    """A user id with quotes and ``<b>`` is a tick label as written: plotly neither
    shows ``&quot;`` nor reads the tag."""
    user = 'o"neil <b>bold</b>'
    _, events = chat_trace(
        at=datetime.now(timezone.utc) - timedelta(minutes=5),
        name="turn",
        user=user,
        session=None,
        question="q",
        answer="a",
    )
    ingest(site.url, site.project.auth, events)
    login(page, site.url, site.owner)
    page.goto(site.path("metrics?range=24h"))
    box = "[data-testid=chart-top-users]"
    page.wait_for_selector(f"{box}[data-rendered=true]")
    ticks = [t for t in page.locator(f"{box} .ytick text").all_text_contents() if t]
    assert ticks == [user], ticks
    assert page.locator(f"{box} .ytick text b").count() == 0
