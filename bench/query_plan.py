"""Metrics queries answered from raw rows against the planner (rollups where exact), on
``bench/ui.py``'s data (``--traces`` traces over 30 days, built through the real write
path). Prints, per query, the plan's path and the median of ``--runs`` warm runs of
each (``run_raw`` and ``run_query``, in-process: database time plus Python).

    .venv/bin/python bench/query_plan.py --traces 30000
    .venv/bin/python bench/query_plan.py --reuse /tmp/qp/lanterna.db   # keep/reuse the data
    .venv/bin/python bench/query_plan.py --backend postgres --traces 30000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "src"))

from lanterna.analytics.query import explain, parse_query, run_query, run_raw  # noqa: E402
from lanterna.store.db import Database  # noqa: E402
from ui import build, scratch_postgres  # noqa: E402


def _m(measure: str, aggregation: str) -> dict[str, str]:
    return {"measure": measure, "aggregation": aggregation}


#: (label, API version, query without its range, approximate percentiles)
QUERIES: tuple[tuple[str, int, dict[str, Any], bool], ...] = (
    ("v2 cost by model per day", 2, {"view": "observations", "metrics": [_m("totalCost", "sum")],
     "dimensions": [{"field": "providedModelName"}], "timeDimension": {"granularity": "day"}},
     False),
    ("v2 p95 latency by model", 2, {"view": "observations", "metrics": [_m("latency", "p95")],
     "dimensions": [{"field": "providedModelName"}]}, False),
    ("v2 count by trace name per hour", 2, {"view": "observations",
     "metrics": [_m("count", "count")], "dimensions": [{"field": "traceName"}],
     "timeDimension": {"granularity": "hour"}, "config": {"row_limit": 1000}}, False),
    ("v1 traces count by name per hour", 1, {"view": "traces", "metrics": [_m("count", "count")],
     "dimensions": [{"field": "name"}], "timeDimension": {"granularity": "hour"},
     "config": {"row_limit": 1000}}, False),
    ("v1 traces cost+tokens by name per day", 1, {"view": "traces",
     "metrics": [_m("totalCost", "sum"), _m("totalTokens", "sum")],
     "dimensions": [{"field": "name"}], "timeDimension": {"granularity": "day"}}, False),
    ("v1 traces error rate + requests per day", 1, {"view": "traces",
     "metrics": [_m("errorRate", "avg"), _m("count", "count")],
     "timeDimension": {"granularity": "day"}}, False),
    ("v1 traces top 10 users by cost", 1, {"view": "traces", "metrics": [_m("totalCost", "sum")],
     "dimensions": [{"field": "userId"}], "config": {"row_limit": 10}}, False),
    ("v1 traces latency p50/p95 per day (exact)", 1, {"view": "traces",
     "metrics": [_m("latency", "p50"), _m("latency", "p95")],
     "timeDimension": {"granularity": "day"}}, False),
    ("v1 traces latency p50/p95 per day (approx.)", 1, {"view": "traces",
     "metrics": [_m("latency", "p50"), _m("latency", "p95")],
     "timeDimension": {"granularity": "day"}}, True),
)  # fmt: skip


def _median_ms(fn: Any, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(db_url: str, project_id: str, runs: int) -> None:
    """Time every query both ways and print a table."""
    end = datetime.now(timezone.utc)
    start = end - timedelta(days=30)
    window = {"fromTimestamp": start.isoformat(), "toTimestamp": end.isoformat()}
    db = Database(db_url)
    print("| query | path | raw rows (ms) | planned (ms) |\n| --- | --- | --- | --- |")
    try:
        with db.read() as conn:
            for label, version, body, approximate in QUERIES:
                query = parse_query({**body, **window}, version=version)
                path = explain(query, approximate=approximate).path
                raw = _median_ms(lambda q=query: run_raw(conn, project_id, q), runs)
                planned = _median_ms(
                    lambda q=query, a=approximate: run_query(conn, project_id, q, approximate=a),
                    runs,
                )
                print(f"| {label} | {path} | {raw:,.1f} | {planned:,.1f} |", flush=True)
    finally:
        db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--reuse", help="SQLite file lanterna.db to keep the data in")
    parser.add_argument("--pg-admin-url", help="PostgreSQL server (default: scripts/pg-start)")
    args = parser.parse_args()
    if args.backend == "sqlite":
        path = (
            Path(args.reuse).resolve() if args.reuse else Path(tempfile.mkdtemp()) / "lanterna.db"
        )
        db_url = f"sqlite:///{path}"
        if path.exists():
            with Database(db_url).read() as conn:
                project_id = conn.scalar("SELECT id FROM projects WHERE name = 'Bench'")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            project_id = build(db_url, args.traces, 30)
        print(f"SQLite, {args.traces} traces over 30 days, median of {args.runs} warm runs:")
        measure(db_url, project_id, args.runs)
        return 0
    with scratch_postgres(args.pg_admin_url, "qp") as db_url:
        project_id = build(db_url, args.traces, 30)
        print(f"PostgreSQL, {args.traces} traces over 30 days, median of {args.runs} warm runs:")
        measure(db_url, project_id, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
