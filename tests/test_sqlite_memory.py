"""SQLite's memory in the server process is capped (``sqlite_memory_mib``): every read
connection caches up to 64 MiB of pages on its own, so without a cap the server grows
with the database towards 64 MiB per connection; with one, the page caches of all its
connections together stay near the cap. Measured with SQLite's own counter
(``sqlite3_memory_used``) on a real database file."""

from __future__ import annotations

import _sqlite3
import ctypes
import ctypes.util
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from lanterna.server.runtime import Runtime
from lanterna.server.settings import Settings
from lanterna.store.db import Database

MIB = 2**20


def _memory_used() -> int:
    """``sqlite3_memory_used()`` of the SQLite library this process uses."""
    for name in (_sqlite3.__file__, ctypes.util.find_library("sqlite3")):
        try:
            counter = ctypes.CDLL(name).sqlite3_memory_used
        except (AttributeError, OSError, TypeError):
            continue
        counter.restype = ctypes.c_int64
        return int(counter())
    pytest.fail("sqlite3_memory_used is not reachable in this Python")


def _soft_limit() -> int:
    conn = sqlite3.connect(":memory:")
    try:
        return int(conn.execute("PRAGMA soft_heap_limit").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def restore_limit() -> Iterator[None]:
    """The limit is per process: put back what the other tests of this worker had."""
    before = _soft_limit()
    yield
    sqlite3.connect(":memory:").execute(f"PRAGMA soft_heap_limit={before}").close()


def _big_database(path: Path) -> None:
    """About 30 MiB of rows."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", (("x" * 1000,) for _ in range(30_000)))
    conn.commit()
    conn.close()


def _scan_with_readers(db: Database, readers: int) -> int:
    """Scan the table through ``readers`` read connections at once; SQLite's memory
    while they are all open."""
    with ExitStack() as stack:
        for _ in range(readers):
            conn = stack.enter_context(db.read())
            assert conn.one("SELECT count(*) AS n FROM t")["n"] == 30_000
            conn.one("SELECT sum(length(x)) AS n FROM t")
        return _memory_used()


@pytest.mark.usefixtures("restore_limit")
def test_the_page_caches_of_all_readers_stay_near_the_cap(tmp_path: Path) -> None:
    _big_database(tmp_path / "big.db")
    sqlite3.connect(":memory:").execute("PRAGMA soft_heap_limit=0").close()
    uncapped = Database(str(tmp_path / "big.db"), read_pool_size=3)
    try:
        grown = _scan_with_readers(uncapped, 3)
    finally:
        uncapped.close()
    # Each reader kept the whole table (~30 MiB) in its own cache.
    assert grown > 60 * MIB, grown / MIB
    capped = Database(str(tmp_path / "big.db"), read_pool_size=3, sqlite_memory_mib=8)
    try:
        held = _scan_with_readers(capped, 3)
    finally:
        capped.close()
    assert held < 12 * MIB, held / MIB


@pytest.mark.usefixtures("restore_limit")
def test_the_server_applies_its_setting(tmp_path: Path) -> None:
    rt = Runtime(Settings(data_dir=str(tmp_path), sqlite_memory_mib=96))
    try:
        assert _soft_limit() == 96 * MIB
    finally:
        rt.db.close()
