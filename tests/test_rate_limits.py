"""Per-project rate limits (``server/quota.py``): 429 with ``Retry-After`` once a
project's events or API reads for the minute are used up, shared by every process on
the database, on an injected clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import event
from lanterna.server.app import create_app
from support import Api, Project, make_settings, new_project


class Clock:
    """Seconds since the epoch, moved by the test."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def _app(db_url: str, tmp_path: Path, clock: Clock, **limits: int) -> Api:
    settings = dataclasses.replace(make_settings(db_url, tmp_path), **limits)
    client = Api(create_app(settings), raise_server_exceptions=True)
    client.__enter__()
    client.app.state.runtime.quota.clock = clock
    return client


@pytest.fixture
def clock() -> Clock:
    return Clock(1_000_000_030.0)  # 10 s into a minute window (1_000_000_020 starts one)


@pytest.fixture
def two(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[tuple[Api, Api, Project]]:
    """Two server processes (two apps, two writers) on one database, one project."""
    a = _app(db_url, tmp_path, clock, ingest_rate_limit=10, read_rate_limit=5)
    b = _app(db_url, tmp_path, clock, ingest_rate_limit=10, read_rate_limit=5)
    project = new_project(db_url)
    for client in (a, b):
        client.project = project
        client.auth = project.auth
    try:
        yield a, b, project
    finally:
        a.__exit__(None, None, None)
        b.__exit__(None, None, None)


def _batch(n: int, tag: str) -> dict:
    return {"batch": [event("trace-create", {"id": f"{tag}-{i}"}) for i in range(n)]}


def _stored(api: Api) -> int:
    return api.get("/api/public/traces?limit=100").json()["meta"]["totalItems"]


def test_a_project_over_its_events_per_minute_gets_429_and_retries_later(two, clock):
    a, _, _ = two
    assert a.post("/api/public/ingestion", json=_batch(6, "x")).status_code == 207
    refused = a.post("/api/public/ingestion", json=_batch(6, "y"))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "50"  # the window ends 50 s later
    assert "10 events a minute" in refused.json()["message"]
    clock.at += 50  # the next minute
    assert a.post("/api/public/ingestion", json=_batch(6, "z")).status_code == 207
    ids = {t["id"] for t in a.get("/api/public/traces?limit=100").json()["data"]}
    assert {i[0] for i in ids} == {"x", "z"}  # nothing of the refused batch was stored


def test_a_batch_larger_than_the_limit_passes_in_an_empty_minute(two):
    a, _, _ = two
    assert a.post("/api/public/ingestion", json=_batch(25, "big")).status_code == 207
    assert a.post("/api/public/ingestion", json=_batch(1, "more")).status_code == 429


def test_processes_share_the_count_through_the_database(two, clock):
    a, b, _ = two
    assert a.post("/api/public/ingestion", json=_batch(8, "a")).status_code == 207
    # b has not heard of a's 8 yet: its first batch passes, then it learns the total.
    assert b.post("/api/public/ingestion", json=_batch(3, "b")).status_code == 207
    refused = b.post("/api/public/ingestion", json=_batch(1, "c"))
    assert refused.status_code == 429
    clock.at += 1  # a shares again a second later and learns b's 3
    a.get("/api/public/traces?limit=1")
    assert a.post("/api/public/ingestion", json=_batch(1, "d")).status_code == 429


def test_api_reads_are_limited_per_project_and_writes_are_not_reads(two, db_url, clock):
    a, _, _ = two
    for _ in range(5):
        assert a.get("/api/public/traces").status_code == 200
    refused = a.get("/api/public/sessions")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 50
    assert a.post("/api/public/ingestion", json=_batch(1, "w")).status_code == 207
    other = new_project(db_url, "Other")
    assert a.get("/api/public/traces", auth=other.auth).status_code == 200
    clock.at += 60
    assert a.get("/api/public/traces").status_code == 200


def test_no_limits_by_default(api):
    for _ in range(30):
        assert api.get("/api/public/traces").status_code == 200
    assert not api.app.state.runtime.quota.limits


def _otlp(n: int, trace: str) -> dict:
    spans = [
        {
            "traceId": trace * 32,
            "spanId": f"{i + 1:016x}",
            "name": "step",
            "startTimeUnixNano": "1714557600000000000",
            "endTimeUnixNano": "1714557601000000000",
        }
        for i in range(n)
    ]
    return {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}


def test_otlp_spans_count_against_the_same_limit(two):
    a, _, _ = two
    assert a.post("/api/public/ingestion", json=_batch(4, "j")).status_code == 207
    assert a.post("/api/public/otel/v1/traces", json=_otlp(5, "a")).status_code == 200
    refused = a.post("/api/public/otel/v1/traces", json=_otlp(2, "b"))
    assert refused.status_code == 429
    assert "retry-after" in refused.headers
