"""Links to records whose ids a client chose: an id holding ``/`` or ``../`` is encoded
whole (``%2F``), so its row link leads to its own page, never to another page of the
server (``../../settings/data`` from the trace list would otherwise open
``/project/settings/data``), and that page opens the record (the routes take
``{id:path}`` and get the id decoded). Checked through the live server with real
HTTP requests, as a browser resolves the links (``urljoin``)."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from urllib.parse import quote, urljoin

import httpx

from conftest import Site, logged_in
from helpers import event, iso

TRACES = ["../../settings/data", "a/b", "x/../../../../account", "plain", "two\nlines"]
SESSIONS = {"../../settings/data": "../../../account", "a/b": "s/1"}
USERS = {"../../settings/data": "../../../account", "a/b": "u/1"}


def _links(page_url: str, text: str) -> set[str]:
    """Every link of a page, resolved as a browser does."""
    return {urljoin(page_url, html.unescape(h)) for h in re.findall(r'href="([^"]*)"', text)}


def _check(client: httpx.Client, site: Site, listing: str, kind: str, ids: list[str]) -> None:
    """Each id's link on ``listing`` leads to its own page, which shows it."""
    url = site.path(listing)
    page = client.get(url)
    assert page.status_code == 200, page.text[-1000:]
    links = _links(url, page.text)
    base = site.path(f"{kind}/")
    for record in ids:
        own = base + quote(record, safe="")
        assert own in links, (listing, record)
        opened = client.get(own)
        assert opened.status_code == 200, (own, opened.text[-1000:])
        assert html.escape(record) in opened.text, own
        # Not the id as it was written (``/`` kept), which a browser would resolve
        # against the path it is in.
        if "/" in record:
            assert f"/{kind}/{html.escape(record)}" not in page.text, (listing, record)


def test_ids_with_slashes_and_dot_segments_link_to_their_own_pages(site: Site) -> None:
    now = iso(datetime.now(timezone.utc).replace(microsecond=0))
    batch = []
    for i, trace_id in enumerate(TRACES):
        body = {"id": trace_id, "name": f"trace-{i}", "timestamp": now,
                "sessionId": SESSIONS.get(trace_id), "userId": USERS.get(trace_id)}  # fmt: skip
        batch.append(event("trace-create", body))
        score = {"id": f"q{i}", "traceId": trace_id, "name": "q", "value": i, "timestamp": now}
        batch.append(event("score-create", score))
    score = {"id": "q-s", "sessionId": "s/1", "name": "q", "value": 9, "timestamp": now}
    batch.append(event("score-create", score))
    response = httpx.post(
        f"{site.url}/api/public/ingestion", json={"batch": batch}, auth=site.project.auth
    )
    assert response.status_code == 207 and not response.json()["errors"], response.text
    prompt = "team/../../../../account"  # a name with folders, as written by a client
    body = {"name": prompt, "type": "text", "prompt": "hi {{x}}", "labels": ["production"]}
    made = httpx.post(f"{site.url}/api/public/v2/prompts", json=body, auth=site.project.auth)
    assert made.status_code in (200, 201), made.text

    with logged_in(site, site.viewer) as client:
        _check(client, site, "traces", "traces", TRACES)
        _check(client, site, "sessions", "sessions", list(SESSIONS.values()))
        _check(client, site, "users", "users", list(USERS.values()))
        _check(client, site, "prompts", "prompts", [prompt])
        _check(client, site, "scores", "traces", TRACES)
        _check(client, site, "scores", "sessions", ["s/1"])
        _check(client, site, "scores", "users", list(USERS.values()))
        # From a record's page to the others: a session's turns, a trace's session and
        # user, a user's traces and sessions.
        session_page = "sessions/" + quote("../../../account", safe="")
        _check(client, site, session_page, "traces", ["../../settings/data"])
        _check(client, site, session_page, "users", ["../../../account"])
        trace_page = "traces/" + quote("a/b", safe="")
        _check(client, site, trace_page, "sessions", ["s/1"])
        _check(client, site, trace_page, "users", ["u/1"])
        user_page = "users/" + quote("../../../account", safe="")
        _check(client, site, user_page, "traces", ["../../settings/data"])
        _check(client, site, user_page, "sessions", ["../../../account"])
