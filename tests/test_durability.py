"""``lanterna serve`` as a real process: first-start output, and no acknowledged event lost
to ``kill -9``.

The promise under test (ARCHITECTURE.md, "What the server promises"): a 2xx means the
data is committed, so a crash right after it loses nothing. Several threads send batches;
the moment one of them has its N-th 207, the server gets SIGKILL while the others are
mid-request. After a restart every event of every acknowledged batch must be readable.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import free_port, wait_until

pytestmark = pytest.mark.slow

KEY_LINE = re.compile(r"^(LANGFUSE_(?:PUBLIC_KEY|SECRET_KEY|HOST))=(\S+)$", re.M)


def _db_args(db_url: str) -> list[str]:
    if db_url.startswith("sqlite:///"):
        return ["--data-dir", str(Path(db_url.removeprefix("sqlite:///")).parent)]
    return ["--database-url", db_url]


class Server:
    """One ``lanterna serve`` process on a free port; ``output`` is what it printed."""

    def __init__(self, db_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("LANTERNA_DATABASE_URL", None)
        env.pop("LANTERNA_DATA_DIR", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lanterna.cli",
                "serve",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                *_db_args(db_url),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()
        self.output = ""
        self._wait_ready()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while "Listening on" not in self.output:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                self.kill()
                pytest.fail(f"lanterna serve did not start:\n{self.output}")
            self.output += line

        def answered_or_exited() -> bool:
            if self.proc.poll() is not None:
                return True
            try:
                return httpx.get(f"{self.url}/api/public/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        with contextlib.suppress(pytest.fail.Exception):  # reported below, with the output
            wait_until(answered_or_exited, max(deadline - time.monotonic(), 1.0))
            if self.proc.poll() is None:
                return
        self.kill()
        pytest.fail(f"lanterna serve never answered /api/public/health:\n{self.output}")

    def keys(self) -> dict[str, str]:
        """The ``LANGFUSE_*=`` lines printed so far."""
        return dict(KEY_LINE.findall(self.output))

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._close()

    def stop(self) -> int:
        """SIGTERM: a graceful shutdown. Uvicorn re-raises the signal once it has shut
        down, so a clean stop exits with -SIGTERM (0 on older versions)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self._close()
        return code

    def _close(self) -> None:
        self._pump_thread.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        while (line := self._lines.get_nowait() if not self._lines.empty() else None) is not None:
            self.output += line


def test_first_start_prints_the_env_lines_and_they_work(db_url: str):
    server = Server(db_url)
    try:
        keys = server.keys()
        assert set(keys) == {"LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_HOST"}
        assert keys["LANGFUSE_PUBLIC_KEY"].startswith("pk-lf-")
        assert keys["LANGFUSE_SECRET_KEY"].startswith("sk-lf-")
        assert keys["LANGFUSE_HOST"] == f"http://localhost:{server.port}"
        auth = (keys["LANGFUSE_PUBLIC_KEY"], keys["LANGFUSE_SECRET_KEY"])
        # the printed host works as printed (localhost), with the printed keys
        response = httpx.get(f"{keys['LANGFUSE_HOST']}/api/public/projects", auth=auth)
        assert response.status_code == 200
        assert len(response.json()["data"]) == 1
    finally:
        assert server.stop() in (0, -signal.SIGTERM), server.output

    again = Server(db_url)
    try:
        assert again.keys() == {}
        assert keys["LANGFUSE_SECRET_KEY"] not in again.output
        assert "Existing project" in again.output
        response = httpx.get(f"{again.url}/api/public/projects", auth=auth)
        assert response.status_code == 200
    finally:
        assert again.stop() in (0, -signal.SIGTERM), again.output


@dataclass
class Acked:
    """What the server acknowledged: trace id -> {observation id: expected output}."""

    traces: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    responses: int = 0


def _batch(traces: int) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """``traces`` traces of a span, a child span (created then updated) and a generation."""
    stamp = "2024-05-01T10:00:00.000000Z"
    events: list[dict[str, Any]] = []
    expected: dict[str, dict[str, Any]] = {}

    def add(type_: str, body: dict[str, Any]) -> None:
        events.append({"id": uuid.uuid4().hex, "type": type_, "timestamp": stamp, "body": body})

    for _ in range(traces):
        tid, root, child, gen = (str(uuid.uuid4()) for _ in range(4))
        text = "x" * random.randint(100, 600)
        add("trace-create", {"id": tid, "name": "durable", "input": {"q": text}})
        add("span-create", {"id": root, "traceId": tid, "name": "root", "input": text})
        add("span-create", {"id": child, "traceId": tid, "parentObservationId": root})
        add(
            "generation-create",
            {
                "id": gen,
                "traceId": tid,
                "parentObservationId": child,
                "model": "gpt-4o",
                "usage": {"input": 7, "output": 3},
                "output": {"text": text},
            },
        )
        add("span-update", {"id": child, "traceId": tid, "output": {"done": tid}})
        expected[tid] = {root: None, child: {"done": tid}, gen: {"text": text}}
    return events, expected


def _load(server: Server, auth: tuple[str, str], acked: Acked, kill_after: int) -> None:
    """Several threads send batches until the server dies; it is killed after the
    ``kill_after``-th acknowledged batch of this round."""
    start = acked.responses
    failures: list[str] = []

    def send(client: httpx.Client) -> bool:
        events, expected = _batch(random.randint(5, 20))
        try:
            response = client.post("/api/public/ingestion", json={"batch": events})
        except httpx.TransportError:
            return False  # the server is gone
        if response.status_code != 207 or response.json()["errors"]:
            failures.append(f"{response.status_code} {response.text[:500]}")
            return False
        with acked.lock:
            acked.traces.update(expected)
            acked.responses += 1
            if acked.responses - start == kill_after:
                os.kill(server.proc.pid, signal.SIGKILL)
        return True

    def sender() -> None:
        with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and send(client):
                pass

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
        assert not thread.is_alive()
    assert failures == []
    assert acked.responses - start >= kill_after, "the server was not killed under load"
    server.kill()
    assert server.proc.returncode == -signal.SIGKILL


def _all_pages(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a list route, 100 a page (nothing is written while it reads)."""
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        response = client.get(path, params={"limit": 100, "page": page, **params})
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["data"]
        if page >= body["meta"]["totalPages"]:
            return rows
        page += 1


def assert_all_stored(server: Server, auth: tuple[str, str], acked: Acked) -> None:
    """Every acknowledged trace reads back with its observations and their outputs
    (read through the lists a page of 100 at a time: a request per trace took most of
    the test's time on a busy machine)."""
    with httpx.Client(base_url=server.url, auth=auth, timeout=60) as client:
        traces = {t["id"] for t in _all_pages(client, "/api/public/traces", fields="core")}
        observations = _all_pages(client, "/api/public/observations")
        # One trace read whole, as a user opens it.
        trace_id, expected = next(iter(acked.traces.items()))
        one = client.get(f"/api/public/traces/{trace_id}").json()
    assert {o["id"] for o in one["observations"]} == set(expected)
    assert set(acked.traces) <= traces
    by_trace: dict[str, dict[str, Any]] = {}
    for o in observations:
        by_trace.setdefault(o["traceId"], {})[o["id"]] = o
    for trace_id, expected in acked.traces.items():
        got = by_trace.get(trace_id, {})
        assert set(got) == set(expected), trace_id
        for obs_id, output in expected.items():
            if output is not None:
                assert got[obs_id]["output"] == output


#: How many times the server is killed under load (each at a random moment). Each
#: round restarts the server, about 2 s of CPU; the suite runs the test on both backends.
KILLS = 12


def test_kill_9_loses_no_acknowledged_event(db_url: str):
    server = Server(db_url)
    keys = server.keys()
    auth = (keys["LANGFUSE_PUBLIC_KEY"], keys["LANGFUSE_SECRET_KEY"])
    acked = Acked()
    try:
        for _ in range(KILLS):
            _load(server, auth, acked, random.randint(2, 12))
            server = Server(db_url)
            assert "LANGFUSE_SECRET_KEY" not in server.output
            assert server.keys() == {}
        assert acked.responses >= 2 * KILLS

        assert_all_stored(server, auth, acked)
    finally:
        assert server.stop() in (0, -signal.SIGTERM), server.output


# --- faults: a full disk, PostgreSQL restarting -----------------------------------------


def _one_trace(size: int = 0) -> tuple[str, dict[str, Any]]:
    tid = uuid.uuid4().hex
    body = {"id": tid, "name": "fault", "input": os.urandom(size // 2).hex() if size else "x"}
    event = {"id": uuid.uuid4().hex, "type": "trace-create", "timestamp": "2026-01-01T00:00:00Z"}
    return tid, {"batch": [{**event, "body": body}]}


def _stored_all(server: Server, auth: tuple[str, str], trace_ids: list[str]) -> list[str]:
    """The acknowledged traces the server cannot show (must be none)."""
    with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
        return [t for t in trace_ids if client.get(f"/api/public/traces/{t}").status_code != 200]


def test_a_full_disk_is_a_503_and_writes_resume_when_space_returns(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)], check=True)
    try:
        server = Server(f"sqlite:///{disk / 'data' / 'lanterna.db'}")
        _fill_then_grow(server, disk, "64m")
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill_then_grow(server: Server, disk: Path, size: str) -> None:
    """Write 40 kB traces until the small disk at ``disk`` is full: that write is a 503
    saying so, reads go on; once the disk is remounted with ``size`` the next write is
    stored without restarting the server, and every acknowledged trace can be read."""
    keys = server.keys()
    auth = (keys["LANGFUSE_PUBLIC_KEY"], keys["LANGFUSE_SECRET_KEY"])
    acked: list[str] = []
    refused = None
    with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
        for _ in range(2000):  # 40 kB a trace: the small disk fills long before
            tid, batch = _one_trace(40_000)
            response = client.post("/api/public/ingestion", json=batch)
            if response.status_code == 207:
                assert response.json()["errors"] == []
                acked.append(tid)
                continue
            refused = response
            break
        assert refused is not None, "the disk never filled"
        assert refused.status_code == 503, refused.text
        assert "disk is full" in refused.json()["message"]
        assert client.get("/api/public/traces?limit=1").status_code == 200  # reads go on
        subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)
        tid, batch = _one_trace()
        after = client.post("/api/public/ingestion", json=batch)  # no restart needed
        assert after.status_code == 207 and after.json()["errors"] == [], after.text
        acked.append(tid)
    assert len(acked) > 10
    assert _stored_all(server, auth, acked) == []
    assert server.stop() in (0, -signal.SIGTERM), server.output
    assert "Traceback" not in server.output


def _pg_ctl(data: Path, *args: str, check: bool = True) -> None:
    binary = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1]
    command = [str(binary), "-D", str(data), "-w", *args]
    if os.geteuid() == 0:  # postgres refuses to run as root
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=check, capture_output=True)


def test_a_postgresql_restart_mid_load_is_503s_then_recovery():
    """A PostgreSQL server of the test's own (the shared one cannot restart) goes down
    for a few seconds while clients write; requests in that time get 503 (never a 500),
    writes resume by themselves, and nothing acknowledged is lost."""
    import shutil
    import tempfile

    import psycopg

    # Under /tmp itself: the postgres user must reach it (pytest's tmp_path is root's).
    home = Path(tempfile.mkdtemp(prefix="lanterna-pg-fault-"))
    port = free_port()
    script = Path(__file__).resolve().parents[1] / "scripts" / "pg-start"
    admin = subprocess.run(
        [str(script), str(home), str(port)], check=True, capture_output=True, text=True
    ).stdout.strip()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE faults")
    server = Server(admin.rsplit("/", 1)[0] + "/faults")
    try:
        keys = server.keys()
        auth = (keys["LANGFUSE_PUBLIC_KEY"], keys["LANGFUSE_SECRET_KEY"])
        acked: list[str] = []
        statuses: dict[int, int] = {}
        stop = threading.Event()

        def sender() -> None:
            with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
                while not stop.is_set():
                    tid, batch = _one_trace()
                    response = client.post("/api/public/ingestion", json=batch)
                    with acked_lock:
                        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                        if response.status_code == 207 and not response.json()["errors"]:
                            acked.append(tid)
                        elif response.status_code == 503:
                            assert "database is unavailable" in response.text

        acked_lock = threading.Lock()
        threads = [threading.Thread(target=sender) for _ in range(3)]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(acked) >= 20, 60, "writes before the restart")
        _pg_ctl(home / "data", "stop", "-m", "fast")
        wait_until(lambda: statuses.get(503, 0) >= 3, 60, "503s while PostgreSQL is down")
        options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1"
        _pg_ctl(home / "data", "-l", str(home / "server.log"), "-o", options, "start")
        before = len(acked)
        wait_until(lambda: len(acked) >= before + 20, 60, "writes after the restart")
        stop.set()
        for thread in threads:
            thread.join(60)
        assert set(statuses) == {207, 503}, statuses
        assert _stored_all(server, auth, acked) == []
        assert server.stop() in (0, -signal.SIGTERM), server.output
    finally:
        server.kill()
        _pg_ctl(home / "data", "stop", "-m", "immediate", check=False)
        shutil.rmtree(home, ignore_errors=True)


def test_a_full_postgresql_disk_is_a_503_and_writes_resume_when_space_returns():
    """PostgreSQL's data on a small tmpfs of its own (a tablespace: the database's tables
    and indexes; the WAL stays on the cluster's disk, as when a data volume fills up):
    writes get 503 saying the disk is full, nothing acknowledged is lost, and writes
    resume once the disk grows, without restarting our server."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    import shutil
    import tempfile

    import psycopg

    # Under /tmp itself: the postgres user must reach it (pytest's tmp_path is root's).
    home = Path(tempfile.mkdtemp(prefix="lanterna-pg-full-"))
    disk = home / "disk"
    disk.mkdir()
    port = free_port()
    script = Path(__file__).resolve().parents[1] / "scripts" / "pg-start"
    admin = subprocess.run(
        [str(script), str(home), str(port)], check=True, capture_output=True, text=True
    ).stdout.strip()
    server = None
    try:
        # template0 is about 7.5 MB; the rest is what the migrations and traces take.
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(disk)], check=True)
        shutil.chown(disk, "postgres", "postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE TABLESPACE small LOCATION '{disk}'")
            conn.execute("CREATE DATABASE faults TEMPLATE template0 TABLESPACE small")
        server = Server(admin.rsplit("/", 1)[0] + "/faults")
        _fill_then_grow(server, disk, "128m")
    finally:
        if server is not None:
            server.kill()
        _pg_ctl(home / "data", "stop", "-m", "immediate", check=False)
        subprocess.run(["umount", "-l", str(disk)], check=False)
        shutil.rmtree(home, ignore_errors=True)
