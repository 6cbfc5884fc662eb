"""What tracing costs the app: µs added per decorated call, Lanterna vs its peers.

    .venv/bin/python bench/sdk_overhead.py [--quick]

Runs the same three workloads with each SDK, each in its own process with its own
virtualenv, all exporting to one local sink (a small HTTP server in another process
that accepts Langfuse ingestion batches and OTLP exports):

- ``noop``: a decorated function that does nothing;
- ``nested``: a decorated function calling three decorated children (1+3 observations);
- ``generation``: a decorated generation with 1 KB input, 1 KB output, model and usage.

SDKs: Lanterna (this repo, ``.venv``), langfuse 5.x and langfuse 2.x
(``.venvs/langfuse5``, ``.venvs/langfuse2``, built by ``scripts/test`` from
``tests/clients/*.txt``) and plain OpenTelemetry (SDK + OTLP/HTTP exporter, from the
langfuse 5.x venv, which depends on them). A peer whose venv is missing is skipped.

Two figures per call, each minus the same loop without the decorator:
``loop``: wall time of the caller's loop; ``+flush``: process CPU time of the loop plus
the flush that delivers everything (exporter threads share the GIL with the app, so
this is what the app really pays). Best of several repetitions, because the machine is
shared. The CPython floor (contextvar set/reset + clock + deque append) is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEERS = {
    "lanterna": ROOT / ".venv/bin/python",
    "langfuse 5.x": ROOT / ".venvs/langfuse5/bin/python",
    "langfuse 2.x": ROOT / ".venvs/langfuse2/bin/python",
    "opentelemetry": ROOT / ".venvs/langfuse5/bin/python",
}
TEXT = "x" * 1024


# --- the sink ---------------------------------------------------------------------------


def run_sink(port_file: str) -> None:
    """Accept anything: 207 for ingestion batches, 200 for OTLP, 200 ``{}`` otherwise."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Sink(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One write per response and no Nagle: otherwise headers and body leave in two
        # segments and delayed ACKs stall every request for tens of milliseconds.
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            if "ingestion" in self.path:
                status, body = 207, b'{"successes":[],"errors":[]}'
            elif "/otel/" in self.path or self.path.endswith("/v1/traces"):
                status, body = 200, b""
            else:
                status, body = 200, b'{"data":[]}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET = do_PUT = do_PATCH = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


# --- workers: one per SDK, each run by that SDK's python -------------------------------


def _setup(sdk: str, url: str) -> tuple[dict[str, Any], Any]:
    """The three workloads for ``sdk`` and a function that flushes everything."""
    os.environ.update(
        {
            "LANGFUSE_PUBLIC_KEY": "pk-lf-bench",
            "LANGFUSE_SECRET_KEY": "sk-lf-bench",
            "LANGFUSE_HOST": url,
            "LANGFUSE_BASE_URL": url,
        }
    )
    usage = {"input": 200, "output": 100, "total": 300}
    if sdk == "lanterna":
        sys.path.insert(0, str(ROOT / "src"))
        from lanterna import Lanterna, context, observe

        client = Lanterna()

        def gen_update() -> None:
            context.update_current_observation(model="gpt-4o", usage_details=usage)

        flush = client.flush
    elif sdk == "langfuse 2.x":
        from langfuse.decorators import langfuse_context, observe  # type: ignore[no-redef]

        def gen_update() -> None:
            langfuse_context.update_current_observation(model="gpt-4o", usage=usage)

        flush = langfuse_context.flush
    elif sdk == "langfuse 5.x":
        from langfuse import get_client, observe  # type: ignore[no-redef]

        lf = get_client()

        def gen_update() -> None:
            lf.update_current_generation(model="gpt-4o", usage_details=usage)

        flush = lf.flush
    else:
        return _setup_otel(url)

    @observe()
    def noop() -> None:
        return None

    @observe()
    def child() -> None:
        return None

    @observe()
    def nested() -> None:
        child()
        child()
        child()

    @observe(as_type="generation")
    def generation(prompt: str) -> str:
        gen_update()
        return TEXT

    return {"noop": (noop, ()), "nested": (nested, ()), "generation": (generation, (TEXT,))}, flush


def _setup_otel(url: str) -> tuple[dict[str, Any], Any]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=url + "/api/public/otel/v1/traces"))
    )
    tracer = provider.get_tracer("bench")

    @tracer.start_as_current_span("noop")
    def noop() -> None:
        return None

    @tracer.start_as_current_span("child")
    def child() -> None:
        return None

    @tracer.start_as_current_span("nested")
    def nested() -> None:
        child()
        child()
        child()

    def generation(prompt: str) -> str:
        with tracer.start_as_current_span("generation") as span:
            span.set_attribute("gen_ai.request.model", "gpt-4o")
            span.set_attribute("gen_ai.prompt", prompt)
            span.set_attribute("gen_ai.usage.input_tokens", 200)
            span.set_attribute("gen_ai.usage.output_tokens", 100)
            span.set_attribute("gen_ai.completion", TEXT)
            return TEXT

    return (
        {"noop": (noop, ()), "nested": (nested, ()), "generation": (generation, (TEXT,))},
        provider.force_flush,
    )


def _plain(workload: str) -> tuple[Any, tuple[Any, ...]]:
    def noop() -> None:
        return None

    def child() -> None:
        return None

    def nested() -> None:
        child()
        child()
        child()

    def generation(prompt: str) -> str:
        return TEXT

    return {"noop": (noop, ()), "nested": (nested, ()), "generation": (generation, (TEXT,))}[
        workload
    ]


def run_worker(sdk: str, url: str, calls: int, reps: int) -> None:
    """Print one JSON line: per workload, best loop and loop+flush µs per call."""
    import gc

    workloads, flush = _setup(sdk, url)
    out: dict[str, Any] = {}
    for name, (fn, args) in workloads.items():
        plain, plain_args = _plain(name)
        base_wall = base_cpu = float("inf")
        wall = cpu = float("inf")
        for _ in range(reps):
            gc.collect()
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(calls):
                plain(*plain_args)
            base_wall = min(base_wall, time.perf_counter() - w0)
            base_cpu = min(base_cpu, time.process_time() - c0)
            flush()
            gc.collect()
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(calls):
                fn(*args)
            w1 = time.perf_counter()
            flush()
            c1 = time.process_time()
            wall = min(wall, w1 - w0)
            cpu = min(cpu, c1 - c0)
        out[name] = {
            "loop": (wall - base_wall) / calls * 1e6,
            "flush": (cpu - base_cpu) / calls * 1e6,
        }
    if sdk == "lanterna":
        from lanterna import get_client

        stats = get_client().stats()
        out["_delivered"] = stats["sent"]
        out["_dropped"] = stats["dropped"] + stats["failed"]
        out["_floor"] = _floor(calls)
    print(json.dumps(out))


def _floor(calls: int) -> float:
    """The CPython floor per call: the least a tracing decorator can do -- a wrapper that
    sets and resets a contextvar, reads the clock and appends to a deque -- minus the
    undecorated call."""
    import functools
    from collections import deque
    from contextvars import ContextVar

    var: ContextVar[Any] = ContextVar("v", default=None)
    queue: deque[Any] = deque()
    now = time.time_ns

    def minimal(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = var.set(now())
            try:
                return fn(*args, **kwargs)
            finally:
                var.reset(token)
                queue.append(now())

        return wrapper

    def plain() -> None:
        return None

    traced = minimal(plain)
    best = float("inf")
    for _ in range(5):
        queue.clear()
        t0 = time.perf_counter()
        for _ in range(calls):
            plain()
        t1 = time.perf_counter()
        for _ in range(calls):
            traced()
        best = min(best, (time.perf_counter() - t1) - (t1 - t0))
    return best / calls * 1e6


# --- the driver -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and repetitions")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    parser.add_argument("--sink-port-file", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink_port_file:
        run_sink(args.sink_port_file)
        return
    if args.worker:
        run_worker(args.worker, args.sink, args.calls, args.reps)
        return

    port_file = ROOT / "bench" / ".sink-port"
    port_file.unlink(missing_ok=True)
    sink = subprocess.Popen([sys.executable, __file__, "--sink-port-file", str(port_file)])
    try:
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        results: dict[str, dict[str, Any]] = {}
        for sdk, python in PEERS.items():
            if not python.exists():
                print(f"skipping {sdk}: {python} is missing (run scripts/test to build it)")
                continue
            ours = sdk == "lanterna"
            calls = (20_000 if ours else 2_000) // (4 if args.quick else 1)
            reps = 3 if args.quick else 5
            done = subprocess.run(
                [
                    str(python),
                    __file__,
                    "--worker",
                    sdk,
                    "--sink",
                    url,
                    "--calls",
                    str(calls),
                    "--reps",
                    str(reps),
                ],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if done.returncode != 0:
                print(f"{sdk} failed:\n{done.stderr[-2000:]}")
                continue
            results[sdk] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        sink.terminate()
        sink.wait(10)
        port_file.unlink(missing_ok=True)
    report(results)


def report(results: dict[str, dict[str, Any]]) -> None:
    """Print the table: µs added per call, and each peer's ratio to Lanterna."""
    ours = results.get("lanterna", {})
    print(
        f"\nµs added per decorated call (best of runs; {os.cpu_count()} CPUs; "
        f"Python {sys.version.split()[0]})"
    )
    print(f"{'workload':<11} {'sdk':<14} {'loop':>9} {'+flush':>9} {'loop x':>8} {'+flush x':>9}")
    for workload in ("noop", "nested", "generation"):
        for sdk, res in results.items():
            row = res[workload]
            mine = ours.get(workload)
            ratio_loop = row["loop"] / mine["loop"] if mine and mine["loop"] > 0 else float("nan")
            ratio_all = row["flush"] / mine["flush"] if mine and mine["flush"] > 0 else float("nan")
            print(
                f"{workload:<11} {sdk:<14} {row['loop']:>9.1f} {row['flush']:>9.1f} "
                f"{ratio_loop:>7.1f}x {ratio_all:>8.1f}x"
            )
    if ours:
        floor = ours["_floor"]
        print(
            f"\nCPython floor (a minimal decorator: contextvar set/reset, clock, deque append):"
            f" {floor:.2f} µs"
        )
        print(
            f"Lanterna noop: loop {ours['noop']['loop'] / floor:.1f}x the floor, "
            f"+flush {ours['noop']['flush'] / floor:.1f}x the floor; "
            f"events delivered {ours['_delivered']}, dropped or failed {ours['_dropped']}"
        )


if __name__ == "__main__":
    main()
