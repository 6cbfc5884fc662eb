"""The Budgets page over real HTTP (the live server, both backends): spend against the
limit as a bar, create/change/delete by owners and admins only, viewers see, bad input
answered on the page with nothing stored, everything a user typed escaped."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from conftest import PASSWORD, Site

XSS = "<script>alert(1)</script>"


@pytest.fixture
def logged_in(site: Site) -> Iterator[Callable[[Site, str], httpx.Client]]:
    """Log in through the login form; each client is closed after the test."""
    made: list[httpx.Client] = []

    def login(site: Site, email: str) -> httpx.Client:
        client = httpx.Client(base_url=site.url, follow_redirects=False)
        made.append(client)
        token = csrf(client, "/login")
        data = {"csrf_token": token, "email": email, "password": PASSWORD}
        assert client.post("/login", data=data).status_code == 303
        return client

    yield login
    for client in made:
        client.close()


def csrf(client: httpx.Client, path: str) -> str:
    reply = client.get(path)
    assert reply.status_code == 200, reply.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', reply.text)
    assert found, f"no form on {path}"
    return found.group(1)


def post(client: httpx.Client, site: Site, path: str, **data: str) -> httpx.Response:
    token = csrf(client, f"/project/{site.project.id}/budgets")
    return client.post(
        f"/project/{site.project.id}/budgets{path}", data={"csrf_token": token, **data}
    )


def spend(site: Site, cost: float, user: str | None = None, tags: list[str] | None = None) -> None:
    at = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    trace_id = str(uuid.uuid4())
    batch = [
        {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": at,
         "body": {"id": trace_id, "timestamp": at, "userId": user, "tags": tags or []}},
        {"id": str(uuid.uuid4()), "type": "generation-create", "timestamp": at,
         "body": {"id": str(uuid.uuid4()), "traceId": trace_id, "startTime": at,
                  "costDetails": {"total": cost}}},
    ]  # fmt: skip
    reply = httpx.post(
        f"{site.url}/api/public/ingestion", json={"batch": batch}, auth=site.project.auth
    )
    assert reply.status_code == 207 and not reply.json()["errors"], reply.text


def budgets(site: Site) -> list[dict[str, Any]]:
    reply = httpx.get(f"{site.url}/api/public/budgets", auth=site.project.auth)
    return list(reply.json()["data"])


def test_owners_manage_budgets_and_the_bar_shows_the_spend(site: Site, logged_in) -> None:
    owner = logged_in(site, site.owner)
    form = {"name": f"Ada {XSS}", "scope": "user", "scope_value": f"ada{XSS}", "period": "month"}
    made = post(owner, site, "", **form, limit_usd="10", soft_percent="80")
    assert made.status_code == 303
    spend(site, 6.5, f"ada{XSS}")
    page = owner.get(f"/project/{site.project.id}/budgets").text
    assert XSS not in page and "Ada &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'data-testid="budget-fill" style="width:65.0%' in page
    assert "$6.50</strong> of $10.00 (65.0%)" in page and ">ok<" in page

    (stored,) = budgets(site)
    assert stored["limitUsd"] == 10.0 and stored["scopeValue"] == f"ada{XSS}"
    changed = post(owner, site, f"/{stored['id']}/update", **form, limit_usd="8", soft_percent="75")
    assert changed.status_code == 303
    page = owner.get(f"/project/{site.project.id}/budgets").text
    assert "width:81.2%" in page and ">soft<" in page  # 6.50 of 8: past 75 %

    bad = post(owner, site, "", name="x", limit_usd="ten")
    assert bad.status_code == 400 and "limitUsd: enter a number" in bad.text
    bad = post(owner, site, "", name="x", scope="user", limit_usd="1")
    assert bad.status_code == 400 and "scopeValue: required" in bad.text
    assert len(budgets(site)) == 1  # nothing half-written

    assert post(owner, site, f"/{stored['id']}/delete").status_code == 303
    assert budgets(site) == []
    assert post(owner, site, f"/{stored['id']}/delete").status_code == 404


def test_viewers_see_budgets_but_cannot_change_them(site: Site, logged_in) -> None:
    owner = logged_in(site, site.owner)
    assert post(owner, site, "", name="Project", limit_usd="100").status_code == 303
    (stored,) = budgets(site)
    viewer = logged_in(site, site.viewer)
    page = viewer.get(f"/project/{site.project.id}/budgets")
    assert page.status_code == 200 and "Project" in page.text
    assert "/delete" not in page.text and "Create budget" not in page.text
    assert post(viewer, site, "", name="mine", limit_usd="1").status_code == 403
    assert post(viewer, site, f"/{stored['id']}/delete").status_code == 403
    assert len(budgets(site)) == 1


def test_in_a_browser_the_bar_fills_with_the_spend(sqlite_site: Site, page) -> None:
    from conftest import login, shot

    site = sqlite_site
    login(page, site.url, site.owner)
    page.goto(site.path("budgets"))
    form = page.locator("#new-budget form")
    form.locator("input[name=name]").fill(f"Team {XSS}")
    form.locator("select[name=scope]").select_option("tag")
    form.locator("input[name=scope_value]").fill("team-a")
    form.locator("input[name=limit_usd]").fill("4")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    spend(site, 3.5, tags=["team-a"])
    spend(site, 9.0, tags=["team-b"])
    page.reload()
    budget = page.get_by_test_id("budget")
    assert f"Team {XSS}" in budget.locator("h2").inner_text()  # shown as text, not run
    assert budget.get_by_test_id("budget-state").inner_text() == "soft"  # 87.5 %
    fill = budget.get_by_test_id("budget-fill").bounding_box()
    bar = budget.locator(".budget-bar").bounding_box()
    assert fill is not None and bar is not None
    assert abs(fill["width"] / bar["width"] - 0.875) < 0.01
    shot(page, "budgets")


def test_a_budget_names_the_channels_it_notifies(site: Site, logged_in) -> None:
    owner = logged_in(site, site.owner)
    config = {"url": "https://hooks.example.com/lanterna", "secret": "s" * 20}
    hook = {"name": "Ops hook", "type": "webhook", "config": config}
    made = httpx.post(f"{site.url}/api/public/alert-channels", json=hook, auth=site.project.auth)
    assert made.status_code == 200, made.text
    page = owner.get(f"/project/{site.project.id}/budgets").text
    assert f'name="channel_ids" value="{made.json()["id"]}"' in page
    bad = post(owner, site, "", name="x", limit_usd="1", channel_ids="nope")
    assert bad.status_code == 400 and "channelIds: no alert channel nope" in bad.text
    assert budgets(site) == []
    ok = post(owner, site, "", name="Team", limit_usd="5", channel_ids=made.json()["id"])
    assert ok.status_code == 303
    (stored,) = budgets(site)
    assert stored["channelIds"] == [made.json()["id"]]
    page = owner.get(f"/project/{site.project.id}/budgets").text
    assert "Notifies: Ops hook" in page
