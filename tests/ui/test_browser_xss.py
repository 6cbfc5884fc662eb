"""Script payloads in inputs, outputs, metadata, names and scores render as inert text."""

from __future__ import annotations

from urllib.parse import quote

from seed import XSS_IMG, XSS_SCRIPT, seed_xss

from conftest import Site, login, shot

INJECTED = (
    "img[src=x], iframe, a[href^='javascript'], [onerror], [onmouseover], "
    "script:not([src]):not([type='application/json'])"
)


def _inert(page) -> None:
    assert page.evaluate("window.__xss") is None, "an injected script ran"
    assert page.locator(INJECTED).count() == 0, page.locator(INJECTED).evaluate_all(
        "els => els.map(e => e.outerHTML)"
    )


def test_payloads_render_as_text(sqlite_site: Site, page) -> None:
    site = sqlite_site
    trace_id = seed_xss(site.url, site.project.auth)
    login(page, site.url, site.owner)
    visits = {
        "xss-traces-list": site.path("traces"),
        "xss-trace": site.path(f"traces/{trace_id}"),
        "xss-generation": site.path(f"traces/{trace_id}?observation={trace_id}-llm"),
        "xss-retrieve": site.path(f"traces/{trace_id}?observation={trace_id}-retrieve"),
        "xss-sessions": site.path("sessions"),
        "xss-session": site.path(f"sessions/{quote('sess ' + XSS_IMG, safe='')}"),
    }
    for name, url in visits.items():
        page.goto(url)
        page.wait_for_load_state("networkidle")
        _inert(page)
        shot(page, name)
    # The payloads are shown, as the text they are.
    page.goto(site.path(f"traces/{trace_id}"))
    text = page.inner_text("body")
    assert XSS_SCRIPT in text and XSS_IMG in text
    assert "javascript:window.__xss=3" in text  # the markdown link, not a link
    assert "**markdown**" in text  # markdown is shown as written, never rendered
    # Hovering and clicking around the rendered values runs nothing either.
    for locator in page.locator("[data-testid=input] *, [data-testid=metadata] *").all()[:20]:
        if locator.is_visible():
            locator.hover()
    page.locator("[data-testid=output] pre").first.click()
    _inert(page)
