"""The write path's mechanics: group commit, announced work, the SQLite checkpointer and
WAL bound, and large batches (multi-row statements), on both backends."""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import event, ingest, iso
from lanterna.store import writer as writer_module
from lanterna.store.db import Database
from lanterna.store.migrations import migrate
from lanterna.store.writer import Writer
from lanterna.timeutil import now
from support import wait_until


@pytest.fixture
def db(db_url: str):
    database = Database(db_url)
    migrate(database)
    yield database
    database.close()


def _insert(name: str):
    def work(conn):
        conn.run(
            "INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)",
            (name, name, conn.dialect.ts(now())),
        )
        return name

    return work


def _names(db: Database) -> set[str]:
    with db.read() as conn:
        return {r["id"] for r in conn.all("SELECT id FROM organizations")}


def test_announced_work_joins_the_same_commit(db: Database):
    writer = Writer(db, linger=2.0)
    writer.start()
    try:
        with writer.expect() as expected:
            first = writer.submit(_insert("a"))
            # The writer has taken "a" and, since more work was announced, waits for it
            # ("b" below can only share the commit if "a" was not committed alone).
            wait_until(writer._queue.empty, what="the writer taking the first unit")
            assert not first.done()
            second = writer.submit(_insert("b"))
            expected.done()
        assert first.result(10) == "a" and second.result(10) == "b"
        assert (writer.commits, writer.units) == (1, 2)
        assert _names(db) == {"a", "b"}
    finally:
        writer.stop()


def test_without_announced_work_a_unit_commits_at_once(db: Database):
    # A linger far beyond run_sync's timeout: a unit that waited for it would time out.
    writer = Writer(db, linger=3600.0)
    writer.start()
    try:
        assert writer.run_sync(_insert("solo"), timeout=10) == "solo"
        # an announcement that is withdrawn (failed request) does not hold commits
        with writer.expect():
            pass
        writer.run_sync(_insert("after"), timeout=10)
    finally:
        writer.stop()


def test_a_failing_unit_is_rolled_back_alone(db: Database):
    writer = Writer(db)
    writer.start()
    try:

        def boom(conn):
            _insert("half")(conn)
            raise ValueError("boom")

        bad = writer.submit(boom)
        good = writer.submit(_insert("kept"))
        with pytest.raises(ValueError, match="boom"):
            bad.result(10)
        assert good.result(10) == "kept"
        assert _names(db) == {"kept"}
    finally:
        writer.stop()


def test_sqlite_wal_is_checkpointed_in_the_background_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(writer_module, "WAL_RESTART_BYTES", 256 * 1024)
    monkeypatch.setattr(writer_module, "WAL_KEEP_BYTES", 64 * 1024)
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(db)
    writer = Writer(db)
    writer.start()
    wal = tmp_path / "w.db-wal"
    try:
        sizes = []
        for n in range(40):
            writer.run_sync(_insert(f"org-{n}-" + "x" * 100_000), timeout=10)
            sizes.append(os.path.getsize(wal))
        # 4 MB were written; the log is restarted and cut back instead of growing
        assert max(sizes) < 1024 * 1024, sizes
        checkpointer = writer._checkpointer
        assert checkpointer is not None
        wait_until(lambda: checkpointer.runs > 0, what="a background checkpoint")
    finally:
        writer.stop()
    assert len(_names(db)) == 40
    db.close()


def test_sqlite_wal_stays_bounded_while_readers_never_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Readers of this process that never pause (a dashboard under load) hold a
    snapshot at every moment, each longer than the writer's brief first wait (50 ms:
    with that wait alone the WAL grew to the 1.6 MB written); the writer's second,
    longer attempt restarts the log, so the WAL stays bounded."""
    monkeypatch.setattr(writer_module, "WAL_RESTART_BYTES", 256 * 1024)
    monkeypatch.setattr(writer_module, "WAL_KEEP_BYTES", 64 * 1024)
    monkeypatch.setattr(writer_module, "HELD_RESTART_EVERY_SECONDS", 0.0)
    db = Database(f"sqlite:///{tmp_path / 'w.db'}", read_pool_size=4)
    migrate(db)
    writer = Writer(db)
    writer.start()
    wal = tmp_path / "w.db-wal"
    stop = threading.Event()
    reads = [0, 0]
    first_read = threading.Event()

    def reader(slot: int) -> None:
        if slot:  # the second reader is half a read behind the first
            first_read.wait(5)
            stop.wait(0.1)
        while not stop.is_set():
            with db.read() as conn:
                conn.raw.execute("BEGIN")
                conn.one("SELECT count(*) AS n FROM organizations")  # snapshot taken
                first_read.set()
                stop.wait(0.2)  # a slow query: 200 ms, far longer than the brief wait
                conn.raw.execute("COMMIT")
            reads[slot] += 1

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    try:
        first_read.wait(5)
        sizes = []
        for n in range(16):
            writer.run_sync(_insert(f"org-{n}-" + "x" * 100_000), timeout=10)
            sizes.append(os.path.getsize(wal))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        writer.stop()
    # 1.6 MB were written while the readers read on; the log was restarted, not grown
    assert max(sizes) < 1024 * 1024, sizes
    assert min(reads) >= 5, reads  # the readers really were reading throughout
    assert len(_names(db)) == 16
    db.close()


def test_a_read_arriving_during_the_wal_restart_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A read that starts while the writer waits to restart the WAL would take a
    snapshot the restart must wait for too; held back until the restart is over, it
    cannot prolong it, so the restart's wait is bounded by the reads already running."""
    monkeypatch.setattr(writer_module, "WAL_RESTART_BYTES", 64 * 1024)
    monkeypatch.setattr(writer_module, "HELD_RESTART_EVERY_SECONDS", 0.0)
    db = Database(f"sqlite:///{tmp_path / 'w.db'}", read_pool_size=4)
    migrate(db)
    order: list[str] = []
    held = threading.Event()
    done = threading.Event()
    restart = writer_module.Writer._restart_wal

    def watched(self, conn, wait_ms):  # type: ignore[no-untyped-def]
        if wait_ms == writer_module.HELD_RESTART_WAIT_MS:
            held.set()
        restarted = restart(self, conn, wait_ms)
        if wait_ms == writer_module.HELD_RESTART_WAIT_MS:
            order.append(f"restart {'done' if restarted else 'failed'}")
            done.set()
        return restarted

    monkeypatch.setattr(writer_module.Writer, "_restart_wal", watched)
    writer = Writer(db)
    writer.start()
    old_read_may_end = threading.Event()
    old_read_began = threading.Event()
    new_read_began = threading.Event()

    def read(began: threading.Event, may_end: threading.Event, name: str) -> None:
        with db.read() as conn:
            conn.raw.execute("BEGIN")
            conn.one("SELECT count(*) AS n FROM organizations")  # the snapshot
            order.append(name)
            began.set()
            may_end.wait(10)
            conn.raw.execute("COMMIT")

    old = threading.Thread(target=read, args=(old_read_began, old_read_may_end, "old read"))
    old.start()
    old_read_began.wait(10)
    try:
        # the WAL passes its bound: the brief restart fails (the old read), the held
        # one begins and waits for the old read
        writer.submit(_insert("big-" + "x" * 100_000))
        assert held.wait(10)
        new = threading.Thread(target=read, args=(new_read_began, done, "new read"))
        new.start()
        # the new read is held back: give it the chance to begin before the old ends
        new_read_began.wait(0.3)
        old_read_may_end.set()
        assert done.wait(10)
        new.join(10)
        old.join(10)
    finally:
        old_read_may_end.set()
        done.set()
        writer.stop()
    assert order == ["old read", "restart done", "new read"]
    db.close()


@contextmanager
def _sqlite_writer(path: Path) -> Iterator[tuple[Database, Writer]]:
    db = Database(f"sqlite:///{path}")
    migrate(db)
    writer = Writer(db)
    writer.start()
    try:
        yield db, writer
    finally:
        writer.stop()
        db.close()


def test_sqlite_commits_are_acknowledged_only_after_the_wal_is_fsynced(tmp_path: Path):
    with _sqlite_writer(tmp_path / "s.db") as (db, writer):
        syncer = writer._syncer
        assert syncer is not None
        for n in range(5):
            before = syncer.syncs
            assert writer.run_sync(_insert(f"s{n}"), timeout=10) == f"s{n}"
            # the result arrived after an fsync that began after the commit...
            assert syncer.syncs > before
        # ...of the WAL file SQLite writes
        assert syncer._fd is not None
        assert os.fstat(syncer._fd).st_ino == os.stat(tmp_path / "s.db-wal").st_ino
        assert _names(db) == {f"s{n}" for n in range(5)}


def _results(*outcomes: tuple[bool, object]) -> list:
    results = []
    for ok, value in outcomes:
        future: concurrent.futures.Future[object] = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        results.append((future, ok, value))
    return results


def test_a_failed_wal_fsync_is_final(tmp_path: Path):
    # fsync(2) on /dev/null fails for real (EINVAL), as it would on a failing disk
    failures: list[BaseException] = []
    syncer = writer_module.WalSyncer("/dev/null", on_failure=failures.append)
    syncer.start()
    try:
        unit_error = ValueError("unit failed")
        first = _results((True, "written"), (False, unit_error))
        syncer.committed(first)
        with pytest.raises(OSError):  # written but not durable: not acknowledged
            first[0][0].result(10)
        # a unit that rolled back on its own keeps its own error
        assert first[1][0].exception(10) is unit_error
        assert len(failures) == 1 and syncer.syncs == 0
        # later commits fail too: a later fsync could succeed over a hole in the log
        later = _results((True, "also written"))
        syncer.committed(later)
        assert later[0][0].exception(10) is failures[0]
    finally:
        syncer.finish()
        syncer.join(10)


def test_a_deleted_wal_is_never_acknowledged(tmp_path: Path):
    wal = tmp_path / "x.db-wal"
    wal.write_bytes(b"frames")
    syncer = writer_module.WalSyncer(str(wal))
    syncer.start()
    try:
        first = _results((True, 1))
        syncer.committed(first)
        assert first[0][0].result(10) == 1
        wal.unlink()  # what was written to it can no longer reach the disk
        wal.write_bytes(b"another file at the same path")
        later = _results((True, 2))
        syncer.committed(later)
        with pytest.raises(OSError, match="deleted while in use"):
            later[0][0].result(10)
    finally:
        syncer.finish()
        syncer.join(10)


def test_after_a_failed_fsync_the_writer_takes_no_more_work(tmp_path: Path):
    with _sqlite_writer(tmp_path / "f.db") as (db, writer):
        assert writer._syncer is not None
        writer._syncer.wal_path = "/dev/null"  # its first fsync fails for real
        with pytest.raises(OSError):
            writer.run_sync(_insert("a"), timeout=10)
        with pytest.raises(writer_module.WriterClosedError, match="fsync"):
            writer.run_sync(_insert("b"), timeout=10)
        assert "b" not in _names(db)


def test_stop_with_a_slow_unit_still_resolves_it(db: Database):
    writer = Writer(db)
    writer.start()
    inside, finish = threading.Event(), threading.Event()

    def slow(conn):
        inside.set()
        assert finish.wait(10)
        return _insert("slow")(conn)

    future = writer.submit(slow)
    assert inside.wait(10)  # the writer is inside the unit
    writer.stop(timeout=0.1)  # gives up waiting for the thread...
    assert not future.done()
    finish.set()
    assert future.result(10) == "slow"  # ...which still commits, syncs and answers
    writer._thread.join(10)  # type: ignore[union-attr]
    assert _names(db) == {"slow"}


def test_a_large_batch_of_new_and_existing_entities(api):
    """More rows than one multi-row statement holds, half of them updates."""
    first = [event("trace-create", {"id": f"t{n}", "name": "old"}) for n in range(70)]
    first += [
        event("span-create", {"id": f"s{n}", "traceId": f"t{n % 70}", "name": "old"})
        for n in range(75)
    ]
    assert ingest(api, *first)["errors"] == []
    second = [event("trace-create", {"id": f"t{n}", "name": "new"}, at=1) for n in range(140)]
    second += [
        event("span-update", {"id": f"s{n}", "traceId": f"t{n % 70}", "output": n}, at=1)
        for n in range(150)
    ]
    assert ingest(api, *second)["errors"] == []
    listed = api.get("/api/public/traces", params={"limit": 100, "page": 2}).json()
    assert listed["meta"]["totalItems"] == 140
    for n in (0, 69, 70, 139):
        assert api.get(f"/api/public/traces/t{n}").json()["name"] == "new"
    for n in (0, 74, 75, 149):
        obs = api.get(f"/api/public/observations/s{n}").json()
        assert obs["output"] == n
        assert obs["name"] == ("old" if n < 75 else None)


class _Combinable:
    """A unit the writer may run together with its neighbours (like ingestion batches)."""

    def __init__(self, name: str, *, fail: bool = False) -> None:
        self.names = [name]
        self.fail = fail
        self.combine_key = "orgs"

    @classmethod
    def combine(cls, parts: list[_Combinable]) -> _Combinable:
        out = cls("", fail=any(p.fail for p in parts))
        out.names = [n for p in parts for n in p.names]
        return out

    def __call__(self, conn) -> list[str]:
        for name in self.names:
            _insert(name)(conn)
        if self.fail:
            raise ValueError(f"unit {self.names} fails")
        return self.names


def _one_group(writer: Writer, units: list) -> list:
    with writer.expect() as expected:
        futures = [writer.submit(u) for u in units]
        expected.done()
    return futures


def test_neighbouring_combinable_units_run_as_one(db: Database):
    writer = Writer(db, linger=2.0)
    writer.start()
    try:
        futures = _one_group(
            writer, [_Combinable("a"), _Combinable("b"), _insert("c"), _Combinable("d")]
        )
        # a and b ran as one unit (both get its result); c and d each alone
        assert [f.result(10) for f in futures] == [["a", "b"], ["a", "b"], "c", ["d"]]
        assert writer.commits == 1
        assert _names(db) == {"a", "b", "c", "d"}
    finally:
        writer.stop()


def test_a_failing_unit_in_a_combined_run_fails_alone(db: Database):
    writer = Writer(db, linger=2.0)
    writer.start()
    try:
        futures = _one_group(
            writer, [_Combinable("a"), _Combinable("bad", fail=True), _Combinable("c")]
        )
        assert futures[0].result(10) == ["a"]
        with pytest.raises(ValueError, match="bad"):
            futures[1].result(10)
        assert futures[2].result(10) == ["c"]
        # nothing of the failed combined attempt or of the failing unit is left
        assert _names(db) == {"a", "c"}
    finally:
        writer.stop()


def test_concurrent_batches_on_the_same_entities_merge_as_if_sequential(
    api, monkeypatch: pytest.MonkeyPatch
):
    """Batches that the writer combines may create and update the same trace and
    observation: the result equals sending them one after another."""
    import threading

    from test_rollups import _assert_rollups_match

    batches = [
        [
            event("trace-create", {"id": "t", "name": "first", "tags": ["a"]}, at=0),
            event("span-create", {"id": "s", "traceId": "t", "name": "s1"}, at=0),
        ],
        [
            event("trace-create", {"id": "t", "userId": "u", "tags": ["b"]}, at=1),
            event("span-update", {"id": "s", "traceId": "t", "level": "ERROR"}, at=1),
            event("span-create", {"id": "s2", "traceId": "t", "name": "s2"}, at=1),
        ],
        [event("span-create", {"id": "s3", "traceId": "t", "name": "s3"}, at=2)],
    ]
    rt = api.app.state.runtime
    rt.writer.linger = 60.0  # the test's own announcement ends the wait
    submitted = threading.Semaphore(0)
    submit = rt.writer.submit

    def counted_submit(work):  # the real submit; the test learns when it happened
        future = submit(work)
        submitted.release()
        return future

    monkeypatch.setattr(rt.writer, "submit", counted_submit)
    commits = rt.writer.commits
    with rt.writer.expect() as expected:
        threads = [threading.Thread(target=ingest, args=(api, *b)) for b in batches]
        for thread in threads:
            thread.start()
        for _ in batches:  # each request submits its batch once
            assert submitted.acquire(timeout=30)
        expected.done()
        # Withdrawing an announcement does not wake a lingering writer; one more (empty)
        # unit does, and it joins the same commit.
        submit(lambda conn: None)
        for thread in threads:
            thread.join(30)
    assert rt.writer.commits == commits + 1  # the three batches shared one commit
    trace = api.get("/api/public/traces/t").json()
    assert (trace["name"], trace["userId"], sorted(trace["tags"])) == ("first", "u", ["a", "b"])
    by_id = {o["id"]: o for o in trace["observations"]}
    assert set(by_id) == {"s", "s2", "s3"}
    assert (by_id["s"]["name"], by_id["s"]["level"]) == ("s1", "ERROR")
    raw = _assert_rollups_match(api)
    assert sum(v[1] for v in raw["traces"].values()) == 1  # the trace has an error


def _combined_equals_sequential(api, batches: list[list[dict]]) -> None:
    """Run ``batches`` through the writer as one combined unit in one project and one
    by one in another: the stored rows are the same, and each project's rollups equal
    its raw rows."""
    from lanterna.ingest.langfuse_events import read_batch
    from lanterna.store.write import PreparedEvents, prepare_events
    from test_rollups import _assert_rollups_match

    rt = api.app.state.runtime
    combined_project, sequential_project = api.project, api.new_project()

    def prepared(project_id: str, events: list[dict]) -> PreparedEvents:
        parsed = read_batch(events)
        assert not parsed.errors
        return rt.read_sync(lambda conn: prepare_events(conn, project_id, parsed.events))

    units = [prepared(combined_project.id, b) for b in batches]
    rt.writer.run_sync(PreparedEvents.combine(units))
    for events in batches:
        rt.writer.run_sync(prepared(sequential_project.id, events))

    def rows(project_id: str) -> dict[str, list]:
        out = {}
        for table in ("traces", "observations"):
            out[table] = [
                {k: v for k, v in r.items() if k not in ("project_id", "created_at", "updated_at")}
                for r in rt.read_sync(
                    lambda c, t=table: c.all(
                        f"SELECT * FROM {t} WHERE project_id = ? ORDER BY id", [project_id]
                    )
                )
            ]
        return out

    assert rows(combined_project.id) == rows(sequential_project.id)
    _assert_rollups_match(api)
    api.auth = sequential_project.auth
    api.project = sequential_project
    _assert_rollups_match(api)


def test_combined_batches_later_update_without_trace_id(api):
    # The second batch's update names no trace: the trace cannot keep the values
    # precomputed from the first batch alone.
    _combined_equals_sequential(
        api,
        [
            [
                event("trace-create", {"id": "t"}, at=0),
                event(
                    "generation-create",
                    {"id": "g", "traceId": "t", "model": "m",
                     "usageDetails": {"input": 1, "output": 1}},
                    at=0,
                ),
            ],
            [
                event(
                    "generation-update",
                    {"id": "g", "endTime": iso(seconds=30), "level": "ERROR",
                     "usageDetails": {"input": 100, "output": 50}, "costDetails": {"total": 5}},
                    at=1,
                )
            ],
        ],
    )  # fmt: skip


def test_combined_batches_apply_in_batch_order_whatever_the_event_times(api):
    # A retried (older) batch after a newer one: as when they commit one by one, the
    # later batch overwrites and the first write fixes the immutable fields.
    _combined_equals_sequential(
        api,
        [
            [
                event("trace-create", {"id": "A", "name": "one", "timestamp": iso(seconds=9e3)},
                      at=5),
                event(
                    "generation-create",
                    {"id": "o", "traceId": "A", "model": "m", "usageDetails": {"input": 10}},
                    at=5,
                ),
            ],
            [
                event("trace-create", {"id": "A", "name": "two", "timestamp": iso()}, at=0),
                event("trace-create", {"id": "B"}, at=0),
                event("generation-update", {"id": "o", "traceId": "B", "endTime": iso(seconds=2)},
                      at=0),
            ],
        ],
    )  # fmt: skip


def test_a_base_exception_fails_the_group_and_stops_the_writer_cleanly(db: Database):
    writer = Writer(db, linger=2.0)
    writer.start()

    class Stop(BaseException):
        pass

    def interrupt(conn):
        raise Stop

    futures = _one_group(writer, [_insert("a"), interrupt])
    for future in futures:
        with pytest.raises(Stop):  # the group's error, never a hang
            future.result(10)
    writer._thread.join(10)  # type: ignore[union-attr]
    assert not writer._thread.is_alive()  # type: ignore[union-attr]
    with pytest.raises(writer_module.WriterClosedError):
        writer.submit(_insert("b")).result(10)
    assert _names(db) == set()
    writer.stop()


def test_requests_to_a_stopped_writer_get_503_and_write_nothing(api):
    api.app.state.runtime.writer.stop()  # as during shutdown, or after a failed fsync
    r = api.post(
        "/api/public/ingestion",
        json={"batch": [event("trace-create", {"id": "t-late", "name": "late"})]},
    )
    assert r.status_code == 503, r.text
    assert "stopped" in r.json()["message"]
    assert api.get("/api/public/traces/t-late").status_code == 404


def test_work_submitted_while_the_writer_stops_is_always_answered(db: Database):
    writer = Writer(db)
    writer.start()
    futures: list[concurrent.futures.Future[str]] = []
    lock = threading.Lock()

    def submit_many(k: int) -> None:
        refused = 0
        for n in range(5000):
            future = writer.submit(_insert(f"w{k}-{n}"))
            with lock:
                futures.append(future)
            if future.done() and future.exception() is not None:
                refused += 1
                if refused > 20:  # well after the stop
                    return
            if n % 20 == 19:  # keep pace with the writer instead of queueing thousands
                concurrent.futures.wait([future], timeout=10)

    threads = [threading.Thread(target=submit_many, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: writer.commits >= 5, what="the first commits")
    writer.stop()
    for thread in threads:
        thread.join(10)
    done, pending = concurrent.futures.wait(futures, timeout=10)
    assert not pending  # committed, or refused with WriterClosedError: never left waiting
    committed = {f.result() for f in done if f.exception() is None}
    refused = [f for f in done if f.exception() is not None]
    assert all(isinstance(f.exception(), writer_module.WriterClosedError) for f in refused)
    assert committed == _names(db)
    assert committed and refused  # the stop fell while work was still coming in
