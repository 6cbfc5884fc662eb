"""How many ingestion batches a server process prepares at once, and its thread switch
interval (settings ``ingest_prepare_at_once`` and ``switch_interval_us``).

Preparing a batch (parse, validate, pre-merge) is pure Python: a second one at the same
time only takes the interpreter lock from the writer. So by default a process prepares
one batch at a time; the others wait in the event loop, not in a thread.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lanterna.cli import _switch_interval
from lanterna.server.runtime import Runtime
from lanterna.server.settings import Settings
from lanterna.store.db import Conn


@pytest.fixture
def runtime_of(tmp_path: Path) -> Iterator[Callable[[int], Runtime]]:
    made: list[Runtime] = []

    def make(at_once: int) -> Runtime:
        rt = Runtime(
            Settings(data_dir=str(tmp_path / str(at_once)), ingest_prepare_at_once=at_once)
        )
        rt.start()
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.stop()


class Batches:
    """Prepare functions that record how many run at once; the first ``held`` wait for
    :attr:`release`, so that the others could overlap them if they were let in."""

    def __init__(self, count: int, held: int = 1) -> None:
        self.held = held
        self.started = [threading.Event() for _ in range(count)]
        self.release = threading.Event()
        self.active = 0
        self.most = 0
        self._lock = threading.Lock()

    def prepare(self, n: int) -> Callable[[Conn], tuple[int, Callable[[Conn], Any]]]:
        def run(conn: Conn) -> tuple[int, Callable[[Conn], Any]]:
            with self._lock:
                self.active += 1
                self.most = max(self.most, self.active)
            self.started[n].set()
            if n < self.held:
                assert self.release.wait(10)
            with self._lock:
                self.active -= 1

            def write(wconn: Conn) -> None:  # a real unit: a row in a real table
                wconn.run(
                    "INSERT INTO row_counts (project_id, kind, n) VALUES (?, ?, ?)",
                    (f"p{n}", "pacing-test", n),
                )

            return n, write

        return run


async def _until_all_wait(tasks: list[asyncio.Task[Any]]) -> None:
    # Tasks blocked on an asyncio semaphore stay blocked however often the loop turns.
    for _ in range(20):
        await asyncio.sleep(0)


def test_one_batch_is_prepared_at_a_time_and_every_one_commits(
    runtime_of: Callable[[int], Runtime],
) -> None:
    rt = runtime_of(1)
    batches = Batches(4)

    async def main() -> list[int]:
        tasks = [asyncio.create_task(rt.prepare_and_commit(batches.prepare(n))) for n in range(4)]
        assert await asyncio.to_thread(batches.started[0].wait, 10)
        await _until_all_wait(tasks)
        # The first holds the only slot: the others have not begun to prepare.
        assert [e.is_set() for e in batches.started] == [True, False, False, False]
        batches.release.set()
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(main()) == [0, 1, 2, 3]
    assert batches.most == 1
    stored = rt.read_sync(
        lambda conn: conn.all("SELECT n FROM row_counts WHERE kind = 'pacing-test' ORDER BY n")
    )
    assert [r["n"] for r in stored] == [0, 1, 2, 3]


def test_the_setting_lets_more_batches_prepare_at_once(
    runtime_of: Callable[[int], Runtime],
) -> None:
    rt = runtime_of(2)
    batches = Batches(3, held=2)

    async def main() -> list[int]:
        tasks = [asyncio.create_task(rt.prepare_and_commit(batches.prepare(n))) for n in range(3)]
        # The first two are held together: both slots are taken, the third waits.
        assert await asyncio.to_thread(batches.started[0].wait, 10)
        assert await asyncio.to_thread(batches.started[1].wait, 10)
        await _until_all_wait(tasks)
        assert not batches.started[2].is_set()
        batches.release.set()
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(main()) == [0, 1, 2]
    assert batches.most == 2


def test_what_a_unit_needs_done_first_runs_after_the_slot_is_given_back(
    runtime_of: Callable[[int], Runtime],
) -> None:
    """``finish`` (an OTLP export's media uploads) runs after the batch's turn: another
    batch prepares while it waits, and the unit it returns is the one committed."""
    rt = runtime_of(1)
    uploading, uploaded = threading.Event(), threading.Event()
    batches = Batches(2, held=0)

    def finish(unit: Callable[[Conn], Any]) -> Callable[[Conn], Any]:
        uploading.set()
        assert uploaded.wait(10)

        def wrapped(conn: Conn) -> Any:
            conn.run(
                "INSERT INTO row_counts (project_id, kind, n) VALUES (?, ?, ?)",
                ("media", "pacing-test", 1),
            )
            return unit(conn)

        return wrapped

    async def main() -> list[int]:
        first = asyncio.create_task(rt.prepare_and_commit(batches.prepare(0), finish))
        assert await asyncio.to_thread(uploading.wait, 10)
        second = asyncio.create_task(rt.prepare_and_commit(batches.prepare(1)))
        assert await asyncio.to_thread(batches.started[1].wait, 10)  # during the upload
        uploaded.set()
        return list(await asyncio.gather(first, second))

    assert asyncio.run(main()) == [0, 1]
    stored = rt.read_sync(
        lambda conn: conn.all("SELECT project_id FROM row_counts WHERE kind = 'pacing-test'")
    )
    assert sorted(r["project_id"] for r in stored) == ["media", "p0", "p1"]


def test_a_failing_prepare_gives_its_slot_back(runtime_of: Callable[[int], Runtime]) -> None:
    rt = runtime_of(1)

    def broken(conn: Conn) -> tuple[int, None]:
        raise ValueError("malformed batch")

    async def main() -> int:
        with pytest.raises(ValueError, match="malformed batch"):
            await rt.prepare_and_commit(broken)
        return await rt.prepare_and_commit(lambda conn: (7, None))

    assert asyncio.run(main()) == 7


def test_serve_sets_the_switch_interval() -> None:
    before = sys.getswitchinterval()
    try:
        _switch_interval(Settings(switch_interval_us=250))
        assert sys.getswitchinterval() == pytest.approx(250e-6)
        _switch_interval(Settings(switch_interval_us=0))  # 0 keeps what is set
        assert sys.getswitchinterval() == pytest.approx(250e-6)
    finally:
        sys.setswitchinterval(before)


def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANTERNA_INGEST_PREPARE_AT_ONCE", "3")
    monkeypatch.setenv("LANTERNA_SWITCH_INTERVAL_US", "0")
    settings = Settings.from_env()
    assert (settings.ingest_prepare_at_once, settings.switch_interval_us) == (3, 0)
    assert (Settings().ingest_prepare_at_once, Settings().switch_interval_us) == (1, 100)
