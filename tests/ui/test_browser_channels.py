"""In a real browser: the alert channels page, create and edit a channel."""

from __future__ import annotations

from conftest import Site, login, shot


def test_create_and_edit_channels_in_the_browser(sqlite_site: Site, page) -> None:
    site = sqlite_site
    login(page, site.url, site.owner)
    page.goto(site.path("settings"))
    page.click("a:text('Webhook, Slack and email channels')")
    page.wait_for_load_state()
    form = page.get_by_test_id("new-channel")
    form.locator("input[name=name]").fill("Ops <hook>")
    form.locator("select[name=type]").select_option("webhook")
    form.locator("input[name=url]").fill("https://hooks.example.com/lanterna")
    form.locator("input[name=secret]").fill("browser-secret-0123456789")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    form = page.get_by_test_id("new-channel")
    form.locator("input[name=name]").fill("On-call mail")
    form.locator("select[name=type]").select_option("email")
    form.locator("input[name=host]").fill("smtp.example.com")
    form.locator("input[name=username]").fill("alerts")
    form.locator("input[name=password]").fill("mail-password-123")
    form.locator("input[name=from]").fill("lanterna@example.com")
    form.locator("input[name=to]").fill("oncall@example.com, lead@example.com")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
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
