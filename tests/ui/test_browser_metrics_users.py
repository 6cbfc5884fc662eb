"""In a real browser: the metrics dashboard draws every chart with data; the users pages."""

from __future__ import annotations

from seed import seed_basic

from conftest import Site, login, shot

CHARTS = (
    "chart-cost",
    "chart-latency",
    "chart-tokens",
    "chart-errors",
    "chart-traces",
    "chart-scores",
    "chart-top-users",
    "chart-top-sessions",
)


def test_metrics_charts_render_with_data(site: Site, page) -> None:
    seed_basic(site.url, site.project.auth)
    login(page, site.url, site.owner)
    page.goto(site.path("metrics?range=24h"))
    page.wait_for_selector("[data-testid=chart-top-sessions][data-rendered=true]")
    kpis = page.get_by_test_id("kpis").inner_text()
    assert "TRACES\n4" in kpis.upper()
    assert "25.0%" in kpis  # one of four traces failed
    assert "1.78 s" in kpis or "1.80 s" in kpis  # p50 of 1.8 s traces, within 2.5 %
    for chart in CHARTS:
        svg = page.locator(f"[data-testid={chart}] svg.main-svg").first
        assert svg.is_visible(), chart
        # Plotly drew data marks: bars as paths in .bars, lines as paths in .scatterlayer.
        box = f"[data-testid={chart}]"
        marks = page.locator(
            f"{box} .barlayer .point path, {box} .scatterlayer .trace path.js-line,"
            f" {box} .scatterlayer .point"
        )
        assert marks.count() > 0, f"{chart} has no data marks"
    # The chart texts carry the data: models in the legend, users and sessions on the axes.
    legend = page.locator("[data-testid=chart-cost] .legend").text_content() or ""
    assert "gpt-4o" in legend and "gpt-4o-mini" in legend
    assert "alice" in (page.locator("[data-testid=chart-top-users]").text_content() or "")
    assert "sess-alice-1" in (page.locator("[data-testid=chart-top-sessions]").text_content() or "")
    assert "user_rating" in (
        page.locator("[data-testid=chart-scores] .legend").text_content() or ""
    )
    shot(page, "metrics")


def test_users_list_and_user_page(site: Site, page) -> None:
    seed_basic(site.url, site.project.auth)
    login(page, site.url, site.viewer)
    page.goto(site.path("users"))
    table = page.get_by_test_id("users-table")
    rows = table.locator("tbody tr").all_inner_texts()
    assert len(rows) == 2
    alice = next(r for r in rows if r.startswith("alice"))
    assert "\t3\t" in alice and "4,500" in alice  # requests and tokens
    assert "user_rating 4" in alice and "quality 0.9" in alice and "chat-turn" in alice
    shot(page, "users")
    table.locator("a:text('alice')").click()
    page.wait_for_load_state()
    assert page.get_by_test_id("user-requests").inner_text() == "3"
    assert page.get_by_test_id("user-traces").locator("tbody tr").count() == 3
    assert "sess-alice-1" in page.get_by_test_id("user-sessions").inner_text()
    shot(page, "user")
