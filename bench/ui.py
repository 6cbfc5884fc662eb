"""Dashboard server time at scale: the traces list, a trace of 200 observations and the
metrics page, on a project of ``--traces`` traces (100k by default).

Data goes through the real write path (Langfuse events -> ``read_event`` ->
``apply_events``, the ingestion merge and pricing) in large transactions, not over HTTP,
so building 100k traces takes a minute or two rather than the ingestion benchmark's
time. Pages are requested through the real app in-process (ASGI, a logged-in session,
templates rendered); the figure is the median of ``--runs`` requests after one warm-up,
which is the time the server spends on a page (no network).

    .venv/bin/python bench/ui.py                        # SQLite, 100k traces
    .venv/bin/python bench/ui.py --traces 20000 --backend postgres
    .venv/bin/python bench/ui.py --reuse bench/results/ui.db   # keep/reuse the data

Target: each page under 200 ms on SQLite. See bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lanterna.accounts import store as accounts  # noqa: E402
from lanterna.ingest.langfuse_events import read_event  # noqa: E402
from lanterna.server.app import create_app  # noqa: E402
from lanterna.server.settings import Settings  # noqa: E402
from lanterna.store import projects  # noqa: E402
from lanterna.store.db import Database  # noqa: E402
from lanterna.store.migrations import migrate  # noqa: E402
from lanterna.store.write import apply_events  # noqa: E402

PASSWORD = "bench password"
EMAIL = "bench@example.com"
BIG_TRACE = "bench-trace-200"


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _envelope(type_: str, body: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": type_, "timestamp": _iso(at), "body": body}


def trace_events(rng: random.Random, i: int, at: datetime) -> list[dict[str, Any]]:
    """One chat trace: a root span, a retrieval, a priced generation (2% fail)."""
    tid = f"bench-{i}"
    latency = rng.lognormvariate(0.2, 0.6)
    question = f"question {i}: " + " ".join(rng.choice(_WORDS) for _ in range(20))
    answer = " ".join(rng.choice(_WORDS) for _ in range(60))
    error = rng.random() < 0.02
    events = [
        _envelope(
            "trace-create",
            {
                "id": tid,
                "name": rng.choice(("chat", "search", "summarize")),
                "userId": f"user-{rng.randrange(2000)}",
                "sessionId": f"session-{rng.randrange(20000)}",
                "input": {"messages": [{"role": "user", "content": question}]},
                "output": answer,
                "tags": ["bench"],
                "metadata": {"variant": rng.choice("AB")},
                "timestamp": _iso(at),
            },
            at,
        ),
        _envelope(
            "span-create",
            {
                "id": f"{tid}-root",
                "traceId": tid,
                "name": "agent",
                "startTime": _iso(at),
                "endTime": _iso(at + timedelta(seconds=latency)),
            },
            at,
        ),
        _envelope(
            "span-create",
            {
                "id": f"{tid}-retrieve",
                "traceId": tid,
                "parentObservationId": f"{tid}-root",
                "name": "retrieve",
                "startTime": _iso(at),
                "endTime": _iso(at + timedelta(seconds=latency * 0.2)),
                "level": "ERROR" if error else "DEFAULT",
                "statusMessage": "timeout" if error else None,
            },
            at,
        ),
        _envelope(
            "generation-create",
            {
                "id": f"{tid}-llm",
                "traceId": tid,
                "parentObservationId": f"{tid}-root",
                "name": "answer",
                "model": rng.choice(("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet")),
                "startTime": _iso(at + timedelta(seconds=latency * 0.2)),
                "endTime": _iso(at + timedelta(seconds=latency)),
                "input": [{"role": "user", "content": question}],
                "output": answer,
                "usageDetails": {
                    "input": rng.randrange(200, 3000),
                    "output": rng.randrange(50, 800),
                },
            },
            at,
        ),
    ]
    return events


_WORDS = [
    "the",
    "model",
    "answered",
    "with",
    "a",
    "short",
    "summary",
    "of",
    "the",
    "retrieved",
    "documents",
    "and",
    "cited",
    "two",
    "sources",
    "while",
    "the",
    "user",
    "asked",
    "for",
    "more",
    "detail",
    "about",
    "pricing",
    "latency",
    "and",
    "refunds",
]


def big_trace_events(at: datetime, count: int = 200) -> list[dict[str, Any]]:
    """One trace of ``count`` observations: nested spans and generations."""
    events = [
        _envelope(
            "trace-create",
            {"id": BIG_TRACE, "name": "long agent run", "userId": "user-1", "timestamp": _iso(at)},
            at,
        )
    ]
    for j in range(count):
        parent = None if j == 0 else f"{BIG_TRACE}-{(j - 1) // 4}"
        start = at + timedelta(milliseconds=20 * j)
        body = {
            "id": f"{BIG_TRACE}-{j}",
            "traceId": BIG_TRACE,
            "parentObservationId": parent,
            "name": f"step {j}",
            "startTime": _iso(start),
            "endTime": _iso(start + timedelta(milliseconds=300)),
            "input": {"step": j, "text": "x" * 400},
            "output": {"ok": True, "text": "y" * 400},
        }
        if j % 3 == 0:
            body.update(model="gpt-4o-mini", usageDetails={"input": 500, "output": 100})
            events.append(_envelope("generation-create", body, at))
        else:
            events.append(_envelope("span-create", body, at))
    return events


def build(db_url: str, traces: int, days: int) -> str:
    """A project with ``traces`` traces over ``days`` days, the 200-observation trace,
    scores, and an owner; returns the project id."""
    db = Database(db_url)
    migrate(db)
    conn = db.connect_writer()
    rng = random.Random(7)
    end = datetime.now(timezone.utc)
    started = time.perf_counter()
    try:

        def tx(work):  # type: ignore[no-untyped-def]
            with conn.transaction():
                return work()

        def setup() -> str:
            org = projects.create_organization(conn, "Bench")
            project_id = projects.create_project(conn, org, "Bench")
            user = accounts.create_user(conn, EMAIL, PASSWORD)
            accounts.set_member(conn, user, project_id, "owner")
            return project_id

        project_id = tx(setup)
        batch: list[Any] = []
        for i in range(traces):
            at = end - timedelta(seconds=rng.uniform(60, days * 86400))
            for raw in trace_events(rng, i, at):
                batch.append(read_event(raw)[1])
            if i % 10 == 0:
                body = {
                    "id": f"score-{i}",
                    "traceId": f"bench-{i}",
                    "name": "user_rating",
                    "value": rng.randrange(1, 6),
                }
                batch.append(read_event(_envelope("score-create", body, at))[1])
            if len(batch) >= 8000 or i == traces - 1:
                tx(lambda events=batch: apply_events(conn, project_id, events))
                batch = []
                if (i + 1) % 20000 < 2000:
                    print(f"  {i + 1} traces ({time.perf_counter() - started:.0f} s)", flush=True)
        big = [read_event(raw)[1] for raw in big_trace_events(end - timedelta(hours=1))]
        tx(lambda: apply_events(conn, project_id, big))
        conn.raw.execute("ANALYZE")  # what a long-running database has: planner statistics
    finally:
        conn.raw.close()
        db.close()
    print(f"built {traces} traces in {time.perf_counter() - started:.0f} s")
    return project_id


def login(client: Any) -> None:
    """Log the in-process client in as the bench project's owner (a session cookie)."""
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    client.post("/login", data={"csrf_token": token.group(1), "email": EMAIL, "password": PASSWORD})


def measure(db_url: str, data_dir: str, project_id: str, runs: int) -> dict[str, float]:
    """Median milliseconds per page, through the real app in-process."""
    from starlette.testclient import TestClient

    settings = Settings(
        data_dir=data_dir, database_url="" if db_url.startswith("sqlite") else db_url
    )
    app = create_app(settings)
    p = f"/project/{project_id}"
    pages = {
        "traces list (page 1 of 50, all time)": f"{p}/traces",
        "traces list, filtered (user, 7 days)": f"{p}/traces?user=user-7&range=7d",
        "trace detail (200 observations)": f"{p}/traces/{BIG_TRACE}",
        "trace detail, one observation selected": (
            f"{p}/traces/{BIG_TRACE}?observation={BIG_TRACE}-3"
        ),
        "metrics page (last 24 hours)": f"{p}/metrics?range=24h",
        "metrics page (last 7 days)": f"{p}/metrics?range=7d",
        "metrics page (last 30 days = all traces)": f"{p}/metrics?range=30d",
        "metrics page, metadata filter (last 7 days)": f"{p}/metrics?range=7d&meta=variant%3DA",
        "sessions list": f"{p}/sessions",
        "users list": f"{p}/users",
    }
    out: dict[str, float] = {}
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        login(client)
        for name, path in pages.items():
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
            out[name] = statistics.median(times)
            print(f"  {name:45s} {out[name]:7.1f} ms  (min {min(times):.1f})", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30, help="spread of the traces' timestamps")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--reuse", help="SQLite file to keep the data in (built if missing)")
    parser.add_argument("--pg-admin-url", help="PostgreSQL server (default: scripts/pg-start)")
    args = parser.parse_args()

    if args.backend == "sqlite":
        data_dir = str(Path(args.reuse).resolve().parent) if args.reuse else tempfile.mkdtemp()
        path = Path(args.reuse).resolve() if args.reuse else Path(data_dir) / "lanterna.db"
        if args.reuse and path.name != "lanterna.db":
            parser.error("--reuse: name the file lanterna.db (the server's file name)")
        db_url = f"sqlite:///{path}"
        if path.exists():
            with Database(db_url).read() as conn:
                project_id = conn.scalar("SELECT id FROM projects WHERE name = 'Bench'")
            print(f"reusing {path}")
        else:
            project_id = build(db_url, args.traces, args.days)
        print(f"SQLite, {args.traces} traces over {args.days} days:")
        measure(db_url, data_dir, project_id, args.runs)
        return 0

    with scratch_postgres(args.pg_admin_url, "ui") as db_url:
        project_id = build(db_url, args.traces, args.days)
        print(f"PostgreSQL, {args.traces} traces over {args.days} days:")
        measure(db_url, tempfile.mkdtemp(), project_id, args.runs)
    return 0


@contextmanager
def scratch_postgres(admin_url: str | None, tag: str) -> Iterator[str]:
    """A fresh PostgreSQL database (on ``admin_url``, or the server ``scripts/pg-start``
    starts), dropped afterwards; yields its URL."""
    admin = (
        admin_url
        or subprocess.run(
            [str(ROOT / "scripts" / "pg-start")], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    import psycopg

    name = f"lanterna_bench_{tag}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
