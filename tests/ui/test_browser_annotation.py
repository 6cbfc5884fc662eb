"""In a real browser: comments on a trace, and going through an annotation queue (view
the trace, score it with the queue's score configs, complete, on to the next)."""

from __future__ import annotations

import uuid

import httpx

from conftest import Site, add_user, logged_in, login, shot
from helpers import event


def _seed(site: Site) -> dict[str, str]:
    auth = site.project.auth
    batch = [
        event(
            "trace-create",
            {
                "id": f"q-{i}",
                "name": f"answer {i}",
                "input": {"question": f"<b>question {i}</b>"},
                "output": f"reply {i}",
            },
        )
        for i in range(3)
    ]
    assert (
        httpx.post(f"{site.url}/api/public/ingestion", json={"batch": batch}, auth=auth).status_code
        == 207
    )
    configs = {}
    for body in (
        {"name": "correct", "dataType": "BOOLEAN"},
        {"name": "quality", "dataType": "NUMERIC", "minValue": 0, "maxValue": 5},
    ):
        made = httpx.post(f"{site.url}/api/public/score-configs", json=body, auth=auth).json()
        configs[body["name"]] = made["id"]
    queue = httpx.post(
        f"{site.url}/api/public/annotation-queues",
        auth=auth,
        json={"name": "Weekly review", "scoreConfigIds": list(configs.values())},
    )
    queue_id = queue.json()["id"]
    for i in range(2):
        item = {"objectId": f"q-{i}", "objectType": "TRACE"}
        assert (
            httpx.post(
                f"{site.url}/api/public/annotation-queues/{queue_id}/items", json=item, auth=auth
            ).status_code
            == 200
        )
    return {"queue": queue_id, **configs}


def test_going_through_an_annotation_queue(sqlite_site: Site, page) -> None:
    site = sqlite_site
    ids = _seed(site)
    login(page, site.url, site.owner)
    page.goto(site.path("annotation-queues"))
    assert "Weekly review" in page.get_by_test_id("queues").inner_text()
    page.click("a:text('Weekly review')")
    page.wait_for_load_state()
    assert "2 pending · 0 completed" in page.get_by_test_id("queue-progress").inner_text()
    item = page.get_by_test_id("queue-item")
    assert "answer 0" in item.inner_text() and "<b>question 0</b>" in item.inner_text()
    shot(page, "annotation-queue-item")

    form = page.get_by_test_id("annotate-form")
    form.locator(f"select[name=score_{ids['correct']}]").select_option("1")
    form.locator(f"input[name=score_{ids['quality']}]").fill("4")
    form.locator("input[name=comment]").fill("good answer")
    page.get_by_test_id("complete").click()
    page.wait_for_load_state()
    assert "1 pending · 1 completed" in page.get_by_test_id("queue-progress").inner_text()
    assert "answer 1" in page.get_by_test_id("queue-item").inner_text()
    page.get_by_test_id("complete").click()  # nothing filled in: completed without scores
    page.wait_for_load_state()
    assert page.get_by_test_id("queue-done").count() == 1

    scores = httpx.get(f"{site.url}/api/public/v2/scores", auth=site.project.auth).json()["data"]
    got = sorted((s["traceId"], s["name"], s["value"], s["source"], s["comment"]) for s in scores)
    assert got == [
        ("q-0", "correct", 1, "ANNOTATION", "good answer"),
        ("q-0", "quality", 4, "ANNOTATION", "good answer"),
    ]
    items = httpx.get(
        f"{site.url}/api/public/annotation-queues/{ids['queue']}/items", auth=site.project.auth
    ).json()["data"]
    assert [i["status"] for i in items] == ["COMPLETED", "COMPLETED"]

    # From a trace page: comment on it and add it to the queue.
    page.goto(site.path("traces/q-2"))
    page.get_by_test_id("add-comment").locator("textarea").fill("<i>check the units</i>")
    page.get_by_test_id("add-comment").locator("button").click()
    page.wait_for_load_state()
    comment = page.get_by_test_id("comment").inner_text()
    assert "<i>check the units</i>" in comment and site.owner in comment
    page.get_by_test_id("add-to-queue").locator("button").click()
    page.wait_for_load_state()
    assert "answer 2" in page.get_by_test_id("queue-item").inner_text()
    listed = httpx.get(
        f"{site.url}/api/public/comments",
        auth=site.project.auth,
        params={"objectType": "TRACE", "objectId": "q-2"},
    ).json()["data"]
    assert [c["content"] for c in listed] == ["<i>check the units</i>"]


def test_comments_on_a_session_and_a_prompt_version(sqlite_site: Site, page) -> None:
    site = sqlite_site
    auth = site.project.auth
    batch = [event("trace-create", {"id": "s-t", "name": "turn", "sessionId": "chat-9"})]
    assert httpx.post(f"{site.url}/api/public/ingestion", json={"batch": batch}, auth=auth)
    prompt = {"name": "greet", "type": "text", "prompt": "Hi {{name}}"}
    made = httpx.post(f"{site.url}/api/public/v2/prompts", json=prompt, auth=auth).json()
    login(page, site.url, site.owner)
    for path, text in (("sessions/chat-9", "session note"), ("prompts/greet", "prompt note")):
        page.goto(site.path(path))
        page.get_by_test_id("add-comment").locator("textarea").fill(text)
        page.get_by_test_id("add-comment").locator("button").click()
        page.wait_for_load_state()
        assert text in page.get_by_test_id("comments").inner_text()
    on_prompt = httpx.get(
        f"{site.url}/api/public/comments",
        params={"objectType": "PROMPT", "objectId": made["id"]},
        auth=auth,
    ).json()["data"]
    assert [c["content"] for c in on_prompt] == ["prompt note"]


def test_a_comment_naming_a_stranger_as_author_shows_no_email(site: Site) -> None:
    # An API key may set any authorUserId; the page shows an author's email only for a
    # user who may see the project, so a comment can neither pass for someone else's
    # nor reveal another organisation's user's email.
    stranger_email = f"stranger-{uuid.uuid4().hex[:8]}@elsewhere.example"
    stranger = add_user(site.db_url, stranger_email, {})
    member_email = f"member-{uuid.uuid4().hex[:8]}@example.com"
    member = add_user(site.db_url, member_email, {site.project.id: "member"})
    trace = f"c-{uuid.uuid4().hex[:8]}"
    auth = site.project.auth
    batch = [event("trace-create", {"id": trace, "name": "commented"})]
    assert httpx.post(f"{site.url}/api/public/ingestion", json={"batch": batch}, auth=auth)
    for author, text in ((stranger, "from a stranger"), (member, "from a member")):
        body = {"projectId": site.project.id, "objectType": "TRACE", "objectId": trace,
                "content": text, "authorUserId": author}  # fmt: skip
        made = httpx.post(f"{site.url}/api/public/comments", json=body, auth=auth)
        assert made.status_code == 200, made.text
    with logged_in(site, site.viewer) as client:
        page = client.get(f"/project/{site.project.id}/traces/{trace}").text
    assert "from a stranger" in page and "from a member" in page
    assert stranger_email not in page and stranger in page
    assert member_email in page
