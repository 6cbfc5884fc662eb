"""OTLP decode + mapping vs Langfuse JSON parse + validation, in one process.

No server and no HTTP: the CPU work each ingestion route does before the writer, on
the same workload bench/otlp_ingest.py sends (OtlpMaker: protobuf exports of the
Langfuse Python SDK's shape; BatchMaker: the equivalent Langfuse JSON batches).

- OTLP: ``decode_protobuf`` + ``to_events`` (what ``POST /api/public/otel/v1/traces``
  runs before ``prepare_events``);
- JSON: ``orjson.loads`` + ``read_batch`` (what ``POST /api/public/ingestion`` runs).

Prints the best of ``--repeats`` timings as microseconds per observation and the
OTLP/JSON ratio; ``--prepare`` also times ``store.write.prepare_events`` on a
throwaway SQLite database for both (all CPU before the writer); ``--profile`` prints
the OTLP path's cProfile hot spots.

    .venv/bin/python bench/otlp_decode.py
    .venv/bin/python bench/otlp_decode.py --prepare --profile
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "src"))

import ingest as json_bench  # noqa: E402  (bench/ingest.py)
import otlp_ingest  # noqa: E402  (bench/otlp_ingest.py)

from lanterna.ingest.langfuse_events import read_batch  # noqa: E402
from lanterna.ingest.otlp import decode_protobuf, to_events  # noqa: E402

OBS_PER_TRACE = json_bench.OBS_PER_TRACE


def _race(a: Callable[[], Any], b: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Best seconds of each, the two taking turns (load from elsewhere hits both alike)."""
    best_a = best_b = float("inf")
    for _ in range(repeats):
        for fn, is_a in ((a, True), (b, False)):
            t0 = time.perf_counter()
            fn()
            took = time.perf_counter() - t0
            if is_a:
                best_a = min(best_a, took)
            else:
                best_b = min(best_b, took)
    return best_a, best_b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=40, help="requests per path")
    parser.add_argument(
        "--batch", type=int, default=100, help="events (spans + traces) per request"
    )
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--prepare", action="store_true", help="also time prepare_events")
    parser.add_argument("--profile", action="store_true", help="cProfile the OTLP path")
    parser.add_argument(
        "--json-otlp", action="store_true", help="also time OTLP/JSON exports (decode_json)"
    )
    args = parser.parse_args(argv)

    traces = max(1, args.batch // (OBS_PER_TRACE + 1))
    observations = args.batches * traces * OBS_PER_TRACE
    otlp_maker, json_maker = otlp_ingest.OtlpMaker(1), json_bench.BatchMaker(1)
    otlp_bodies = [otlp_maker.batch(traces) for _ in range(args.batches)]
    json_bodies = [json_maker.batch(traces) for _ in range(args.batches)]

    def otlp() -> list[Any]:
        return [to_events(decode_protobuf(body)) for body in otlp_bodies]

    def json() -> list[Any]:
        return [read_batch(orjson.loads(body)["batch"]).events for body in json_bodies]

    def count(batches: list[Any]) -> int:
        return sum(e.kind == "observation" for events in batches for e in events)

    assert count(otlp()) == count(json()) == observations
    # As ``lanterna serve`` does (cli.py): startup objects out of the cyclic GC.
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)

    from google.protobuf.internal import api_implementation

    print(
        f"{args.batches} requests x {traces * OBS_PER_TRACE} observations per path, "
        f"best of {args.repeats}; protobuf backend {api_implementation.Type()}"
    )
    otlp_s, json_s = _race(otlp, json, args.repeats)
    us = 1e6 / observations
    print(
        f"decode+map   otlp {otlp_s * us:6.1f} µs/obs   json {json_s * us:6.1f} µs/obs   "
        f"otlp/json {otlp_s / json_s:.2f}x"
    )

    if args.json_otlp:
        from google.protobuf import json_format
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        from lanterna.ingest.otlp import decode_json

        def as_otlp_json(body: bytes) -> bytes:
            """The export as an OTLP/JSON exporter writes it (hex ids)."""
            request = ExportTraceServiceRequest.FromString(body)
            doc = json_format.MessageToDict(request)
            for rs_doc, rs in zip(doc["resourceSpans"], request.resource_spans, strict=True):
                for ss_doc, ss in zip(rs_doc["scopeSpans"], rs.scope_spans, strict=True):
                    for span_doc, span in zip(ss_doc["spans"], ss.spans, strict=True):
                        span_doc["traceId"], span_doc["spanId"] = (
                            span.trace_id.hex(),
                            span.span_id.hex(),
                        )
                        if span.parent_span_id:
                            span_doc["parentSpanId"] = span.parent_span_id.hex()
            return orjson.dumps(doc)

        otlp_json_bodies = [as_otlp_json(body) for body in otlp_bodies]

        def otlp_json() -> list[Any]:
            return [to_events(decode_json(body)) for body in otlp_json_bodies]

        assert count(otlp_json()) == observations
        j_s, o_s = _race(otlp_json, otlp, args.repeats)
        print(
            f"OTLP/JSON    otlp {j_s * us:6.1f} µs/obs   (protobuf {o_s * us:.1f})"
            f"   otlp-json/protobuf {j_s / o_s:.2f}x"
        )

    if args.prepare:
        from lanterna.store.db import Database
        from lanterna.store.migrations import migrate
        from lanterna.store.projects import create_organization, create_project
        from lanterna.store.write import prepare_events

        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{tmp}/bench.db")
            migrate(db)
            writer = db.connect_writer()
            project = create_project(writer, create_organization(writer, "bench"), "bench")
            otlp_events, json_events = otlp(), json()
            with db.read() as conn:

                def otlp_full() -> None:
                    for body in otlp_bodies:
                        prepare_events(conn, project, to_events(decode_protobuf(body)))

                def json_full() -> None:
                    for body in json_bodies:
                        events = read_batch(orjson.loads(body)["batch"]).events
                        prepare_events(conn, project, events)

                def otlp_prep() -> None:
                    for events in otlp_events:
                        prepare_events(conn, project, events)

                def json_prep() -> None:
                    for events in json_events:
                        prepare_events(conn, project, events)

                for label, o, j in (
                    ("prepare only", otlp_prep, json_prep),
                    ("all pre-write", otlp_full, json_full),
                ):
                    o_s, j_s = _race(o, j, args.repeats)
                    print(
                        f"{label:<12} otlp {o_s * us:6.1f} µs/obs   json {j_s * us:6.1f} µs/obs"
                        f"   otlp/json {o_s / j_s:.2f}x"
                    )
            db.close()

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(otlp)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
