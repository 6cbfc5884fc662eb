"""Outages of several minutes against a real HTTP server, on a virtual clock.

The exporter's retry waits run on a clock the test controls: each wait moves virtual
time on at once, and the clock holds at chosen instants until the test has done what
happens "then" (more calls by the app, the server coming up, the server recovering).
So a five-minute outage takes well under a second and nothing waits for time to pass.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from sdk_support import Reply, StandIn, VirtualClock, free_port

from lanterna import observe

SRC = str(Path(__file__).resolve().parents[2] / "src")


@observe()
def answer(question: str) -> str:
    return question.upper()


def client_of(make_client, port: int, clock: VirtualClock, **settings: Any) -> Any:
    """A client of the server (to be) on ``port``, retrying on ``clock``; otherwise the
    default settings unless ``settings`` say otherwise."""
    return make_client(
        public_key="pk", secret_key="sk", host=f"http://127.0.0.1:{port}", clock=clock, **settings
    )


def test_a_five_minute_outage_loses_nothing_with_default_settings(make_client):
    # 0-150 s nothing listens (connection refused); 150-300 s the server answers 503;
    # then it takes everything. The app keeps calling throughout.
    port = free_port()
    clock = VirtualClock()
    servers: list[StandIn] = []

    def server_comes_up_failing() -> None:
        server = StandIn(port)
        server.script = [Reply(503, {"message": "starting"})] * 100_000
        servers.append(server)

    def server_recovers() -> None:
        with servers[0].lock:
            servers[0].script = []

    clock.at(100, hold=True)
    clock.at(150, server_comes_up_failing)
    clock.at(200, hold=True)
    clock.at(300, server_recovers)
    client = client_of(make_client, port, clock)
    try:
        calls = 0
        for phase in (None, 100, 200):
            if phase is not None:
                assert clock.reached[phase].wait(30), f"the exporter never retried until t={phase}"
                assert client.stats()["sent"] == 0
            for _ in range(1000):
                answer(f"q{calls}")
                calls += 1
            if phase is not None:
                clock.release(phase)
        assert client.flush(60)
        stats = client.stats()
        assert clock.now >= 300, "the outage did not last five virtual minutes"
        assert stats["sent"] == 2 * calls and stats["failed"] == 0 and stats["dropped"] == 0
        assert stats["retried"] >= 20
        delivered = servers[0].events()
        assert len({e["id"] for e in delivered}) == 2 * calls
        outputs = {e["body"].get("output") for e in delivered if e["type"] == "span-create"}
        assert outputs == {f"Q{i}" for i in range(calls)}
    finally:
        for server in servers:
            server.close()


def test_a_full_queue_drops_the_newest_records_counts_them_and_logs_once(make_client, caplog):
    port = free_port()
    clock = VirtualClock()
    servers: list[StandIn] = []
    clock.at(10, hold=True)
    clock.at(20, lambda: servers.append(StandIn(port)))
    client = client_of(make_client, port, clock, max_queue_size=100)
    try:
        with caplog.at_level(logging.WARNING, logger="lanterna"):
            answer("q0")  # taken by the exporter, which is now retrying it
            assert clock.reached[10].wait(30)
            for i in range(1, 1000):
                answer(f"q{i}")
            clock.release(10)
            assert client.flush(30)
        stats = client.stats()
        assert stats["dropped"] == 899 and stats["failed"] == 0
        assert stats["sent"] == 2 * 101
        outputs = sorted(
            int(e["body"]["output"][1:]) for e in servers[0].events() if e["type"] == "span-create"
        )
        assert outputs == list(range(101))  # what was queued first is what was kept
        full = [r for r in caplog.records if "queue is full" in r.getMessage()]
        again = [r for r in caplog.records if "room again" in r.getMessage()]
        assert len(full) == 1 and len(again) == 1
        assert "899 records were dropped" in again[0].getMessage()
    finally:
        for server in servers:
            server.close()


def test_a_retry_limit_can_still_be_set(make_client):
    # max_retry_seconds restores a per-batch deadline for those who prefer dropping.
    clock = VirtualClock()
    client = client_of(make_client, free_port(), clock, max_retry_seconds=60)
    answer("q")
    assert client.flush(30)
    stats = client.stats()
    assert stats["failed"] == 2 and stats["sent"] == 0
    assert 50 <= clock.now <= 60


def test_a_spool_directory_keeps_what_the_exit_could_not_deliver(make_client, tmp_path):
    spool = tmp_path / "spool"
    port = free_port()
    code = f"""
        from lanterna import observe, Lanterna
        Lanterna(public_key="pk", secret_key="sk", host="http://127.0.0.1:{port}",
                 exit_timeout=0.5, spool_dir={str(spool)!r})
        @observe()
        def job(i):
            return i
        for i in range(20):
            job(i)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "40 undelivered events written to the spool" in result.stderr
    files = list(spool.iterdir())
    assert files and all(f.suffix == ".batch" for f in files)
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)

    server = StandIn(port)  # the server is back; the next client sends the spool first
    try:
        client = make_client(public_key="pk", secret_key="sk", host=server.url, spool_dir=spool)
        answer("after")
        assert client.flush(10)
        outputs = [e["body"].get("output") for e in server.events() if e["type"] == "span-create"]
        assert sorted(o for o in outputs if isinstance(o, int)) == list(range(20))
        assert "AFTER" in outputs
        assert client.stats()["sent"] == 42 and client.stats()["failed"] == 0
        assert list(spool.iterdir()) == []
    finally:
        server.close()


def test_a_batch_waiting_to_retry_when_the_exit_gives_up_is_spooled_without_another_post(
    make_client, tmp_path
):
    # The server is down; the batch's first POST was refused and its retry waits. The
    # exit's flush runs out: the batch is written to the spool at once, with no further
    # POST that could outlast the exit (a server that does not answer holds one for the
    # transport's whole timeout).
    import threading

    clock = VirtualClock()
    clock.at(0.01, hold=True)  # inside the first retry wait
    client = client_of(make_client, free_port(), clock, spool_dir=tmp_path / "spool")
    answer("waiting")
    assert clock.reached[0.01].wait(30)
    posts = client.stats()["batches"]
    ended = threading.Thread(target=client.shutdown, args=(0.2,))
    ended.start()
    exporter = client.exporter
    assert exporter._stop.wait(30)  # the flush ran out; the rest is being spooled
    clock.release(0.01)
    ended.join(30)
    assert not ended.is_alive()
    stats = client.stats()
    assert stats["spooled"] == 2 and stats["failed"] == 0
    assert stats["batches"] == posts  # no POST after the stop
    assert len(list((tmp_path / "spool").iterdir())) == 1
