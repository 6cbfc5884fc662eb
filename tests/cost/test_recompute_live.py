"""``lanterna costs recompute`` beside a running server: its transactions take turns with
the server's writer (the database's write lock), so ingestion keeps answering 207 while
it runs, and the rollups still equal the raw rows afterwards."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import T0, event, iso, price_model
from lanterna.cli import main as cli_main
from lanterna.store.db import Database
from lanterna.store.recompute import Result, recompute
from support import LiveServer
from test_rollups import _raw, _rolled

MODEL = "acme-house-model"
PER_GENERATION = 1000 * 1e-6 + 100 * 2e-6  # the custom price created below


def _trace(tid: str, minutes: float) -> list[dict[str, Any]]:
    at = minutes * 60
    return [
        event("trace-create", {"id": tid, "timestamp": iso(seconds=at)}),
        event(
            "generation-create",
            {
                "id": f"{tid}-g",
                "traceId": tid,
                "model": MODEL,
                "startTime": iso(seconds=at),
                "endTime": iso(seconds=at + 1),
                "usageDetails": {"input": 1000, "output": 100},
            },
        ),
    ]


class Ingester:
    """Posts one new trace after another to the live server until stopped."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.sent = 0
        self.failures: list[str] = []
        self.landed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Ingester:
        self._thread.start()
        assert self.landed.wait(30), self.failures
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = _trace(f"live-{self.sent}", 600 + self.sent)
            response = self.client.post("/api/public/ingestion", json={"batch": batch})
            self.sent += 1
            if response.status_code != 207 or response.json()["errors"]:
                self.failures.append(response.text)
            self.landed.set()


def _seed(client: httpx.Client, count: int) -> None:
    """``count`` generations of a model without a price, then a price for it."""
    batch = [e for i in range(count) for e in _trace(f"old-{i}", i)]
    response = client.post("/api/public/ingestion", json={"batch": batch})
    assert response.status_code == 207 and not response.json()["errors"], response.text
    price_model(client, MODEL, 1e-6, 2e-6)


def _assert_consistent(db_url: str, project_id: str, traces: int) -> None:
    """Every generation priced, and the rollups equal the raw rows."""
    db = Database(db_url)
    try:
        with db.read() as conn:
            raw, rolled = _raw(conn, project_id), _rolled(conn, project_id)
    finally:
        db.close()
    for table in ("traces", "models", "totals"):
        assert set(rolled[table]) == set(raw[table]), table
        for key, values in raw[table].items():
            assert rolled[table][key] == pytest.approx(values, rel=1e-9, abs=1e-3), key
    cost = sum(v[1] for v in raw["models"].values())
    assert cost == pytest.approx(traces * PER_GENERATION)


def _client(live_server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=live_server.url, auth=live_server.project.auth, timeout=30)


def test_recompute_takes_turns_with_a_running_servers_writer(live_server: LiveServer) -> None:
    """Between every two recompute transactions the server commits an ingestion: the
    two writers interleave whole transactions, and nothing is counted twice."""
    with _client(live_server) as client:
        _seed(client, 12)
        db = Database(live_server.db_url)
        try:
            with Ingester(client) as ingester:

                def after_batch(result: Result) -> None:
                    # Let the server commit at least one more ingestion before the next
                    # batch: proof that the two writers take turns.
                    ingester.landed.clear()
                    assert ingester.landed.wait(30), ingester.failures

                result = recompute(
                    db, since=T0 - timedelta(days=1), batch_size=3, progress=after_batch
                )
        finally:
            db.close()
    assert ingester.failures == []
    assert result.failed == 0
    assert result.changed == 12  # the old ones; live ones were priced on ingestion
    _assert_consistent(live_server.db_url, live_server.project.id, 12 + ingester.sent)


def test_cli_recompute_beside_a_running_server(
    live_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_url = live_server.db_url
    where = (
        ["--data-dir", str(Path(db_url.removeprefix("sqlite:///")).parent)]
        if db_url.startswith("sqlite")
        else ["--database-url", db_url]
    )
    with _client(live_server) as client:
        _seed(client, 20)
        with Ingester(client) as ingester:
            code = cli_main(
                ["costs", "recompute", "--since", "2024-01-01", "--batch-size", "2", *where]
            )
    assert code == 0
    assert ingester.failures == []
    assert "20 changed" in capsys.readouterr().out
    _assert_consistent(db_url, live_server.project.id, 20 + ingester.sent)


@pytest.mark.postgres_only
def test_an_exclusive_transaction_holds_off_the_servers_writes_until_it_commits(
    live_server: LiveServer,
) -> None:
    """PostgreSQL has no database-wide write lock of its own: the server's write
    transactions share an advisory lock that recompute's take exclusively. (SQLite's
    write lock is its own ``BEGIN IMMEDIATE``.)"""
    db = Database(live_server.db_url)
    done: list[httpx.Response] = []
    try:
        with _client(live_server) as client:
            with db.transaction(exclusive=True) as conn:
                sender = threading.Thread(
                    target=lambda: done.append(
                        client.post("/api/public/ingestion", json={"batch": _trace("held", 0)})
                    )
                )
                sender.start()
                # Until the server's writer is seen waiting for the lock (a state).
                waiting = 0
                for _ in range(100_000):
                    with db.read() as probe:
                        waiting = probe.scalar(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                            " AND NOT granted AND objid = 7240312 AND database ="
                            " (SELECT oid FROM pg_database WHERE datname = current_database())"
                        )
                    if waiting or done:
                        break
                assert waiting == 1 and not done
                assert conn.scalar("SELECT count(*) FROM traces WHERE id = 'held'") == 0
            sender.join(30)
    finally:
        db.close()
    assert done[0].status_code == 207 and not done[0].json()["errors"], done[0].text
