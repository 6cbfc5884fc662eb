"""What tracing costs the app: µs of process CPU added per decorated call, Lanterna vs
its peers and vs the CPython floor, measured in one run.

    .venv/bin/python bench/sdk_overhead.py [--quick] [--rounds N]

Runs the same three workloads with each SDK, each in its own process with its own
virtualenv, all exporting to one local sink (a small HTTP server in another process
that accepts Langfuse ingestion batches and OTLP exports):

- ``noop``: a decorated function that does nothing;
- ``nested``: a decorated function calling three decorated children (1+3 observations);
- ``generation``: a decorated generation with 1 KB input, 1 KB output, model and usage.

SDKs: Lanterna (this repo, ``.venv``), langfuse 5.x and langfuse 2.x
(``.venvs/langfuse5``, ``.venvs/langfuse2``), plain OpenTelemetry (SDK + OTLP/HTTP
exporter, from the langfuse 5.x venv, which depends on them) and Arize Phoenix's
OpenInference SDK (``arize-phoenix-otel``, ``.venvs/phoenix``); ``scripts/test`` builds
each from ``tests/clients/<name>.txt``. A peer whose venv is missing is skipped.

The "CPython floor" is the least a tracing decorator can do -- a wrapper that sets and
resets a contextvar, reads the clock and appends to a deque -- applied to the same
workloads. The "python minimum" is the least a tracer in Python keeps per call without
delivering it (the call's ids, parent, type, name, clock readings, argument, result and
the generation's update, as one tuple on a deque); Lanterna's worker also measures the
least the delivery itself costs (the events it sent, encoded by orjson from ready dicts
and POSTed again to the sink), and the report adds the two: the least a delivered call
can cost in Python, against the floor. Figures per call, each minus the same loop
without the decorator, all in process CPU time (exporter threads share the GIL with
the app, so this is what the app really pays; CPU time, unlike wall time, is not
inflated by other processes on a shared machine): ``loop`` is the caller's loop,
``+flush`` the loop plus the flush that delivers everything. Rounds are interleaved
(every SDK once per round) and the best of all rounds is kept. Lanterna's worker also
prints the memory each queued record holds (tracemalloc) and whether a burst of 20,000
calls with default settings was fully delivered.
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
    "phoenix": ROOT / ".venvs/phoenix/bin/python",
    "cpython floor": ROOT / ".venv/bin/python",
    "python minimum": ROOT / ".venv/bin/python",
}
#: Process CPU per call including the flush, on the reference machine (issue 20).
TARGETS = {"noop": 5.0, "nested": 15.0, "generation": 10.0}
FLOOR = "cpython floor"
#: Not an SDK: the least record keeping in Python, without delivery (_setup_record_floor).
MINIMUM = "python minimum"
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
    elif sdk == "phoenix":
        return _setup_phoenix(url)
    elif sdk == FLOOR:
        return _setup_floor()
    elif sdk == MINIMUM:
        return _setup_record_floor()
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


def _setup_phoenix(url: str) -> tuple[dict[str, Any], Any]:
    """Arize Phoenix's OpenInference tracer: ``@tracer.chain`` (records input and output
    like ``@observe``) and ``@tracer.llm`` with model and token counts."""
    from opentelemetry.trace import get_current_span
    from phoenix.otel import register

    provider = register(
        endpoint=url + "/v1/traces",
        project_name="bench",
        batch=True,
        set_global_tracer_provider=False,
        verbose=False,
    )
    tracer = provider.get_tracer("bench")

    @tracer.chain
    def noop() -> None:
        return None

    @tracer.chain
    def child() -> None:
        return None

    @tracer.chain
    def nested() -> None:
        child()
        child()
        child()

    @tracer.llm
    def generation(prompt: str) -> str:
        get_current_span().set_attributes(
            {
                "llm.model_name": "gpt-4o",
                "llm.token_count.prompt": 200,
                "llm.token_count.completion": 100,
                "llm.token_count.total": 300,
            }
        )
        return TEXT

    return (
        {"noop": (noop, ()), "nested": (nested, ()), "generation": (generation, (TEXT,))},
        provider.force_flush,
    )


def _setup_record_floor() -> tuple[dict[str, Any], Any]:
    """The three workloads under the least a tracer written in Python keeps per call,
    without delivering it: the floor's steps, plus the call's record (its trace id and
    own random id, parent id, type, name, both clock readings, the captured argument and
    result, and the fields the generation's update sets) as one tuple on a deque.
    ``update`` sets the running call's fields as ``update_current_observation`` does;
    no sampling, size limits, error handling or exporter. "Flushing" empties the deque."""
    import functools
    import random
    from collections import deque
    from contextvars import ContextVar

    var: ContextVar[Any] = ContextVar("r", default=None)
    queue: deque[Any] = deque()
    now = time.time_ns
    bits = random.Random().getrandbits

    def traced(kind: str) -> Any:
        def decorate(fn: Any) -> Any:
            name = fn.__name__

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                parent = var.get()
                record = [parent[0] if parent else bits(128), bits(64), None]
                token = var.set(record)
                start = now()
                try:
                    result = fn(*args, **kwargs)
                finally:
                    var.reset(token)
                queue.append(
                    (
                        *record,
                        parent and parent[1],
                        kind,
                        name,
                        start,
                        now(),
                        {"prompt": args[0]} if args else None,
                        result,
                    )
                )
                return result

            return wrapper

        return decorate

    def update(**fields: Any) -> None:
        var.get()[2] = fields

    usage = {"input": 200, "output": 100, "total": 300}

    @traced("span")
    def noop() -> None:
        return None

    @traced("span")
    def child() -> None:
        return None

    @traced("span")
    def nested() -> None:
        child()
        child()
        child()

    @traced("generation")
    def generation(prompt: str) -> str:
        update(model="gpt-4o", usage_details=usage)
        return TEXT

    return (
        {"noop": (noop, ()), "nested": (nested, ()), "generation": (generation, (TEXT,))},
        queue.clear,
    )


def _setup_floor() -> tuple[dict[str, Any], Any]:
    """The three workloads under the least a tracing decorator does (contextvar set and
    reset, a clock read, a deque append); "flushing" empties the deque."""
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

    @minimal
    def noop() -> None:
        return None

    @minimal
    def child() -> None:
        return None

    @minimal
    def nested() -> None:
        child()
        child()
        child()

    @minimal
    def generation(prompt: str) -> str:
        return TEXT

    return (
        {"noop": (noop, ()), "nested": (nested, ()), "generation": (generation, (TEXT,))},
        queue.clear,
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
    """Print one JSON line: per workload, the best loop and loop+flush process-CPU µs
    per call (minus the undecorated loop); for Lanterna also memory and burst figures."""
    import gc

    workloads, flush = _setup(sdk, url)
    out: dict[str, Any] = {}
    cpu = time.process_time
    for name, (fn, args) in workloads.items():
        plain, plain_args = _plain(name)
        for _ in range(min(calls, 200)):  # warm up: imports, connections, caches
            fn(*args)
        flush()
        base = loop = total = float("inf")
        for _ in range(reps):
            gc.collect()
            c0 = cpu()
            for _ in range(calls):
                plain(*plain_args)
            base = min(base, cpu() - c0)
            gc.collect()
            c0 = cpu()
            for _ in range(calls):
                fn(*args)
            c1 = cpu()
            flush()
            c2 = cpu()
            loop = min(loop, c1 - c0)
            total = min(total, c2 - c0)
        out[name] = {
            "loop": (loop - base) / calls * 1e6,
            "flush": (total - base) / calls * 1e6,
        }
    if sdk == "lanterna":
        out.update(_lanterna_extras(workloads))
        out["_wire"] = {
            name: _wire_floor(workloads[name], flush, url, calls, reps) for name in workloads
        }
    print(json.dumps(out))


def _wire_floor(workload: Any, flush: Any, url: str, calls: int, reps: int) -> float:
    """µs of process CPU per call that delivering the call's events costs at the least:
    the very bytes Lanterna sent for ``calls`` calls (captured at its sender), encoded
    by orjson from ready-made dicts (C, no Python per field) and POSTed to the sink on
    one kept-alive connection. No SDK can deliver the same events for less than this
    plus the CPython floor (the wrapper alone)."""
    import gc
    import http.client
    from urllib.parse import urlsplit

    import orjson

    from lanterna import get_client

    fn, args = workload
    sender = get_client().exporter._sender  # type: ignore[attr-defined]
    bodies: list[bytes] = []
    post = sender.post

    def keep(body: bytes) -> Any:
        bodies.append(body)
        return post(body)

    sender.post = keep
    try:
        for _ in range(calls):
            fn(*args)
        flush()
    finally:
        del sender.post
    batches = [orjson.loads(body) for body in bodies]
    where = urlsplit(url)
    conn = http.client.HTTPConnection(where.hostname, where.port)
    headers = {"Content-Type": "application/json"}
    best = float("inf")
    cpu = time.process_time
    for _ in range(reps):
        gc.collect()
        c0 = cpu()
        for batch in batches:
            conn.request("POST", "/api/public/ingestion", orjson.dumps(batch), headers)
            conn.getresponse().read()
        best = min(best, cpu() - c0)
    conn.close()
    return best / calls * 1e6


def _lanterna_extras(workloads: dict[str, Any]) -> dict[str, Any]:
    """A burst of 20,000 calls with the default settings, flushed once, and the bytes
    held per queued record (tracemalloc, with a client that sends only when flushed)."""
    import gc
    import tracemalloc

    from lanterna import Lanterna, get_client, set_client

    out: dict[str, Any] = {}
    client = get_client()
    before = client.stats()
    fn, args = workloads["noop"]
    for _ in range(20_000):
        fn(*args)
    client.flush()
    after = client.stats()
    out["_burst"] = {
        "calls": 20_000,
        "sent": after["sent"] - before["sent"],
        "dropped": after["dropped"] - before["dropped"] + after["failed"] - before["failed"],
    }
    held = Lanterna(flush_at=1 << 30, flush_interval=1e9)
    previous = set_client(held)
    memory = {}
    try:
        for name, (fn, args) in workloads.items():
            fn(*args)  # the exporter thread starts (and waits) before measuring
            held.flush()
            gc.collect()
            tracemalloc.start()
            m0 = tracemalloc.get_traced_memory()[0]
            for _ in range(2000):
                fn(*args)
            gc.collect()
            m1 = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            memory[name] = (m1 - m0) / max(held.exporter.pending(), 1)
            held.flush()
    finally:
        set_client(previous)
        held.shutdown()
    out["_memory"] = memory
    return out


# --- the driver -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and repetitions")
    parser.add_argument("--rounds", type=int, default=0, help="interleaved rounds (default 3)")
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
    rounds = args.rounds or (2 if args.quick else 3)
    results: dict[str, dict[str, Any]] = {}
    try:
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        peers = {}
        for sdk, python in PEERS.items():
            if python.exists():
                peers[sdk] = python
            else:
                print(f"skipping {sdk}: {python} is missing (run scripts/test to build it)")
        for round_no in range(rounds):
            for sdk, python in peers.items():
                ours = sdk in ("lanterna", FLOOR, MINIMUM)
                calls = (20_000 if ours else 2_000) // (4 if args.quick else 1)
                got = _run_worker(python, sdk, url, calls, 2 if args.quick else 3)
                if got is not None:
                    _keep_best(results.setdefault(sdk, got), got)
            print(f"round {round_no + 1}/{rounds} done", file=sys.stderr)
    finally:
        sink.terminate()
        sink.wait(10)
        port_file.unlink(missing_ok=True)
    report(results)


def _run_worker(python: Path, sdk: str, url: str, calls: int, reps: int) -> dict[str, Any] | None:
    """One worker process; its JSON line, or None (and its stderr printed) if it failed."""
    done = subprocess.run(
        [
            str(python),
            __file__,
            *("--worker", sdk, "--sink", url),
            *("--calls", str(calls), "--reps", str(reps)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        print(f"{sdk} failed:\n{done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _keep_best(best: dict[str, Any], got: dict[str, Any]) -> None:
    """Fold one round into the best so far: the least µs per figure; the latest extras."""
    for key, row in got.items():
        if key == "_wire":
            best[key] = {k: min(v, best[key][k]) for k, v in row.items()}
        elif key.startswith("_"):
            best[key] = row
        else:
            best[key] = {k: min(v, best[key][k]) for k, v in row.items()}


def report(results: dict[str, dict[str, Any]]) -> None:
    """Print the table (µs of process CPU added per call), each SDK's ratio to the floor
    and to Lanterna, and Lanterna's verdict against the targets."""
    ours = results.get("lanterna", {})
    floor = results.get(FLOOR, {})
    print(
        f"\nµs of process CPU added per decorated call (best of interleaved rounds;"
        f" {os.cpu_count()} CPUs; Python {sys.version.split()[0]})"
    )
    print(f"{'workload':<11} {'sdk':<14} {'loop':>8} {'+flush':>8} {'x floor':>8} {'x ours':>7}")
    for workload in ("noop", "nested", "generation"):
        for sdk, res in results.items():
            row = res[workload]
            low = floor.get(workload, {}).get("flush", 0.0)
            mine = ours.get(workload, {}).get("flush", 0.0)
            x_floor = row["flush"] / low if low > 0 else float("nan")
            x_ours = row["flush"] / mine if mine > 0 else float("nan")
            print(
                f"{workload:<11} {sdk:<14} {row['loop']:>8.2f} {row['flush']:>8.2f} "
                f"{x_floor:>7.1f}x {x_ours:>6.1f}x"
            )
    if not ours:
        return
    print("\nLanterna against the targets (+flush; also at most 10x this run's floor):")
    for workload, target in TARGETS.items():
        got = ours[workload]["flush"]
        low = floor.get(workload, {}).get("flush", float("nan"))
        verdict = "met" if got <= target and got <= 10 * low else "NOT met"
        print(
            f"  {workload:<11} {got:6.2f} µs (target {target:g} µs, 10x floor {10 * low:.2f} µs):"
            f" {verdict}"
        )
    wire = ours.get("_wire", {})
    least = results.get(MINIMUM, {})
    if wire and floor and least:
        print(
            "\nThe least a delivered call can cost in Python here (µs): the python minimum's"
            "\nrecord keeping plus the wire (encoding the events Lanterna sent with orjson"
            "\nfrom ready dicts, and POSTing the same bytes):"
        )
        for workload, cost in wire.items():
            low = floor[workload]["flush"]
            keep = least[workload]["flush"]
            print(
                f"  {workload:<11} {keep + cost:6.2f} = record {keep:.2f} + wire {cost:.2f}:"
                f" {(keep + cost) / low:.1f}x the floor (Lanterna"
                f" {ours[workload]['flush'] / low:.1f}x)"
            )
    memory = ours.get("_memory", {})
    if memory:
        per = ", ".join(f"{k} {v:.0f}" for k, v in memory.items())
        print(f"Memory per queued record (bytes, tracemalloc): {per}")
    burst = ours.get("_burst")
    if burst:
        print(
            f"Burst of {burst['calls']} noop calls, default settings: {burst['sent']} events"
            f" delivered ({2 * burst['calls']} expected), {burst['dropped']} dropped or failed"
        )


if __name__ == "__main__":
    main()
