"""Datasets, items, runs and run items (contract 4.4) and the experiment read routes,
through the in-process app on SQLite and PostgreSQL: every shape the SDKs parse, upserts,
ARCHIVED items, ``version`` reads, schema checks and the 4xx answers with nothing
written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from helpers import event, ingest

pytestmark = pytest.mark.clickhouse

DATASET_KEYS = {
    "id", "name", "description", "metadata", "inputSchema", "expectedOutputSchema",
    "projectId", "createdAt", "updatedAt",
}  # fmt: skip
ITEM_KEYS = {
    "id", "status", "input", "expectedOutput", "metadata", "sourceTraceId",
    "sourceObservationId", "datasetId", "datasetName", "createdAt", "updatedAt",
    "mediaReferences",
}  # fmt: skip
RUN_ITEM_KEYS = {
    "id", "datasetRunId", "datasetRunName", "datasetItemId", "traceId", "observationId",
    "createdAt", "updatedAt",
}  # fmt: skip
QA_SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}},
    "required": ["question"],
}


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: Any, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["message"], response.json()


def dataset(api: Any, name: str = "qa", **body: Any) -> dict[str, Any]:
    created: dict[str, Any] = ok(api.post("/api/public/v2/datasets", json={"name": name, **body}))
    return created


def item(api: Any, **body: Any) -> dict[str, Any]:
    created: dict[str, Any] = ok(api.post("/api/public/dataset-items", json=body))
    return created


def items_of(api: Any, name: str, **params: Any) -> list[dict[str, Any]]:
    page = ok(api.get("/api/public/dataset-items", params={"datasetName": name, **params}))
    return list(page["data"])


def test_dataset_upsert_by_name_and_reads(api):
    first = dataset(api, description="questions", metadata={"team": "a"})
    assert set(first) == DATASET_KEYS
    assert first["projectId"] == api.project.id and first["inputSchema"] is None
    again = dataset(api, description="better questions")
    assert again["id"] == first["id"] and again["description"] == "better questions"
    assert again["metadata"] == {"team": "a"}  # left out: kept
    assert ok(api.get("/api/public/v2/datasets/qa")) == again
    listed = ok(api.get("/api/public/v2/datasets", params={"limit": 1}))
    assert listed["meta"] == {"page": 1, "limit": 1, "totalItems": 1, "totalPages": 1}
    refused(api.get("/api/public/v2/datasets/nope"), 404, "Dataset 'nope' not found")
    refused(api.post("/api/public/v2/datasets", json={"description": "x"}), 400, "name")
    # Names with a slash arrive URL-encoded (the SDKs encode them).
    dataset(api, "team/eval")
    assert ok(api.get("/api/public/v2/datasets/team%2Feval"))["name"] == "team/eval"


def test_items_upsert_archive_and_versions(api):
    dataset(api)
    created = item(api, datasetName="qa", input={"question": "2+2"}, expectedOutput="4")
    assert set(created) == ITEM_KEYS
    assert created["status"] == "ACTIVE" and created["mediaReferences"] == []
    fixed = item(api, datasetName="qa", id="item-1", input={"question": "capital?"})
    assert fixed["id"] == "item-1"
    before_edit = datetime.now(UTC)
    updated = item(api, datasetName="qa", id="item-1", expectedOutput="Paris")
    assert updated["input"] == {"question": "capital?"} and updated["expectedOutput"] == "Paris"
    assert updated["createdAt"] == fixed["createdAt"]
    assert {i["id"] for i in items_of(api, "qa")} == {created["id"], "item-1"}

    # The list as it was before the edit: the old expected output.
    old = items_of(api, "qa", version=before_edit.isoformat())
    assert {i["id"]: i["expectedOutput"] for i in old}["item-1"] is None

    archived = item(api, datasetName="qa", id="item-1", status="ARCHIVED")
    assert archived["status"] == "ARCHIVED"
    assert [i["id"] for i in items_of(api, "qa")] == [created["id"]]
    assert ok(api.get("/api/public/dataset-items/item-1"))["status"] == "ARCHIVED"

    before_delete = datetime.now(UTC)
    deleted = ok(api.delete(f"/api/public/dataset-items/{created['id']}"))
    assert deleted == {"message": "Dataset item successfully deleted"}
    refused(api.get(f"/api/public/dataset-items/{created['id']}"), 404, "not found")
    assert items_of(api, "qa") == []
    still = items_of(api, "qa", version=before_delete.isoformat())
    assert [i["id"] for i in still] == [created["id"]]
    refused(api.get("/api/public/dataset-items", params={"version": "2026-01-01T00:00:00Z"}),
            400, "Invalid request data")  # fmt: skip


def test_item_filters_by_source_and_pages(api):
    dataset(api)
    for n in range(3):
        item(api, datasetName="qa", input={"question": str(n)}, sourceTraceId=f"t-{n % 2}")
    page = ok(api.get("/api/public/dataset-items", params={"sourceTraceId": "t-0"}))
    assert page["meta"]["totalItems"] == 2
    paged = ok(api.get("/api/public/dataset-items", params={"datasetName": "qa", "limit": 2}))
    assert paged["meta"] == {"page": 1, "limit": 2, "totalItems": 3, "totalPages": 2}


def test_schemas_are_checked_on_every_item_write_and_nothing_is_written(api):
    dataset(api, inputSchema=QA_SCHEMA, expectedOutputSchema={"type": "string"})
    good = item(api, datasetName="qa", id="ok", input={"question": "why?"}, expectedOutput="b")
    refused(api.post("/api/public/dataset-items", json={"datasetName": "qa", "input": {"q": 1}}),
            400, "'question' is a required property")  # fmt: skip
    refused(api.post("/api/public/dataset-items", json={"datasetName": "qa", "id": "ok",
                                                        "expectedOutput": 7}),
            400, "expectedOutput does not match")  # fmt: skip
    assert ok(api.get("/api/public/dataset-items/ok")) == good
    assert len(items_of(api, "qa")) == 1
    # A schema that the stored items violate is refused (and not stored).
    refused(api.post("/api/public/v2/datasets", json={"name": "qa", "inputSchema": {
        "type": "object", "required": ["context"]}}), 400, "existing item 'ok'")  # fmt: skip
    assert ok(api.get("/api/public/v2/datasets/qa"))["inputSchema"] == QA_SCHEMA
    refused(api.post("/api/public/v2/datasets", json={"name": "x", "inputSchema": {
        "type": "nonsense"}}), 400, "not a valid JSON Schema")  # fmt: skip


def test_bad_item_writes_are_clear_4xx(api):
    dataset(api)
    dataset(api, "other")
    refused(api.post("/api/public/dataset-items", json={"datasetName": "ghost"}), 404,
            "Dataset 'ghost' not found")  # fmt: skip
    refused(api.post("/api/public/dataset-items", json={"input": 1}), 400, "datasetName")
    refused(api.post("/api/public/dataset-items", json={"datasetName": "qa", "status": "GONE"}),
            400, "status")  # fmt: skip
    refused(api.post("/api/public/dataset-items", json={"datasetName": "qa", "id": "x" * 256}),
            400, "at most 255")  # fmt: skip
    item(api, datasetName="qa", id="shared")
    refused(api.post("/api/public/dataset-items", json={"datasetName": "other", "id": "shared"}),
            400, "belongs to dataset 'qa'")  # fmt: skip
    refused(api.delete("/api/public/dataset-items/ghost"), 404, "not found")


def test_run_items_create_the_run_and_link_traces(api):
    dataset(api)
    one = item(api, datasetName="qa", input={"question": "a"})
    ingest(api, event("trace-create", {"id": "tr-1", "name": "task", "output": "A"}),
           event("span-create", {"id": "ob-1", "traceId": "tr-1", "name": "step"}))  # fmt: skip
    linked = ok(api.post("/api/public/dataset-run-items", json={
        "runName": "run-1", "runDescription": "first", "metadata": {"model": "m"},
        "datasetItemId": one["id"], "traceId": "tr-1"}))  # fmt: skip
    assert set(linked) == RUN_ITEM_KEYS
    assert linked["datasetRunName"] == "run-1" and linked["observationId"] is None
    # From an observation alone: its trace is looked up. The same run is reused.
    by_obs = ok(api.post("/api/public/dataset-run-items", json={
        "runName": "run-1", "datasetItemId": one["id"], "observationId": "ob-1"}))  # fmt: skip
    assert by_obs["traceId"] == "tr-1" and by_obs["datasetRunId"] == linked["datasetRunId"]

    runs = ok(api.get("/api/public/datasets/qa/runs"))
    assert runs["meta"]["totalItems"] == 1
    (run,) = runs["data"]
    assert run["description"] == "first" and run["metadata"] == {"model": "m"}
    assert run["datasetName"] == "qa"
    full = ok(api.get("/api/public/datasets/qa/runs/run-1"))
    assert [i["id"] for i in full["datasetRunItems"]] == [linked["id"], by_obs["id"]]
    listed = ok(api.get("/api/public/dataset-run-items",
                        params={"datasetId": run["datasetId"], "runName": "run-1"}))  # fmt: skip
    assert listed["meta"]["totalItems"] == 2
    legacy = ok(api.get("/api/public/datasets/qa"))
    assert legacy["runs"] == ["run-1"] and [i["id"] for i in legacy["items"]] == [one["id"]]

    gone = ok(api.delete("/api/public/datasets/qa/runs/run-1"))
    assert gone == {"message": "Dataset run successfully deleted"}
    refused(api.get("/api/public/datasets/qa/runs/run-1"), 404, "not found")


def test_bad_run_items_are_refused_and_create_no_run(api):
    dataset(api)
    one = item(api, datasetName="qa")
    post = lambda body: api.post("/api/public/dataset-run-items", json=body)  # noqa: E731
    refused(post({"runName": "r", "datasetItemId": one["id"]}), 400, "traceId or an observationId")
    refused(post({"runName": "r", "datasetItemId": one["id"], "traceId": "t", "extra": 1}),
            400, "unknown key(s): extra")  # fmt: skip
    refused(post({"runName": "r", "datasetItemId": "ghost", "traceId": "t"}), 404, "not found")
    refused(post({"runName": "r", "datasetItemId": one["id"], "observationId": "ghost"}),
            400, "send its traceId")  # fmt: skip
    refused(post({"datasetItemId": one["id"], "traceId": "t"}), 400, "runName")
    refused(post({"runName": "r", "datasetItemId": one["id"], "traceId": "t" * 801}),
            400, "traceId: at most 800")  # fmt: skip
    assert ok(api.get("/api/public/datasets/qa/runs"))["data"] == []


def test_experiments_and_experiment_items(api):
    dataset(api, inputSchema=None)
    one = item(api, datasetName="qa", input={"question": "a"}, expectedOutput="A",
               metadata={"level": 1})  # fmt: skip
    trace = {"id": "tr-1", "input": {"question": "a"}, "output": "A"}
    score = {"id": "s-1", "traceId": "tr-1", "name": "exact", "value": 1}
    ingest(api, event("trace-create", trace), event("score-create", score))
    ok(api.post("/api/public/dataset-run-items", json={
        "runName": "exp", "datasetItemId": one["id"], "traceId": "tr-1",
        "metadata": {"model": "m"}}))  # fmt: skip
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    exps = ok(api.get("/api/public/experiments",
                      params={"fromStartTime": start, "fields": "core,metadata"}))  # fmt: skip
    (exp,) = exps["data"]
    assert exps["meta"] == {}
    assert exp["name"] == "exp" and exp["itemCount"] == 1 and exp["metadata"] == {"model": "m"}
    assert exp["datasetId"] == one["datasetId"]
    items = ok(api.get("/api/public/experiment-items", params={
        "fromStartTime": start, "fields": "core,dataset,io,itemMetadata,scores"}))  # fmt: skip
    (got,) = items["data"]
    assert got["traceId"] == "tr-1" and got["experimentId"] == exp["id"]
    assert got["experimentItemId"] == one["id"] and got["experimentDatasetId"] == one["datasetId"]
    assert (got["input"], got["output"], got["expectedOutput"]) == ({"question": "a"}, "A", "A")
    assert got["experimentItemMetadata"] == {"level": 1}
    assert [s["name"] for s in got["scores"]] == ["exact"]
    none = ok(api.get("/api/public/experiment-items",
                      params={"fromStartTime": start, "experimentName": "other"}))  # fmt: skip
    assert none["data"] == []
    refused(api.get("/api/public/experiments"), 400, "Invalid request data")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert ok(api.get("/api/public/experiments", params={"fromStartTime": later}))["data"] == []


def test_experiment_cursor_pages(api):
    dataset(api)
    one = item(api, datasetName="qa")
    for n in range(3):
        body = {"runName": f"r{n}", "datasetItemId": one["id"], "traceId": f"t{n}"}
        ok(api.post("/api/public/dataset-run-items", json=body))
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    seen, cursor = [], None
    while True:
        params = {"fromStartTime": start, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = ok(api.get("/api/public/experiments", params=params))
        seen += [e["name"] for e in page["data"]]
        cursor = page["meta"].get("cursor")
        if not cursor:
            break
    assert seen == ["r2", "r1", "r0"]


def test_schema_patterns_run_on_re2_and_refuse_what_it_cannot_compile(api):
    """A catastrophic-backtracking pattern matches in linear time (RE2, as custom model
    patterns do); a pattern RE2 cannot compile is refused when the dataset is saved."""
    dataset(api, name="re", inputSchema={"type": "string", "pattern": "^(a+)+$"})
    hostile = "a" * 5000 + "!"  # seconds to years of backtracking on Python's re
    refused(api.post("/api/public/dataset-items", json={"datasetName": "re", "input": hostile}),
            400, "does not match")  # fmt: skip
    assert item(api, datasetName="re", input="aaaa")["input"] == "aaaa"
    refused(api.post("/api/public/v2/datasets", json={"name": "bad", "inputSchema": {
        "type": "string", "pattern": "(a)\\1"}}), 400, "RE2 cannot compile")  # fmt: skip
    refused(api.post("/api/public/v2/datasets", json={"name": "bad2", "inputSchema": {
        "patternProperties": {"(?<=x)y": {}}}}), 400, "RE2 cannot compile")  # fmt: skip


def test_schema_references_stay_inside_the_schema_and_never_stall_a_write(api):
    """A ``$ref`` to a URL, a URN or a file is refused when the dataset is saved, and the
    server fetches nothing (a slow host would hold the single writer); a schema that
    refers to itself without end, or to a part it does not hold, is refused too; one that
    loops only for some values makes those values invalid (400), with nothing written."""
    import http.server
    import threading

    fetched: list[str] = []

    class Host(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"type": "string"}')

        def log_message(self, *args: Any) -> None:
            pass

    host = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Host)
    threading.Thread(target=host.serve_forever, daemon=True).start()
    remote = f"http://127.0.0.1:{host.server_address[1]}/schema.json"
    try:
        for n, ref in enumerate([remote, "urn:x", "file:///etc/hostname", remote + "#/a"]):
            schema = {"type": "object", "properties": {"q": {"$ref": ref}}}
            refused(api.post("/api/public/v2/datasets", json={"name": f"r{n}",
                    "inputSchema": schema}), 400, "outside the schema")  # fmt: skip
        dataset(api, name="kept")
        refused(api.post("/api/public/v2/datasets", json={"name": "kept",
                "expectedOutputSchema": {"$ref": remote}}), 400, "outside the schema")  # fmt: skip
        assert fetched == []
    finally:
        host.shutdown()
        host.server_close()
    for schema, words in [
        ({"$ref": "#"}, "refers to itself without end"),
        ({"anyOf": [{"type": "null"}, {"$ref": "#"}]}, "refers to itself without end"),
        ({"$ref": "#/$defs/missing"}, "cannot be followed"),
    ]:
        refused(api.post("/api/public/v2/datasets", json={"name": "loop",
                "inputSchema": schema}), 400, words)  # fmt: skip
    # a tree refers to itself and ends: kept, and it checks the nesting
    tree = {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}}
    dataset(api, name="tree", inputSchema=tree)
    assert item(api, datasetName="tree", input={"kids": [{"kids": []}]})["input"]
    refused(api.post("/api/public/dataset-items", json={"datasetName": "tree",
            "input": {"kids": [{"kids": 1}]}}), 400, "is not of type")  # fmt: skip
    # loops only for an object holding "x": saved; such a value is refused, nothing written
    loops = {"if": {"type": "object", "required": ["x"]}, "then": {"$ref": "#"}}
    dataset(api, name="some", inputSchema=loops)
    refused(api.post("/api/public/dataset-items", json={"datasetName": "some",
            "input": {"x": 1}}), 400, "refers to itself without end")  # fmt: skip
    assert item(api, datasetName="some", input={"y": 1})["input"] == {"y": 1}
    assert [i["input"] for i in items_of(api, "some")] == [{"y": 1}]


def _documented(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The JSON Schema our OpenAPI document gives the 200 answer of an operation."""
    answer = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]
    return {**answer["schema"], "components": doc["components"]}


def test_answers_are_what_the_document_and_langfuse_spec_say(api):
    """Every dataset and experiment answer, with data in each of its objects (a run with
    a run item from an observation, scored), is valid by its schema in our OpenAPI
    document and by Langfuse's (the official clients parse them)."""
    import jsonschema

    from spec_schemas import conforms

    dataset(api, description="d", metadata={"team": "a"}, inputSchema=QA_SCHEMA)
    one = item(api, datasetName="qa", input={"question": "a"}, expectedOutput="A",
               metadata=["any", 1], sourceTraceId="tr-1")  # fmt: skip
    ingest(api, event("trace-create", {"id": "tr-1", "input": {"q": 1}, "output": "A"}),
           event("span-create", {"id": "ob-1", "traceId": "tr-1", "name": "step"}),
           event("score-create", {"id": "s-1", "traceId": "tr-1", "name": "ok", "value": 1}),
           event("score-create", {"id": "s-2", "traceId": "tr-1", "name": "tag",
                                  "dataType": "CATEGORICAL", "value": "x"}))  # fmt: skip
    run_item = ok(api.post("/api/public/dataset-run-items", json={
        "runName": "r", "datasetItemId": one["id"], "observationId": "ob-1",
        "metadata": {"m": 1}, "runDescription": None}))  # fmt: skip
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    everything = "core,dataset,io,metadata,itemMetadata,experimentMetadata,scores"
    doc = ok(api.get("/api/openapi.json"))
    reads = [
        ("/api/public/v2/datasets", "/api/public/v2/datasets", "PaginatedDatasets", {}),
        ("/api/public/v2/datasets/qa", "/api/public/v2/datasets/{dataset_name}", "Dataset", {}),
        ("/api/public/datasets", "/api/public/datasets", None, {}),
        ("/api/public/datasets/qa", "/api/public/datasets/{dataset_name}", None, {}),
        ("/api/public/datasets/qa/runs", "/api/public/datasets/{dataset_name}/runs",
         "PaginatedDatasetRuns", {}),
        ("/api/public/datasets/qa/runs/r", "/api/public/datasets/{dataset_name}/runs/{run_name}",
         "DatasetRunWithItems", {}),
        ("/api/public/dataset-items", "/api/public/dataset-items", "PaginatedDatasetItems", {}),
        (f"/api/public/dataset-items/{one['id']}", "/api/public/dataset-items/{item_id}",
         "DatasetItem", {}),
        ("/api/public/dataset-run-items", "/api/public/dataset-run-items",
         "PaginatedDatasetRunItems", {"datasetId": one["datasetId"], "runName": "r"}),
        ("/api/public/experiments", "/api/public/experiments", "ExperimentsResponse",
         {"fromStartTime": start, "fields": "core,metadata,scores"}),
        ("/api/public/experiment-items", "/api/public/experiment-items",
         "ExperimentItemsResponse", {"fromStartTime": start, "fields": everything}),
    ]  # fmt: skip
    for url, path, langfuse, params in reads:
        body = ok(api.get(url, params=params))
        assert body.get("data", [body]), url  # something to check in every answer
        jsonschema.validate(body, _documented(doc, "get", path))
        if langfuse is not None:
            conforms(langfuse, body)
    (got,) = ok(api.get("/api/public/experiment-items",
                        params={"fromStartTime": start, "fields": everything}))["data"]  # fmt: skip
    assert {s["name"] for s in got["scores"]} == {"ok", "tag"}
    jsonschema.validate(run_item, _documented(doc, "post", "/api/public/dataset-run-items"))
    conforms("DatasetRunItem", run_item)
    for url, path, name in (
        (f"/api/public/dataset-items/{one['id']}", "/api/public/dataset-items/{item_id}",
         "DeleteDatasetItemResponse"),
        ("/api/public/datasets/qa/runs/r", "/api/public/datasets/{dataset_name}/runs/{run_name}",
         "DeleteDatasetRunResponse"),
    ):  # fmt: skip
        gone = ok(api.delete(url))
        jsonschema.validate(gone, _documented(doc, "delete", path))
        conforms(name, gone)


def _nested(levels: int) -> Any:
    """A JSON array nested ``levels`` deep."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_json_nested_past_the_event_limit_is_refused_and_nothing_is_written(api):
    # The limit of an ingestion event body (200 levels, the body object being one).
    dataset(api)
    one = item(api, datasetName="qa", id="i1")
    ingest(api, event("trace-create", {"id": "tr-1", "name": "task"}))
    run_item = {"runName": "r", "datasetItemId": "i1", "traceId": "tr-1"}
    ok(api.post("/api/public/dataset-run-items", json=run_item))
    deep = _nested(254)
    for path, body in [
        ("/api/public/v2/datasets", {"name": "deep", "metadata": deep}),
        ("/api/public/datasets", {"name": "deep", "metadata": deep}),
        ("/api/public/v2/datasets", {"name": "qa", "metadata": _nested(200)}),
        ("/api/public/dataset-items", {"datasetName": "qa", "id": "d", "input": deep}),
        ("/api/public/dataset-items", {"datasetName": "qa", "id": "d", "expectedOutput": deep}),
        ("/api/public/dataset-items", {"datasetName": "qa", "id": "i1", "metadata": deep}),
        ("/api/public/dataset-run-items", {**run_item, "runName": "r2", "metadata": deep}),
    ]:  # fmt: skip
        refused(api.post(path, json=body), 400, "nested more than 200 levels deep")
    assert [d["name"] for d in ok(api.get("/api/public/v2/datasets"))["data"]] == ["qa"]
    assert ok(api.get("/api/public/datasets"))["data"][0]["metadata"] is None
    assert [i["id"] for i in items_of(api, "qa")] == [one["id"]]
    assert items_of(api, "qa")[0]["metadata"] is None
    runs = ok(api.get("/api/public/datasets/qa/runs"))["data"]
    assert [r["name"] for r in runs] == ["r"]
    # 199 levels inside the body object are within the limit and read back.
    kept = _nested(199)
    assert dataset(api, "fine", metadata=kept)["metadata"] == kept
    assert item(api, datasetName="fine", input=kept)["input"] == kept
    assert ok(api.get("/api/public/v2/datasets"))["meta"]["totalItems"] == 2
