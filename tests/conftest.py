"""Shared fixtures: a real database per test (SQLite file or PostgreSQL database), the
real app in-process (Starlette TestClient) or on a real port (uvicorn in a thread).

``--db sqlite|postgres|clickhouse|all`` picks the backends (default: all). PostgreSQL
needs ``LANTERNA_TEST_POSTGRES_URL`` (``scripts/test`` starts a server and sets it).
``clickhouse`` is SQLite for metadata plus the ClickHouse event store in-process (chDB,
one engine folder per test process, a database per test); it runs only the tests of
modules marked ``pytest.mark.clickhouse`` (the event store's tests), so ``all`` adds
those and leaves every other test on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import log_audit
import support
import thread_audit
from lanterna.server.app import create_app
from lanterna.store.db import Database
from lanterna.store.migrations import migrate
from support import Api, LiveServer, make_settings, new_project, serve

PG_ENV = "LANTERNA_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def lanterna_logger_restored() -> Iterator[None]:
    """A CLI command run in-process (``lanterna serve``'s log set-up) adds a handler on the
    test's captured stderr to the ``lanterna`` logger and sets its level; both are undone
    after the test, so later tests neither write to a closed stream nor lose records."""
    import logging

    logger = logging.getLogger("lanterna")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes() -> Iterator[None]:
    """Argon2id at its cheapest parameters in the test process (servers that tests start
    as subprocesses keep the real ones). The login tests hash and verify hundreds of
    passwords, each 0.05-0.2 s of CPU at the production cost; what they check (throttling,
    roles, sessions) does not depend on the cost, and the hashes are real argon2id."""
    from argon2 import PasswordHasher

    from lanterna.accounts import passwords

    real = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    passwords._hasher = real


def pytest_configure(config: pytest.Config) -> None:
    """Start the log audit; the controller gives the run's workers one report folder."""
    if not hasattr(config, "workerinput"):
        import tempfile

        os.environ["LANTERNA_LOG_AUDIT_DIR"] = tempfile.mkdtemp(prefix="lanterna-log-audit-")
    log_audit.install()
    thread_audit.install()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default="all",
        choices=("sqlite", "postgres", "clickhouse", "all"),
        help="database backends to test against (default: all)",
    )


def _backends(config: pytest.Config) -> list[str]:
    choice = config.getoption("--db")
    return ["sqlite", "postgres", "clickhouse"] if choice == "all" else [choice]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = _backends(metafunc.config)
        if metafunc.definition.get_closest_marker("postgres_only"):
            backends = [b for b in backends if b == "postgres"]
        if metafunc.definition.get_closest_marker("clickhouse_only"):
            backends = [b for b in backends if b == "clickhouse"]
        elif not metafunc.definition.get_closest_marker("clickhouse"):
            backends = [b for b in backends if b != "clickhouse"]
        metafunc.parametrize("backend", backends)


def _pg_admin_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.fail(
            f"{PG_ENV} is not set: run the suite with scripts/test (it starts PostgreSQL),"
            " or pass --db sqlite"
        )
    return url


def _with_db(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


_template_lock = threading.Lock()
_template_ready = False


def _template_name() -> str:
    # One per process: each xdist worker builds its own, so none waits for (or races
    # with) another worker's migration.
    return f"lanterna_tpl_{os.getpid()}"


def _pg_template(admin_url: str) -> str:
    """A migrated template database, made once per session; tests clone it."""
    global _template_ready
    import psycopg

    name = _template_name()
    with _template_lock:
        if not _template_ready:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                conn.execute(f'CREATE DATABASE "{name}"')
            db = Database(_with_db(admin_url, name))
            migrate(db)
            db.close()
            _template_ready = True
    return name


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop this process's template database (the shared server keeps no leftovers);
    scan this process's log records for secrets and list the background loops its tests
    left running; in the controller fail the run when any process found either."""
    if _template_ready:
        import psycopg

        with psycopg.connect(_pg_admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{_template_name()}" WITH (FORCE)')
    worker = os.environ.get("PYTEST_XDIST_WORKER", "controller")
    log_audit.write_report(
        worker,
        log_audit.findings(support.SECRETS),
        len(log_audit.capture.lines),
        thread_audit.still_running(),
    )
    if not hasattr(session.config, "workerinput"):
        found, records, leaks = log_audit.read_reports()
        session.config.stash[_AUDIT] = (found, records, leaks)
        if found or leaks:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


_AUDIT = pytest.StashKey[tuple[list[str], int, list[str]]]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say what the log audit scanned and, if it failed, the records with secrets; name
    the tests that left a background loop running."""
    audit = terminalreporter.config.stash.get(_AUDIT, None)
    if audit is None:
        return
    found, records, leaks = audit
    if leaks:
        terminalreporter.section("background loops left running", red=True)
        for line in leaks:
            terminalreporter.write_line(line)
    if found:
        terminalreporter.section("secrets in the log", red=True)
        for line in found[:20]:
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"log audit FAILED: {len(found)} of {records} records")
    else:
        terminalreporter.write_line(f"log audit: no secret in {records:,} log records")


_sqlite_templates: list[Path] = []


def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, made once per process; each test gets a copy."""
    if not _sqlite_templates:
        path = tmp_path_factory.mktemp("sqlite-template") / "lanterna.db"
        db = Database(f"sqlite:///{path}")
        try:
            migrate(db)
        finally:
            db.close()
        _sqlite_templates.append(path)
    return _sqlite_templates[0]


@pytest.fixture
def db_url(backend: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, empty (migrated on PostgreSQL) database for one test (``clickhouse``:
    the SQLite metadata database beside the event store, see :func:`events_url`)."""
    if backend in ("sqlite", "clickhouse"):
        if backend == "clickhouse":
            _need_chdb()
        # A copy of this process's migrated file (0.5 ms) instead of migrating every
        # test's database again (~50 ms of CPU each).
        shutil.copyfile(_sqlite_template(tmp_path_factory), tmp_path / "lanterna.db")
        yield f"sqlite:///{tmp_path / 'lanterna.db'}"
        return
    import psycopg

    admin = _pg_admin_url()
    template = _pg_template(admin)
    name = f"lanterna_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield _with_db(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _need_chdb() -> None:
    """Skip a ``clickhouse`` test where chDB is not installed (it is in the dev extra,
    so CI runs them all)."""
    pytest.importorskip("chdb", reason="the ClickHouse tests need chdb (pip install -e .[dev])")


@pytest.fixture
def events_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``clickhouse``: this process's chDB engine and database (chDB runs in the process;
    migrated by the first test, tests keep apart by their projects' random ids, as on a
    shared server); other backends: empty (events in the database)."""
    if backend != "clickhouse":
        return ""
    _need_chdb()
    return f"chdb://{support.chdb_folder(tmp_path_factory)}?database=lanterna"


@pytest.fixture
def api(db_url: str, events_url: str, tmp_path: Path) -> Iterator[Api]:
    """The app on a fresh database, with one project whose key is the default auth."""
    settings = make_settings(db_url, tmp_path)
    settings.events_url = events_url
    app = create_app(settings)
    project = new_project(db_url)
    with Api(app, raise_server_exceptions=True) as client:
        client.project = project
        client.auth = project.auth
        yield client


@pytest.fixture
def live_server(db_url: str, events_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The app served by uvicorn on 127.0.0.1 in a background thread (``clickhouse``:
    with the event store in chDB)."""
    with serve(db_url, tmp_path, events_url=events_url) as server:
        yield server
