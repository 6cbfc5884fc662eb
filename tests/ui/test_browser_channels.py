"""In a real browser: the alert channels page, create and edit a channel."""

from __future__ import annotations

from conftest import Site, login, shot


def _create(page, kind: str, **fields: str) -> None:
    """Fill the new-channel form with ``fields`` (input names) and submit it."""
    form = page.get_by_test_id("new-channel")
    form.locator("select[name=type]").select_option(kind)
    for name, value in fields.items():
        form.locator(f"input[name={name}]").fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()


def test_create_and_edit_channels_in_the_browser(sqlite_site: Site, page) -> None:
    site = sqlite_site
    login(page, site.url, site.owner)
    page.goto(site.path("settings"))
    page.click("a:text('Webhook, Slack and email channels')")
    page.wait_for_load_state()
    _create(
        page,
        "webhook",
        name="Ops <hook>",
        url="https://hooks.example.com/lanterna",
        secret="browser-secret-0123456789",
    )
    _create(
        page,
        "email",
        name="On-call mail",
        host="smtp.example.com",
        username="alerts",
        password="mail-password-123",
        to="oncall@example.com, lead@example.com",
        **{"from": "lanterna@example.com"},
    )
    table = page.get_by_test_id("channels").locator("table").inner_text()
    assert "Ops <hook>" in table and "https://hooks.example.com/lanterna" in table
    assert "oncall@example.com, lead@example.com via smtp.example.com:587" in table
    html = page.content()
    assert "browser-secret-0123456789" not in html and "mail-password-123" not in html
    shot(page, "alert-channels")

    row = page.locator("tr", has_text="On-call mail")
    row.locator("summary:text('Edit')").click()
    row.locator("input[name=to]").fill("oncall@example.com")
    row.locator("button:text('Save')").click()
    page.wait_for_load_state()
    table = page.get_by_test_id("channels").locator("table").inner_text()
    assert "oncall@example.com via smtp.example.com:587" in table

    page.context.clear_cookies()
    login(page, site.url, site.viewer)
    page.goto(site.path("settings/channels"))
    assert "On-call mail" in page.get_by_test_id("channels").inner_text()
    assert page.get_by_test_id("new-channel").count() == 0
