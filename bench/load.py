"""Sustained mixed load on one ``lanterna serve`` process, for ``--minutes`` (default 10).

``--clients`` client processes (default 3) each run ``--threads`` keep-alive connections
(default 2) that pick a request kind at random, by weight, until time is up:

- ``ingest``: a Langfuse JSON batch of 4 traces (24 events; bench/ingest.py's shape),
- ``otlp``: an OTLP protobuf export of 2 traces (bench/otlp_ingest.py's shape),
- ``traces``, ``observations``, ``sessions``: a page of the list (SDK reads),
- ``trace``: one trace this client had acknowledged, with its observations,
- ``metrics``: ``GET /api/public/metrics/daily``,
- ``prompt``: ``GET /api/public/v2/prompts/{name}?label=production`` (SDK prompt fetch),
- ``ui-traces``, ``ui-trace``, ``ui-metrics``: the web UI's trace list, a trace this
  client had acknowledged and the metrics dashboard, as the admin user logged in with
  the login form (each client process logs in once).

Prints, every ``--every`` seconds, the requests done so far and the server's RSS; at the
end, per kind: requests, errors (any status other than the expected one, any per-event
error in a 207, any connection failure), throughput and latency p50/p99; the server's
RSS first / last / max after ``--warmup`` seconds (60; a quarter of a shorter run);
and the acknowledged traces the database does not hold (must be 0: checked with SQL in
the database itself).
Exits non-zero on errors, on lost traces, or when RSS grew by more than ``--rss-slack``
MiB after warm-up (the median of the last third of the samples minus the first third's).

    nice .venv/bin/python bench/load.py                       # 10 minutes on SQLite
    nice .venv/bin/python bench/load.py --minutes 1 --backend postgres
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import random
import re
import sqlite3
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as json_bench  # bench/ingest.py: the server, JSON batches, percentiles
from otlp_ingest import OtlpMaker  # bench/otlp_ingest.py: OTLP exports

PROMPT = "load-prompt"
#: The admin the server bootstraps (``LANTERNA_ADMIN_*``); the UI kinds log in as it.
ADMIN_EMAIL, ADMIN_PASSWORD = "load@example.com", "load bench password 2026"

#: kind -> (weight, method, path or None when built per request, expected status)
KINDS: dict[str, tuple[int, str, str | None, int]] = {
    "ingest": (30, "POST", "/api/public/ingestion", 207),
    "otlp": (15, "POST", "/api/public/otel/v1/traces", 200),
    "traces": (10, "GET", "/api/public/traces?limit=20", 200),
    "observations": (8, "GET", "/api/public/observations?limit=20", 200),
    "sessions": (5, "GET", "/api/public/sessions?limit=20", 200),
    "trace": (10, "GET", None, 200),
    "metrics": (6, "GET", "/api/public/metrics/daily?limit=7", 200),
    "prompt": (10, "GET", f"/api/public/v2/prompts/{PROMPT}?label=production", 200),
    "ui-traces": (4, "GET", "/project/{project}/traces", 200),
    "ui-trace": (3, "GET", None, 200),
    "ui-metrics": (3, "GET", "/project/{project}/metrics", 200),
}


@dataclass
class Job:
    port: int
    auth: str
    project: str
    threads: int
    seconds: float
    seed: int


def _cookie(response: http.client.HTTPResponse, name: str) -> str:
    """The value of the cookie ``name`` that ``response`` sets."""
    for header in response.headers.get_all("Set-Cookie") or []:
        found = re.match(rf"{name}=([^;]*)", header)
        if found:
            return found.group(1)
    raise SystemExit(f"no {name} cookie in the answer ({response.status})")


def _ui_login(port: int) -> str:
    """Log in with the login form as the bootstrapped admin; the ``Cookie`` header of
    the session."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/login")
    response = conn.getresponse()
    response.read()
    csrf = _cookie(response, "lanterna_login_csrf")
    form = urlencode({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": csrf})
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"lanterna_login_csrf={csrf}",
    }
    conn.request("POST", "/login", form, headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    if response.status != 303:
        raise SystemExit(f"login failed: {response.status}")
    return f"lanterna_session={_cookie(response, 'lanterna_session')}"


@dataclass
class Tally:
    """One client process's results."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    acked: list[str] = field(default_factory=list)


def _client(job: Job, done: Any, start: Any, results: Any) -> None:
    rng = random.Random(job.seed)
    json_maker = json_bench.BatchMaker(job.seed)
    otlp_maker = OtlpMaker(job.seed + 1_000)
    lock = threading.Lock()
    tally = Tally()
    kinds = list(KINDS)
    weights = [KINDS[k][0] for k in kinds]
    session = _ui_login(job.port)

    def body_for(kind: str) -> tuple[bytes | None, str, list[str]]:
        """(body, content type, trace ids it acknowledges)."""
        with lock:  # the makers' random state is not thread-safe
            if kind == "ingest":
                events = []
                for _ in range(4):
                    events.extend(json_maker.trace_events())
                ids = [e["body"]["id"] for e in events if e["type"] == "trace-create"]
                return orjson.dumps({"batch": events}), "application/json", ids
            if kind == "otlp":
                body = otlp_maker.batch(2)
                spans = ExportTraceServiceRequest.FromString(body).resource_spans[0]
                ids = sorted({s.trace_id.hex() for s in spans.scope_spans[0].spans})
                return body, "application/x-protobuf", ids
        return None, "", []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", job.port, timeout=120)
        deadline = start_time + job.seconds
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            _weight, method, path, expected = KINDS[kind]
            if kind in ("trace", "ui-trace"):
                with lock:
                    if not tally.acked:
                        continue
                    tid = quote(rng.choice(tally.acked), safe="")
                path = (
                    f"/api/public/traces/{tid}"
                    if kind == "trace"
                    else f"/project/{job.project}/traces/{tid}"
                )
            elif path is not None:
                path = path.replace("{project}", job.project)
            body, media, ids = body_for(kind)
            ui = kind.startswith("ui-")
            headers = {"Cookie": session} if ui else {"Authorization": job.auth}
            if body is not None:
                headers["Content-Type"] = media
            assert path is not None
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body, headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", job.port, timeout=120)
                payload, status = repr(exc).encode(), 0
            elapsed = time.perf_counter() - t0
            failed = status != expected or (status == 207 and orjson.loads(payload)["errors"])
            with lock:
                if failed:
                    tally.errors.setdefault(kind, []).append(f"{status}: {payload[:200]!r}")
                else:
                    tally.latencies.setdefault(kind, []).append(elapsed)
                    tally.acked.extend(ids)
            done.value += 1  # mp.Value: approximate, for the progress lines
        conn.close()

    start.wait()
    start_time = time.monotonic()
    workers = [threading.Thread(target=worker) for _ in range(job.threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    results.put(tally)


def _create_prompt(port: int, auth: str) -> None:
    body = {
        "name": PROMPT,
        "type": "chat",
        "prompt": [{"role": "system", "content": "You answer questions about {{topic}}."}],
        "labels": ["production"],
        "config": {"model": "gpt-4o-mini", "temperature": 0.2},
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    conn.request("POST", "/api/public/v2/prompts", orjson.dumps(body), headers)
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"creating the prompt failed: {response.status} {response.read()!r}")
    conn.close()


def _project_id(port: int, auth: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/api/public/projects", headers={"Authorization": auth})
    response = conn.getresponse()
    project = str(orjson.loads(response.read())["data"][0]["id"])
    conn.close()
    return project


def _missing(backend: str, workdir: Path, db_args: list[str], acked: list[str]) -> int:
    """How many acknowledged trace ids the database does not hold (read with SQL)."""
    if backend == "sqlite":
        conn: Any = sqlite3.connect(workdir / "lanterna.db")
    else:
        import psycopg

        conn = psycopg.connect(db_args[1])
    try:
        stored = {row[0] for row in conn.execute("SELECT id FROM traces").fetchall()}
    finally:
        conn.close()
    return len(set(acked) - stored)


def run(args: argparse.Namespace) -> int:
    seconds = args.minutes * 60
    admin = {"LANTERNA_ADMIN_EMAIL": ADMIN_EMAIL, "LANTERNA_ADMIN_PASSWORD": ADMIN_PASSWORD}
    admin.update(item.split("=", 1) for item in args.setting)
    with json_bench.server_on_scratch_database(
        args.backend, args.pg_admin_url, "lanterna-load-", admin
    ) as (
        server,
        workdir,
        db_args,
    ):
        _create_prompt(server.port, server.auth)
        project = _project_id(server.port, server.auth)
        ctx = mp.get_context("fork")
        done, start, results = ctx.Value("q", 0, lock=False), ctx.Event(), ctx.Queue()
        jobs = [
            Job(server.port, server.auth, project, args.threads, seconds, args.seed + 7 * n)
            for n in range(args.clients)
        ]
        procs = [ctx.Process(target=_client, args=(j, done, start, results)) for j in jobs]
        for proc in procs:
            proc.start()
        print(
            f"{args.backend}: {args.clients} client processes x {args.threads} connections,"
            f" {args.minutes:g} min, server pid {server.proc.pid}",
            flush=True,
        )
        t0 = time.monotonic()
        cpu0 = server.cpu_seconds()
        start.set()
        samples: list[tuple[float, float]] = []
        wal_mib: list[float] = []
        print(
            f"{'elapsed s':>9} {'requests':>9} {'req/s':>7} {'RSS MiB':>8} {'db MiB':>7}"
            f" {'WAL MiB':>8}",
            flush=True,
        )
        last_done, last_t = 0, t0
        while (now := time.monotonic()) < t0 + seconds:
            time.sleep(min(args.every, max(0.0, t0 + seconds - now)))
            now = time.monotonic()
            rss = server._status_mib("VmRSS")
            samples.append((now - t0, rss))
            count = done.value
            rate = (count - last_done) / max(now - last_t, 1e-9)
            size = _db_mib(args.backend, workdir)
            wal_mib.append(_wal_mib(args.backend, workdir))
            print(
                f"{now - t0:9.0f} {count:9d} {rate:7.0f} {rss:8.1f} {size:7.1f} {wal_mib[-1]:8.1f}",
                flush=True,
            )
            last_done, last_t = count, now
        tallies = [results.get() for _ in procs]
        for proc in procs:
            proc.join()
        elapsed = time.monotonic() - t0
        server_cpu = server.cpu_seconds() - cpu0
        acked = [tid for t in tallies for tid in t.acked]
        missing = _missing(args.backend, workdir, db_args, acked)
    return _report(args, tallies, elapsed, server_cpu, samples, len(acked), missing, wal_mib)


def _db_mib(backend: str, workdir: Path) -> float:
    """The SQLite database's size with its WAL (MiB; 0 on PostgreSQL): each of the
    server's connections keeps up to 64 MiB of its pages cached (``store/db.py``), so
    the server's RSS follows the database's growth until those caches are full."""
    if backend != "sqlite":
        return 0.0
    files = [workdir / "lanterna.db", workdir / "lanterna.db-wal"]
    return sum(f.stat().st_size for f in files if f.exists()) / 2**20


def _wal_mib(backend: str, workdir: Path) -> float:
    """The SQLite WAL file's size (MiB; 0 on PostgreSQL): the writer restarts it past
    128 MiB, so under any load it must stay near that (``WAL_LIMIT_MIB``)."""
    wal = workdir / "lanterna.db-wal"
    return wal.stat().st_size / 2**20 if backend == "sqlite" and wal.exists() else 0.0


#: The WAL may pass its 128 MiB restart size between two restarts, not grow beyond this.
WAL_LIMIT_MIB = 256.0


def rss_growth(rss: list[float]) -> float:
    """How much RSS grew over the samples: the median of their last third minus the
    median of their first third (one sample taken while a large answer was being built,
    or just after the allocator gave memory back, moves neither)."""
    third = max(1, len(rss) // 3)
    return statistics.median(rss[-third:]) - statistics.median(rss[:third])


def _report(
    args: argparse.Namespace,
    tallies: list[Tally],
    elapsed: float,
    server_cpu: float,
    samples: list[tuple[float, float]],
    acked: int,
    missing: int,
    wal_mib: list[float],
) -> int:
    print(f"\n{'kind':>12} {'requests':>9} {'errors':>7} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}")
    total = errors = 0
    for kind in KINDS:
        lat = [x for t in tallies for x in t.latencies.get(kind, [])]
        errs = [e for t in tallies for e in t.errors.get(kind, [])]
        total += len(lat) + len(errs)
        errors += len(errs)
        print(
            f"{kind:>12} {len(lat) + len(errs):9d} {len(errs):7d} {len(lat) / elapsed:7.1f}"
            f" {json_bench._pct(lat, 0.5) * 1000:8.1f} {json_bench._pct(lat, 0.99) * 1000:8.1f}"
        )
        for err in sorted(set(errs))[:3]:
            print(f"{'':>12}   e.g. {err}")
    print(f"{'all':>12} {total:9d} {errors:7d} {total / elapsed:7.1f}")
    warmup = min(args.warmup, args.minutes * 60 / 4)
    rss = [r for t, r in samples if t >= warmup] or [r for _, r in samples] or [0.0]
    growth = rss_growth(rss)
    print(
        f"server RSS MiB after {warmup:.0f} s of warm-up: first {rss[0]:.1f},"
        f" last {rss[-1]:.1f}, max {max(rss):.1f}"
        f" (growth {growth:+.1f}: median of the last third minus the first's);"
        f" server CPU {server_cpu:.0f} s in {elapsed:.0f} s"
    )
    print(f"acknowledged traces: {acked}, missing from the database: {missing}")
    wal_max = max(wal_mib, default=0.0)
    print(f"WAL MiB: max {wal_max:.1f} (limit {WAL_LIMIT_MIB:.0f})")
    failed = errors > 0 or missing > 0 or growth > args.rss_slack or wal_max > WAL_LIMIT_MIB
    print("FAIL" if failed else "OK", flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--clients", type=int, default=3, help="client processes")
    parser.add_argument("--threads", type=int, default=2, help="connections per client")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between RSS lines")
    parser.add_argument(
        "--rss-slack", type=float, default=64.0, help="allowed RSS growth after warm-up, MiB"
    )
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds before RSS must stay flat"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="LANTERNA_NAME=VALUE",
        help="a setting for the server (repeatable), e.g. LANTERNA_SQLITE_MEMORY_MIB=64",
    )
    parser.add_argument("--pg-admin-url", help="PostgreSQL server for --backend postgres")
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
