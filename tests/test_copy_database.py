"""``lanterna migrate --from sqlite:///... --to postgresql://...``: a real SQLite data
folder filled through the API (ingestion, prompts, datasets, scores, rules, channels,
LLM connections, users, keys, ...) is copied into a new PostgreSQL database; a server on
the copy answers the read API exactly as the one on SQLite did, with the same keys and
sealed secrets; an interrupted copy resumes without duplicates; verification catches a
changed row; non-empty and identical targets are refused."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from lanterna.alerts.stored import secret_box
from lanterna.cli import main
from lanterna.evaluation.connections import endpoint_of
from lanterna.server.app import create_app
from lanterna.server.settings import Settings
from lanterna.store.copy import PROGRESS, CopyError, copy_database, source_database, verify
from lanterna.store.db import Database
from lanterna.store.migrations import migrate
from support import SECRETS, Project, chdb_folder, make_settings, new_project

PG_ENV = "LANTERNA_TEST_POSTGRES_URL"

LLM_KEY = "sk-copy-secret-5678"
HOOK_SECRET = "whsec-copy-0123456789"
PASSWORD = "a long enough passphrase 42"
SECRETS.update({LLM_KEY, HOOK_SECRET})


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database (not migrated: the copy migrates it)."""
    admin = os.environ.get(PG_ENV)
    if not admin:
        pytest.fail(f"{PG_ENV} is not set: start PostgreSQL with scripts/pg-start")
    name = f"lanterna_copy_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{admin.rpartition('/')[0]}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _event(kind: str, body: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "id": f"ev-{kind}-{n}",
        "type": kind,
        "timestamp": body.get("timestamp", "2026-03-01T10:00:00.000Z"),
        "body": body,
    }


def _ok(response: Any) -> Any:
    assert response.status_code in (200, 201, 207), response.text
    return response.json()


def _fill(client: TestClient, project: Project) -> dict[str, str]:
    """Every kind of entity, made through the API; the ids the reads below need."""
    events = []
    for t in range(12):
        at = f"2026-03-01T10:{t:02d}:00.000Z"
        trace = f"tr-{t}"
        events.append(
            _event(
                "trace-create",
                {
                    "id": trace,
                    "name": f"chat-{t % 3}",
                    "timestamp": at,
                    "userId": f"user-{t % 4}",
                    "sessionId": f"sess-{t % 2}",
                    "input": {"q": f"question {t}", "n": t / 3},
                    "output": "an answer",
                    "metadata": {"env": "test", "nested": {"k": [1, 2.5, None]}},
                    "tags": ["b", "a"],
                    "release": "1.0",
                    "public": t % 2 == 0,
                },
                len(events),
            )
        )
        events.append(
            _event(
                "span-create",
                {
                    "id": f"sp-{t}",
                    "traceId": trace,
                    "name": "retrieve",
                    "startTime": at,
                    "endTime": f"2026-03-01T10:{t:02d}:01.250Z",
                    "level": "ERROR" if t == 3 else "DEFAULT",
                    "statusMessage": "x" if t == 3 else None,
                    "input": [1, 2, 3],
                },
                len(events),
            )
        )
        events.append(
            _event(
                "generation-create",
                {
                    "id": f"gen-{t}",
                    "traceId": trace,
                    "parentObservationId": f"sp-{t}",
                    "name": "llm",
                    "startTime": at,
                    "completionStartTime": f"2026-03-01T10:{t:02d}:00.400Z",
                    "endTime": f"2026-03-01T10:{t:02d}:02.000Z",
                    "model": "gpt-4o",
                    "modelParameters": {"temperature": 0.2},
                    "usageDetails": {"input": 100 + t, "output": 20},
                    "input": [{"role": "user", "content": "hi"}],
                    "output": "hello",
                },
                len(events),
            )
        )
        events.append(
            _event(
                "event-create",
                {"id": f"evt-{t}", "traceId": trace, "name": "click", "startTime": at},
                len(events),
            )
        )
        events.append(
            _event(
                "score-create",
                {
                    "id": f"sc-{t}",
                    "traceId": trace,
                    "name": "quality",
                    "value": t / 4,
                    "comment": "ok",
                },
                len(events),
            )
        )
    events.append(_event("trace-create", {"id": "tr-1", "name": "renamed"}, len(events)))
    assert not _ok(client.post("/api/public/ingestion", json={"batch": events}))["errors"]
    _ok(
        client.post(
            "/api/public/scores",
            json={"traceId": "tr-2", "name": "correct", "value": 1, "dataType": "BOOLEAN"},
        )
    )
    _ok(
        client.post(
            "/api/public/scores",
            json={"traceId": "tr-2", "name": "label", "value": "good", "dataType": "CATEGORICAL"},
        )
    )
    for version in ("Hello {{name}}", "Hi {{name}}!"):
        _ok(
            client.post(
                "/api/public/v2/prompts",
                json={
                    "name": "greet",
                    "type": "text",
                    "prompt": version,
                    "labels": ["production"],
                    "config": {"t": 1},
                },
            )
        )
    _ok(
        client.post(
            "/api/public/v2/prompts",
            json={
                "name": "chatty",
                "type": "chat",
                "prompt": [{"role": "system", "content": "be brief"}],
                "tags": ["x"],
            },
        )
    )
    dataset = _ok(
        client.post(
            "/api/public/v2/datasets",
            json={"name": "qa", "description": "questions", "metadata": {"owner": "me"}},
        )
    )
    items = [
        _ok(
            client.post(
                "/api/public/dataset-items",
                json={
                    "datasetName": "qa",
                    "input": {"question": f"q{i}"},
                    "expectedOutput": f"a{i}",
                },
            )
        )
        for i in range(3)
    ]
    for i, item in enumerate(items):
        _ok(
            client.post(
                "/api/public/dataset-run-items",
                json={"runName": "run-1", "datasetItemId": item["id"], "traceId": f"tr-{i}"},
            )
        )
    config = _ok(
        client.post(
            "/api/public/score-configs",
            json={"name": "stars", "dataType": "NUMERIC", "minValue": 0, "maxValue": 5},
        )
    )
    _ok(
        client.post(
            "/api/public/annotation-queues",
            json={"name": "review", "scoreConfigIds": [config["id"]]},
        )
    )
    _ok(
        client.post(
            "/api/public/comments",
            json={
                "projectId": project.id,
                "objectType": "TRACE",
                "objectId": "tr-0",
                "content": "look at this",
            },
        )
    )
    hook = _ok(
        client.post(
            "/api/public/alert-channels",
            json={
                "name": "ops",
                "type": "webhook",
                "config": {"url": "https://hooks.example.com/x", "secret": HOOK_SECRET},
            },
        )
    )
    _ok(
        client.post(
            "/api/public/alerts/rules",
            json={
                "name": "errors",
                "metric": "error_rate",
                "threshold": 5,
                "channelIds": [hook["id"]],
            },
        )
    )
    _ok(
        client.post(
            "/api/public/budgets",
            json={"name": "monthly", "scope": "project", "period": "month", "limitUsd": 10},
        )
    )
    _ok(
        client.post(
            "/api/public/models",
            json={
                "modelName": "my-model",
                "matchPattern": "(?i)^my-model$",
                "unit": "TOKENS",
                "inputPrice": 0.001,
                "outputPrice": 0.002,
            },
        )
    )
    connection = _ok(
        client.put(
            "/api/public/llm-connections",
            json={
                "provider": "judge",
                "adapter": "openai",
                "secretKey": LLM_KEY,
                "baseURL": "https://llm.example.com/v1",
            },
        )
    )
    return {"dataset": dataset["name"], "connection": connection["id"]}


#: Read API answers compared before and after the copy.
READS = [
    "/api/public/traces?limit=50",
    "/api/public/traces?userId=user-1&orderBy=timestamp.asc",
    "/api/public/traces/tr-1",
    "/api/public/traces/tr-3",
    "/api/public/observations?limit=100",
    "/api/public/observations/gen-4",
    "/api/public/v2/observations?limit=100",
    "/api/public/scores?limit=100",
    "/api/public/v2/scores?limit=100",
    "/api/public/sessions",
    "/api/public/sessions/sess-1",
    "/api/public/users",
    "/api/public/v2/prompts",
    "/api/public/v2/prompts/greet",
    "/api/public/v2/prompts/greet?version=1",
    "/api/public/v2/prompts/chatty",
    "/api/public/v2/datasets",
    "/api/public/v2/datasets/qa",
    "/api/public/dataset-items?datasetName=qa",
    "/api/public/dataset-run-items?datasetId={dataset_id}&runName=run-1",
    "/api/public/score-configs",
    "/api/public/annotation-queues",
    "/api/public/comments",
    "/api/public/alert-channels",
    "/api/public/alerts/rules",
    "/api/public/budgets",
    "/api/public/models?limit=100",
    "/api/public/llm-connections",
    "/api/public/projects",
    "/api/public/metrics/daily",
]


def _answers(client: TestClient, dataset_id: str, reads: list[str] = READS) -> dict[str, Any]:
    out = {}
    for path in reads:
        path = path.format(dataset_id=dataset_id)
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        out[path] = body = response.json()
        if path == "/api/public/budgets":  # when the spend was read: now, not stored
            for budget in body["data"]:
                budget["status"].pop("at")
    return out


def _settings(db_url: str, data: Path) -> Settings:
    """A server on ``db_url`` whose alert evaluator does not run: it would record its
    evaluations in the rules' state between the reads compared."""
    settings = make_settings(db_url, data)
    settings.alert_tick_seconds = 0
    return settings


def _rounded(value: Any) -> Any:
    """``value`` with every float rounded to 12 significant digits."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _differences(a: Any, b: Any, at: str = "") -> list[str]:
    """Where two JSON values differ (for the failure message)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for k in sorted(set(a) | set(b))
            for d in _differences(a.get(k), b.get(k), f"{at}.{k}")
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, f"{at}[{i}]")
        ]
    return [] if a == b else [f"{at}: {a!r} != {b!r}"]


def _source(tmp_path: Path) -> tuple[str, Path, Project]:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'lanterna.db'}"
    db = Database(url)
    migrate(db)
    db.close()
    return url, data, new_project(url)


def _login(client: TestClient, email: str, password: str) -> int:
    form = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    body = {"csrf_token": csrf.group(1), "email": email, "password": password}
    return client.post("/login", data=body, follow_redirects=False).status_code


def _add_owner(url: str, project_id: str) -> None:
    """An account owning the project, to log in with on the copy."""
    from lanterna.accounts import store as accounts

    db = Database(url)
    with db.transaction() as conn:
        user = accounts.create_user(conn, "owner@example.com", PASSWORD, is_admin=False)
        accounts.set_member(conn, user, project_id, "owner")
    db.close()


def _copy_verified(source: str, target: str, capsys: Any) -> None:
    """``lanterna migrate`` from ``source`` to ``target``: every row copied and verified."""
    code = main(["migrate", "--from", source, "--to", target, "--batch-size", "7"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"observations: 36 / 36 rows done", out), out
    assert "Verified:" in out and "counts and checksums equal" in out


def test_a_copied_sqlite_folder_answers_the_same_on_postgresql(tmp_path, pg_url, capsys):
    source_url, data, project = _source(tmp_path)
    assert (
        main(
            ["keys", "create", "--project", project.id, "--role", "viewer", "--data-dir", str(data)]
        )
        == 0
    )
    out = capsys.readouterr().out
    viewer = (
        re.search(r"LANGFUSE_PUBLIC_KEY=(\S+)", out)[1],  # type: ignore[index]
        re.search(r"LANGFUSE_SECRET_KEY=(\S+)", out)[1],
    )  # type: ignore[index]
    SECRETS.add(viewer[1])
    with TestClient(create_app(_settings(source_url, data))) as client:
        client.auth = project.auth
        ids = _fill(client, project)
        dataset_id = client.get("/api/public/v2/datasets/qa").json()["id"]
        before = _answers(client, dataset_id)
    _add_owner(source_url, project.id)
    _copy_verified(source_url, pg_url, capsys)

    settings = _settings(pg_url, data)  # the same data folder: the same server key
    with TestClient(create_app(settings)) as client:
        client.auth = project.auth
        after = _answers(client, dataset_id)
        for path in READS:
            path = path.format(dataset_id=dataset_id)
            assert after[path] == before[path], (path, _differences(after[path], before[path]))
        # The CLI-made viewer key works and still may not change anything.
        assert client.get("/api/public/traces", auth=viewer).status_code == 200
        assert (
            client.post(
                "/api/public/budgets",
                auth=viewer,
                json={"name": "b", "scope": "project", "period": "month", "limitUsd": 1},
            ).status_code
            == 403
        )
        assert (
            client.get("/api/public/traces", auth=(project.public_key, "sk-wrong")).status_code
            == 401
        )
        # The account's password hash came along: the owner logs in on the copy.
        assert _login(client, "owner@example.com", PASSWORD) == 303
    # Sealed secrets open with the same server key.
    target = Database(pg_url)
    try:
        with target.read() as conn:
            row = conn.one("SELECT * FROM llm_connections WHERE id = ?", [ids["connection"]])
            tables = conn.scalar(f"SELECT COUNT(*) FROM {PROGRESS}")
    finally:
        target.close()
    assert row is not None
    assert endpoint_of(secret_box(settings.secret_key, settings.data_dir), row).api_key == LLM_KEY
    assert tables > 60  # one progress row per table copied, and the whole copy's


@pytest.fixture
def pg_source(pg_url: str) -> Iterator[str]:
    """A second new PostgreSQL database, migrated: the source of a PostgreSQL copy."""
    admin = os.environ[PG_ENV]
    name = f"lanterna_copysrc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin.rpartition('/')[0]}/{name}"
    db = Database(url)
    migrate(db)
    db.close()
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_postgresql_database_copies_to_another(tmp_path, pg_source, pg_url, capsys):
    """PostgreSQL as the source (moving to a new server): the same answers, keys and
    logins on the copy."""
    data = tmp_path / "data"
    project = new_project(pg_source)
    with TestClient(create_app(_settings(pg_source, data))) as client:
        client.auth = project.auth
        _fill(client, project)
        dataset_id = client.get("/api/public/v2/datasets/qa").json()["id"]
        before = _answers(client, dataset_id)
    _add_owner(pg_source, project.id)
    _copy_verified(pg_source, pg_url, capsys)

    with TestClient(create_app(_settings(pg_url, data))) as client:
        client.auth = project.auth
        after = _answers(client, dataset_id)
        for path in READS:
            path = path.format(dataset_id=dataset_id)
            assert after[path] == before[path], (path, _differences(after[path], before[path]))
        assert (
            client.get("/api/public/traces", auth=(project.public_key, "sk-wrong")).status_code
            == 401
        )
        assert _login(client, "owner@example.com", PASSWORD) == 303
        # the copy takes new writes (its sequences and keys are its own)
        ingested = client.post(
            "/api/public/ingestion",
            json={"batch": [_event("trace-create", {"id": "after-copy", "name": "n"}, 999)]},
        )
        assert ingested.status_code == 207 and ingested.json()["successes"], ingested.text
        assert client.get("/api/public/traces/after-copy").status_code == 200


class _Stop(KeyboardInterrupt):
    pass


def test_an_interrupted_copy_resumes_without_duplicates(tmp_path, pg_url):
    source_url, data, project = _source(tmp_path)
    with TestClient(create_app(_settings(source_url, data))) as client:
        client.auth = project.auth
        _fill(client, project)
    source, target = source_database(source_url), Database(pg_url)
    batches = []

    def stop_after_eight(table: str, rows: int) -> None:
        batches.append((table, rows))
        if len(batches) == 8:
            raise _Stop

    try:
        with pytest.raises(_Stop):
            copy_database(source, target, batch_size=3, on_batch=stop_after_eight)
        with target.read() as conn:
            partial = {t: conn.scalar(f"SELECT COUNT(*) FROM {t}") for t, _ in batches}
        assert sum(partial.values()) == sum(rows for _, rows in batches)

        report = copy_database(source, target, batch_size=3)
        assert report.resumed and report.ok, [c for c in report.checks if not c.ok]
        counts = {c.table: c.target_rows for c in report.checks}
        assert counts["observations"] == 36 and counts["traces"] == 12
        # What the first run committed was not copied again.
        assert sum(report.copied.values()) == sum(counts.values()) - sum(partial.values())
        # Run again: nothing left to copy, and it still verifies.
        again = copy_database(source, target, batch_size=3)
        assert again.ok and sum(again.copied.values()) == 0
    finally:
        source.close()
        target.close()


def test_verification_catches_a_changed_target_row(tmp_path, pg_url, capsys):
    source_url, data, project = _source(tmp_path)
    with TestClient(create_app(_settings(source_url, data))) as client:
        client.auth = project.auth
        _fill(client, project)
    assert main(["migrate", "--from", source_url, "--to", pg_url]) == 0
    capsys.readouterr()
    target = Database(pg_url)
    with target.transaction() as conn:
        conn.run("UPDATE observations SET name = 'tampered' WHERE id = 'gen-5'")
    source = source_database(source_url)
    try:
        with target.read() as conn:
            from lanterna.store.copy import target_tables

            tables = target_tables(conn)
        bad = [c.table for c in verify(source, target, tables) if not c.ok]
    finally:
        source.close()
        target.close()
    assert bad == ["observations"]
    assert main(["migrate", "--from", source_url, "--to", pg_url]) == 1
    err = capsys.readouterr().err
    assert "MISMATCH observations: source 36 rows" in err and "target 36 rows" in err


def test_a_target_that_is_not_an_empty_or_resumed_copy_is_refused(tmp_path, pg_url, capsys):
    source_url, _, _ = _source(tmp_path)
    other = tmp_path / "other"
    other_url, _, _ = _source(other)
    new_project(pg_url, "Already here")  # migrates the target and writes to it
    assert main(["migrate", "--from", source_url, "--to", pg_url]) == 2
    assert "the target is not empty" in capsys.readouterr().err

    target = Database(pg_url)
    with target.transaction() as conn:
        for table in ("api_keys", "projects", "organizations"):
            conn.run(f"DELETE FROM {table}")
    target.close()
    assert main(["migrate", "--from", source_url, "--to", pg_url]) == 0
    capsys.readouterr()
    # A copy of one source is not continued from another.
    assert main(["migrate", "--from", other_url, "--to", pg_url]) == 2
    assert "holds a copy of" in capsys.readouterr().err
    # The same database on both sides, a missing source, a half-given copy, --events.
    same = (Database(pg_url), Database(pg_url))
    try:
        with pytest.raises(CopyError, match="same database"):
            copy_database(*same)
    finally:
        for db in same:
            db.close()
    for args, words in (
        (["--from", str(tmp_path / "nothing"), "--to", pg_url], "no SQLite database at"),
        (["--from", source_url], "--from and --to go together"),
        (["--from", source_url, "--to", pg_url, "--events", "mysql://h/db"], "--events"),
        (["--from", source_url, "--to", f"sqlite:///{tmp_path / 'x.db'}"], "PostgreSQL URL"),
    ):
        assert main(["migrate", *args]) == 2
        assert words in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()
    # Without --from/--to, migrate still applies schema migrations.
    assert main(["migrate", "--database-url", pg_url]) == 0
    assert "applied 0 migration(s)" in capsys.readouterr().out


@pytest.mark.slow
def test_a_copy_killed_mid_way_continues_when_run_again(tmp_path, pg_url):
    """``lanterna migrate --from --to`` as a real process, killed with SIGKILL while it
    copies; the same command then finishes the copy, verified, with no row twice."""
    source_url, data, project = _source(tmp_path)
    with TestClient(create_app(_settings(source_url, data))) as client:
        client.auth = project.auth
        for b in range(4):
            batch = [
                _event(
                    "span-create",
                    {
                        "id": f"o-{b}-{i}",
                        "traceId": f"t-{b}-{i}",
                        "name": "step",
                        "startTime": "2026-03-02T08:00:00.000Z",
                    },
                    b * 1000 + i,
                )
                for i in range(500)
            ]
            assert not _ok(client.post("/api/public/ingestion", json={"batch": batch}))["errors"]
    command = [
        sys.executable,
        "-m",
        "lanterna.cli",
        "migrate",
        "--from",
        str(data),
        "--to",
        pg_url,
        "--batch-size",
        "2",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANTERNA_")}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    seen = ""
    while "observations: 2 / 2,000 rows ..." not in seen:  # its first batch committed
        line = proc.stdout.readline()
        assert line, seen
        seen += line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    target = Database(pg_url)
    try:
        with target.read() as conn:
            unfinished = conn.scalar(f"SELECT COUNT(*) FROM {PROGRESS} WHERE NOT done")
            copied = conn.scalar("SELECT COUNT(*) FROM observations")
    finally:
        target.close()
    assert unfinished > 0 and copied < 2000, seen

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Continued an earlier copy." in again.stdout
    assert "observations: 2,000 / 2,000 rows done" in again.stdout
    assert "counts and checksums equal" in again.stdout


def _rollups_of(conn: Any) -> dict[str, dict[tuple[Any, ...], tuple[float, ...]]]:
    """Every rollup table's non-zero sums by key (floats rounded)."""
    from lanterna.store.rollups import TABLES

    out = {}
    for table, (_, keys, values) in TABLES.items():
        cols = ", ".join(["project_id", *keys])
        sums = ", ".join(f"SUM({v}) AS {v}" for v in values)
        rows = conn.all(f"SELECT {cols}, {sums} FROM {table} GROUP BY {cols}")
        out[table] = {
            tuple(r[k] for k in ("project_id", *keys)): tuple(round(float(r[v]), 9) for v in values)
            for r in rows
            if any(r[v] for v in values)
        }
        assert out[table] or table.startswith("rollup_score"), table
    return out


@pytest.mark.slow
def test_with_events_the_events_go_to_the_clickhouse_event_store(
    tmp_path, tmp_path_factory, pg_url, capsys
):
    pytest.importorskip("chdb", reason="the ClickHouse event store tests need chdb")
    source_url, data, project = _source(tmp_path)
    with TestClient(create_app(_settings(source_url, data))) as client:
        client.auth = project.auth
        _fill(client, project)
        dataset_id = client.get("/api/public/v2/datasets/qa").json()["id"]
        before = _answers(client, dataset_id, READS)
    # chDB opens one engine folder per process: the one the other event-store tests use.
    folder = chdb_folder(tmp_path_factory)
    events_url = f"chdb://{folder}?database=copied_{uuid.uuid4().hex[:8]}"
    command = ["migrate", "--from", source_url, "--to", pg_url, "--events", events_url]
    source, target = source_database(source_url), Database(pg_url)
    from lanterna.store.clickhouse import EventsDb

    events = EventsDb(events_url)
    batches = []

    def stop_in_observations(table: str, rows: int) -> None:
        batches.append(table)
        if batches.count("observations") == 3:
            raise _Stop

    try:
        with pytest.raises(_Stop):
            copy_database(
                source, target, batch_size=2, on_batch=stop_in_observations, events=events
            )
    finally:
        source.close()
        target.close()
        events.close()
    assert main([*command, "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "Continued an earlier copy." in out and "counts and checksums equal" in out

    settings = _settings(pg_url, data)
    settings.events_url = events_url
    with TestClient(create_app(settings)) as client:
        client.auth = project.auth
        after = _answers(client, dataset_id, READS)
    for path in READS:
        path = path.format(dataset_id=dataset_id)
        if path == "/api/public/metrics/daily":
            # summed from raw rows on ClickHouse, from the rollups on SQLite: the same
            # figures up to the order of the float additions
            assert _rounded(after[path]) == _rounded(before[path]), path
            continue
        assert after[path] == before[path], (path, _differences(after[path], before[path]))
    target = Database(pg_url)
    try:
        with target.read() as conn:
            held = [
                conn.scalar(f"SELECT COUNT(*) FROM {t}")
                for t in ("traces", "observations", "scores")
            ]
    finally:
        target.close()
    assert held == [0, 0, 0]  # the metadata database holds no events
    # ClickHouse's rollups, rebuilt from the copied events, hold what the source's
    # write path kept (every table, key and value).
    source, events = source_database(source_url), EventsDb(events_url)
    try:
        with source.read() as conn:
            assert _rollups_of(conn) == _rollups_of(events.conn(json_text=True))
    finally:
        source.close()
        events.close()

    # A batch inserted into ClickHouse again (the copy died after the insert, before its
    # progress committed) is one row per entity in what the API and the check read.
    from lanterna.store.copy import canonical, target_tables
    from lanterna.store.copy_events import sink

    source, target, events = source_database(source_url), Database(pg_url), EventsDb(events_url)
    try:
        with target.read() as conn:
            tables = target_tables(conn)
        table = next(t for t in tables if t.name == "observations")
        with source.read() as conn:
            rows = conn.raw.execute("SELECT * FROM observations LIMIT 10").fetchall()
            names = [
                d[0] for d in conn.raw.execute("SELECT * FROM observations LIMIT 0").description
            ]
            kinds = dict(table.columns)
            again = [
                [canonical(conn.dialect, kinds[n], v) for n, v in zip(names, row, strict=True)]
                for row in rows
            ]
        sink(events, "observation")(names, again)
        checks = verify(source, target, tables, events, batch_size=4)  # pages of 4 rows
        assert all(c.ok for c in checks)
        assert {
            c.table: c.target_rows for c in checks if c.table in ("traces", "observations")
        } == {
            "traces": 12,
            "observations": 36,
        }
    finally:
        source.close()
        target.close()
        events.close()
