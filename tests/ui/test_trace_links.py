"""Links from the SDKs land on the trace page (``/trace/<id>`` of langfuse 2.x,
``/project/<id>/traces/<id>`` of langfuse 5.x and JS), through the login when logged out;
unknown dashboard paths answer an HTML page, the API keeps JSON."""

from __future__ import annotations

from urllib.parse import quote

from seed import seed_basic

from conftest import Browser, Site, shot
from helpers import event, iso


def test_sdk_trace_links_through_login_and_when_logged_in(site: Site, page) -> None:
    ids = seed_basic(site.url, site.project.auth)
    trace_id = ids["error_trace"]
    trace_page = f"/project/{site.project.id}/traces/{trace_id}"

    # Logged out: the langfuse 2.x link goes to the login page, then on to the trace.
    page.goto(f"{site.url}/trace/{trace_id}")
    assert "/login" in page.url
    page.fill("input[name=email]", site.viewer)
    page.fill("input[name=password]", "correct horse battery")
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
    assert page.url == site.url + trace_page
    assert "research" in page.get_by_test_id("trace-tree").inner_text()
    shot(page, "trace-link-after-login")

    # Logged in: straight there, from both link shapes.
    page.goto(f"{site.url}/trace/{trace_id}")
    assert page.url == site.url + trace_page
    page.goto(f"{site.url}{trace_page}")
    assert "research" in page.get_by_test_id("trace-tree").inner_text()

    # A trace that is not (yet) there: a page saying so, not JSON.
    response = page.goto(f"{site.url}/trace/not-sent-yet")
    assert response is not None and response.status == 404
    assert "Trace not found" in page.locator("main").inner_text()
    assert page.locator("a[href='/']").count() >= 1


def test_langfuse5_link_through_login(site: Site, page) -> None:
    ids = seed_basic(site.url, site.project.auth)
    trace_page = f"{site.url}/project/{site.project.id}/traces/{ids['turns'][0]}"
    page.goto(trace_page)
    assert "/login?next=" in page.url
    page.fill("input[name=email]", site.owner)
    page.fill("input[name=password]", "correct horse battery")
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
    assert page.url == trace_page
    assert "chat-turn" in page.get_by_test_id("trace-tree").inner_text()


def test_trace_link_of_another_project_is_not_found(two_projects) -> None:
    client, _a, b = two_projects
    # A trace in project B, looked up by A's viewer: not found (same as a missing one).
    body = {"id": "t-b-1", "name": "in-b", "timestamp": iso()}
    sent = client.post(
        "/api/public/ingestion", json={"batch": [event("trace-create", body)]}, auth=b.auth
    )
    assert sent.status_code == 207, sent.text
    assert client.login("viewer-a@example.com") == 303
    response = client.get("/trace/t-b-1", follow_redirects=False)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    client.cookies.clear()
    assert client.login("owner-b@example.com") == 303
    response = client.get("/trace/t-b-1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/project/{b.id}/traces/t-b-1"


def test_logged_out_trace_link_redirects_to_login_with_next(two_projects) -> None:
    client, _a, _b = two_projects
    response = client.get("/trace/abc%2Fdef", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=" + quote("/trace/abc/def", safe="")


def test_unknown_pages_answer_html_and_the_api_json(two_projects) -> None:
    client: Browser
    client, a, _b = two_projects
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text and "<h1>404</h1>" in response.text
    # A method a dashboard route does not take: a page too.
    response = client.put(f"/project/{a.id}/traces")
    assert response.status_code == 405
    assert response.headers["content-type"].startswith("text/html")
    # The API keeps its JSON errors.
    response = client.get("/api/public/no-such-thing")
    assert response.status_code == 404
    assert response.json()["message"] == "Not Found"
