"""The exporter under faults: retries, Retry-After, per-event errors, oversized batches,
slow and absent servers, overflow, fork, huge inputs, interpreter exit, and a burst."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sdk_support import Reply, StandIn, VirtualClock, free_port, wait_until

from lanterna import context, observe

SRC = str(Path(__file__).resolve().parents[2] / "src")


@observe()
def answer(question: str) -> str:
    return question.upper()


def stand_in_client(make_client, server, **kwargs):
    kwargs.setdefault("flush_interval", 0.05)
    return make_client(public_key="pk-lf-test", secret_key="sk-lf-test", host=server.url, **kwargs)


def test_500_then_success_is_retried(make_client, stand_in):
    stand_in.script = [Reply(500), Reply(502), Reply(503)]
    client = stand_in_client(make_client, stand_in, clock=VirtualClock())  # no real waits
    for i in range(10):
        answer(f"q{i}")
    assert client.flush(15)
    stats = client.stats()
    assert stats["sent"] == 20 and stats["failed"] == 0 and stats["retried"] == 3
    assert len({e["id"] for e in stand_in.events()}) == 20


def test_429_waits_for_retry_after(make_client, stand_in):
    stand_in.script = [Reply(429, {"message": "slow down"}, {"Retry-After": "1"})]
    clock = VirtualClock()
    client = stand_in_client(make_client, stand_in, clock=clock)
    answer("q")
    assert client.flush(15)
    assert stand_in.requests == 2
    assert clock.waited[0] >= 1.0  # the retry waited as long as it was asked to
    assert client.stats()["sent"] == 2 and client.stats()["retried"] == 1


def test_per_event_errors_are_logged_and_counted_not_retried(make_client, stand_in, caplog):
    def reject_first(batch):
        return {
            "successes": [{"id": e["id"], "status": 201} for e in batch[1:]],
            "errors": [
                {
                    "id": batch[0]["id"],
                    "status": 400,
                    "message": "Invalid request data",
                    "error": "name: required",
                }
            ],
        }

    stand_in.script = [Reply(207, reject_first)]
    client = stand_in_client(make_client, stand_in)
    with caplog.at_level(logging.WARNING, logger="lanterna"):
        answer("q")
        assert client.flush(10)
    assert stand_in.requests == 1
    assert client.stats()["sent"] == 1 and client.stats()["failed"] == 1
    assert any("name: required" in r.getMessage() for r in caplog.records)


def test_too_large_batch_is_halved(make_client, stand_in):
    stand_in.script = [Reply(413, {"message": "too large"})]
    client = stand_in_client(make_client, stand_in, flush_interval=5)
    for i in range(8):
        answer(f"q{i}")
    assert client.flush(10)
    # one refused batch of 16 events, then two halves of 8
    assert stand_in.requests == 3 and sorted(len(b) for b in stand_in.batches) == [8, 8]
    assert client.stats()["sent"] == 16


def test_client_errors_are_not_retried(make_client, stand_in, caplog):
    stand_in.script = [Reply(401, {"message": "Invalid credentials"})]
    client = stand_in_client(make_client, stand_in)
    with caplog.at_level(logging.WARNING, logger="lanterna"):
        answer("q")
        assert client.flush(10)
    assert stand_in.requests == 1 and client.stats()["failed"] == 2
    assert any("HTTP 401" in r.getMessage() for r in caplog.records)


def test_retries_stop_at_the_deadline(make_client, stand_in):
    stand_in.script = [Reply(503)] * 100
    clock = VirtualClock()
    client = stand_in_client(make_client, stand_in, max_retry_seconds=1.0, clock=clock)
    answer("q")
    assert client.flush(10)
    assert clock.now <= 1.0  # gave up rather than wait past the limit
    assert stand_in.requests < 100
    stats = client.stats()
    assert stats["failed"] == 2 and stats["sent"] == 0 and stats["retried"] >= 1


def test_slow_server_never_blocks_the_app(make_client, stand_in):
    slow = threading.Event()  # the server answers nothing until the test sets it
    stand_in.script = [Reply(gate=slow)] * 3
    client = stand_in_client(make_client, stand_in, flush_at=50)
    try:
        for i in range(25):
            answer(f"q{i}")
        wait_until(lambda: stand_in.requests >= 1, what="the first batch")
        for i in range(25, 2000):
            answer(f"q{i}")
        # every call returned while the server sat on the exporter's batch
        assert stand_in.batches == []
    finally:
        slow.set()
    assert client.flush(30)
    assert client.stats()["sent"] == 4000


def test_server_down_then_back_loses_nothing(make_client):
    port = free_port()
    client = make_client(
        public_key="pk", secret_key="sk", host=f"http://127.0.0.1:{port}", flush_interval=0.05
    )
    for i in range(300):
        answer(f"q{i}")
    wait_until(lambda: client.stats()["retried"] >= 1, what="a retry of the connection error")
    assert client.stats()["sent"] == 0
    server = StandIn(port)
    try:
        for i in range(300, 400):
            answer(f"q{i}")
        assert client.flush(20)
        stats = client.stats()
        assert stats["sent"] == 800 and stats["failed"] == 0 and stats["dropped"] == 0
        assert len({e["id"] for e in server.events()}) == 800
    finally:
        server.close()


def test_overflow_drops_and_counts(make_client, stand_in):
    slow = threading.Event()
    stand_in.script = [Reply(gate=slow)]
    client = stand_in_client(make_client, stand_in, max_queue_size=100, flush_at=10)
    try:
        for i in range(1000):
            answer(f"q{i}")
    finally:
        slow.set()
    assert client.flush(20)
    stats = client.stats()
    assert stats["dropped"] > 0
    assert stats["sent"] == 2 * (1000 - stats["dropped"])


def test_huge_input_is_cut_and_memory_stays_bounded(live_server, reader):
    # In a process of its own, so that the memory measured is the SDK's, not the server's.
    p = live_server.project
    code = """
        import tracemalloc
        from lanterna import observe, context, Lanterna

        # at most ~8 MB of large captured values wait in the queue (default 64 MB)
        client = Lanterna(flush_interval=0.05, max_queue_bytes=8_000_000)
        big = "x" * 100_000_000  # 100 MB
        nested = {"pages": [big[:1_000_000]] * 100}  # 100 MB more, in a structure

        @observe()
        def summarize(document, extra):
            print(context.get_current_trace_id(), flush=True)
            return document  # the output is just as big

        summarize("warm-up: imports, thread, connection", {})
        assert client.flush(30)
        tracemalloc.start()  # Python allocations from here on (orjson's included)
        for _ in range(3):
            summarize(big, nested)
        assert client.flush(30)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        for _ in range(10):
            summarize(big, nested)
        assert client.flush(30)
        peak_more = tracemalloc.get_traced_memory()[1]
        print(round(peak / 1e6, 1), round(peak_more / 1e6, 1))
    """
    result = _run_script(
        code,
        {
            "LANGFUSE_PUBLIC_KEY": p.public_key,
            "LANGFUSE_SECRET_KEY": p.secret_key,
            "LANGFUSE_HOST": live_server.url,
        },
    )
    assert result.returncode == 0, result.stderr
    _, *trace_ids, growth, more = result.stdout.split()
    # far less than one copy of the input, however many calls
    assert float(growth) < 30, f"tracing 3 calls with 200 MB of input took {growth} MB"
    assert float(more) < 30, f"tracing 10 more calls took {more} MB"
    trace = reader.wait_trace(trace_ids[0])
    stored = trace["observations"][0]["input"]
    assert stored["document"].endswith("...[lanterna: truncated 100000000 chars to 1000000]")
    assert len(stored["document"]) < 1_100_000
    assert "truncated" in str(stored["extra"])
    assert trace["output"].startswith("xxxx") and "truncated" in trace["output"][-60:]


def _run_script(
    code: str,
    env: dict[str, str],
    timeout: float = 60,
    go_when: Callable[[], object] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter. With ``go_when``, a line reaches the script's
    stdin once ``go_when()`` is true (the script waits for it with ``input()``)."""
    full_env = {**os.environ, "PYTHONPATH": SRC, **env}
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            if go_when is not None:
                wait_until(go_when, timeout, "the script's cue")
            out, err = proc.communicate("go\n" if go_when is not None else None, timeout)
        except BaseException:
            proc.kill()
            raise
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert "internal error" not in result.stderr, result.stderr
    return result


def test_pending_events_are_flushed_at_interpreter_exit(live_server, reader):
    p = live_server.project
    code = """
        import time
        from lanterna import observe, context, Lanterna
        Lanterna(flush_interval=3600)  # nothing leaves before exit unless exit flushes
        @observe()
        def job(i):
            if i == 0:
                print(context.get_current_trace_id(), flush=True)
            return i
        for i in range(50):
            job(i)
        print(time.monotonic(), flush=True)
    """
    result = _run_script(
        code,
        {
            "LANGFUSE_PUBLIC_KEY": p.public_key,
            "LANGFUSE_SECRET_KEY": p.secret_key,
            "LANGFUSE_HOST": live_server.url,
        },
    )
    assert result.returncode == 0, result.stderr
    trace_id = result.stdout.split()[0]
    assert reader.wait_trace(trace_id, timeout=5)["name"] == "job"
    assert "pending" not in result.stderr


def test_exit_with_the_server_down_ends_within_the_deadline():
    code = """
        from lanterna import observe, Lanterna
        Lanterna(public_key="pk", secret_key="sk", host="http://127.0.0.1:PORT",
                 exit_timeout=1.0)
        @observe()
        def job(i):
            return i
        for i in range(20):
            job(i)
    """.replace("PORT", str(free_port()))
    # Without the deadline the exit flush would retry for ever: _run_script's timeout
    # fails the test; the message shows the deadline ended it.
    result = _run_script(code, {}, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "shutdown: 40 events undelivered within 1.0 s" in result.stderr
    assert "Connection refused" in result.stderr


def test_exit_while_a_batch_is_retrying_ends_within_the_deadline():
    # The batch's POST was refused before the exit began: its retries must still end at
    # the exit deadline (the worker takes records as soon as they come, so on a busy
    # machine this is the common case, not a race).
    code = """
        import time
        from lanterna import observe, Lanterna
        client = Lanterna(public_key="pk", secret_key="sk", host="http://127.0.0.1:PORT",
                          exit_timeout=1.0, flush_interval=0.01)
        @observe()
        def job(i):
            return i
        for i in range(20):
            job(i)
        client.flush(0.05)
        while not client.stats()["retried"]:
            time.sleep(0.01)
        print(time.monotonic(), flush=True)
    """.replace("PORT", str(free_port()))
    result = _run_script(code, {}, timeout=30)
    ended = time.monotonic()
    assert result.returncode == 0, result.stderr
    assert "shutdown: 40 events undelivered within 1.0 s" in result.stderr
    assert ended - float(result.stdout.split()[-1]) < 5


def test_forked_child_delivers_its_own_events(stand_in):
    code = """
        import os, sys
        from lanterna import observe, Lanterna, get_client
        client = Lanterna(public_key="pk", secret_key="sk", host="URL", flush_interval=0.05)
        @observe()
        def job(who):
            return who
        for _ in range(5):
            job("parent")       # sent by the parent's thread (soon, or at flush)
        pid = os.fork()
        if pid == 0:
            for _ in range(7):
                job("child")
            ok = client.flush(10)
            os._exit(0 if ok and client.stats()["sent"] == 14 else 3)
        _, status = os.waitpid(pid, 0)
        assert client.flush(10)
        print(os.waitstatus_to_exitcode(status), client.stats()["sent"])
    """.replace("URL", stand_in.url)
    result = _run_script(code, {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "10"]
    outputs = [e["body"].get("output") for e in stand_in.events() if e["type"] == "span-create"]
    assert sorted(outputs) == ["child"] * 7 + ["parent"] * 5


def test_exporter_imports_nothing_after_the_client_is_made(stand_in):
    # A fork that falls while the exporter thread imports a module leaves the child a
    # half-initialised one (seen: the child's first export failed with "unknown
    # encoding: idna"). So everything the first export needs is imported when the
    # client is made, on the caller's thread.
    code = """
        import sys
        from lanterna import observe, Lanterna
        client = Lanterna(public_key="pk", secret_key="sk", host="URL", flush_interval=0.01)
        @observe()
        def job(who):
            return who
        before = set(sys.modules)
        job("first")
        assert client.flush(10)
        print(sorted(set(sys.modules) - before))
    """.replace("URL", stand_in.url)
    result = _run_script(code, {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_fork_while_the_exporter_is_busy(stand_in):
    # The parent's first batch waits for the gate, which the next request (the child's)
    # opens: the fork falls while the parent's exporter thread is inside that POST.
    held = threading.Event()

    def open_gate(batch):
        held.set()
        return {"successes": [{"id": e["id"], "status": 201} for e in batch], "errors": []}

    stand_in.script = [Reply(gate=held), Reply(207, open_gate)]
    code = """
        import os
        from lanterna import observe, Lanterna
        client = Lanterna(public_key="pk", secret_key="sk", host="URL", flush_interval=0.01)
        @observe()
        def job(who):
            return who
        for _ in range(200):
            job("parent")
        input()  # the test says when the server holds the parent's first batch
        pid = os.fork()
        if pid == 0:
            job("child")
            os._exit(0 if client.flush(10) and client.stats()["sent"] == 2 else 3)
        _, status = os.waitpid(pid, 0)
        assert client.flush(20)
        print(os.waitstatus_to_exitcode(status))
    """.replace("URL", stand_in.url)
    try:
        result = _run_script(code, {}, go_when=lambda: stand_in.requests >= 1)
    finally:
        held.set()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0"]
    outputs = [e["body"].get("output") for e in stand_in.events() if e["type"] == "span-create"]
    assert outputs.count("child") == 1 and outputs.count("parent") == 200


def test_burst_of_20000_calls_with_defaults_is_all_delivered(live_server, make_client, reader):
    p = live_server.project
    client = make_client(public_key=p.public_key, secret_key=p.secret_key, host=live_server.url)
    ids = []

    @observe()
    def handle(i: int) -> int:
        if i % 5000 == 0:
            ids.append(context.get_current_trace_id())
        return i

    started = time.perf_counter()
    for i in range(20_000):
        handle(i)
    loop = time.perf_counter() - started
    assert client.flush(120)
    total = time.perf_counter() - started
    stats = client.stats()
    print(
        f"\nburst: 20000 calls, loop {loop:.2f} s, delivered {stats['sent']} events "
        f"(= {stats['sent'] // 2} traces) in {total:.2f} s incl. flush; stats {stats}"
    )
    assert stats["sent"] == 40_000
    assert stats["dropped"] == 0 and stats["failed"] == 0
    for trace_id in ids:
        assert reader.wait_trace(trace_id)["name"] == "handle"


def test_flush_from_many_threads_at_once(make_client, stand_in):
    client = stand_in_client(make_client, stand_in)
    errors = []

    def worker(n):
        try:
            for i in range(200):
                answer(f"{n}-{i}")
            assert client.flush(20)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and client.stats()["sent"] == 1600


@pytest.mark.parametrize("kind", ["exit", "shutdown"])
def test_shutdown_stops_taking_records(make_client, stand_in, kind):
    client = stand_in_client(make_client, stand_in)
    answer("before")
    assert client.shutdown(5)
    answer("after")
    assert client.stats()["sent"] == 2 and client.exporter.pending() == 0


def test_large_values_count_against_a_memory_budget(make_client, stand_in):
    slow = threading.Event()
    stand_in.script = [Reply(gate=slow)]
    client = stand_in_client(
        make_client, stand_in, max_queue_bytes=3_000_000, max_field_size=1_000_000
    )
    try:
        for _ in range(10):
            answer("y" * 500_000)  # input and output each count 500,000
    finally:
        slow.set()
    assert client.flush(20)
    stats = client.stats()
    # at most three such calls fit the budget at a time; the rest were dropped, counted
    assert stats["dropped"] >= 5 and stats["sent"] == 2 * (10 - stats["dropped"])


@pytest.fixture
def keep_alive_stand_in() -> Iterator[StandIn]:
    server = StandIn(keep_alive=True)
    yield server
    server.close()


def test_idle_keep_alive_connection_is_reopened(make_client, keep_alive_stand_in):
    # Servers close idle connections (uvicorn after 5 s); the next batch must not fail or
    # retry. This server closes them when told, so the test need not wait.
    client = stand_in_client(make_client, keep_alive_stand_in)
    answer("first")
    assert client.flush(10)
    assert len(keep_alive_stand_in.connections) == 1  # kept alive
    keep_alive_stand_in.drop_connections()
    answer("second")
    assert client.flush(10)
    stats = client.stats()
    assert stats["sent"] == 4 and stats["retried"] == 0 and stats["failed"] == 0
    assert len(keep_alive_stand_in.connections) == 1  # a new one


def test_one_exporter_thread_however_many_threads_start_it(make_client, stand_in, monkeypatch):
    client = stand_in_client(make_client, stand_in)
    original_start = threading.Thread.start

    def slow_start(self):  # widen the window in which a starting thread is not alive yet
        time.sleep(0.02)
        original_start(self)

    monkeypatch.setattr(threading.Thread, "start", slow_start)
    barrier = threading.Barrier(8)

    def first_call_and_flush():
        barrier.wait()
        answer("x")
        client.flush(10)

    threads = [threading.Thread(target=first_call_and_flush) for _ in range(8)]
    for t in threads:
        original_start(t)
    for t in threads:
        t.join()
    exporter = client.exporter
    workers = [
        t
        for t in threading.enumerate()
        if getattr(getattr(t, "_target", None), "__self__", None) is exporter
    ]
    assert len(workers) == 1
    assert client.flush(10) and client.stats()["sent"] == 16
