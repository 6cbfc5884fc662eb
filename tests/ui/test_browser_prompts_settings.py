"""In a real browser: prompt versions and labels, API keys, a viewer's read-only view."""

from __future__ import annotations

import httpx
from seed import create_prompt

from conftest import Site, login, shot


def _labels(page, version: int) -> str:
    return page.locator(f"[data-testid=versions] tr[data-version='{version}'] .labels").inner_text()


def test_create_prompt_version_and_move_production(site: Site, page) -> None:
    auth = site.project.auth
    create_prompt(
        site.url, auth, "support/answer", "Answer {{question}} briefly.", labels=["production"]
    )
    login(page, site.url, site.owner)
    page.goto(site.path("prompts"))
    assert "support/answer" in page.get_by_test_id("prompts-table").inner_text()
    shot(page, "prompts-list")
    page.click("a:text('support/answer')")
    page.wait_for_load_state()
    assert "production" in _labels(page, 1)

    # A new version from the form (prefilled with the selected version's text).
    page.click("[data-testid=new-version-panel] summary")
    form = page.get_by_test_id("new-version")
    assert form.locator("textarea[name=prompt]").input_value() == "Answer {{question}} briefly."
    form.locator("textarea[name=prompt]").fill("Answer {{question}} in detail.\nCite sources.")
    form.locator("input[name=commit_message]").fill("more detail")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert page.url.endswith("version=2")
    assert "latest" in _labels(page, 2) and "production" in _labels(page, 1)
    diff = page.get_by_test_id("diff").inner_text()
    assert "-Answer {{question}} briefly." in diff
    assert "+Answer {{question}} in detail." in diff and "+Cite sources." in diff
    shot(page, "prompt-diff")

    # Move production to version 2: the API serves it from now on.
    page.get_by_test_id("promote-2").click()
    page.wait_for_load_state()
    assert "production" in _labels(page, 2) and "production" not in _labels(page, 1)
    served = httpx.get(f"{site.url}/api/public/v2/prompts/support/answer", auth=auth).json()
    assert served["version"] == 2 and served["commitMessage"] == "more detail"
    assert "Cite sources." in served["prompt"]

    # A bad version is refused with the reason, and nothing is stored.
    page.click("[data-testid=new-version-panel] summary")
    form = page.get_by_test_id("new-version")
    form.locator("textarea[name=config]").fill("{not json")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "config: not valid JSON" in page.locator(".flash.error").inner_text()
    listed = httpx.get(f"{site.url}/api/public/v2/prompts?name=support/answer", auth=auth).json()
    assert listed["data"][0]["versions"] == [1, 2]


def test_viewer_cannot_edit_prompts(site: Site, page) -> None:
    create_prompt(site.url, site.project.auth, "greeting", "Hello {{name}}", labels=["production"])
    create_prompt(site.url, site.project.auth, "greeting", "Hi {{name}}")
    login(page, site.url, site.viewer)
    page.goto(site.path("prompts/greeting"))
    assert "Hi {{name}}" not in page.get_by_test_id("version-content").inner_text()  # production v1
    assert page.locator("[data-testid=new-version], [data-testid^=promote-]").count() == 0
    assert page.locator("form[action$='/prompt-labels']").count() == 0
    page.goto(site.path("prompts"))
    assert page.locator("form[action$='/prompt-versions']").count() == 0
    # Posting anyway, with the viewer's own valid session and CSRF token, is refused.
    token = page.locator("form[action='/logout'] input[name=csrf_token]").input_value()
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    for path, data in (
        ("prompt-versions", {"name": "greeting", "type": "text", "prompt": "Hacked"}),
        ("prompt-labels", {"name": "greeting", "version": "2", "label": "production"}),
    ):
        response = httpx.post(site.path(path), data={"csrf_token": token, **data}, cookies=cookies)
        assert response.status_code == 403
    served = httpx.get(f"{site.url}/api/public/v2/prompts/greeting", auth=site.project.auth).json()
    assert served["version"] == 1
    shot(page, "prompts-viewer")


def test_create_and_revoke_an_api_key(site: Site, page) -> None:
    login(page, site.url, site.owner)
    page.goto(site.path("settings"))
    page.fill("[data-testid=api-keys] input[name=note]", "browser test")
    page.click("[data-testid=api-keys] button:text('Create API key')")
    page.wait_for_load_state()
    shown = page.get_by_test_id("new-key").inner_text()
    public = next(
        x.split("=", 1)[1] for x in shown.splitlines() if x.startswith("LANGFUSE_PUBLIC_KEY=")
    )
    secret = next(
        x.split("=", 1)[1] for x in shown.splitlines() if x.startswith("LANGFUSE_SECRET_KEY=")
    )
    shot(page, "settings-new-key")
    assert httpx.get(f"{site.url}/api/public/projects", auth=(public, secret)).status_code == 200

    # Shown once: the page never shows the secret again.
    page.goto(site.path("settings"))
    assert secret not in page.content()
    row = page.locator(f"[data-testid=api-keys] tr[data-key='{public}']")
    assert "browser test" in row.inner_text() and f"sk-lf-...{secret[-4:]}" in row.inner_text()
    row.locator("button:text('Revoke')").click()
    page.wait_for_load_state()
    assert "revoked" in page.locator(f"tr[data-key='{public}']").inner_text()
    assert httpx.get(f"{site.url}/api/public/projects", auth=(public, secret)).status_code == 401
    # The project's other key still works.
    assert httpx.get(f"{site.url}/api/public/projects", auth=site.project.auth).status_code == 200
    shot(page, "settings")
