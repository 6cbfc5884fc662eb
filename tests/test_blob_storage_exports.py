"""Scheduled exports to S3-compatible storage (a local moto S3 server on loopback, real
HTTP): the blob-storage integration routes for an organisation key (project keys 403),
the secret sealed and never returned, Parquet files whose rows match the API, a second
run exporting only what is new, the sync status, the audit log. Time is injected."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

import support
from helpers import event, ingest, iso
from lanterna.accounts import store as accounts
from lanterna.cli import main
from lanterna.server.app import create_app
from lanterna.server.scheduled_exports import ExportJob
from lanterna.store import projects
from media_files import BUCKET, CREDENTIALS, moto_s3
from spec_schemas import conforms
from support import Api, db_args, make_settings, new_project

pytestmark = pytest.mark.clickhouse

PATH = "/api/public/integrations/blob-storage"
DAY = datetime(2026, 3, 2, tzinfo=timezone.utc)


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def api(db_url: str, events_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = dataclasses.replace(
        make_settings(db_url, tmp_path),
        outbound_allow="127.0.0.1",
        export_tick_seconds=0,
        events_url=events_url,
    )
    app = create_app(settings)
    project = new_project(db_url)
    with Api(app, raise_server_exceptions=True) as client:
        client.project = project
        client.auth = project.auth
        yield client


def org_key(api: Api, project_id: str) -> tuple[str, str]:
    """A new organisation key of the project's organisation."""

    def make(c: Any) -> tuple[str, str]:
        org = projects.get_project(c, project_id)["org_id"]
        key = projects.create_org_key(c, org)
        return key.public_key, key.secret_key

    pair = support._in_transaction(api.app, make)
    support.SECRETS.add(pair[1])
    return pair


def settings_page(api: Api) -> str:
    """The project's settings page as an instance admin sees it."""

    def login(c: Any) -> str:
        user = accounts.create_user(c, f"admin-{id(c)}@example.com", None, is_admin=True)
        return accounts.create_session(c, user, 1)

    api.cookies.set("lanterna_session", support._in_transaction(api.app, login))
    try:
        page = api.get(f"/project/{api.project.id}/settings")
        assert page.status_code == 200, page.text
        return page.text
    finally:
        api.cookies.clear()


def body(project_id: str, s3_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "projectId": project_id,
        "type": "S3_COMPATIBLE",
        "bucketName": BUCKET,
        "endpoint": s3_url,
        "region": "us-east-1",
        "accessKeyId": CREDENTIALS["aws_access_key_id"],
        "secretAccessKey": CREDENTIALS["aws_secret_access_key"],
        "prefix": "exports/",
        "exportFrequency": "hourly",
        "enabled": True,
        "forcePathStyle": True,
        "fileType": "PARQUET",
        "exportMode": "FULL_HISTORY",
        **extra,
    }


def trace(api: Api, name: str, at: datetime) -> None:
    """A trace with a generation and a score, at ``at``."""
    tid, oid = f"t-{name}", f"o-{name}"
    stamp = iso(at)
    ingest(
        api,
        event(
            "trace-create",
            {
                "id": tid,
                "name": name,
                "timestamp": stamp,
                "userId": "u1",
                "metadata": {"k": name},
                "tags": ["a"],
            },
        ),
        event(
            "generation-create",
            {
                "id": oid,
                "traceId": tid,
                "name": f"gen-{name}",
                "startTime": stamp,
                "model": "gpt-4o-mini",
                "usage": {"input": 10, "output": 5},
            },
        ),
        event(
            "score-create",
            {
                "id": f"s-{name}",
                "traceId": tid,
                "name": "quality",
                "value": 0.5,
                "timestamp": stamp,
            },
        ),
    )


def parquet(client: Any, key: str) -> list[dict[str, Any]]:
    data = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(data)).to_pylist()  # type: ignore[no-any-return]


def same(exported: Any, api_value: Any) -> bool:
    """A Parquet cell equals the API's value (objects and lists are JSON text,
    numbers doubles)."""
    if isinstance(api_value, (dict, list)):
        return json.loads(exported) == api_value
    if isinstance(api_value, (int, float)) and not isinstance(api_value, bool):
        return exported is not None and abs(float(exported) - api_value) < 1e-9
    return bool(exported == api_value)


def assert_rows_match(rows: list[dict[str, Any]], api_items: dict[str, dict[str, Any]]) -> None:
    assert sorted(r["id"] for r in rows) == sorted(api_items)
    for row in rows:
        item = api_items[row["id"]]
        shared = [c for c in row if c in item]
        assert len(shared) >= 5
        wrong = {c: (row[c], item[c]) for c in shared if not same(row[c], item[c])}
        assert not wrong, wrong


def test_scheduled_parquet_export_is_incremental(api: Api, s3_endpoint: str) -> None:
    pid = api.project.id
    org = org_key(api, pid)
    trace(api, "first", DAY + timedelta(hours=10))
    trace(api, "second", DAY + timedelta(hours=10, minutes=5))

    made = api.put(PATH, json=body(pid, s3_endpoint), auth=org)
    assert made.status_code == 200, made.text
    integration = made.json()
    conforms("BlobStorageIntegrationResponse", integration)
    assert integration["projectId"] == pid and integration["fileType"] == "PARQUET"
    assert integration["exportSource"] == "LEGACY_TRACES_OBSERVATIONS"
    assert integration["lastSyncAt"] is None and integration["compressed"] is True
    assert "Last successful export: <strong>never</strong>" in settings_page(api)
    assert "secretAccessKey" not in integration
    assert CREDENTIALS["aws_secret_access_key"] not in made.text
    sealed = support._in_transaction(
        api.app,
        lambda c: c.scalar("SELECT secret_access_key_sealed FROM blob_storage_integrations"),
    )
    assert sealed.startswith("v1:") and CREDENTIALS["aws_secret_access_key"] not in sealed

    job = api.app.state.runtime.exports
    [run] = job.tick(DAY + timedelta(hours=11))  # the window ends 20 minutes earlier
    assert run.error is None, run.error
    assert run.counts == {"trace": 2, "observation": 2, "score": 2}
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **CREDENTIALS)
    traces_key = f"exports/{pid}/traces/2026-03-02T10-40-00Z.parquet"
    assert traces_key in run.keys

    api_traces = {t["id"]: t for t in api.get("/api/public/traces").json()["data"]}
    assert_rows_match(parquet(client, traces_key), api_traces)
    api_obs = {o["id"]: o for o in api.get("/api/public/observations").json()["data"]}
    assert_rows_match(parquet(client, run.keys[1]), api_obs)
    api_scores = {s["id"]: s for s in api.get("/api/public/scores").json()["data"]}
    assert_rows_match(parquet(client, run.keys[2]), api_scores)

    status = api.get(f"{PATH}/{integration['id']}", auth=org).json()
    conforms("BlobStorageIntegrationStatusResponse", status)
    assert status["lastSyncAt"] == "2026-03-02T10:40:00Z"
    assert "Last successful export: <strong>2026-03-02 10:40:00</strong>" in settings_page(api)
    assert status["nextSyncAt"] == "2026-03-02T12:00:00Z" and status["lastError"] is None

    # Not due before the next period; then only what is new since the last window.
    assert job.tick(DAY + timedelta(hours=11, minutes=30)) == []
    trace(api, "third", DAY + timedelta(hours=10, minutes=50))
    [second] = job.tick(DAY + timedelta(hours=12))
    assert second.counts == {"trace": 1, "observation": 1, "score": 1}
    rows = parquet(client, f"exports/{pid}/traces/2026-03-02T11-40-00Z.parquet")
    assert [r["id"] for r in rows] == ["t-third"]
    assert [r["id"] for r in parquet(client, second.keys[1])] == ["o-third"]
    everything = api.get(PATH, auth=org).json()
    conforms("BlobStorageIntegrationsResponse", everything)
    listed = everything["data"]
    assert [i["lastSyncAt"] for i in listed] == ["2026-03-02T11:40:00Z"]

    actions = support._in_transaction(
        api.app, lambda c: c.all("SELECT actor, action FROM audit_log WHERE project_id = ?", (pid,))
    )
    assert {"actor": f"org-key:{org[0]}", "action": "blob_storage.create"} in actions

    gone = api.delete(f"{PATH}/{integration['id']}", auth=org)
    assert gone.status_code == 200 and gone.json() == {
        "message": "Blob storage integration deleted"
    }
    conforms("BlobStorageIntegrationDeletionResponse", gone.json())
    assert api.get(f"{PATH}/{integration['id']}", auth=org).status_code == 404


def test_jsonl_gzip_export_and_failures_are_recorded(api: Api, s3_endpoint: str) -> None:
    pid = api.project.id
    org = org_key(api, pid)
    trace(api, "one", DAY + timedelta(hours=1))
    groups = {"exportSource": "LEGACY_TRACES_OBSERVATIONS", "exportFieldGroups": ["core", "io"]}
    made = api.put(PATH, json=body(pid, s3_endpoint, fileType="JSONL", exportFrequency="daily",
                                   **groups), auth=org)  # fmt: skip
    assert made.status_code == 200, made.text
    job = api.app.state.runtime.exports
    [run] = job.tick(DAY + timedelta(hours=3))
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **CREDENTIALS)
    import gzip

    data = client.get_object(Bucket=BUCKET, Key=run.keys[0])["Body"].read()
    lines = [json.loads(x) for x in gzip.decompress(data).splitlines()]
    assert run.keys[0].endswith(".jsonl.gz")
    assert [(x["type"], x["data"]["id"]) for x in lines] == [("trace", "t-one")]
    # Observations carry the columns of the chosen field groups (core and io) only.
    data = client.get_object(Bucket=BUCKET, Key=run.keys[1])["Body"].read()
    [line] = [json.loads(x) for x in gzip.decompress(data).splitlines()]
    assert {"id", "traceId", "startTime", "type", "input", "output"} <= set(line["data"])
    assert not {"name", "model", "usage", "latency", "metadata"} & set(line["data"])

    # The bucket goes away: the run records the error, the window is kept.
    client.delete_objects(
        Bucket=BUCKET,
        Delete={
            "Objects": [
                {"Key": o["Key"]} for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]
            ]
        },
    )
    client.delete_bucket(Bucket=BUCKET)
    [failed] = job.tick(DAY + timedelta(days=1, hours=3))
    assert failed.error and "NoSuchBucket" in failed.error
    status = api.get(f"{PATH}/{made.json()['id']}", auth=org).json()
    assert status["syncStatus"] == "error" and "NoSuchBucket" in status["lastError"]
    assert status["lastSyncAt"] == "2026-03-02T02:40:00Z"


def test_routes_need_an_org_key_and_check_bodies(api: Api, s3_endpoint: str) -> None:
    pid = api.project.id
    org = org_key(api, pid)
    # A project key: 403 on every route.
    for method, path in (
        ("get", PATH),
        ("put", PATH),
        ("get", f"{PATH}/x"),
        ("delete", f"{PATH}/x"),
    ):
        kwargs = {"json": body(pid, s3_endpoint)} if method == "put" else {}
        assert getattr(api, method)(path, **kwargs).status_code == 403
    assert api.get(PATH, auth=("pk-lf-nope", "sk-lf-nope")).status_code == 401
    # Another organisation's project: 404.
    other = new_project(api.app.state.runtime.db.url, "Elsewhere")
    assert api.put(PATH, json=body(other.id, s3_endpoint), auth=org).status_code == 404
    # Bad bodies: 400 naming the field.
    for bad, word in (
        ({"fileType": "XML"}, "fileType"),
        ({"prefix": "no-slash"}, "prefix"),
        ({"endpoint": None}, "endpoint"),
        ({"exportMode": "FROM_CUSTOM_DATE"}, "exportStartDate"),
        ({"exportSource": "OBSERVATIONS_V2"}, "exportSource"),
        ({"type": "AZURE_BLOB_STORAGE"}, "type"),
        ({"bucketName": None}, "bucketName"),
    ):
        answer = api.put(PATH, json=body(pid, s3_endpoint, **bad), auth=org)
        assert answer.status_code == 400 and word in answer.text, (bad, answer.text)
    # A bucket that does not exist: the test upload fails, nothing is stored.
    answer = api.put(PATH, json=body(pid, s3_endpoint, bucketName="missing-bucket"), auth=org)
    assert answer.status_code == 400 and "NoSuchBucket" in answer.text
    assert api.get(PATH, auth=org).json() == {"data": []}


def test_a_private_endpoint_is_refused_without_the_outbound_allowlist(
    db_url: str, tmp_path: Path, s3_endpoint: str
) -> None:
    app = create_app(make_settings(db_url, tmp_path))  # LANTERNA_OUTBOUND_ALLOW unset
    project = new_project(db_url)
    with Api(app, raise_server_exceptions=True) as client:
        client.project = project
        org = org_key(client, project.id)
        answer = client.put(PATH, json=body(project.id, s3_endpoint), auth=org)
        assert answer.status_code == 400
        assert "LANTERNA_OUTBOUND_ALLOW" in answer.text


def test_one_exporter_at_a_time_and_the_worker_runs_them(
    api: Api,
    s3_endpoint: str,
    db_url: str,
    events_url: str,
    tmp_path: Path,
    capsys: Any,
    monkeypatch: Any,
) -> None:
    pid = api.project.id
    org = org_key(api, pid)
    trace(api, "one", DAY)
    made = api.put(PATH, json=body(pid, s3_endpoint, fileType="CSV"), auth=org).json()
    rt = api.app.state.runtime
    rival = ExportJob(rt.db, rt.store, rt.writer.run_sync, rt.secret_box, rt.exports.policy)
    # Another process holds the lease: this one exports nothing, and its status is running.
    at = datetime.now(timezone.utc)
    assert rt.writer.run_sync(
        lambda c: rt.store.blob_exports.claim(
            c, made["id"], rival.owner, at, at + timedelta(hours=1)
        )
    )
    assert rt.exports.tick() == []
    assert api.get(f"{PATH}/{made['id']}", auth=org).json()["syncStatus"] == "running"
    rt.writer.run_sync(
        lambda c: rt.store.blob_exports.finish(
            c, made["id"], rival.owner, next_sync_at=at, synced_to=None, error=None, at=at
        )
    )
    # `lanterna worker --once` runs the due export (with the real clock).
    monkeypatch.setenv("LANTERNA_OUTBOUND_ALLOW", "127.0.0.1")
    monkeypatch.setenv("LANTERNA_DATA_DIR", str(tmp_path))  # the server key's folder
    events = ["--events-url", events_url] if events_url else []
    assert main(["worker", "--once", *db_args(db_url), *events]) == 0
    assert "ran 1 scheduled export(s)" in capsys.readouterr().out
    status = api.get(f"{PATH}/{made['id']}", auth=org).json()
    assert status["syncStatus"] == "up_to_date" and status["lastSyncAt"] is not None
