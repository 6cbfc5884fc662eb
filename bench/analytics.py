"""Reads at scale: every dashboard page and API read on 10 M observations (2 M traces).

Generates ``--scale`` x 10 M observations (five per trace on average, so 2 M traces at
``--scale 1``) with a realistic skew: Zipf-distributed users, trace names, models and
tags, sessions of a user's few hours, 3% of traces with an error, input and output
lengths from a log-normal distribution (a few kB at the tail), about 5% of the traces in
Korean, one score on every fifth trace. Timestamps spread evenly over the 30 days
before generation, in arrival order give or take two minutes. The data goes through the
real write path: Langfuse events are read by ``read_event`` and written by
``prepare_events`` and the prepared batch in one transaction, as the server's writer
runs them (merge, pricing, rollups and the search index maintained), not over HTTP.
It lands in a reusable data directory (``--data-dir``); a run finding a complete data
set there skips generation.

Then, on each backend, it times the reads through the real app in-process (ASGI, a
logged-in dashboard session or API keys, templates rendered): the median of ``--runs``
warm requests, which is the server's time for a page (no network). Each figure prints
with its target on this machine (dashboard and metrics queries < 200 ms, trace list and
detail < 50 ms, full-text search < 500 ms) and the ratio, and the database size per
million observations. A read far off its target runs fewer times (at least 3, about
30 s in all).

    .venv/bin/python bench/analytics.py --scale 0.1            # 1 M observations, both
    .venv/bin/python bench/analytics.py --backend sqlite       # 10 M observations
    .venv/bin/python bench/analytics.py --generate-only        # build the data, no reads
    .venv/bin/python bench/analytics.py --backend clickhouse   # events in chDB, in-process

ClickHouse (``--backend clickhouse``, or ``all`` with the other two): the metadata in
SQLite and the events in chDB in this process (``--events-url chdb://...``; needs the
``clickhouse`` extra), written by the ClickHouse writer (merge, pricing, rollup deltas).

PostgreSQL: a database ``lanterna_bench_analytics_<scale>`` on the server that
``scripts/pg-start`` starts (or on ``--pg-admin-url``), kept for the next run
(``--drop`` removes it). See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import itertools
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lanterna.accounts import store as accounts  # noqa: E402
from lanterna.ingest.langfuse_events import read_event  # noqa: E402
from lanterna.store import projects  # noqa: E402
from lanterna.store.db import Database  # noqa: E402
from lanterna.store.migrations import migrate  # noqa: E402
from lanterna.store.write import prepare_events  # noqa: E402
from ui import EMAIL, PASSWORD, login  # noqa: E402  (bench/ui.py: the same bench account)

FULL_OBSERVATIONS = 10_000_000
OBS_PER_TRACE = 5  # on average: 3 to 7
DAYS = 30
#: Traces per write transaction.
BATCH_TRACES = 1500

# --- what the data looks like -------------------------------------------------------------

TRACE_NAMES = [
    "chat",
    "rag-answer",
    "summarize",
    "classify-intent",
    "search",
    "extract-entities",
    "translate",
    "agent-run",
    "code-review",
    "support-ticket",
    "sql-generate",
    "email-draft",
    "moderation",
    "embed-documents",
    "rerank",
    "title-generate",
    "feedback-analyse",
    "onboarding-bot",
    "faq",
    "report-builder",
] + [f"batch-job-{i}" for i in range(20)]
MODELS = [
    "gpt-4o-mini",
    "gpt-4o",
    "claude-3-5-sonnet-20241022",
    "claude-3-5-haiku-20241022",
    "gemini-1.5-flash",
    "gpt-4.1-mini",
    "o3-mini",
    "mistral-large-latest",
    "llama-3.1-70b",
    "text-embedding-3-small",
]
TAGS = ["web", "mobile", "api", "beta", "experiment-a", "experiment-b", "vip", "eu", "us", "kr"]
ENVIRONMENTS = [("production", 0.85), ("staging", 0.10), ("development", 0.05)]
SPAN_NAMES = ["retrieve", "rerank", "tool:search", "tool:calculator", "parse", "guardrail"]

_EN_TEXT = (
    "the customer asked about the refund policy for an annual plan and whether regional "
    "taxes apply the assistant summarised the retrieved documents cited two sources and "
    "suggested contacting support for invoices latency pricing discounts shipping delays "
    "password reset account deletion export data migrate workspace billing cycle"
)
_KO_TEXT = (
    "고객이 연간 요금제의 환불 정책과 지역 세금이 적용되는지 문의했습니다 상담원은 검색된 문서를 "
    "요약하고 두 개의 출처를 인용했으며 청구서에 대해서는 지원팀에 문의하도록 안내했습니다 배송 "
    "지연 비밀번호 재설정 계정 삭제 데이터 내보내기 결제 주기"
)
_EN = _EN_TEXT.split()
_KO = _KO_TEXT.split()
#: Words the search timings look for: common in English text, in Korean text, and one
#: that occurs in no trace (without an index, a search that reads everything).
SEARCH_COMMON = "refund"
SEARCH_KOREAN = "비밀번호"
#: Two characters: shorter than a trigram, so the search reads traces (newest first).
SEARCH_SHORT = "환불"
SEARCH_NONE = "zebrafish"


def _zipf(n: int, s: float) -> list[float]:
    """Cumulative weights of ranks 1..n under Zipf's law with exponent ``s``."""
    return list(itertools.accumulate(1.0 / (rank**s) for rank in range(1, n + 1)))


class Pick:
    """Draws an index from a fixed cumulative weight table."""

    def __init__(self, cum: list[float]) -> None:
        self.cum = cum
        self.total = cum[-1]

    def __call__(self, rng: random.Random) -> int:
        return bisect.bisect_left(self.cum, rng.random() * self.total)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Shape:
    """The distributions of one data set (sized by its trace count)."""

    traces: int
    users: int

    def __post_init__(self) -> None:
        self.user = Pick(_zipf(self.users, 1.0))
        self.name = Pick(_zipf(len(TRACE_NAMES), 1.1))
        self.model = Pick(_zipf(len(MODELS), 1.2))
        self.tag = Pick(_zipf(len(TAGS), 1.0))
        self.env = Pick(list(itertools.accumulate(w for _, w in ENVIRONMENTS)))


def _text(rng: random.Random, median: float, korean: bool) -> str:
    size = min(12000, int(rng.lognormvariate(0, 0.9) * median) + 8)
    words = _KO if korean else _EN
    out: list[str] = []
    length = 0
    while length < size:
        word = words[int(rng.random() * len(words))]
        out.append(word)
        length += len(word) + 1
    return " ".join(out)


def _envelope(kind: str, body: dict[str, Any], at: str) -> dict[str, Any]:
    return {"id": body["id"] + "-" + kind, "type": kind, "timestamp": at, "body": body}


def trace_events(
    rng: random.Random, shape: Shape, i: int, at: datetime, obs_count: int
) -> list[dict[str, Any]]:
    """One trace's Langfuse events: a trace, a root span and ``obs_count - 1`` children
    (generations, spans, an occasional event), maybe a score."""
    tid = f"{rng.getrandbits(128):032x}"
    user = shape.user(rng)
    korean = rng.random() < 0.05
    error = rng.random() < 0.03
    stamp = _iso(at)
    question = _text(rng, 300, korean)
    answer = _text(rng, 500, korean)
    tags = sorted({TAGS[shape.tag(rng)] for _ in range(rng.randrange(3))})
    env = ENVIRONMENTS[shape.env(rng)][0]
    # A session is a user's three-hour window; 30% of traces have none.
    session = f"s-{user}-{int(at.timestamp()) // 10800}" if rng.random() < 0.7 else None
    body: dict[str, Any] = {
        "id": tid,
        "name": TRACE_NAMES[shape.name(rng)],
        "userId": f"user-{user}",
        "sessionId": session,
        "input": {"messages": [{"role": "user", "content": question}]},
        "output": answer,
        "tags": tags,
        "metadata": {"variant": "AB"[i & 1], "region": "kr" if korean else "us"},
        "environment": env,
        "release": f"v1.{i % 7}",
        "timestamp": stamp,
    }
    events = [_envelope("trace-create", body, stamp)]
    total = rng.lognormvariate(0.3, 0.8)  # seconds
    root = f"{tid}-0"
    events.append(
        _envelope(
            "span-create",
            {
                "id": root,
                "traceId": tid,
                "name": "agent",
                "environment": env,
                "startTime": stamp,
                "endTime": _iso(at + timedelta(seconds=total)),
                "input": {"question": question[:200]},
            },
            stamp,
        )
    )
    failing = rng.randrange(1, obs_count) if error else -1
    for j in range(1, obs_count):
        start = at + timedelta(seconds=total * (j - 1) / obs_count)
        end = start + timedelta(seconds=total / obs_count)
        child: dict[str, Any] = {
            "id": f"{tid}-{j}",
            "traceId": tid,
            "parentObservationId": root,
            "environment": env,
            "startTime": _iso(start),
            "endTime": _iso(end),
        }
        if j == failing:
            child.update(level="ERROR", statusMessage="upstream timeout after 30 s")
        if j % 2 == 1:  # generations: about half of the observations
            model = MODELS[shape.model(rng)]
            child.update(
                name="llm-call" if j > 1 else "answer",
                model=model,
                completionStartTime=_iso(start + timedelta(seconds=total / obs_count / 4)),
                input=[
                    {"role": "system", "content": "You are a helpful support assistant."},
                    {"role": "user", "content": question},
                ],
                output={"role": "assistant", "content": answer if j == 1 else answer[:300]},
                usageDetails={
                    "input": 50 + len(question) // 3,
                    "output": 20 + len(answer) // 4,
                },
                modelParameters={"temperature": 0.2},
            )
            events.append(_envelope("generation-create", child, stamp))
        elif j == 4 and rng.random() < 0.5:
            child.update(name="user-feedback-shown", input={"shown": True})
            events.append(_envelope("event-create", child, stamp))
        else:
            child.update(
                name=SPAN_NAMES[int(rng.random() ** 2 * len(SPAN_NAMES))],
                input={"query": question[:120]},
                output={"documents": rng.randrange(1, 9)},
            )
            events.append(_envelope("span-create", child, stamp))
    if i % 5 == 0:
        events.append(
            _envelope(
                "score-create",
                {
                    "id": f"{tid}-score",
                    "traceId": tid,
                    "name": "user_rating",
                    "value": rng.choice((1, 2, 3, 4, 4, 5, 5, 5)),
                    "dataType": "NUMERIC",
                    "environment": env,
                },
                stamp,
            )
        )
    return events


# --- generation ------------------------------------------------------------------------


@dataclass
class Target:
    """One backend's data set: where it lives and what describes it."""

    backend: str
    url: str
    meta_path: Path
    data_dir: Path  # the server's data dir (SQLite: holds lanterna.db)
    #: clickhouse: the event store (chDB in this process; metadata in SQLite at ``url``)
    events_url: str = ""

    def meta(self) -> dict[str, Any] | None:
        """The finished data set's description, or None when it is not (fully) built."""
        if not self.meta_path.exists():
            return None
        return dict(json.loads(self.meta_path.read_text()))

    @property
    def progress_path(self) -> Path:
        """Where a generation in progress records how far it got."""
        return self.meta_path.with_name("progress.json")


def _save_progress(target: Target, state: dict[str, Any]) -> None:
    """Record how far generation got (after a batch commits), so a killed run resumes."""
    tmp = target.progress_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(target.progress_path)


def _events_store(target: Target, db: Database) -> Any:
    """clickhouse: the ClickHouse store (schema migrated) the write path inserts into;
    None for the SQL backends."""
    if not target.events_url:
        return None
    from lanterna.server.runtime import migrate_events
    from lanterna.store.clickhouse import clickhouse_store

    store = clickhouse_store(target.events_url)
    migrate_events(db, store)
    return store


def generate(target: Target, observations: int, seed: int) -> dict[str, Any]:
    """Build the data set through the real write path; returns its description.

    A run that was killed part way resumes where its last committed batch ended: the
    random generator's state is saved with the progress, so the resumed data set is the
    one an uninterrupted run builds.
    """
    db = Database(target.url)
    migrate(db)
    events = _events_store(target, db)
    conn = db.connect_writer()
    traces = observations // OBS_PER_TRACE
    shape = Shape(traces, max(200, traces // 40))
    saved = json.loads(target.progress_path.read_text()) if target.progress_path.exists() else None
    rng = random.Random(seed)
    try:
        if saved is None:
            end = datetime.now(timezone.utc).replace(microsecond=0)
            with conn.transaction():
                org = projects.create_organization(conn, "Bench")
                project_id = projects.create_project(conn, org, "Bench")
                user = accounts.create_user(conn, EMAIL, PASSWORD)
                accounts.set_member(conn, user, project_id, "owner")
                key = projects.create_key(conn, project_id, "bench")
            saved = {
                "project_id": project_id,
                "public_key": key.public_key,
                "secret_key": key.secret_key,
                "end": _iso(end),
                "next": 0,
                "written": 0,
                "seconds": 0.0,
            }
        else:
            rng.setstate((saved["rng"][0], tuple(saved["rng"][1]), saved["rng"][2]))
            end = datetime.fromisoformat(saved["end"].replace("Z", "+00:00"))
            print(f"  resuming at trace {saved['next']:,} ({saved['written']:,} observations)")
        project_id = saved["project_id"]
        written = saved["written"]
        before = saved["seconds"]
        started = time.perf_counter()
        # Traces arrive in time order, give or take the two minutes clients may lag.
        batch: list[Any] = []
        start = end - timedelta(days=DAYS)
        step = DAYS * 86400 / traces
        for i in range(saved["next"], traces):
            at = start + timedelta(seconds=i * step - rng.uniform(0, 120))
            count = OBS_PER_TRACE + rng.randrange(-2, 3)
            if i == traces - 1:
                count = max(1, observations - written)
            written += count
            for raw in trace_events(rng, shape, i, at, count):
                batch.append(read_event(raw)[1])
            if (i + 1) % BATCH_TRACES == 0 or i == traces - 1:
                prepared = (
                    prepare_events(conn, project_id, batch)
                    if events is None
                    else events.ingest.prepare_events(conn, project_id, batch)
                )
                with conn.transaction():
                    prepared(conn)
                batch = []
                spent = before + time.perf_counter() - started
                state = rng.getstate()
                saved.update(next=i + 1, written=written, seconds=spent)
                saved["rng"] = [state[0], list(state[1]), state[2]]
                _save_progress(target, saved)
                if (i + 1) % (BATCH_TRACES * 40) == 0 or i == traces - 1:
                    print(
                        f"  {target.backend}: {written:,} observations, {i + 1:,} traces"
                        f" ({spent:.0f} s, {written / spent:,.0f} obs/s)",
                        flush=True,
                    )
        spent = before + time.perf_counter() - started
        # What a long-running database has: planner statistics (and on PostgreSQL the
        # visibility map autovacuum keeps, which index-only scans need).
        with conn.transaction():
            conn.run("ANALYZE")
        if target.backend == "postgres":
            conn.raw.autocommit = True
            conn.raw.execute("VACUUM (ANALYZE)")
    finally:
        conn.raw.close()
        db.close()
    meta = {
        "project_id": project_id,
        "public_key": saved["public_key"],
        "secret_key": saved["secret_key"],
        "observations": written,
        "traces": traces,
        "users": shape.users,
        "generated_at": _iso(end),
        "seconds": round(spent, 1),
        "obs_per_second": round(written / spent),
    }
    target.meta_path.write_text(json.dumps(meta, indent=1))
    target.progress_path.unlink(missing_ok=True)
    print(
        f"built {written:,} observations ({traces:,} traces) on {target.backend} in {spent:.0f} s"
        f" ({written / spent:,.0f} obs/s)",
        flush=True,
    )
    return meta


# --- reads -------------------------------------------------------------------------------

DASHBOARD_MS = 200.0
LIST_MS = 50.0
SEARCH_MS = 500.0


@dataclass
class Read:
    """One timed read: a request path (UI with the session, API with the keys)."""

    label: str
    path: str
    target_ms: float
    api: bool = False


def probes(conn: Any, project_id: str) -> dict[str, str]:
    """Ids the reads ask for, picked from the data: a busy user (rank 5) and their
    most common trace name, a session of theirs, a trace of five observations."""
    user = "user-4"
    name = conn.scalar(
        "SELECT name FROM traces WHERE project_id = ? AND user_id = ? GROUP BY name"
        " ORDER BY COUNT(*) DESC LIMIT 1",
        (project_id, user),
    )
    session = conn.scalar(
        "SELECT session_id FROM traces WHERE project_id = ? AND user_id = ?"
        " AND session_id IS NOT NULL ORDER BY timestamp DESC LIMIT 1",
        (project_id, user),
    )
    trace = conn.scalar(
        "SELECT trace_id FROM observations WHERE project_id = ? AND id LIKE '%-4' LIMIT 1",
        (project_id,),
    )
    return {"user": user, "name": str(name), "session": str(session), "trace": str(trace)}


def reads(project_id: str, ids: dict[str, str], v2: bool) -> list[Read]:
    """What the benchmark times, in print order."""
    p = f"/project/{project_id}"
    user, name, session, trace = ids["user"], ids["name"], ids["session"], ids["trace"]
    three = urlencode({"user": user, "name": name, "env": "production", "range": "30d"})
    api_three = urlencode({"userId": user, "name": name, "environment": "production"})
    out = [
        Read("dashboard (metrics page, 30 days)", f"{p}/metrics?range=30d", DASHBOARD_MS),
        Read("dashboard (metrics page, 24 hours)", f"{p}/metrics?range=24h", DASHBOARD_MS),
        Read(
            "default dashboard (7 widgets, 30 days)",
            f"{p}/dashboards/{ids.get('dashboard', '')}?range=30d",
            DASHBOARD_MS,
        ),
        Read(
            "daily metrics API (30 days)", "/api/public/metrics/daily?limit=30", DASHBOARD_MS, True
        ),
        Read("trace list, page 1", f"{p}/traces", LIST_MS),
        Read("trace list, 3 filters + 30 days", f"{p}/traces?{three}", LIST_MS),
        Read("trace list, tag filter", f"{p}/traces?tag=vip&range=7d", LIST_MS),
        # The list's count and totals row, which the page loads after its rows.
        Read("trace list count + totals", f"{p}/traces/summary", DASHBOARD_MS),
        Read("... 3 filters + 30 days", f"{p}/traces/summary?{three}", DASHBOARD_MS),
        Read("... tag filter", f"{p}/traces/summary?tag=vip&range=7d", DASHBOARD_MS),
        Read(f"... search '{SEARCH_COMMON}'", f"{p}/traces/summary?q={SEARCH_COMMON}", SEARCH_MS),
        Read("traces API, page 1", "/api/public/traces?limit=50", LIST_MS, True),
        Read("traces API, 3 filters", f"/api/public/traces?{api_three}", LIST_MS, True),
        Read("traces API, page 1000", "/api/public/traces?limit=50&page=1000", LIST_MS, True),
        Read(f"search '{SEARCH_COMMON}'", f"{p}/traces?q={SEARCH_COMMON}", SEARCH_MS),
        Read("search Korean", f"{p}/traces?q={quote(SEARCH_KOREAN)}", SEARCH_MS),
        Read("search Korean, 2 characters", f"{p}/traces?q={quote(SEARCH_SHORT)}", SEARCH_MS),
        Read("search, no match", f"{p}/traces?q={SEARCH_NONE}", SEARCH_MS),
        Read("trace detail page", f"{p}/traces/{trace}", LIST_MS),
        Read("trace API", f"/api/public/traces/{trace}", LIST_MS, True),
        Read("session page", f"{p}/sessions/{quote(session)}", LIST_MS),
        Read("sessions list", f"{p}/sessions", DASHBOARD_MS),
        Read("user page", f"{p}/users/{user}", DASHBOARD_MS),
        Read("users list", f"{p}/users", DASHBOARD_MS),
        Read("users list, by cost", f"{p}/users?sort=cost", DASHBOARD_MS),
        Read("users API", "/api/public/users?limit=50", DASHBOARD_MS, True),
        Read("users API, page 50", "/api/public/users?limit=50&page=50", DASHBOARD_MS, True),
        Read("user API", f"/api/public/users/{user}", LIST_MS, True),
        Read("observations API, page 1", "/api/public/observations?limit=50", LIST_MS, True),
        Read(
            "observations API, page 1000",
            "/api/public/observations?limit=50&page=1000",
            LIST_MS,
            True,
        ),
        Read(
            "observations API v2, page 1",
            "/api/public/v2/observations?limit=50",
            LIST_MS,
            True,
        ),
    ]
    if v2:
        out += [
            Read(f"{label}", f"{path}?query=" + quote(q), DASHBOARD_MS, True)
            for label, path, q in metric_queries()
        ]
    return out


def metric_queries() -> list[tuple[str, str, str]]:
    """Metrics API queries over the last 30 days (Langfuse's query JSON): five v2 ones
    (observations view; v2 refuses grouping by user) and two v1 ones on traces."""
    end = datetime.now(timezone.utc)
    window = {"fromTimestamp": _iso(end - timedelta(days=DAYS)), "toTimestamp": _iso(end)}
    v1, v2 = "/api/public/metrics", "/api/public/v2/metrics"

    def q(**body: Any) -> str:
        return json.dumps({"filters": [], **window, **body})

    def obs(**body: Any) -> str:
        return q(view="observations", **body)

    model = [{"field": "providedModelName"}]
    return [
        (
            "v2: p95 latency by model",
            v2,
            obs(dimensions=model, metrics=[{"measure": "latency", "aggregation": "p95"}]),
        ),
        (
            "v2: cost by model",
            v2,
            obs(dimensions=model, metrics=[{"measure": "totalCost", "aggregation": "sum"}]),
        ),
        (
            "v2: tokens by model per day",
            v2,
            obs(
                dimensions=model,
                metrics=[{"measure": "totalTokens", "aggregation": "sum"}],
                timeDimension={"granularity": "day"},
            ),
        ),
        (
            "v2: errors by trace name",
            v2,
            obs(
                dimensions=[{"field": "traceName"}],
                metrics=[{"measure": "count", "aggregation": "count"}],
                filters=[{"column": "level", "operator": "=", "value": "ERROR", "type": "string"}],
            ),
        ),
        (
            "v2: observations per hour",
            v2,
            obs(
                metrics=[{"measure": "count", "aggregation": "count"}],
                timeDimension={"granularity": "hour"},
            ),
        ),
        (
            "v1: cost by user, top 20",
            v1,
            q(
                view="traces",
                dimensions=[{"field": "userId"}],
                metrics=[{"measure": "totalCost", "aggregation": "sum"}],
                orderBy=[{"field": "sum_totalCost", "direction": "desc"}],
                config={"row_limit": 20},
            ),
        ),
        (
            "v1: traces per day",
            v1,
            q(
                view="traces",
                metrics=[{"measure": "count", "aggregation": "count"}],
                timeDimension={"granularity": "day"},
            ),
        ),
    ]


def measure(
    target: Target, meta: dict[str, Any], runs: int, only: str | None
) -> list[tuple[Read, float]]:
    """Median milliseconds per read, through the real app in-process."""
    from starlette.testclient import TestClient

    from lanterna.server.app import create_app
    from lanterna.server.settings import Settings

    db = Database(target.url)
    events = _events_store(target, db)
    with db.read() as conn:
        ids = probes(conn if events is None else events.events_conn(conn), meta["project_id"])
    db.close()
    settings = Settings(
        data_dir=str(target.data_dir),
        database_url="" if target.backend in ("sqlite", "clickhouse") else target.url,
        events_url=target.events_url,
    )
    app = create_app(settings)
    basic = base64.b64encode(f"{meta['public_key']}:{meta['secret_key']}".encode()).decode()
    out: list[tuple[Read, float]] = []
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        login(client)
        # The project's default dashboard (made on the first visit of the list).
        client.get(f"/project/{meta['project_id']}/dashboards")
        listed = client.get(
            "/api/public/unstable/dashboards", headers={"Authorization": f"Basic {basic}"}
        ).json()
        ids["dashboard"] = next(
            (d["id"] for d in listed.get("data", []) if d.get("name") == "Overview"), ""
        )
        v2 = client.get("/api/public/v2/metrics", headers={"Authorization": f"Basic {basic}"})
        has_v2 = v2.status_code != 404
        for read in reads(meta["project_id"], ids, has_v2):
            if only and not re.search(only, read.label):
                continue
            headers = {"Authorization": f"Basic {basic}"} if read.api else {}
            start = time.perf_counter()
            response = client.get(read.path, headers=headers)
            first = time.perf_counter() - start
            if response.status_code != 200:
                print(f"  {read.label:40s} HTTP {response.status_code}: {response.text[:200]}")
                continue
            times = []
            # A read far off its target gets fewer runs (at least 3, about 30 s in all).
            for _ in range(max(3, min(runs, int(30 / max(first, 1e-3))))):
                start = time.perf_counter()
                response = client.get(read.path, headers=headers)
                times.append((time.perf_counter() - start) * 1000)
            ms = statistics.median(times)
            out.append((read, ms))
            mark = "ok" if ms <= read.target_ms else "SLOW"
            fewer = f"  ({len(times)} runs)" if len(times) < runs else ""
            print(
                f"  {read.label:40s} {ms:8.1f} ms  target {read.target_ms:4.0f} ms"
                f"  {ms / read.target_ms:5.2f}x  {mark}{fewer}",
                flush=True,
            )
    return out


def db_bytes(target: Target) -> int:
    """The database's size on disk (SQLite: the file, without its fixed-size WAL)."""
    if target.backend == "clickhouse":  # the event store's parts (the metadata is small)
        from lanterna.store.clickhouse import EventsDb

        events = EventsDb(target.events_url)
        _names, rows = events.query(
            "SELECT sum(bytes_on_disk) FROM system.parts"
            f" WHERE active AND database = '{events.database}'"
        )
        return int(rows[0][0] or 0)
    if target.backend == "sqlite":
        return (target.data_dir / "lanterna.db").stat().st_size
    db = Database(target.url)
    with db.read() as conn:
        size = int(conn.scalar("SELECT pg_database_size(current_database())"))
    db.close()
    return size


# --- main --------------------------------------------------------------------------------


def _scale_tag(scale: float) -> str:
    return f"{scale:g}".replace(".", "_")


def _pg_admin(url: str | None) -> str:
    return (
        url
        or subprocess.run(
            [str(ROOT / "scripts" / "pg-start")], capture_output=True, text=True, check=True
        ).stdout.strip()
    )


def target_for(backend: str, data_dir: Path, scale: float, pg_admin: str | None) -> Target:
    """Where ``backend``'s data set of ``scale`` lives (created empty when missing)."""
    tag = _scale_tag(scale)
    if backend in ("sqlite", "clickhouse"):
        home = data_dir / f"{backend}-{tag}"
        home.mkdir(parents=True, exist_ok=True)
        events = f"chdb://{home / 'chdb'}?database=lanterna" if backend == "clickhouse" else ""
        url = f"sqlite:///{home / 'lanterna.db'}"
        return Target(backend, url, home / "meta.json", home, events)
    import psycopg

    admin = _pg_admin(pg_admin)
    name = f"lanterna_bench_analytics_{tag}"
    home = data_dir / f"postgres-{tag}"
    home.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            (home / "meta.json").unlink(missing_ok=True)
            (home / "progress.json").unlink(missing_ok=True)
            conn.execute(f'CREATE DATABASE "{name}"')
    return Target("postgres", admin.rsplit("/", 1)[0] + f"/{name}", home / "meta.json", home)


def reset(target: Target, pg_admin: str | None) -> None:
    """Remove a data set (a half-built one, or on ``--drop``)."""
    target.meta_path.unlink(missing_ok=True)
    target.progress_path.unlink(missing_ok=True)
    if target.backend in ("sqlite", "clickhouse"):
        shutil.rmtree(target.data_dir)
        target.data_dir.mkdir(parents=True)
        return
    import psycopg

    name = target.url.rsplit("/", 1)[1]
    with psycopg.connect(_pg_admin(pg_admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of 10 M observations (default 1)"
    )
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres", "clickhouse", "both", "all"),
        default="both",
        help="both: SQLite and PostgreSQL; all: and ClickHouse (chDB in this process)",
    )
    parser.add_argument(
        "--data-dir", default=str(ROOT / "bench" / "results" / "analytics"), type=Path
    )
    parser.add_argument("--runs", type=int, default=20, help="warm requests per read")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--only", help="time only the reads whose label matches this regex")
    parser.add_argument("--drop", action="store_true", help="remove the data set and exit")
    parser.add_argument("--pg-admin-url", help="PostgreSQL server (default: scripts/pg-start)")
    args = parser.parse_args()
    observations = int(FULL_OBSERVATIONS * args.scale)
    backends = {
        "both": ("sqlite", "postgres"),
        "all": ("sqlite", "postgres", "clickhouse"),
    }.get(args.backend, (args.backend,))
    summary: list[tuple[str, list[tuple[Read, float]], float]] = []
    for backend in backends:
        target = target_for(backend, args.data_dir, args.scale, args.pg_admin_url)
        if args.drop:
            reset(target, args.pg_admin_url)
            continue
        meta = target.meta()
        if meta is None:
            if not target.progress_path.exists():
                reset(target, args.pg_admin_url)  # a half-built set with no progress record
            print(f"generating {observations:,} observations into {backend} ...", flush=True)
            meta = generate(target, observations, args.seed)
        else:
            print(
                f"reusing {backend} data: {meta['observations']:,} observations,"
                f" {meta['traces']:,} traces (built at {meta['obs_per_second']:,} obs/s)"
            )
        size = db_bytes(target) / (meta["observations"] / 1e6) / 2**20
        print(f"  database size: {size:,.0f} MiB per million observations")
        if args.generate_only:
            continue
        print(f"{backend}: median of {args.runs} warm requests, server time (in-process ASGI)")
        summary.append((backend, measure(target, meta, args.runs, args.only), size))
    if len(summary) >= 2:
        names = {"sqlite": "SQLite", "postgres": "PostgreSQL", "clickhouse": "ClickHouse"}
        head = f"read ({observations / 1e6:g} M observations)"
        print(f"\n| {head} | {' | '.join(names[b] + ' ms' for b, _, _ in summary)} | target |")
        print("| --- |" + " --- |" * (len(summary) + 1))
        others = [{r.label: ms for r, ms in rows} for _, rows, _ in summary]
        for read, _ in summary[0][1]:
            cells = [o.get(read.label) for o in others]
            shown = " | ".join("" if ms is None else f"{ms:.1f}" for ms in cells)
            print(f"| {read.label} | {shown} | < {read.target_ms:.0f} |")
        sizes = " | ".join(f"{size:.0f}" for _, _, size in summary)
        print(f"| database size, MiB per million observations | {sizes} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
