"""What the pages show of the data: back-filled sessions' start, users sorted by any
column, LangChain messages as a conversation, langfuse 2.x model parameters as numbers,
the favicon."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conftest import Browser, add_user
from helpers import event
from lanterna.server.app import create_app
from lanterna.server.ui.io_view import io_view
from support import Project, make_settings, new_project

AGO = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=40)


@pytest.fixture
def app_client(db_url: str, tmp_path: Path) -> Iterator[tuple[Browser, Project]]:
    project = new_project(db_url)
    add_user(db_url, "me@example.com", {project.id: "viewer"})
    with Browser(create_app(make_settings(db_url, tmp_path)), client=("127.0.0.1", 50000)) as c:
        assert c.login("me@example.com") == 303
        yield c, project


def _send(client: Browser, project: Project, *events: dict[str, Any]) -> None:
    sent = client.post("/api/public/ingestion", json={"batch": list(events)}, auth=project.auth)
    assert sent.status_code == 207 and not sent.json()["errors"], sent.text


def _at(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def test_back_filled_session_shows_its_first_trace_time(app_client) -> None:
    client, project = app_client
    _send(client, project, *[
        event("trace-create", {"id": f"old-{i}", "sessionId": "imported", "name": "turn",
                               "timestamp": _at(AGO + timedelta(minutes=i))})
        for i in range(2)
    ])  # fmt: skip
    first = AGO.strftime("%Y-%m-%d %H:%M:%S")
    page = client.get(f"/project/{project.id}/sessions")
    row = re.search(r"<tr>\s*<td><a[^>]*>imported</a></td>\s*<td[^>]*>([^<]*)</td>", page.text)
    assert row and row.group(1) == first
    page = client.get(f"/project/{project.id}/sessions/imported")
    assert f"<dt>Created (UTC)</dt><dd>{first}</dd>" in page.text


def _generation(trace: str, user: str, tokens: int, at: datetime) -> list[dict[str, Any]]:
    return [
        event("trace-create", {"id": trace, "userId": user, "timestamp": _at(at)}),
        event("generation-create", {
            "id": f"{trace}-g", "traceId": trace, "model": "gpt-4o-mini",
            "startTime": _at(at), "endTime": _at(at + timedelta(seconds=1)),
            "usageDetails": {"input": tokens, "output": tokens},
        }),
    ]  # fmt: skip


def test_users_list_sorts_by_each_column(app_client) -> None:
    client, project = app_client
    base = datetime.now(timezone.utc) - timedelta(hours=5)
    events = []
    # ann: 1 trace, most tokens, seen last; bob: 3 small traces, seen first; cy: 2 traces.
    events += _generation("a1", "ann", 9000, base + timedelta(hours=3))
    for i in range(3):
        events += _generation(f"b{i}", "bob", 10, base + timedelta(minutes=i))
    for i in range(2):
        events += _generation(f"c{i}", "cy", 1000, base + timedelta(hours=1, minutes=i))
    _send(client, project, *events)

    def order(query: str) -> list[str]:
        page = client.get(f"/project/{project.id}/users{query}")
        assert page.status_code == 200
        table = page.text.split('data-testid="users-table"')[1]
        return re.findall(r'/users/([a-z]+)">', table)

    assert order("") == ["ann", "cy", "bob"]  # last seen, newest first
    assert order("?sort=cost") == ["ann", "cy", "bob"]
    assert order("?sort=cost&dir=asc") == ["bob", "cy", "ann"]
    assert order("?sort=tokens&dir=asc") == ["bob", "cy", "ann"]
    assert order("?sort=traces") == ["bob", "cy", "ann"]
    assert order("?sort=userId") == ["ann", "bob", "cy"]
    assert order("?sort=userId&dir=desc") == ["cy", "bob", "ann"]
    assert order("?sort=firstSeen&dir=asc") == ["bob", "cy", "ann"]
    assert order("?sort=nonsense") == ["ann", "cy", "bob"]
    # The header links: the sorted column turns the order around.
    page = client.get(f"/project/{project.id}/users?sort=cost")
    link = re.search(r'<a data-sort="cost" href="([^"]+)">Cost ↓</a>', page.text)
    assert link and link.group(1) == "?sort=cost&amp;dir=asc"
    # The range form keeps the order.
    page = client.get(f"/project/{project.id}/users?sort=cost&dir=asc")
    assert '<input type="hidden" name="sort" value="cost">' in page.text
    assert '<input type="hidden" name="dir" value="asc">' in page.text


LANGCHAIN_AI = {
    "content": "Paris is the capital of France.",
    "additional_kwargs": {},
    "response_metadata": {"finish_reason": "stop", "model_name": "gpt-4o-mini"},
    "type": "ai",
    "name": None,
    "id": "run-1",
    "example": False,
    "tool_calls": [],
    "invalid_tool_calls": [],
    "usage_metadata": {"input_tokens": 9, "output_tokens": 7, "total_tokens": 16},
}


def test_langchain_messages_show_as_a_conversation() -> None:
    view = io_view(LANGCHAIN_AI)
    assert view.kind == "chat"
    (message,) = view.messages
    assert message.role == "assistant" and message.texts == ["Paris is the capital of France."]
    assert set(message.extra) == {"response_metadata", "id", "usage_metadata"}
    human = {"content": "Capital of France?", "type": "human", "additional_kwargs": {}}
    view = io_view([human, LANGCHAIN_AI])
    assert [m.role for m in view.messages] == ["user", "assistant"]
    # Something else with a "type" and "content" stays a tree.
    assert io_view({"type": "document", "content": "x"}).kind == "tree"


def test_trace_page_renders_langchain_output_and_numeric_model_parameters(app_client) -> None:
    client, project = app_client
    now = datetime.now(timezone.utc)
    _send(client, project,
        event("trace-create", {"id": "lc", "name": "chain", "timestamp": _at(now),
                               "output": LANGCHAIN_AI}),
        event("generation-create", {
            "id": "lc-g", "traceId": "lc", "model": "gpt-4o-mini", "startTime": _at(now),
            "modelParameters": {"temperature": "0.2", "max_tokens": "256", "stop": "\\n",
                                "top_p": 1, "tags": "None"},
        }),
    )  # fmt: skip
    page = client.get(f"/project/{project.id}/traces/lc")
    assert page.status_code == 200
    assert 'class="msg role-assistant"' in page.text
    assert '<pre class="text">Paris is the capital of France.</pre>' in page.text
    assert "invalid_tool_calls" not in page.text
    page = client.get(f"/project/{project.id}/traces/lc?observation=lc-g")
    params = page.text.split("<h3>Model parameters</h3>")[1].split("</div>")[0]
    assert (
        '<span class="j-key">temperature</span><span class="j-punct">: </span>'
        '<span class="j-num">0.2</span>' in params
    )
    assert '<span class="j-num">256</span>' in params and '<span class="j-num">1</span>' in params
    assert '<span class="j-str">"None"</span>' in params  # text stays text
    # The API returns them as sent.
    api = client.get("/api/public/observations/lc-g", auth=project.auth).json()
    assert api["modelParameters"]["temperature"] == "0.2"


def test_favicon(app_client) -> None:
    client, project = app_client
    page = client.get(f"/project/{project.id}/traces")
    link = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page.text)
    assert link
    icon = client.get(link.group(1))
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg")
    legacy = client.get("/favicon.ico")
    assert legacy.status_code == 200 and legacy.content == icon.content
