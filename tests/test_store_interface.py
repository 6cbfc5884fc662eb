"""Another ``Store`` can be swapped in without touching routes: the app built with a store
whose ``traces`` resource wraps the SQL store's answers the API and the dashboard through
it (real database, real HTTP in-process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from helpers import event, ingest
from lanterna.server.app import create_app
from lanterna.store.interface import SqlStore, Traces
from support import Project, make_settings, new_project


@dataclass
class Call:
    operation: str
    args: tuple[Any, ...]
    result: Any


@dataclass
class RecordingTraces:
    """A ``Traces`` that answers with another one's results and records each call."""

    inner: Traces
    calls: list[Call] = field(default_factory=list)

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        real = getattr(self.inner, operation)

        def recorded(conn: Any, *args: Any, **kwargs: Any) -> Any:
            result = real(conn, *args, **kwargs)
            self.calls.append(Call(operation, args, result))
            return result

        return recorded

    def called(self, operation: str) -> list[Call]:
        return [c for c in self.calls if c.operation == operation]


class RecordingStore(SqlStore):
    """The SQLite/PostgreSQL store with its traces resource recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.recording = RecordingTraces(self.traces)
        self.traces = self.recording


@dataclass
class Swapped:
    client: TestClient
    store: RecordingStore
    project: Project


@pytest.fixture
def swapped(db_url: str, tmp_path: Path) -> Iterator[Swapped]:
    settings = make_settings(db_url, tmp_path)
    settings.no_auth = True  # the dashboard's local user, for a client on loopback
    store = RecordingStore()
    app = create_app(settings, store=store)
    project = new_project(db_url)
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        client.auth = project.auth
        yield Swapped(client, store, project)


def _seed(client: TestClient) -> None:
    ingest(
        client,
        event("trace-create", {"id": "t-1", "name": "checkout", "userId": "ada"}),
        event(
            "generation-create",
            {"id": "g-1", "traceId": "t-1", "name": "llm", "startTime": "2024-05-01T10:00:00Z"},
        ),
    )


def test_the_trace_routes_answer_through_the_swapped_store(swapped: Swapped) -> None:
    _seed(swapped.client)
    traces = swapped.store.recording
    pid = swapped.project.id

    one = swapped.client.get("/api/public/traces/t-1")
    assert one.status_code == 200, one.text
    assert one.json()["name"] == "checkout"
    [got] = traces.called("get_trace")
    assert got.args == (pid, "t-1")
    assert got.result["name"] == "checkout"  # the row the route turned into JSON
    [observations] = traces.called("observations_of")
    assert [o["id"] for o in observations.result] == ["g-1"]
    assert [o["id"] for o in one.json()["observations"]] == ["g-1"]

    listed = swapped.client.get("/api/public/traces", params={"userId": "ada"})
    assert listed.status_code == 200, listed.text
    assert [t["id"] for t in listed.json()["data"]] == ["t-1"]
    [page] = traces.called("list_traces")
    assert page.args[0] == pid and page.args[1].user_id == "ada"
    assert [r["id"] for r in page.result[0]] == ["t-1"]


def test_the_dashboard_reads_and_the_api_deletes_through_the_swapped_store(
    swapped: Swapped,
) -> None:
    _seed(swapped.client)
    traces = swapped.store.recording
    pid = swapped.project.id

    shown = swapped.client.get(f"/project/{pid}/traces/t-1")
    assert shown.status_code == 200, shown.text
    assert "checkout" in shown.text
    assert [c.args for c in traces.called("get_trace")] == [(pid, "t-1")]
    listed = swapped.client.get(f"/project/{pid}/traces")
    assert listed.status_code == 200, listed.text
    assert [r["id"] for r in traces.called("list_traces")[0].result[0]] == ["t-1"]
    assert traces.called("trace_figures")  # the list's per-trace aggregates, too

    deleted = swapped.client.request("DELETE", "/api/public/traces", json={"traceIds": ["t-1"]})
    assert deleted.status_code == 200, deleted.text
    [gone] = traces.called("delete_traces")
    assert gone.args == (pid, ["t-1"]) and gone.result == 1
    assert swapped.client.get("/api/public/traces/t-1").status_code == 404
