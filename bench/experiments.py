"""A/B test readout at scale: one test over ``--traces`` traces (default 1 M), each with a
``user_rating`` score, on SQLite and PostgreSQL.

Generates the rows the readout reads, written straight into their tables in large
batches (not through the ingestion write path, which ``bench/ingest.py`` measures):
``traces`` (metadata ``experiment``/``variant`` as the SDK records them, users from a
pool of a fifth as many as traces, assigned 50/50 by ``lanterna.abtests.assign``,
timestamps over 30 days), one ``user_rating`` score per trace (1-5, B a little better)
and ``trace_totals`` (cost, latency, error flag). The data lands in ``--data-dir``
(default /work/wt/abtests-data) and a PostgreSQL database ``lanterna_bench_abtests``;
a run finding them complete skips generation.

As the rows bypass the write path, the A/B rollups (``lanterna.store.ab_rollups``) are
then built by the backfill migration 0034 runs on existing data (timed). Then it times,
warm, the median of ``--runs`` readouts of the declared test (primary metric
user_rating, guardrail cost: read from the A/B rollups, plus the statistics) and of the
ad-hoc comparison by ``metadata.variant`` (raw rows: grouped statements over every
trace), against the target of 500 ms; with ``--raw`` also one readout of the declared
test from the raw rows (what it cost before the rollups).

    .venv/bin/python bench/experiments.py                       # both backends, 1 M
    .venv/bin/python bench/experiments.py --backend sqlite --traces 100000 --raw
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lanterna.abtests.assign import variant_for  # noqa: E402
from lanterna.analytics import ab_readout  # noqa: E402
from lanterna.analytics.ab_readout import Grouping  # noqa: E402
from lanterna.store import ab_rollups, ab_tests, projects  # noqa: E402
from lanterna.store.db import Database  # noqa: E402
from lanterna.store.migrations import migrate  # noqa: E402

TARGET_MS = 500.0
NAME = "checkout-prompt"
BATCH = 20_000
PG_ADMIN = "postgresql://postgres@127.0.0.1:54329/postgres"


def _definition() -> dict[str, Any]:
    return {
        "name": NAME,
        "description": "bench",
        "unit": "user",
        "variants": [
            {"name": "A", "weight": 50.0, "promptVersion": None, "promptLabel": None},
            {"name": "B", "weight": 50.0, "promptVersion": None, "promptLabel": None},
        ],
        "control": "A",
        "prompt": None,
        "primary_metric": "user_rating",
        "guardrails": ["cost"],
        "mde": 0.05,
        "alpha": 0.05,
        "salt": "bench",
    }


def generate(db: Database, traces: int, seed: int) -> str:
    """Write the project, the running test and ``traces`` traces with scores; its id."""
    rng = random.Random(seed)
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=30)
    with db.transaction() as conn:
        org = projects.create_organization(conn, "Bench org")
        pid = projects.create_project(conn, org, "A/B bench")
        row = ab_tests.create(conn, pid, _definition())
        test = ab_tests.set_state(conn, pid, NAME, "running", start)
        assert row and test
    test_json = {**test, "id": test["id"]}
    users = max(traces // 5, 1)
    span = 30 * 86400
    done = 0
    while done < traces:
        n = min(BATCH, traces - done)
        t_rows, s_rows, tt_rows = [], [], []
        for i in range(done, done + n):
            user = f"user-{rng.randrange(users)}"
            variant = variant_for(test_json, user)
            at = start + timedelta(seconds=span * i / traces)
            trace_id = uuid.UUID(int=rng.getrandbits(128)).hex
            stamp = db.dialect.ts(at)
            meta = db.dialect.json({"experiment": NAME, "variant": variant})
            t_rows.append(
                (pid, trace_id, stamp, "checkout", user, "default", meta, "[]", False, False,
                 stamp, stamp)
            )  # fmt: skip
            mean = 3.60 if variant == "B" else 3.55
            rating = float(min(5, max(1, round(rng.gauss(mean, 1.0)))))
            s_rows.append(
                (pid, uuid.UUID(int=rng.getrandbits(128)).hex, stamp, trace_id, "user_rating",
                 rating, "NUMERIC", "API", "default", stamp, stamp)
            )  # fmt: skip
            cost = round(rng.lognormvariate(-5, 0.5) * (1.08 if variant == "B" else 1.0), 6)
            tt_rows.append(
                (pid, trace_id, stamp, "default", user, 2, cost, 900,
                 round(rng.lognormvariate(0, 0.4), 3), int(rng.random() < 0.02))
            )  # fmt: skip
        with db.transaction() as conn:
            cur = conn.raw.cursor()
            sql = conn.dialect.sql
            cur.executemany(
                sql(
                    "INSERT INTO traces (project_id, id, timestamp, name, user_id, environment,"
                    " metadata, tags, public, bookmarked, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                t_rows,
            )
            cur.executemany(
                sql(
                    "INSERT INTO scores (project_id, id, timestamp, trace_id, name, value,"
                    " data_type, source, environment, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                s_rows,
            )
            cur.executemany(
                sql(
                    "INSERT INTO trace_totals (project_id, trace_id, timestamp, environment,"
                    " user_id, observations, cost, tokens, latency, error)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                tt_rows,
            )
        done += n
        print(f"  {done:,} / {traces:,} traces", end="\r", flush=True)
    with db.transaction() as conn:
        conn.run("CREATE TABLE IF NOT EXISTS bench_done (traces BIGINT)")
        conn.run("INSERT INTO bench_done (traces) VALUES (?)", (traces,))
    print()
    return pid


def existing(db: Database, traces: int) -> str | None:
    conn = db.connect_writer()
    try:
        done = conn.scalar("SELECT traces FROM bench_done")
    except Exception:
        return None
    finally:
        conn.raw.close()
    if done != traces:
        return None
    conn = db.connect_writer()
    try:
        return str(conn.scalar("SELECT project_id FROM ab_tests WHERE name = ?", (NAME,)))
    finally:
        conn.raw.close()


def time_reads(db: Database, pid: str, runs: int, raw: bool) -> dict[str, float]:
    conn = db.connect_writer()
    test = ab_tests.get(conn, pid, NAME)
    assert test is not None
    weights = {v["name"]: v["weight"] for v in test["variants"]}

    def declared(rollup: bool = True) -> dict[str, Any]:
        return ab_readout.readout(
            conn, pid, Grouping("abTest", NAME), metric="user_rating", guardrails=["cost"],
            variants=list(weights), control="A", weights=weights, mde=0.05, rollup=rollup,
        )  # fmt: skip

    def declared_raw() -> dict[str, Any]:
        return declared(rollup=False)

    def ad_hoc() -> dict[str, Any]:
        return ab_readout.readout(
            conn, pid, Grouping("metadata", "variant"), metric="user_rating", control="A"
        )

    out: dict[str, float] = {}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"  load average {load} on {os.cpu_count()} CPUs (the figures are wall times)")
    try:
        reads = [("readout (declared test, A/B rollups)", declared, runs),
                 ("compare by metadata.variant (raw rows)", ad_hoc, runs)]  # fmt: skip
        if raw:  # the readout before the rollups: every trace, once (slow at 1 M)
            reads.append(("readout (declared test, raw rows)", declared_raw, 1))
        for label, read, n_runs in reads:
            result = read()  # warm
            times, cpu = [], []
            for _ in range(n_runs):
                t0, c0 = time.perf_counter(), time.process_time()
                read()
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
            out[label] = statistics.median(times)
            n = sum(result["primary"]["variants"][v]["n"] for v in result["variants"])
            print(f"  {label}: {out[label]:.0f} ms median of {n_runs} (target {TARGET_MS:.0f} ms,"
                  f" {out[label] / TARGET_MS:.2f}x; CPU of this process"
                  f" {statistics.median(cpu):.0f} ms) over {n:,} scored traces")  # fmt: skip
        print(f"  verdict: {result['verdict']['text']}")
    finally:
        conn.raw.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--data-dir", default="/work/wt/abtests-data")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--raw", action="store_true", help="also time the declared test from the raw rows"
    )
    args = parser.parse_args()
    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    figures: dict[str, dict[str, float]] = {}
    for backend in ("sqlite", "postgres"):
        if args.backend not in (backend, "both"):
            continue
        if backend == "sqlite":
            url = f"sqlite:///{data / f'abtests-{args.traces}.db'}"
        else:
            import psycopg

            name = f"lanterna_bench_abtests_{args.traces}"
            with psycopg.connect(args.pg_admin_url, autocommit=True) as admin:
                if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                     (name,)).fetchone():  # fmt: skip
                    admin.execute(f'CREATE DATABASE "{name}"')
            url = args.pg_admin_url.rsplit("/", 1)[0] + "/" + name
        db = Database(url)
        t0 = time.perf_counter()
        done = migrate(db)
        if done:
            print(f"  migrations {', '.join(done)} in {time.perf_counter() - t0:.1f} s")
        pid = existing(db, args.traces)
        print(f"{backend}: {args.traces:,} traces")
        if pid is None:
            t0 = time.perf_counter()
            pid = generate(db, args.traces, args.seed)
            if backend == "postgres":
                conn = db.connect_writer()
                conn.raw.execute("ANALYZE")
                conn.raw.close()
            print(f"  generated in {time.perf_counter() - t0:.0f} s")
            t0 = time.perf_counter()
            with db.transaction() as conn:  # the rows went in beside the write path
                for table in ("ab_members", "ab_rollup_hours", "ab_rollup_units",
                              "ab_rollup_scores", "ab_rollup_labels"):  # fmt: skip
                    conn.run(f"DELETE FROM {table}")
                ab_rollups.backfill(conn)
            print(f"  A/B rollups built (the migration's backfill) in"
                  f" {time.perf_counter() - t0:.1f} s")  # fmt: skip
        figures[backend] = time_reads(db, pid, args.runs, args.raw)
        db.close()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
