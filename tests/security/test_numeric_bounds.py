"""Numbers too large for the database are a clear 4xx, never a 500: paging parameters on
every route, and numeric fields of an ingested event (that event alone is refused; the
rest of its batch is stored)."""

from __future__ import annotations

import base64
import http.client
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from helpers import event, ingest
from lanterna.server.app import create_app
from lanterna.server.openapi import org_operations
from lanterna.server.settings import Settings
from test_openapi_fuzz import _org_key as org_key

HUGE = 2**70


#: (METHOD, url) of each case -> (method, path template) of its operation.
_TEMPLATES: dict[tuple[str, str], tuple[str, str]] = {}


def _plausible(schema: dict[str, object]) -> str:
    """A valid value of a required query parameter's schema."""
    if schema.get("format") == "date-time":
        return "2026-01-01T00:00:00Z"
    return "1" if schema.get("type") == "integer" else "x"


def _integer_query_cases() -> Iterator[tuple[str, str, str]]:
    """(method, url, parameter): each integer query parameter of each route, set huge."""
    spec = create_app(Settings(data_dir=str(Path(tempfile.mkdtemp())))).openapi()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "delete"):
                continue
            params = op.get("parameters", [])
            base = path
            for p in params:
                if p["in"] == "path":
                    base = base.replace("{" + p["name"] + "}", "x")
            # The other required query parameters, given (so the answer is about ours).
            given = "".join(
                f"&{p['name']}={_plausible(p.get('schema', {}))}"
                for p in params
                if p["in"] == "query" and p.get("required")
            )
            for p in params:
                schema = p.get("schema", {})
                kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
                if p["in"] == "query" and "integer" in kinds:
                    for value in (HUGE, -HUGE):
                        url = f"{base}?{p['name']}={value}{given}"
                        _TEMPLATES[(method.upper(), url)] = (method, path)
                        yield method.upper(), url, p["name"]


def test_there_are_paging_parameters_to_check():
    names = {name for _, _, name in _integer_query_cases()}
    assert {"page", "limit"} <= names


def _basic(auth: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(":".join(auth).encode()).decode()}


def test_huge_integers_in_query_parameters_are_refused_on_every_route(live_server, db_url):
    parts = urlsplit(live_server.url)
    headers = _basic(live_server.project.auth)
    # The organisation-level routes with an organisation key (a project key gets a 403
    # there before any parameter is read): SCIM's startIndex answered 500.
    org_headers = _basic(org_key(db_url, live_server.project.id))
    org = org_operations(create_app(Settings(data_dir=str(Path(tempfile.mkdtemp())))))
    failures = []
    checked = 0
    for method, url, name in _integer_query_cases():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        template = _TEMPLATES[(method, url)]
        try:
            conn.request(method, url, headers=org_headers if template in org else headers)
            response = conn.getresponse()
            status, text = response.status, response.read().decode()
        except ConnectionError as exc:
            status, text = 599, repr(exc)
        finally:
            conn.close()
        checked += 1
        if status >= 500 or (status == 400 and name not in text):
            failures.append((method, url, status, text[:160]))
    assert not failures, failures
    assert checked > 20
    assert ("get", "/api/public/scim/Users") in org


BIG = 2**63  # one past the largest 64-bit integer
GEN = {"traceId": "t-big", "model": "gpt-4o", "startTime": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("type_", "body", "field"),
    [
        ("generation-create", {**GEN, "usageDetails": {"input": BIG}}, "usageDetails"),
        ("generation-create", {**GEN, "usageDetails": {"cached": BIG, "input": 5}}, "usageDetails"),
        ("generation-create", {**GEN, "usage": {"input": BIG}}, "usage"),
        ("generation-create", {**GEN, "usage": {"total": 2**70}}, "usage"),
        ("generation-create", {**GEN, "costDetails": {"input": 1e300}}, "costDetails"),
        ("generation-create", {**GEN, "usage": {"totalCost": 1e300}}, "usage"),
        ("generation-update", {**GEN, "usageDetails": {"output": BIG}}, "usageDetails"),
        ("generation-create", {**GEN, "promptName": "p", "promptVersion": BIG}, "promptVersion"),
        ("span-create", {**GEN, "metadata": {"n": BIG}}, None),
        ("score-create", {"traceId": "t-big", "name": "s", "value": 1e300}, None),
        ("score-create", {"traceId": "t-big", "name": "s", "value": BIG}, None),
    ],
)
def test_an_event_with_a_huge_number_is_refused_alone_and_its_batch_commits(
    api, type_, body, field
):
    """A number past what the database holds fails its event with a 400 naming the field
    (or is kept exactly where the field is free JSON); its good neighbours are stored."""
    good = event("trace-create", {"id": "t-good", "name": "neighbour"})
    bad = event(type_, {"id": "o-big", **body})
    result = ingest(api, good, bad)
    ok = {s["id"] for s in result["successes"]}
    assert good["id"] in ok, result
    if field is None:
        assert bad["id"] in ok, result
    else:
        assert [e["id"] for e in result["errors"]] == [bad["id"]], result
        error = result["errors"][0]
        assert error["status"] == 400 and field in error["error"], error
    assert api.get("/api/public/traces/t-good").status_code == 200


def test_a_large_number_in_stored_json_reads_back(api, db_url):
    """Found by fuzzing: PostgreSQL's jsonb writes 1e20 as 100000000000000000000, an
    integer past 64 bits that the JSON encoder refused (500 on every later read of the
    project). It reads back as the number it was."""
    key = org_key(db_url, api.project.id)
    made = api.post(
        "/api/public/projects", json={"name": "big", "metadata": {"n": 1e20, "m": -1e30}}, auth=key
    )
    assert made.status_code == 200, made.text
    assert made.json()["metadata"] == {"n": 1e20, "m": -1e30}
    listed = api.get("/api/public/organizations/projects", auth=key)
    assert listed.status_code == 200, listed.text
    [project] = [p for p in listed.json()["projects"] if p["name"] == "big"]
    assert project["metadata"] == {"n": 1e20, "m": -1e30}
