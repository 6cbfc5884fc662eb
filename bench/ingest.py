"""Ingestion throughput: Langfuse batches into one ``lanterna serve`` process.

Sends ``--observations`` observations as traces of five (one ``trace-create`` plus five
span/generation ``*-create`` events per trace, 1-2 KB of input/output each, the shape
the Langfuse 2.x SDK sends) in batches of ``--batch`` events, from ``--clients`` client
processes holding ``--concurrency`` keep-alive connections in all. Prints committed
observations per second (every 207 means committed), request latency, the server's
peak RSS, and checks that the database holds exactly what was sent.

    .venv/bin/python bench/ingest.py                       # SQLite and PostgreSQL
    .venv/bin/python bench/ingest.py --backend sqlite --observations 50000
    .venv/bin/python bench/ingest.py --backend clickhouse   # events in chDB (in-process)

PostgreSQL: a fresh database on the server that ``scripts/pg-start`` starts (or on
``--pg-admin-url``), dropped afterwards. ClickHouse: SQLite for the metadata and the
events in ClickHouse in the server's process (chDB, ``--events-url chdb:///...``; needs
the ``clickhouse`` extra). See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
OBS_PER_TRACE = 5
EVENTS_PER_TRACE = OBS_PER_TRACE + 1
#: Issue 2: at least this many observations per second on SQLite on a 2-core machine.
TARGET = 20_000

# --- payloads ---------------------------------------------------------------------------

_TEXT = (
    "the model answered with a short summary of the retrieved documents and cited two "
    "sources while the user asked for more detail about pricing latency and the refund "
    "policy of the enterprise plan including annual discounts regional taxes and support"
)
_WORDS = _TEXT.split(" ")


def _texts(seed: int, count: int, low: int, high: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        size = rng.randint(low, high)
        words: list[str] = []
        length = 0
        while length < size:
            word = rng.choice(_WORDS)
            words.append(word)
            length += len(word) + 1
        out.append(" ".join(words)[:size])
    return out


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class BatchMaker:
    """Builds batches of whole traces, like the Langfuse 2.x SDK's events."""

    def __init__(self, seed: int, ab_test: bool = False) -> None:
        self.rng = random.Random(seed)
        self.ab_test = ab_test
        # input ~0.6-1.1 KB of chat messages, output ~0.3-0.8 KB: 1-2 KB per observation
        self.prompts = _texts(seed, 64, 500, 1000)
        self.answers = _texts(seed + 1, 64, 300, 800)

    def trace_events(self) -> list[dict[str, Any]]:
        rng = self.rng
        start = datetime.now(timezone.utc)  # SDKs send events as they happen
        trace_id = str(uuid.uuid4())
        user = f"user-{rng.randint(1, 500)}"
        prompt = rng.choice(self.prompts)

        def envelope(type_: str, body: dict[str, Any], at: datetime) -> dict[str, Any]:
            return {"id": str(uuid.uuid4()), "type": type_, "timestamp": _iso(at), "body": body}

        metadata: dict[str, Any] = {"app": "bench", "region": "eu", "plan": "pro"}
        if self.ab_test:  # what the SDK's assign records: the trace counts in the A/B rollups
            metadata.update(experiment="bench-test", variant=rng.choice("AB"))
        events = [
            envelope(
                "trace-create",
                {
                    "id": trace_id,
                    "name": "chat-request",
                    "userId": user,
                    "sessionId": f"session-{user}-{rng.randint(1, 20)}",
                    "timestamp": _iso(start),
                    "input": {"question": prompt[:300]},
                    "output": {"answer": rng.choice(self.answers)[:300]},
                    "metadata": metadata,
                    "tags": ["bench", "chat"],
                    "release": "1.4.2",
                },
                start,
            )
        ]
        root = str(uuid.uuid4())
        parent = None
        for n in range(OBS_PER_TRACE):
            obs_id = root if n == 0 else str(uuid.uuid4())
            t0 = start + timedelta(milliseconds=10 * n)
            t1 = t0 + timedelta(milliseconds=rng.randint(50, 900))
            body: dict[str, Any] = {
                "id": obs_id,
                "traceId": trace_id,
                "name": ("agent", "retrieve", "llm-call", "rerank", "llm-call-2")[n],
                "startTime": _iso(t0),
                "endTime": _iso(t1),
                "input": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": rng.choice(self.prompts)},
                ],
                "output": {"role": "assistant", "content": rng.choice(self.answers)},
                "metadata": {"step": n, "component": "bench"},
            }
            if parent is not None:
                body["parentObservationId"] = parent
            if n in (2, 4):
                prompt_tokens, completion_tokens = rng.randint(200, 900), rng.randint(50, 300)
                body.update(
                    model="gpt-4o-mini",
                    modelParameters={"temperature": 0.2, "max_tokens": 512},
                    completionStartTime=_iso(t0 + timedelta(milliseconds=40)),
                    usage={
                        "input": prompt_tokens,
                        "output": completion_tokens,
                        "total": prompt_tokens + completion_tokens,
                        "unit": "TOKENS",
                    },
                )
                events.append(envelope("generation-create", body, t0))
            else:
                events.append(envelope("span-create", body, t0))
            parent = root
        return events

    def batch(self, traces: int) -> bytes:
        events: list[dict[str, Any]] = []
        for _ in range(traces):
            events.extend(self.trace_events())
        return orjson.dumps({"batch": events, "metadata": {"sdk_name": "bench"}})


# --- client processes -------------------------------------------------------------------


@dataclass
class ClientJob:
    port: int
    auth: str
    batches: int
    traces_per_batch: int
    threads: int
    seed: int
    ab_test: bool = False


def send_all(
    port: int,
    path: str,
    headers: dict[str, str],
    bodies: list[bytes],
    threads: int,
    expected: int,
    ready: Any,
    start: Any,
) -> tuple[list[float], list[str]]:
    """Send ``bodies`` (already encoded) in order over ``threads`` keep-alive connections,
    once ``start`` is set (``ready`` hears first that this process is ready); return the
    request latencies and failures (a status other than ``expected``, or any per-event
    error in a 207). The first failure stops every connection."""
    queue = bodies[::-1]  # pop() from the end sends them in order
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not queue or failures:
                    break
                body = queue.pop()
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"request failed: {exc!r}")
                break
            elapsed = time.perf_counter() - t0
            if response.status != expected or (expected == 207 and orjson.loads(payload)["errors"]):
                failures.append(f"{response.status}: {payload[:300]!r}")
                break
            with lock:
                latencies.append(elapsed)
        conn.close()

    ready.put(True)
    start.wait()
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return latencies, failures


def _client_main(job: ClientJob, ready: Any, start: Any, results: Any) -> None:
    """One client process: ``job.threads`` connections sending ``job.batches`` batches.

    Every body is encoded before the clock starts, so that the client's own CPU use
    while sending is small (this machine's cores are shared with the server).
    """
    maker = BatchMaker(job.seed, job.ab_test)
    bodies = [maker.batch(job.traces_per_batch) for _ in range(job.batches)]
    headers = {"Authorization": job.auth, "Content-Type": "application/json"}
    cpu0 = time.process_time()  # waiting for the start costs no CPU
    latencies, failures = send_all(
        job.port, "/api/public/ingestion", headers, bodies, job.threads, 207, ready, start
    )
    results.put((latencies, failures, time.process_time() - cpu0))


# --- the server -------------------------------------------------------------------------


class Server:
    """``lanterna serve`` as a subprocess; parses the printed keys."""

    def __init__(self, db_args: list[str], port: int, env: dict[str, str]) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lanterna.cli",
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
                *db_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.output = ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output += line
            if line.startswith("Listening on"):
                break
        keys = dict(re.findall(r"^(LANGFUSE_\w+)=(\S+)$", self.output, re.M))
        if "LANGFUSE_SECRET_KEY" not in keys:
            self.stop()
            raise SystemExit(f"server did not start with fresh keys:\n{self.output}")
        token = f"{keys['LANGFUSE_PUBLIC_KEY']}:{keys['LANGFUSE_SECRET_KEY']}"
        self.auth = "Basic " + base64.b64encode(token.encode()).decode()
        # drain the rest of the output so the pipe never fills up
        threading.Thread(target=self._drain, daemon=True).start()
        self._wait_healthy()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output += line

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/public/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"server not healthy:\n{self.output}")

    def peak_rss_mib(self) -> float:
        return self._status_mib("VmHWM")

    def anon_rss_mib(self) -> float:
        """Resident memory of the process's own (heap, stacks): without mapped files
        (libraries, any memory-mapped database pages), which the OS shares."""
        return self._status_mib("RssAnon")

    def _status_mib(self, field: str) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kib = int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
        return kib / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- one run ----------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    observations: int
    seconds: float
    latencies: list[float]
    peak_rss_mib: float
    stored_observations: int
    stored_traces: int
    sent_traces: int
    server_cpu: float
    anon_rss_mib: float
    client_cpu: float
    busy: float

    @property
    def rate(self) -> float:
        return self.observations / self.seconds


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@contextmanager
def server_on_scratch_database(
    backend: str, pg_admin_url: str | None, prefix: str, settings: dict[str, str] | None = None
) -> Iterator[tuple[Server, Path, list[str]]]:
    """A ``lanterna serve`` subprocess on a fresh database: SQLite in a temporary data
    directory, or a new PostgreSQL database on ``pg_admin_url`` (default: the server
    scripts/pg-start runs). Yields the server, the directory and the database options;
    stops the server and removes the data afterwards. ``settings``: ``LANTERNA_*``
    variables the server gets (no other)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANTERNA_")}
    env.update(settings or {})
    env["PYTHONPATH"] = str(ROOT / "src")
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    pg_admin = pg_name = None
    if backend == "clickhouse":  # metadata in SQLite, events in chDB in the server
        env["LANTERNA_EVENTS_URL"] = f"chdb://{workdir / 'events'}?database=lanterna"
    if backend in ("sqlite", "clickhouse"):
        db_args = ["--data-dir", str(workdir)]
    else:
        import psycopg

        pg_admin = (
            pg_admin_url
            or subprocess.run(
                [str(ROOT / "scripts" / "pg-start")], check=True, capture_output=True, text=True
            ).stdout.strip()
        )
        pg_name = f"lanterna_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        db_args = ["--database-url", pg_admin.rpartition("/")[0] + "/" + pg_name]
    server = None
    try:
        server = Server(db_args, _free_port(), env)
        yield server, workdir, db_args
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if pg_admin and pg_name:
            import psycopg

            with psycopg.connect(pg_admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def run(backend: str, args: argparse.Namespace) -> Result:
    with server_on_scratch_database(backend, args.pg_admin_url, "lanterna-bench-") as (
        server,
        workdir,
        db_args,
    ):
        return _run(backend, args, server, workdir, db_args)


def _run(
    backend: str, args: argparse.Namespace, server: Server, workdir: Path, db_args: list[str]
) -> Result:
    if args.verbose:  # e.g. to attach a profiler: py-spy record -p PID
        print(f"{backend:>8}: server pid {server.proc.pid}", file=sys.stderr, flush=True)
    traces_per_batch = max(1, args.batch // EVENTS_PER_TRACE)
    obs_per_batch = traces_per_batch * OBS_PER_TRACE
    batches = max(1, round(args.observations / obs_per_batch))
    clients = max(1, min(args.clients, args.concurrency))
    jobs = []
    for n in range(clients):
        share = batches // clients + (1 if n < batches % clients else 0)
        threads = args.concurrency // clients + (1 if n < args.concurrency % clients else 0)
        jobs.append(
            ClientJob(
                server.port,
                server.auth,
                share,
                traces_per_batch,
                threads,
                seed=1000 + n,
                ab_test=getattr(args, "ab_test", False),
            )
        )
    ctx = mp.get_context("fork")
    ready = ctx.Queue()
    start = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=_client_main, args=(j, ready, start, results)) for j in jobs]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get()  # every client has encoded its batches
    cpu0 = server.cpu_seconds()
    busy0 = _machine_busy()
    t0 = time.perf_counter()
    start.set()
    latencies: list[float] = []
    failures: list[str] = []
    client_cpu = 0.0
    for _ in procs:
        lat, fail, used = results.get()
        latencies.extend(lat)
        failures.extend(fail)
        client_cpu += used
    seconds = time.perf_counter() - t0
    cpu = server.cpu_seconds() - cpu0
    busy = _machine_busy() - busy0
    for proc in procs:
        proc.join()
    if failures:
        raise SystemExit(f"{backend}: {len(failures)} failed request(s): {failures[:3]}")
    rss = server.peak_rss_mib()
    anon = server.anon_rss_mib()
    sent_obs = batches * obs_per_batch
    stored_obs, stored_traces = (
        _count_by_api(server) if backend == "clickhouse" else _count(backend, workdir, db_args)
    )
    return Result(
        backend,
        sent_obs,
        seconds,
        latencies,
        rss,
        stored_obs,
        stored_traces,
        batches * traces_per_batch,
        cpu,
        anon,
        client_cpu,
        busy / ((os.cpu_count() or 1) * seconds),
    )


def _machine_busy() -> float:
    """CPU seconds the whole machine has spent not idle (all processes, all cores)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _count(backend: str, workdir: Path, db_args: list[str]) -> tuple[int, int]:
    sql = "SELECT (SELECT count(*) FROM observations), (SELECT count(*) FROM traces)"
    if backend == "sqlite":
        conn = sqlite3.connect(workdir / "lanterna.db")
        try:
            row = conn.execute(sql).fetchone()
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(db_args[1]) as pg:
            row = pg.execute(sql).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _count_by_api(server: Server) -> tuple[int, int]:
    """Observations and traces stored, as the API counts them (chDB's folder is the
    server's alone while it runs)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    totals = []
    for path in ("/api/public/observations?limit=1", "/api/public/traces?limit=1&fields=core"):
        conn.request("GET", path, headers={"Authorization": server.auth})
        response = conn.getresponse()
        body = orjson.loads(response.read())
        if response.status != 200:
            raise SystemExit(f"counting {path}: {response.status} {body}")
        totals.append(int(body["meta"]["totalItems"]))
    conn.close()
    return totals[0], totals[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=200_000)
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres", "clickhouse", "all"),
        default="all",
        help="all: sqlite and postgres",
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="keep-alive connections in all (default 8)"
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=2,
        help="client processes sharing those connections (default 2)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=100,
        help="events per batch, rounded down to whole traces (default 100)",
    )
    parser.add_argument("--pg-admin-url", help="PostgreSQL server URL (default: scripts/pg-start)")
    parser.add_argument("--verbose", action="store_true", help="print the server's pid")
    parser.add_argument(
        "--ab-test",
        action="store_true",
        help="every trace records an A/B test and variant (metadata experiment/variant),"
        " so that each write keeps the A/B rollups too",
    )
    parser.add_argument(
        "--otlp",
        action="store_true",
        help="OTLP mode: the same workload as OTLP protobuf exports and as JSON batches,"
        " alternating in one run, with the OTLP/JSON cost ratio (bench/otlp_ingest.py)",
    )
    args = parser.parse_args(argv)
    if args.otlp:
        import otlp_ingest  # bench/otlp_ingest.py, next to this file

        forwarded = ["--observations", str(args.observations), "--backend", args.backend]
        forwarded += ["--concurrency", str(args.concurrency), "--clients", str(args.clients)]
        if args.pg_admin_url:
            forwarded += ["--pg-admin-url", args.pg_admin_url]
        return int(otlp_ingest.main(forwarded))
    backends = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    traces_per_batch = max(1, args.batch // EVENTS_PER_TRACE)
    print(
        f"lanterna ingest benchmark: {args.observations} observations, traces of "
        f"{OBS_PER_TRACE} observations, {traces_per_batch * EVENTS_PER_TRACE} events/batch, "
        f"{args.concurrency} connections from {args.clients} client process(es), "
        f"{os.cpu_count()} CPUs"
    )
    ok = True
    for backend in backends:
        r = run(backend, args)
        good = r.stored_observations == r.observations and r.stored_traces == r.sent_traces
        ok = ok and good
        pad = " " * 10
        p50, p99 = _pct(r.latencies, 0.5) * 1000, _pct(r.latencies, 0.99) * 1000
        stored = f"{r.stored_observations:,} observations and {r.stored_traces:,} traces stored"
        print(
            f"{backend:>8}: {r.rate:,.0f} observations/s committed"
            f" ({r.observations:,} observations in {r.seconds:.2f} s;"
            f" {r.rate / TARGET:.2f}x the target of {TARGET:,}/s)\n"
            f"{pad}{len(r.latencies)} requests of {traces_per_batch * EVENTS_PER_TRACE} events:"
            f" latency p50 {p50:.0f} ms, p99 {p99:.0f} ms\n"
            f"{pad}server: {r.server_cpu / r.observations * 1e6:.0f} us CPU per observation,"
            f" peak RSS {r.peak_rss_mib:.0f} MiB ({r.anon_rss_mib:.0f} MiB anonymous"
            " at the end)\n"
            f"{pad}clients: {r.client_cpu / r.observations * 1e6:.0f} us CPU per observation;"
            f" the machine's CPUs {r.busy:.0%} busy\n"
            f"{pad}check: {stored} "
            + ("== sent" if good else f"!= sent ({r.observations:,} / {r.sent_traces:,})"),
            flush=True,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
