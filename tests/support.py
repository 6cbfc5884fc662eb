"""Test support shared by the suite (imported as ``support``; conftest stays fixtures only).

A module name of its own: several ``conftest.py`` files exist, so importing helpers from
``conftest`` would pick whichever was loaded first.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from starlette.testclient import TestClient

from lanterna.server.settings import Settings
from lanterna.store import projects
from lanterna.store.db import Conn, Database
from lanterna.store.migrations import migrate

T = TypeVar("T")


def make_settings(db_url: str, data_dir: Path) -> Settings:
    """Settings for a test server on ``db_url``."""
    url = "" if db_url.startswith("sqlite") else db_url
    if db_url.startswith("sqlite"):
        data_dir = Path(db_url.removeprefix("sqlite:///")).parent
    return Settings(data_dir=str(data_dir), database_url=url)


@dataclass
class Project:
    """A project with a key pair."""

    id: str
    public_key: str
    secret_key: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.public_key, self.secret_key)


def _in_transaction(app_or_url: object, work: Callable[[Conn], T]) -> T:
    """Run ``work(conn)`` in one committed transaction on the app's (migrated) database."""
    url = app_or_url if isinstance(app_or_url, str) else app_or_url.state.runtime.db.url  # type: ignore[attr-defined]
    db = Database(url)
    try:
        migrate(db)
        with db.transaction() as conn:
            return work(conn)
    finally:
        db.close()


#: Secrets the tests made (keys, passwords): the log audit (``log_audit.py``) fails the
#: run if any of them reaches a log record.
SECRETS: set[str] = set()


def new_project(app_or_url: object, name: str = "Test Project") -> Project:
    """Create an organisation, a project and a key directly in the database."""

    def create(conn: Conn) -> Project:
        org = projects.create_organization(conn, f"Org of {name}")
        project_id = projects.create_project(conn, org, name)
        key = projects.create_key(conn, project_id)
        SECRETS.add(key.secret_key)
        return Project(project_id, key.public_key, key.secret_key)

    return _in_transaction(app_or_url, create)


def seed_score_config(
    app_or_url: object, project_id: str, config_id: str, name: str, data_type: str = "NUMERIC"
) -> None:
    """Store a score config with a chosen id (the API makes random ones), so seeded
    scores may name it by a readable ``configId``."""
    from lanterna.ingest.score_configs import check_config
    from lanterna.store import score_configs

    fields = check_config({"name": name, "dataType": data_type})
    _in_transaction(
        app_or_url, lambda conn: score_configs.create(conn, project_id, fields, config_id)
    )


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (for a server started later, or a
    server that is deliberately absent; a server of this process binds its own socket:
    see :func:`serve`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    condition: Callable[[], object], timeout: float = 10.0, what: str = "the condition"
) -> None:
    """Return as soon as ``condition()`` is true; fail the test if it is not within
    ``timeout`` seconds (a bound for a broken build, never a duration a test relies on).

    For what another thread or process does: tests never sleep for time to pass.
    """
    deadline = time.monotonic() + timeout
    idle = threading.Event()  # never set: a short pause between checks
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        idle.wait(0.01)


@dataclass
class LiveServer:
    """A server on a real port: ``url`` plus a project to talk to it with."""

    url: str
    project: Project
    db_url: str


@contextmanager
def serve(db_url: str, data_dir: Path, **overrides: Any) -> Iterator[LiveServer]:
    """The app on ``db_url`` served by uvicorn on 127.0.0.1 in a background thread,
    with a fresh project to talk to it with; ``overrides`` are settings."""
    import uvicorn

    from lanterna.server.app import create_app

    # Bound here and handed to uvicorn: no other test (or xdist worker) can take the
    # port between choosing and binding it.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    settings = dataclasses.replace(make_settings(db_url, data_dir), port=port, **overrides)
    app = create_app(settings)
    project = new_project(db_url)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            proxy_headers=False,  # as `lanterna serve` runs it: the app decides (guards.py)
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 20, "the test server's start")
    if not server.started:
        sock.close()
        raise RuntimeError("test server did not start")
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", project, db_url)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ROOT / "tests" / "clients"


def run_sdk_script(
    sdk: str,
    script: str,
    server: Any,
    *args: str,
    secret: str | None = None,
    quiet_about: str | None = None,
) -> dict[str, Any]:
    """Run ``tests/clients/<script>`` with an official SDK (the venv ``.venvs/<sdk>``,
    e.g. ``langfuse2``) against the live ``server``; return the JSON of its last line.
    ``quiet_about``: text the SDK must not have logged (e.g. an export failure)."""
    python = ROOT / ".venvs" / sdk / "bin" / "python"
    if not python.exists():
        pytest.fail(
            f"{python} is missing: run scripts/test, which creates .venvs/{sdk} from"
            f" tests/clients/{sdk}.txt (by hand: python3 -m venv .venvs/{sdk} &&"
            f" .venvs/{sdk}/bin/pip install -r tests/clients/{sdk}.txt)"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "OTEL_"))}
    env.update(
        LANGFUSE_PUBLIC_KEY=server.project.public_key,
        LANGFUSE_SECRET_KEY=secret or server.project.secret_key,
        LANGFUSE_HOST=server.url,  # 2.x
        LANGFUSE_BASE_URL=server.url,  # 5.x
        PYTHONDONTWRITEBYTECODE="1",
    )
    proc = _run_client(str(python), script, args, env)
    if quiet_about is not None:
        assert quiet_about not in proc.stderr, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _run_client(
    program: str, script: str, args: tuple[str, ...], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run ``program tests/clients/<script> args`` there; fail the test if it fails."""
    proc = subprocess.run(
        [program, str(CLIENTS / script), *args],
        env=env,
        cwd=CLIENTS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def run_node_script(modules: str, script: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run ``tests/clients/<script>`` with node and the JS packages of ``.venvs/<modules>``
    (``NODE_PATH``), ``env`` added to this process's environment (less any ``LANGFUSE_``
    or ``OTEL_`` variable); return the JSON of its last line."""
    node = shutil.which("node")
    path = ROOT / ".venvs" / modules / "node_modules"
    if node is None or not path.is_dir():
        pytest.fail(
            f"node or {path} is missing: run scripts/test, which installs each"
            " tests/clients/<dir>/package.json with `npm ci` into .venvs/"
        )
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "OTEL_"))}
    child_env.update(NODE_PATH=str(path), **env)
    proc = _run_client(node, script, args, child_env)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


class Api(TestClient):
    """The real app in-process, authenticated as ``project`` by default."""

    project: Project

    def new_project(self, name: str = "Other Project") -> Project:
        return new_project(self.app, name)


def db_args(db_url: str) -> list[str]:
    """The ``lanterna`` command's options naming the test database."""
    if db_url.startswith("sqlite:///"):
        return ["--data-dir", str(Path(db_url.removeprefix("sqlite:///")).parent)]
    return ["--database-url", db_url]


@contextmanager
def serve_process(
    db_url: str, *extra: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """Run ``lanterna serve --port 0`` as a subprocess (no ``LANTERNA_*`` variable of
    ours but ``env``); yield (base URL, what it printed before listening)."""
    import httpx

    clean = {k: v for k, v in os.environ.items() if not k.startswith("LANTERNA_")}
    proc = subprocess.Popen(  # port 0: the server binds a free port and prints it
        [sys.executable, "-m", "lanterna", "serve", "--port", "0", *db_args(db_url), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**clean, **(env or {})},
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Listening on"):
                break
        printed = "".join(lines)
        listening = re.search(r"^Listening on http://[^:]+:(\d+)$", printed, re.M)
        assert listening, printed
        base = f"http://127.0.0.1:{listening.group(1)}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/api/public/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, max(deadline - time.monotonic(), 1.0), "an answer to /health")
        yield base, printed
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stdout:
            proc.stdout.close()


_chdb_folder: list[Path] = []


def chdb_folder(tmp_path_factory: Any) -> Path:
    """This process's chDB engine folder: chDB opens one per process, so every test of
    the process uses it (each with a database of its own)."""
    if not _chdb_folder:
        _chdb_folder.append(tmp_path_factory.mktemp("chdb"))
    return _chdb_folder[0]


def store_of(events_url: str) -> Any:
    """The store a server with ``events_url`` uses (``server.runtime.store_for``): the
    SQL one, or with the event store on ClickHouse."""
    from lanterna.server.runtime import store_for

    settings = types.SimpleNamespace(events_url=events_url)
    return store_for(settings)  # type: ignore[arg-type]


def events_conn(events_url: str) -> Any:
    """``conn -> Conn`` on which the event tables are read, as the server's store gives
    (``Store.events_conn``): on ClickHouse (``events_url`` set) its event store, else
    ``conn`` itself."""
    return store_of(events_url).events_conn


def all_routes(routes: list[Any]) -> Iterator[Any]:
    """Every route of an app's ``routes``, also inside included routers."""
    for item in routes:
        inner = getattr(item, "original_router", None)
        if inner is not None:
            yield from all_routes(inner.routes)
        else:
            yield item
