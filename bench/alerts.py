"""Alert evaluation at scale: 100 rules over 1 M observations, on SQLite and PostgreSQL.

Two measurements per backend:

1. **Evaluation tick.** A data set of ``--observations`` (default 1 M) built through
   the real write path by bench/analytics.py's generator, in this bench's own data
   directory (``--data-dir``, required) and, on PostgreSQL, its own database
   ``lanterna_bench_alerts``. 100 rules (:func:`rule_set`: project-wide, per trace
   name, per model, per environment, per user, per tag, average score, baseline mode;
   windows of 5 minutes to 24 hours) are stored in its project, and an in-process
   :class:`~lanterna.alerts.evaluator.Evaluator` (the server's, with its writer) ticks
   at the data's end with every rule due: the median of ``--ticks`` ticks is the time
   per evaluation tick (target: under 1 s on SQLite). For comparison it also times the
   rules' metric reads one query per rule (how the evaluator read them before rules
   sharing a range were grouped).
2. **Ingestion with and without the evaluator.** bench/ingest.py's machinery: a
   ``lanterna serve`` subprocess on a scratch database takes ``--ingest-observations``
   (default 100,000) from its client processes, with the evaluator off
   (``LANTERNA_ALERT_TICK_SECONDS=0``), with 100 rules of the same mix due every 10
   seconds (the shortest interval) evaluated inside the server (a look every second),
   and with them evaluated by a ``lanterna worker --interval 1`` process beside it; the
   rules' windows hold the data being ingested. ``--rounds`` runs of each, in turn;
   prints the medians' committed observations per second and the differences.

    .venv/bin/python bench/alerts.py --data-dir /work/wt/alerts-data
    .venv/bin/python bench/alerts.py --data-dir DIR --backend sqlite --skip-ingest

See bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import analytics  # noqa: E402  (bench/analytics.py: the data generator and its layout)
import ingest  # noqa: E402  (bench/ingest.py: the ingestion server and clients)

from lanterna.alerts.evaluator import Evaluator  # noqa: E402
from lanterna.alerts.rules import check_rule  # noqa: E402
from lanterna.analytics.alert_metrics import MetricSpec, measure  # noqa: E402
from lanterna.store.db import Database  # noqa: E402
from lanterna.store.interface import sql_store  # noqa: E402
from lanterna.store.writer import Writer  # noqa: E402

RULES = 100
TICK_TARGET_S = 1.0
PG_NAME = "lanterna_bench_alerts"


def rule_set(
    trace_names: list[str],
    models: list[str],
    environments: list[str],
    users: list[str],
    tags: list[str],
    *,
    interval: int = 60,
) -> list[dict[str, Any]]:
    """100 rules as a team might set them up (API bodies)."""
    out: list[dict[str, Any]] = []

    def rule(metric: str, window: int, threshold: float = 1.0, **more: Any) -> None:
        body = {"name": f"r{len(out)} {metric}", "metric": metric, "threshold": threshold,
                "windowSeconds": window, "intervalSeconds": interval, **more}  # fmt: skip
        out.append(body)

    for metric, window in [("error_rate", 300), ("count", 300), ("total_cost", 3600),
                           ("tokens", 3600), ("latency_p95", 900), ("latency_p99", 3600),
                           ("ttft_p95", 900), ("latency_p50", 86400), ("error_rate", 86400),
                           ("total_cost", 86400)]:  # fmt: skip
        rule(metric, window)  # project-wide: 10
    for i in range(16):  # per trace name: 32
        name = trace_names[i % len(trace_names)]
        rule("error_rate", 300, 5, filters={"traceName": name})
        rule("latency_p95", 900, 5000, filters={"traceName": name})
    for i in range(10):  # per model: 20
        model = models[i % len(models)]
        rule("total_cost", 3600, 10, filters={"model": model})
        rule("tokens", 3600, 1e6, filters={"model": model})
    for i in range(3):  # per environment: 6
        env = environments[i % len(environments)]
        rule("error_rate", 900, 5, filters={"environment": env})
        rule("count", 900, 1e6, filters={"environment": env})
    for i in range(10):  # per user: 10 (high cardinality: one query each)
        rule("total_cost", 86400, 5, filters={"userId": users[i % len(users)]})
    for i in range(6):  # per tag: 6
        rule("count", 3600, 1e6, filters={"tag": tags[i % len(tags)]})
    for window, env in (
        (3600, None),
        (86400, None),
        (3600, environments[0]),
        (86400, environments[0]),
    ):
        rule("score_avg", window, 0.5, scoreName="user_rating",
             filters={"environment": env} if env else {})  # fmt: skip  # score average: 4
    for i in range(6):  # baseline mode: 12
        filters = {"traceName": trace_names[(i - 1) % len(trace_names)]} if i else {}
        rule("count", 3600, mode="baseline", baseline="same_hour_last_week", factor=3,
             threshold=None, filters=filters)  # fmt: skip
        rule("error_rate", 3600, mode="baseline", baseline="last_24_hours", factor=2,
             threshold=None, filters=filters)  # fmt: skip
    assert len(out) == RULES, len(out)
    return out


# --- the data set ------------------------------------------------------------------------


def target_for(backend: str, data_dir: Path, pg_admin: str | None) -> analytics.Target:
    """This bench's own data set (never bench/analytics.py's directory or database)."""
    if backend == "sqlite":
        home = data_dir / "sqlite"
        home.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{home / 'lanterna.db'}"
        return analytics.Target("sqlite", url, home / "meta.json", home)
    import psycopg

    admin = analytics._pg_admin(pg_admin)
    home = data_dir / "postgres"
    home.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(admin, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_NAME,))
        if not found.fetchone():
            (home / "meta.json").unlink(missing_ok=True)
            (home / "progress.json").unlink(missing_ok=True)
            conn.execute(f'CREATE DATABASE "{PG_NAME}"')
    url = admin.rsplit("/", 1)[0] + f"/{PG_NAME}"
    return analytics.Target("postgres", url, home / "meta.json", home)


def data_set(target: analytics.Target, observations: int) -> dict[str, Any]:
    """The data set's description, generating it first when missing (resumes a
    generation that was cut short)."""
    meta = target.meta()
    if meta is None:
        print(f"generating {observations:,} observations into {target.backend} ...", flush=True)
        meta = analytics.generate(target, observations, seed=16)
    return meta


def _dataset_rules() -> list[dict[str, Any]]:
    users = [f"user-{i}" for i in range(10)]
    envs = [e for e, _ in analytics.ENVIRONMENTS]
    return rule_set(analytics.TRACE_NAMES, analytics.MODELS, envs, users, analytics.TAGS)


# --- 1. the evaluation tick --------------------------------------------------------------


def time_ticks(target: analytics.Target, meta: dict[str, Any], ticks: int) -> dict[str, float]:
    """Store the rules in the data set's project and time ``ticks`` evaluation ticks
    at the data's end (every rule due), and the rules' reads one query per rule."""
    db = Database(target.url)
    writer = Writer(db)
    writer.start()
    store = sql_store()
    project_id = meta["project_id"]
    end = datetime.fromisoformat(meta["generated_at"].replace("Z", "+00:00"))
    try:

        def reset(conn: Any) -> list[dict[str, Any]]:
            page, _ = store.alerts.page_rules(conn, project_id, 10_000, 0)
            for row in page:
                store.alerts.delete_rule(conn, project_id, row["id"])
            return [
                store.alerts.create_rule(conn, project_id, check_rule(body))
                for body in _dataset_rules()
            ]

        rules = writer.run_sync(reset)
        evaluator = Evaluator(db, store, writer.run_sync, owner="bench")
        due_again = "UPDATE alert_rules SET next_eval_at = NULL WHERE project_id = ?"
        seconds, cpu = [], []
        for i in range(ticks + 1):  # the first warms the caches
            writer.run_sync(lambda c: c.run(due_again, (project_id,)))
            t0, c0 = time.perf_counter(), time.process_time()
            outcomes = evaluator.tick(end)
            if i:
                seconds.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            assert len(outcomes) == RULES, len(outcomes)
        samples = sum(o.samples for o in outcomes)
        # The same reads one query per rule (and one per baseline).
        t0 = time.perf_counter()
        with db.read() as conn:
            for rule in rules:
                spec = MetricSpec(rule["metric"], rule["filters"], rule["score_name"])
                window = timedelta(seconds=rule["window_s"])
                measure(conn, project_id, spec, end - window, end)
                if rule["mode"] == "baseline":
                    start, stop = evaluator._baseline_range(rule, end)
                    measure(conn, project_id, spec, start, stop)
        one_by_one = time.perf_counter() - t0
        writer.run_sync(lambda c: [store.alerts.delete_rule(c, project_id, r["id"]) for r in rules])
    finally:
        writer.stop()
        db.close()
    return {
        "median": statistics.median(seconds),
        "cpu": statistics.median(cpu),
        "max": max(seconds),
        "one_by_one": one_by_one,
        "samples": samples,
    }


# --- 2. ingestion with and without the evaluator ----------------------------------------


def _post(port: int, auth: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        conn.request("POST", path, json.dumps(body), headers)
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise SystemExit(f"{path}: {response.status} {payload[:300]!r}")
        return dict(json.loads(payload))
    finally:
        conn.close()


def _evaluations(port: int, auth: str) -> int:
    """How many of the server's rules have been evaluated at least once."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/api/public/alerts/rules?limit=100", headers={"Authorization": auth})
        data = json.loads(conn.getresponse().read())["data"]
        return sum(1 for r in data if r["state"]["evaluatedAt"] is not None)
    finally:
        conn.close()


#: Where the evaluator runs during an ingestion run.
MODES = ("off", "server", "worker")


def ingest_rate(backend: str, args: argparse.Namespace, mode: str) -> ingest.Result:
    """Ingestion throughput into a scratch server with 100 rules due every 10 s,
    evaluated inside the server (``server``: a look every second), by a ``lanterna
    worker`` process beside it (``worker``), or not at all (``off``)."""
    settings = {"LANTERNA_ALERT_TICK_SECONDS": "1" if mode == "server" else "0"}
    bench_args = argparse.Namespace(
        observations=args.ingest_observations, batch=100, clients=2, concurrency=8,
        verbose=False, pg_admin_url=args.pg_admin_url,
    )  # fmt: skip
    with ingest.server_on_scratch_database(
        backend, args.pg_admin_url, "lanterna-alerts-bench-", settings
    ) as (server, workdir, db_args):
        worker = None
        if mode != "off":
            names = ["chat-request"]
            models = ["gpt-4o-mini"]
            users = [f"user-{i}" for i in range(1, 11)]
            rules = rule_set(names, models, ["default"], users, ["bench", "chat"], interval=10)
            for body in rules:
                _post(server.port, server.auth, "/api/public/alerts/rules", body)
        if mode == "worker":
            env = {k: v for k, v in os.environ.items() if not k.startswith("LANTERNA_")}
            env["PYTHONPATH"] = str(ROOT / "src")
            worker = subprocess.Popen(
                [sys.executable, "-m", "lanterna.cli", "worker", "--interval", "1", *db_args],
                stdout=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        try:
            result = ingest._run(backend, bench_args, server, workdir, db_args)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(30)
        if mode != "off":
            evaluated = _evaluations(server.port, server.auth)
            print(f"  {backend}: {evaluated} of {RULES} rules evaluated during the run")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--data-dir", type=Path, required=True, help="this bench's data sets")
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=5, help="evaluation ticks timed")
    parser.add_argument("--ingest-observations", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="ingestion runs per state")
    parser.add_argument("--skip-ingest", action="store_true", help="time the ticks only")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--pg-admin-url", help="PostgreSQL server (default: scripts/pg-start)")
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    table = []
    for backend in backends:
        target = target_for(backend, args.data_dir, args.pg_admin_url)
        meta = data_set(target, args.observations)
        if args.generate_only:
            continue
        ticks = time_ticks(target, meta, args.ticks)
        print(
            f"{backend}: {RULES} rules over {meta['observations']:,} observations:"
            f" {ticks['median']:.2f} s per evaluation tick (median of {args.ticks},"
            f" max {ticks['max']:.2f} s; target < {TICK_TARGET_S:g} s on SQLite;"
            f" this process's CPU {ticks['cpu']:.2f} s a tick);"
            f" one query per rule: {ticks['one_by_one']:.2f} s;"
            f" {ticks['samples']:,} samples in the rules' windows",
            flush=True,
        )
        row = {"backend": backend, **ticks}
        if not args.skip_ingest:
            runs: dict[str, list[ingest.Result]] = {m: [] for m in MODES}
            for _ in range(args.rounds):  # in turn, so the machine's load hits each
                for mode in MODES:
                    r = ingest_rate(backend, args, mode)
                    runs[mode].append(r)
                    print(f"  {backend}: evaluator {mode}: {r.rate:,.0f} obs/s", flush=True)
            rate = {m: statistics.median(r.rate for r in v) for m, v in runs.items()}
            cpu = {
                m: statistics.median(r.server_cpu / r.observations * 1e6 for r in v)
                for m, v in runs.items()
            }
            off, on, beside = rate["off"], rate["server"], rate["worker"]
            change, change_worker = on / off - 1, beside / off - 1
            print(
                f"{backend}: ingestion {off:,.0f} obs/s with the evaluator off,"
                f" {on:,.0f} obs/s with {RULES} rules evaluated every 10 s in the server"
                f" ({change:+.0%}), {beside:,.0f} obs/s with them in a lanterna worker"
                f" ({change_worker:+.0%}; medians of {args.rounds}); server CPU per"
                f" observation {cpu['off']:.0f} / {cpu['server']:.0f} / {cpu['worker']:.0f} us",
                flush=True,
            )
            row.update(worker=beside, change_worker=change_worker)
            row.update(off=off, on=on, change=change)
        table.append(row)
    if table:
        print(
            "\n| backend | tick (median) | one query per rule | ingest, evaluator off"
            " | in the server | change | in a worker | change |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in table:
            rates = (
                f"{r['off']:,.0f} obs/s | {r['on']:,.0f} obs/s | {r['change']:+.0%}"
                f" | {r['worker']:,.0f} obs/s | {r['change_worker']:+.0%}"
                if "off" in r
                else " | | | | "
            )
            print(f"| {r['backend']} | {r['median']:.2f} s | {r['one_by_one']:.2f} s | {rates} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
