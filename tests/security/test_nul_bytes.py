"""A NUL byte in any path or query parameter is a clear 400, on every route and backend,
and never spoils the connection it came on (HTTP or database)."""

from __future__ import annotations

import base64
import http.client
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lanterna.server.app import create_app
from lanterna.server.settings import Settings
from lanterna.store.db import Database

NUL = "a%00b"


def _routes() -> list[tuple[str, str, list[dict]]]:
    spec = create_app(Settings(data_dir=str(Path(tempfile.mkdtemp())))).openapi()
    out = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                out.append((method.upper(), path, op.get("parameters", [])))
    return out


def _cases() -> Iterator[tuple[str, str]]:
    """(method, url) pairs: each route with a NUL in one of its parameters at a time."""
    for method, path, params in _routes():
        names = [p["name"] for p in params if p["in"] == "path"]
        base = path
        for name in names:
            base = base.replace("{" + name + "}", "x")
        for name in names:
            url = path
            for other in names:
                url = url.replace("{" + other + "}", NUL if other == name else "x")
            yield method, url
        queries = [p["name"] for p in params if p["in"] == "query"] or ["anything"]
        for name in queries:
            yield method, f"{base}?{name}={NUL}"


def test_the_cases_cover_every_route():
    routes = _routes()
    cases = list(_cases())
    assert len(routes) > 30
    for method, path, _ in routes:
        template = re.sub(
            r"\{[^}]+\}", "[^/?]+", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")
        )
        assert any(m == method and re.match(template, url) for m, url in cases), path


def test_nul_bytes_are_refused_on_every_route(live_server):
    parts = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    token = base64.b64encode(":".join(live_server.project.auth).encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
    conn.connect()
    sock = conn.sock
    checked = 0
    try:
        for method, url in _cases():
            body = b"{}" if method in ("POST", "PUT", "PATCH") else None
            conn.request(method, url, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
            assert response.status == 400, (method, url, response.status, text)
            assert "NUL" in text, text
            # The next request on the same connection reads the database normally.
            conn.request("GET", "/api/public/traces?limit=1", headers=headers)
            after = conn.getresponse()
            assert after.status == 200, (method, url, after.read())
            after.read()
            assert conn.sock is sock, f"the connection was closed after {method} {url}"
            checked += 1
    finally:
        conn.close()
    assert checked > 60


@pytest.mark.parametrize(
    "url",
    [
        "/project/p/traces/a%00b",
        "/project/a%00b/traces",
        "/project/p/traces?name=a%00b",
        "/login?next=%2F%00",
        "/a%00b",
    ],
)
def test_nul_bytes_are_refused_on_dashboard_routes(api, url):
    response = api.get(url, follow_redirects=False)
    assert response.status_code == 400
    assert "NUL" in response.text


def test_a_failed_statement_does_not_spoil_a_pooled_connection(db_url):
    db = Database(db_url, read_pool_size=1)
    try:
        bad_sql = ["SELECT * FROM no_such_table"] + ([] if db.is_sqlite else ["SELECT 1/0"])
        for bad in bad_sql:
            with pytest.raises(Exception), db.read() as conn:  # noqa: B017
                conn.scalar(bad)
            with db.read() as conn:
                assert conn.scalar("SELECT 1") == 1
        if not db.is_sqlite:
            with pytest.raises(Exception), db.read() as conn:  # noqa: B017
                conn.scalar("SELECT ?::text", ["a\x00b"])  # the driver refuses NUL
            with db.read() as conn:
                assert conn.scalar("SELECT ?::text", ["ab"]) == "ab"
    finally:
        db.close()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/public/comments", {"objectType": "TRACE", "objectId": "t", "content": "a\x00b"}),
        ("/api/public/v2/prompts", {"name": "p", "prompt": "hi \x00"}),
        ("/api/public/v2/datasets", {"name": "d", "metadata": {"k\x00": 1}}),
    ],
)
def test_a_nul_in_a_json_body_is_a_400(api, path, body):
    """Found by fuzzing: PostgreSQL cannot store NUL in text, so the comment answered
    500 there; every JSON body with a NUL in a string or key is now refused."""
    response = api.post(path, json=body)
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["error"]
