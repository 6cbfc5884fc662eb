"""Export (API and ``lanterna export``: JSONL, CSV, Parquet, the trace list's filters)
and ``lanterna import``: a project with every entity kind, exported and imported into
another project over real HTTP, answers the same through the API."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from helpers import event, iso
from lanterna.cli import main
from lanterna.lifecycle.importer import ImportFailed, import_file, read_records, send
from support import new_project

pytestmark = pytest.mark.clickhouse

OBSERVATION_TYPES = (
    "span",
    "event",
    "agent",
    "tool",
    "chain",
    "retriever",
    "evaluator",
    "embedding",
    "guardrail",
)
#: What differs between two projects holding the same data (``modelId``: the id of the
#: project's own custom model that priced an observation).
PER_PROJECT = {"createdAt", "updatedAt", "projectId", "htmlPath", "modelId"}


def _every_kind() -> list[dict[str, Any]]:
    events = []
    for i in range(3):
        tid = f"trace-{i}"
        events.append(
            event(
                "trace-create",
                {
                    "id": tid,
                    "name": "chat",
                    "timestamp": iso(seconds=i * 3600),
                    "userId": f"user-{i % 2}",
                    "sessionId": "session-a" if i < 2 else None,
                    "tags": ["b", "a"],
                    "release": "r1",
                    "version": "v1",
                    "environment": "staging" if i == 2 else "production",
                    "public": i == 1,
                    "input": {"q": f"question {i}", "n": [1, 2.5, None]},
                    "output": "answer",
                    "metadata": {"k": i},
                },
            )
        )
        root = f"{tid}-root"
        events.append(
            event(
                "span-create",
                {
                    "id": root,
                    "traceId": tid,
                    "name": "root",
                    "startTime": iso(seconds=i * 3600),
                    "endTime": iso(seconds=i * 3600 + 2),
                    "level": "WARNING",
                    "statusMessage": "slow",
                    "input": {"x": 1},
                    "version": "7",
                },
            )
        )
        events.append(
            event(
                "generation-create",
                {
                    "id": f"{tid}-gen",
                    "traceId": tid,
                    "parentObservationId": root,
                    "name": "llm",
                    "model": "gpt-4o",
                    "modelParameters": {"temperature": 0.2},
                    "startTime": iso(seconds=i * 3600 + 0.1),
                    "completionStartTime": iso(seconds=i * 3600 + 0.3),
                    "endTime": iso(seconds=i * 3600 + 1),
                    "usageDetails": {"input": 100, "output": 20},
                    "output": {"role": "assistant", "content": "hi"},
                },
            )
        )
        events.append(
            event(
                "generation-create",
                {
                    "id": f"{tid}-priced",
                    "traceId": tid,
                    "parentObservationId": root,
                    "model": "my-model",
                    "startTime": iso(seconds=i * 3600 + 0.2),
                    "usageDetails": {"input": 5},
                    "costDetails": {"input": 0.25, "total": 0.25},
                },
            )
        )
        for kind in OBSERVATION_TYPES[1:]:
            events.append(
                event(
                    f"{kind}-create",
                    {
                        "id": f"{tid}-{kind}",
                        "traceId": tid,
                        "parentObservationId": root,
                        "name": kind,
                        "startTime": iso(seconds=i * 3600 + 0.5),
                    },
                )
            )
        events += [
            event(
                "score-create",
                {
                    "id": f"{tid}-num",
                    "traceId": tid,
                    "name": "quality",
                    "value": 0.75,
                    "comment": "ok",
                    "metadata": {"by": "t"},
                },
            ),
            event(
                "score-create",
                {
                    "id": f"{tid}-cat",
                    "traceId": tid,
                    "name": "tone",
                    "value": "polite",
                    "dataType": "CATEGORICAL",
                },
            ),
            event(
                "score-create",
                {
                    "id": f"{tid}-bool",
                    "traceId": tid,
                    "observationId": f"{tid}-gen",
                    "name": "correct",
                    "value": 1,
                    "dataType": "BOOLEAN",
                    "source": "EVAL",
                },
            ),
        ]
    events.append(event("trace-create", {"id": "bare", "timestamp": iso(seconds=9000)}))
    events.append(
        event(
            "score-create",
            {
                "id": "session-score",
                "sessionId": "session-a",
                "name": "csat",
                "value": 4,
                "timestamp": iso(seconds=10),
            },
        )
    )
    return events


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in PER_PROJECT}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _answers(client: httpx.Client) -> dict[str, Any]:
    """What the API says about the project's data (minus ids of the project itself)."""
    out: dict[str, Any] = {}
    listing = client.get("/api/public/traces?limit=100&orderBy=timestamp.asc").json()
    out["traces"] = listing["data"]
    for t in listing["data"]:
        out[f"trace {t['id']}"] = client.get(f"/api/public/traces/{t['id']}").json()
    obs = client.get("/api/public/observations?limit=100").json()["data"]
    out["observations"] = sorted(obs, key=lambda o: o["id"])
    scores = client.get("/api/public/v2/scores?limit=100").json()["data"]
    out["scores"] = sorted(scores, key=lambda s: s["id"])
    out["session"] = client.get("/api/public/sessions/session-a").json()
    out["sessions"] = client.get("/api/public/sessions").json()
    out["users"] = client.get("/api/public/users").json()
    out["daily"] = client.get("/api/public/metrics/daily").json()
    return _strip(out)


MODEL = {"modelName": "my-model", "matchPattern": "^my-model$", "inputPrice": 0.01}


def test_export_then_import_gives_identical_api_answers(live_server):
    source = live_server.project
    target = new_project(live_server.db_url, "Target")
    with httpx.Client(base_url=live_server.url, auth=source.auth, timeout=60) as client:
        assert client.post("/api/public/models", json=MODEL).status_code == 200
        sent = client.post("/api/public/ingestion", json={"batch": _every_kind()}).json()
        assert sent["errors"] == []
        exported = client.get("/api/public/export").text
        before = _answers(client)
    lines = exported.splitlines()
    kinds = [k for k, _ in read_records(lines)]
    assert kinds.count("trace") == 4 and kinds.count("score") == 10
    assert kinds.count("observation") == 3 * (2 + len(OBSERVATION_TYPES))
    costs = {o["id"]: o["calculatedTotalCost"] for o in before["observations"]}
    assert costs["trace-0-gen"] > 0 and costs["trace-0-priced"] == 0.25  # calculated, given

    with httpx.Client(base_url=live_server.url, auth=target.auth, timeout=60) as client:
        # The target prices models as the source does (same server, or the same prices).
        assert client.post("/api/public/models", json=MODEL).status_code == 200
        result = import_file(io.StringIO(exported), live_server.url, *target.auth)
        assert result.errors == [] and sum(result.sent.values()) == len(lines)
        after = _answers(client)
    assert set(after) == set(before)
    for key, answer in before.items():
        assert after[key] == answer, key


def test_filters_csv_and_parquet(live_server, events_url, tmp_path):
    with httpx.Client(base_url=live_server.url, auth=live_server.project.auth, timeout=60) as c:
        c.post("/api/public/ingestion", json={"batch": _every_kind()})
        one_user = c.get("/api/public/export", params={"userId": "user-1"}).text
        assert {r["id"] for k, r in read_records(one_user.splitlines()) if k == "trace"} == {
            "trace-1"
        }
        staging = c.get("/api/public/export", params={"environment": "staging"}).text
        assert [r["id"] for k, r in read_records(staging.splitlines()) if k == "trace"] == [
            "trace-2"
        ]
        table = c.get("/api/public/export", params={"format": "csv", "kind": "observation"})
        assert table.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(table.text)))
        assert len(rows) == 3 * (2 + len(OBSERVATION_TYPES))
        assert {"id", "traceId", "type", "input", "totalTokens"} <= set(rows[0])
        parquet = c.get("/api/public/export", params={"format": "parquet", "kind": "score"})
        (tmp_path / "s.parquet").write_bytes(parquet.content)
        scores = pq.read_table(tmp_path / "s.parquet")
        assert scores.num_rows == 10
        assert str(scores.schema.field("value").type) == "double"
        assert sorted(scores.column("name").to_pylist()).count("quality") == 3
        bad = c.get("/api/public/export", params={"format": "xml"})
        assert bad.status_code == 400 and "format" in bad.text
        assert c.get("/api/public/export", params={"kind": "x"}).status_code == 400
        assert c.get("/api/public/export", params={"filter": "[{"}).status_code == 400
        via_api = c.get("/api/public/export").content

    # lanterna export writes the same JSONL, reading the database directly.
    db = live_server.db_url
    where = (
        ["--data-dir", str(Path(db.removeprefix("sqlite:///")).parent)]
        if db.startswith("sqlite")
        else ["--database-url", db]
    )
    out = tmp_path / "export.jsonl"
    args = ["export", "-o", str(out), "--project", live_server.project.id]
    if events_url:
        where += ["--events-url", events_url]
    assert main([*args, *where]) == 0
    assert out.read_bytes() == via_api
    assert main([*args, "--format", "parquet", "--kind", "observation", *where]) == 0
    assert pq.read_table(out).num_rows == 3 * (2 + len(OBSERVATION_TYPES))


def test_import_refuses_what_is_not_an_export(live_server):
    with pytest.raises(ImportFailed, match="line 2"):
        import_file(
            io.StringIO('{"type": "trace", "data": {"id": "a"}}\nnope\n'),
            live_server.url,
            *live_server.project.auth,
        )
    with pytest.raises(ImportFailed, match="401"):
        import_file(
            io.StringIO('{"type": "trace", "data": {"id": "a"}}\n'),
            live_server.url,
            "pk-lf-x",
            "sk-lf-y",
        )


def test_import_waits_out_the_targets_rate_limit():
    # A stand-in for a rate-limited target: the first answer is a 429 naming a wait.
    answers = [
        httpx.Response(429, headers={"Retry-After": "3"}, json={"message": "slow down"}),
        httpx.Response(207, json={"successes": [{"id": "e", "status": 201}], "errors": []}),
    ]
    sent: list[dict] = []

    def target(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return answers.pop(0)

    waits: list[float] = []
    with httpx.Client(base_url="http://target", transport=httpx.MockTransport(target)) as c:
        result = send(c, [("trace", {"id": "t1", "name": "x"})], sleep=waits.append)
    assert waits == [3.0] and result.errors == [] and result.sent == {"trace": 1}
    assert len(sent) == 2 and sent[0] == sent[1]


@pytest.mark.parametrize(
    "condition",
    [
        {"type": "datetime", "column": "timestamp", "operator": ">", "value": "garbage"},
        {
            "type": "datetime",
            "column": "timestamp",
            "operator": ">",
            "value": "9999-06-01T00:00:00Z",
        },
        {"type": "string", "column": "nope", "operator": "=", "value": "x"},
    ],
)
def test_a_bad_filter_is_a_400_before_the_stream_starts(api, condition):
    params = {"filter": json.dumps([condition])}
    listed = api.get("/api/public/traces", params=params)
    assert listed.status_code == 400
    for fmt in ("jsonl", "csv", "parquet"):
        exported = api.get("/api/public/export", params={**params, "format": fmt})
        assert exported.status_code == 400, exported.text
        assert exported.json()["message"] == listed.json()["message"]
