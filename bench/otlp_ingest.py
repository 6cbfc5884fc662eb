"""OTLP vs JSON ingestion: cost per observation of both paths, in the same run.

One ``lanterna serve`` process per backend receives the same workload twice: as
Langfuse ingestion batches (``POST /api/public/ingestion``, the shape bench/ingest.py
sends) and as OTLP protobuf exports (``POST /api/public/otel/v1/traces``, the shape the
Langfuse Python SDK 3.x-5.x sends: ``langfuse.*`` attributes, scope ``langfuse-sdk``).
Each trace has five observations, two of them generations with model and usage, and
1-2 KB of input/output per observation. Prints committed observations per second for
each path and their ratio (issue 3's target: OTLP within 1.5x of the JSON path's cost).

    .venv/bin/python bench/otlp_ingest.py                       # SQLite and PostgreSQL
    .venv/bin/python bench/otlp_ingest.py --backend sqlite --observations 50000

Server start-up, the JSON workload and the database checks come from bench/ingest.py.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as json_bench  # bench/ingest.py: server, JSON batches, counts

ROOT = Path(__file__).resolve().parents[1]
OBS_PER_TRACE = json_bench.OBS_PER_TRACE
NAMES = ("agent", "retrieve", "llm-call", "rerank", "llm-call-2")


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        any_value = AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = AnyValue(int_value=value)
    elif isinstance(value, list):
        any_value = AnyValue()
        any_value.array_value.values.extend(AnyValue(string_value=v) for v in value)
    else:
        any_value = AnyValue(string_value=str(value))
    return KeyValue(key=key, value=any_value)


class OtlpMaker:
    """Builds exports of whole traces as the Langfuse Python SDK (OTel based) sends them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        # The texts of bench/ingest.py's BatchMaker: the same sizes on both paths.
        self.prompts = json_bench._texts(seed, 64, 500, 1000)
        self.answers = json_bench._texts(seed + 1, 64, 300, 800)

    def trace_spans(self) -> list[Span]:
        rng = self.rng
        start = time.time_ns()  # exporters send spans as they end, like the JSON batches
        trace_id = rng.randbytes(16)
        user = f"user-{rng.randint(1, 500)}"
        propagated = {
            "user.id": user,
            "session.id": f"session-{user}-{rng.randint(1, 20)}",
            "langfuse.trace.name": "chat-request",
            "langfuse.trace.tags": ["bench", "chat"],
            "langfuse.trace.metadata.app": '"bench"',
            "langfuse.trace.metadata.region": '"eu"',
            "langfuse.trace.metadata.plan": '"pro"',
        }
        root_id = rng.randbytes(8)
        spans = []
        for n in range(OBS_PER_TRACE):
            t0 = start + n * 10_000_000
            t1 = t0 + rng.randint(50, 900) * 1_000_000
            messages = [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": rng.choice(self.prompts)},
            ]
            attrs: dict[str, Any] = {
                **propagated,
                "langfuse.observation.input": orjson.dumps(messages).decode(),
                "langfuse.observation.output": orjson.dumps(
                    {"role": "assistant", "content": rng.choice(self.answers)}
                ).decode(),
                "langfuse.observation.metadata.step": str(n),
                "langfuse.observation.metadata.component": '"bench"',
            }
            if n == 0:
                attrs["langfuse.trace.input"] = orjson.dumps(
                    {"question": rng.choice(self.prompts)[:300]}
                ).decode()
                attrs["langfuse.trace.output"] = orjson.dumps(
                    {"answer": rng.choice(self.answers)[:300]}
                ).decode()
            if n in (2, 4):
                prompt_tokens, completion_tokens = rng.randint(200, 900), rng.randint(50, 300)
                attrs.update(
                    {
                        "langfuse.observation.type": "generation",
                        "langfuse.observation.model.name": "gpt-4o-mini",
                        "langfuse.observation.model.parameters": '{"temperature": 0.2, '
                        '"max_tokens": 512}',
                        "langfuse.observation.usage_details": orjson.dumps(
                            {"input": prompt_tokens, "output": completion_tokens}
                        ).decode(),
                        "langfuse.observation.completion_start_time": '"2024-05-01T00:00:00Z"',
                    }
                )
            else:
                attrs["langfuse.observation.type"] = "span"
            span = Span(
                trace_id=trace_id,
                span_id=root_id if n == 0 else rng.randbytes(8),
                parent_span_id=b"" if n == 0 else root_id,
                name=NAMES[n],
                start_time_unix_nano=t0,
                end_time_unix_nano=t1,
            )
            span.attributes.extend(_kv(k, v) for k, v in attrs.items())
            spans.append(span)
        return spans

    def batch(self, traces: int) -> bytes:
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(
            [
                _kv("service.name", "bench"),
                _kv("telemetry.sdk.language", "python"),
                _kv("langfuse.release", "1.4.2"),
            ]
        )
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = "langfuse-sdk"
        scope_spans.scope.version = "5.0.4"
        for _ in range(traces):
            scope_spans.spans.extend(self.trace_spans())
        return request.SerializeToString()


@dataclass
class Job:
    port: int
    auth: str
    mode: str  # "json" | "otlp"
    batches: int
    traces_per_batch: int
    threads: int
    seed: int


def _client(job: Job, ready: Any, start: Any, results: Any) -> None:
    maker: Any = OtlpMaker(job.seed) if job.mode == "otlp" else json_bench.BatchMaker(job.seed)
    path, media, expected = (
        ("/api/public/otel/v1/traces", "application/x-protobuf", 200)
        if job.mode == "otlp"
        else ("/api/public/ingestion", "application/json", 207)
    )
    headers = {"Authorization": job.auth, "Content-Type": media}
    # Encoded before the clock starts (as in bench/ingest.py): building protobuf spans
    # in Python costs the client far more than JSON, and client and server share cores.
    bodies = [maker.batch(job.traces_per_batch) for _ in range(job.batches)]
    _latencies, failures = json_bench.send_all(
        job.port, path, headers, bodies, job.threads, expected, ready, start
    )
    results.put(failures)


def _timed(port: int, auth: str, mode: str, args: argparse.Namespace, seed: int) -> float:
    """Seconds to send and commit ``args.observations`` observations in ``mode``."""
    traces_per_batch = max(1, args.batch // (OBS_PER_TRACE + 1))
    batches = max(1, round(args.observations / (traces_per_batch * OBS_PER_TRACE)))
    clients = max(1, min(args.clients, args.concurrency))
    jobs = [
        Job(
            port,
            auth,
            mode,
            batches // clients + (1 if n < batches % clients else 0),
            traces_per_batch,
            args.concurrency // clients + (1 if n < args.concurrency % clients else 0),
            seed + n,
        )
        for n in range(clients)
    ]
    ctx = mp.get_context("fork")
    ready, start, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(j, ready, start, results)) for j in jobs]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get()  # every client has encoded its bodies
    t0 = time.perf_counter()
    start.set()
    failures = [f for _ in procs for f in results.get()]
    seconds = time.perf_counter() - t0
    for proc in procs:
        proc.join()
    if failures:
        raise SystemExit(f"{mode}: {len(failures)} failed request(s): {failures[:3]}")
    return seconds


def run(backend: str, args: argparse.Namespace, report: Callable[[str], None]) -> bool:
    with json_bench.server_on_scratch_database(
        backend, args.pg_admin_url, "lanterna-otlp-bench-"
    ) as (server, workdir, db_args):
        # The paths take turns, so that load from elsewhere on the machine and the
        # growing database weigh on both alike.
        per_round = argparse.Namespace(**vars(args))
        per_round.observations = max(1, args.observations // args.rounds)
        per_batch = max(1, args.batch // (OBS_PER_TRACE + 1)) * OBS_PER_TRACE
        sent = max(1, round(per_round.observations / per_batch)) * per_batch * args.rounds
        json_s = otlp_s = 0.0
        for n in range(args.rounds):
            json_s += _timed(server.port, server.auth, "json", per_round, seed=1000 + 10 * n)
            otlp_s += _timed(server.port, server.auth, "otlp", per_round, seed=5000 + 10 * n)
        stored_obs, stored_traces = json_bench._count(backend, workdir, db_args)
        good = stored_obs == 2 * sent and stored_traces == 2 * sent // OBS_PER_TRACE
        report(
            f"{backend:>8}: json {sent / json_s:9,.0f} obs/s  otlp {sent / otlp_s:9,.0f} obs/s  "
            f"otlp/json cost per observation {otlp_s / json_s:.2f}x  "
            f"server peak RSS {server.peak_rss_mib():.0f} MiB"
            f" ({server.anon_rss_mib():.0f} MiB anonymous)  "
            f"check: {stored_obs:,} observations / {stored_traces:,} traces "
            f"{'== sent' if good else '!= sent'}"
        )
        return good


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=100_000, help="per path")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument(
        "--batch", type=int, default=100, help="events (spans + traces) per request"
    )
    parser.add_argument("--rounds", type=int, default=4, help="turns each path takes")
    parser.add_argument("--pg-admin-url")
    args = parser.parse_args(argv)
    print(
        f"lanterna OTLP vs JSON ingestion: {args.observations} observations per path, "
        f"{args.concurrency} connections from {args.clients} client process(es), "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    ok = True
    for backend in ["sqlite", "postgres"] if args.backend == "all" else [args.backend]:
        ok = run(backend, args, lambda line: print(line, flush=True)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
