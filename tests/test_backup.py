"""``lanterna backup`` of a running ``lanterna serve`` (a real process on ``--port 0``)
under ingest load, and ``lanterna restore``: the copy passes ``PRAGMA integrity_check``
and holds every event acknowledged before the backup started. SQLite only: PostgreSQL
is backed up with pg_dump (docs/operations.md)."""

from __future__ import annotations

import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from lanterna.cli import main
from support import wait_until

pytestmark = pytest.mark.slow

KEY = re.compile(r"^(LANGFUSE_(?:PUBLIC_KEY|SECRET_KEY))=(\S+)$", re.M)


def _lanterna(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("LANTERNA_DATABASE_URL", None)
    env.pop("LANTERNA_DATA_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "lanterna.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


class Serve:
    """``lanterna serve --port 0`` on a data folder; ``url`` from what it printed."""

    def __init__(self, data_dir: Path) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("LANTERNA_DATABASE_URL", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lanterna.cli",
                "serve",
                "--port",
                "0",
                "--log-level",
                "warning",
                "--data-dir",
                str(data_dir),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._pump, args=(lines,), daemon=True)
        self._reader.start()
        self.output = ""
        deadline = time.monotonic() + 60
        while "Listening on" not in self.output and time.monotonic() < deadline:
            try:
                self.output += lines.get(timeout=1)
            except queue.Empty:
                assert self.proc.poll() is None, self.output
        match = re.search(r"Listening on (http://\S+)", self.output)
        assert match, self.output
        self.url = match.group(1).replace("localhost", "127.0.0.1")
        self.keys = dict(KEY.findall(self.output))

    def _pump(self, lines: queue.SimpleQueue[str]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            lines.put(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _batch() -> tuple[list[dict], list[str]]:
    events, ids = [], []
    for _ in range(10):
        tid = str(uuid.uuid4())
        ids.append(tid)
        events.append(
            {
                "id": str(uuid.uuid4()),
                "type": "trace-create",
                "timestamp": "2026-01-01T00:00:00Z",
                "body": {"id": tid, "name": "load"},
            }
        )
        events.append(
            {
                "id": str(uuid.uuid4()),
                "type": "span-create",
                "timestamp": "2026-01-01T00:00:00Z",
                "body": {"id": f"{tid}-s", "traceId": tid, "input": "x" * 500},
            }
        )
    return events, ids


def test_backup_of_a_serving_database_under_load_restores_every_acknowledged_event(tmp_path):
    data = tmp_path / "data"
    server = Serve(data)
    auth = (server.keys["LANGFUSE_PUBLIC_KEY"], server.keys["LANGFUSE_SECRET_KEY"])
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[str] = []

    def sender() -> None:
        with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
            while not stop.is_set():
                events, ids = _batch()
                response = client.post("/api/public/ingestion", json={"batch": events})
                if response.status_code != 207 or response.json()["errors"]:
                    failures.append(response.text[:300])
                    return
                with lock:
                    acked.extend(ids)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: len(acked) >= 300, 60)
        with lock:
            before = list(acked)  # acknowledged before the backup started
        done = _lanterna("backup", str(tmp_path / "copy.db"), "--data-dir", str(data))
        during = len(acked) - len(before)
        wait_until(lambda: len(acked) >= len(before) + during + 100, 60)  # load went on
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        server.stop()
    assert failures == []
    print(f"backup: {len(before)} traces acknowledged before it, {during} while it ran")
    assert done.returncode == 0, done.stderr
    assert "backed up" in done.stdout

    copy = tmp_path / "copy.db"
    assert oct(copy.stat().st_mode & 0o777) == "0o600"
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        traces = {r[0] for r in conn.execute("SELECT id FROM traces")}
        spans = {r[0] for r in conn.execute("SELECT id FROM observations")}
    finally:
        conn.close()
    assert set(before) <= traces
    assert {f"{t}-s" for t in before} <= spans

    # Restored into a new folder, a server answers from it with the same keys.
    restored = tmp_path / "restored"
    res = _lanterna("restore", str(copy), "--data-dir", str(restored))
    assert res.returncode == 0, res.stderr
    again = Serve(restored)
    try:
        assert again.keys == {}  # the project and its keys came with the backup
        with httpx.Client(base_url=again.url, auth=auth, timeout=30) as client:
            for tid in before[:: max(1, len(before) // 20)]:
                answer = client.get(f"/api/public/traces/{tid}")
                assert answer.status_code == 200 and answer.json()["observations"]
    finally:
        again.stop()


def test_restore_refuses_to_overwrite_without_force(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    db = tmp_path / "a" / "lanterna.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    assert main(["backup", str(tmp_path / "b.db"), "--data-dir", str(tmp_path / "a")]) == 0
    with pytest.raises(SystemExit) as refused:
        main(["restore", str(tmp_path / "b.db"), "--data-dir", str(tmp_path / "a")])
    assert "--force" in str(refused.value)
    assert (
        main(["restore", str(tmp_path / "b.db"), "--data-dir", str(tmp_path / "a"), "--force"]) == 0
    )
    with pytest.raises(SystemExit) as missing:
        main(["restore", str(tmp_path / "nope.db"), "--data-dir", str(tmp_path / "a")])
    assert "no backup" in str(missing.value)


def test_backup_of_postgresql_points_to_pg_dump():
    with pytest.raises(SystemExit) as told:
        main(["backup", "x.db", "--database-url", "postgresql://u@127.0.0.1:1/none"])
    assert "pg_dump" in str(told.value)
