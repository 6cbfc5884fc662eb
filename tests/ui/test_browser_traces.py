"""In a real browser: log in, filter traces, open a trace and a session, annotate."""

from __future__ import annotations

import re

from seed import seed_basic

from conftest import Site, login, shot


def _rows(page) -> list[str]:
    return page.locator("[data-testid=traces-table] tbody tr[data-trace-id]").all_inner_texts()


def test_traces_list_filters_trace_detail_and_session(site: Site, page) -> None:
    ids = seed_basic(site.url, site.project.auth)
    login(page, site.url, site.owner)
    assert page.url.endswith(f"/project/{site.project.id}/traces")
    rows = _rows(page)
    assert len(rows) == 4
    assert any("서울 날씨 어때?" in r for r in rows)  # the Korean question as the input preview
    shot(page, "traces-list")

    # Filter by user through the form; the filter lands in the URL.
    page.fill("input[name=user]", "bob")
    page.click("[data-testid=trace-filters] button[type=submit]")
    page.wait_for_load_state()
    assert "user=bob" in page.url
    rows = _rows(page)
    assert len(rows) == 1 and "research" in rows[0]

    # Errors only (a shared URL gives the same view).
    page.goto(site.path("traces?level=errors"))
    rows = _rows(page)
    assert len(rows) == 1 and "ERROR" in rows[0]
    page.goto(site.path("traces?user=alice&level=errors"))
    assert _rows(page) == []

    # Full-text search over input and output, in Korean.
    page.goto(site.path("traces"))
    page.fill("input[name=q]", "기온은 21도")
    page.click("[data-testid=trace-filters] button[type=submit]")
    page.wait_for_load_state()
    rows = _rows(page)
    assert len(rows) == 1 and "서울" in rows[0]

    # Open the failing trace from the list.
    page.goto(site.path("traces?level=errors"))
    page.click("[data-testid=traces-table] tbody tr a:text('research')")
    page.wait_for_load_state()
    assert page.url.endswith(f"/traces/{ids['error_trace']}")
    tree = page.locator("[data-testid=trace-tree]")
    labels = tree.locator(".tree-label").all_inner_texts()
    assert [re.sub(r"\s+", " ", x).strip() for x in labels] == [
        "TRACE research",
        "SPAN retrieve",
        "GENERATION answer",
        "SPAN web_search ERROR",
    ]
    bars = tree.locator("[data-testid=timeline-bar] .bar")
    assert bars.count() == 3
    # The waterfall is drawn to scale: the generation starts after the retrieval.
    retrieve, generation = bars.nth(0).bounding_box(), bars.nth(1).bounding_box()
    assert retrieve and generation and generation["x"] > retrieve["x"]
    assert generation["width"] > retrieve["width"]
    assert page.get_by_test_id("trace-cost").inner_text().startswith("$")
    assert page.get_by_test_id("trace-latency").inner_text() == "1.80 s"
    shot(page, "trace-detail")

    # The failing span: level and status message highlighted.
    tree.locator(".tree-row", has_text="web_search").click()
    page.wait_for_load_state()
    status = page.get_by_test_id("status-message")
    assert "TimeoutError: web search took longer than 30s" in status.inner_text()
    assert "status-error" in (status.get_attribute("class") or "")
    shot(page, "trace-error-span")

    # The generation: model, usage and cost, input as a conversation.
    tree.locator(".tree-row", has_text="answer").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("model").inner_text() == "gpt-4o-mini"
    usage = page.get_by_test_id("usage").inner_text()
    assert "1,200" in usage and "300" in usage and "1,500" in usage
    assert page.get_by_test_id("observation-cost").inner_text().startswith("$0.000")
    messages = page.get_by_test_id("input").locator(".msg")
    assert messages.count() == 2
    assert messages.nth(1).inner_text().splitlines()[0].upper() == "USER"
    assert "Find recent papers on retrieval" in messages.nth(1).inner_text()
    assert "I could not finish" in page.get_by_test_id("output").inner_text()

    # Annotate by hand: the score shows on the observation and in the list.
    form = page.get_by_test_id("add-score")
    form.locator("input[name=name]").fill("helpfulness")
    form.locator("input[name=value]").fill("0.25")
    form.locator("input[name=comment]").fill("missed the papers")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    scores = page.get_by_test_id("scores").inner_text()
    assert "helpfulness" in scores and "0.25" in scores and "ANNOTATION" in scores
    page.goto(site.path("traces?user=bob"))
    assert "helpfulness 0.25" in _rows(page)[0]

    # The session: three turns in order, cumulative cost, average latency.
    page.goto(site.path("sessions"))
    assert "sess-alice-1" in page.get_by_test_id("sessions-table").inner_text()
    shot(page, "sessions-list")
    page.click(f"a:text('{ids['session']}')")
    page.wait_for_load_state()
    turns = page.get_by_test_id("turn")
    assert turns.count() == 3
    assert "서울 날씨 어때?" in turns.nth(0).get_by_test_id("turn-input").inner_text()
    assert "umbrella" in turns.nth(2).get_by_test_id("turn-output").inner_text()
    costs = [float(x) for x in re.findall(r"cumulative \$([\d.]+)", turns.all_inner_texts()[2])]
    total = page.get_by_test_id("session-cost").inner_text()
    assert costs and total == f"${costs[0]:.4f}"
    assert page.get_by_test_id("session-latency").inner_text() == "1.80 s"
    shot(page, "session")
