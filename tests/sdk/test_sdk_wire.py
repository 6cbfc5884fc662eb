"""The exporter's templated encoding (sdk/wire.py) against the reference encoding
(``to_events`` + orjson) and against the real server: the same bytes, accepted, and
read back as sent, for every observation type; timestamps exact to the microsecond."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from lanterna import Lanterna, context, observe, set_client
from lanterna.sdk.exporter import encode
from lanterna.sdk.observe import AS_TYPES
from lanterna.sdk.records import EventOptions, Observation, iso
from lanterna.sdk.testing import InMemoryExporter
from lanterna.sdk.transport import Transport
from lanterna.sdk.wire import FastEncoder


class Keeper(InMemoryExporter):
    """The test kit's exporter, keeping the records themselves (not events), so that
    the test encodes them both ways."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[Any] = []

    @property
    def options(self) -> EventOptions:
        return self._options

    def submit(self, item: Any) -> bool:
        self.records.append(item)
        return True


@pytest.fixture
def keeper() -> Any:
    kept = Keeper()
    client = Lanterna(
        exporter=kept,
        public_key="pk-test",
        secret_key="sk-test",
        environment="staging",
        release="r-1",
    )
    previous = set_client(client)
    yield kept
    set_client(previous)


def traced_calls() -> None:
    """Traces of every observation type: a root with input and output and a child of the
    same type, the same without arguments or results, plus errors, metadata, generation
    fields, a prompt link and odd names."""
    for kind in AS_TYPES:

        @observe(as_type=kind, name=f"child-{kind}")
        def child(n: int) -> dict[str, Any]:
            return {"n": n, "ok": True}

        @observe(as_type=kind, name=f'root "{kind}" 100% ✓')
        def root(question: str, *, k: int = 3) -> str:
            child(1)
            return question.upper()

        root("why?", k=2)

        # Calls without arguments or result (the exporter's shortest shapes): a child,
        # its root, and a trace of one such observation.
        @observe(as_type=kind, name=f"bare-{kind}")
        def bare() -> None:
            return None

        @observe(as_type=kind, name=f"bare-root-{kind}")
        def bare_root() -> None:
            bare()

        bare_root()
        bare()

    @observe(as_type="generation", prompt={"name": "qa", "version": 3})
    def generate(prompt: str) -> str:
        context.update_current_observation(
            model="gpt-4o",
            model_parameters={"temperature": 0.2},
            usage_details={"input": 200, "output": 100, "total": 300},
            cost_details={"total": 0.0012},
            completion_start_time=dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC),
            metadata={"tenant": "t-1", "nested": {"a": [1, 2.5, None]}},
            version="v2",
        )
        return "x" * 1024

    @observe(name="failing")
    def failing() -> None:
        raise ValueError('bad input: "quoted" \u00e9')

    @observe(name="outer")
    def outer() -> None:
        generate("p" * 1024)
        with pytest.raises(ValueError):
            failing()
        context.update_current_observation(level="WARNING", status_message="partly failed")

    outer()


def encode_both(record: Observation, options: EventOptions) -> tuple[bytes, bytes]:
    """The templated bytes and the reference bytes (with the same envelope ids)."""
    fast = FastEncoder(options)
    fast.new_batch()
    got = fast.observation(record)
    assert got is not None, f"{record.name} took the reference path"
    data, n = got
    ids = [event["id"] for event in orjson.loads(b"[" + data + b"]")]
    events = record.to_events(options)
    assert len(events) == n == len(ids)
    for event, event_id in zip(events, ids, strict=True):
        event["id"] = event_id
    return data, encode(events)[1:-1]


def test_templates_write_the_reference_bytes_and_the_server_stores_them(
    keeper, live_server, reader
):
    traced_calls()
    records = keeper.records
    assert {r.kind for r in records} == set(AS_TYPES)
    encoded = []
    for record in records:
        data, reference = encode_both(record, keeper.options)
        assert data == reference, record.name
        encoded.append(data)

    # One encoder over the whole batch, as the exporter runs it: every envelope id once
    # (the server drops an event whose id it has already taken).
    batch_encoder = FastEncoder(keeper.options)
    batch_encoder.new_batch()
    in_one_batch = [batch_encoder.observation(record) for record in records]
    envelope_ids = [
        event["id"] for data, _ in in_one_batch for event in orjson.loads(b"[" + data + b"]")
    ]
    assert len(set(envelope_ids)) == len(envelope_ids)

    # The real server accepts the templated batch as is, every event of it.
    p = live_server.project
    transport = Transport(live_server.url, p.public_key, p.secret_key)
    batch = b'{"batch":[' + b",".join(encoded) + b"]}"
    reply = transport.send("POST", "/api/public/ingestion", batch)
    assert reply.status_code == 207, reply.content
    answer = reply.json()
    assert answer["errors"] == []
    assert len(answer["successes"]) == sum(1 + (r.trace.root_id == r.oid) for r in records)

    # ... and returns what was recorded.
    roots = [r for r in records if r.top]
    for root in roots:
        mine = {r.id: r for r in records if r.trace is root.trace}
        trace = reader.wait_trace(root.trace.id, observations=len(mine))
        assert trace["name"] == root.name
        assert trace["release"] == "r-1" and trace["environment"] == "staging"
        assert {o["id"] for o in trace["observations"]} == set(mine)
        for got in trace["observations"]:
            record = mine[got["id"]]
            assert got["type"] == record.kind.upper()
            assert got["name"] == record.name
            assert got["parentObservationId"] == (
                None if record.parent_id is None else f"{record.parent_id:016x}"
            )
            assert got["input"] == record.input and got["output"] == record.output
            assert got["startTime"] == iso(record.start)
            assert got["endTime"] == iso(record.end)
            assert got["environment"] == "staging"
            if record.level is not None:
                assert (got["level"], got["statusMessage"]) == (record.level, record.status)
    generation = next(r for r in records if r.kind == "generation" and r.name == "generate")
    trace = reader.wait_trace(generation.trace.id, observations=3)
    (got,) = [o for o in trace["observations"] if o["id"] == generation.id]
    assert got["model"] == "gpt-4o"
    assert got["modelParameters"] == {"temperature": 0.2}
    assert got["usageDetails"] == {"input": 200, "output": 100, "total": 300}
    assert got["promptName"] == "qa" and got["promptVersion"] == 3
    assert got["completionStartTime"] == "2026-01-02T03:04:05.678901Z"
    assert got["metadata"] == {"tenant": "t-1", "nested": {"a": [1, 2.5, None]}}
    (failed,) = [o for o in trace["observations"] if o["name"] == "failing"]
    assert failed["level"] == "ERROR" and failed["statusMessage"] == 'bad input: "quoted" é'


def test_timestamps_keep_microsecond_precision(keeper, live_server, reader):
    @observe(name="timed")
    def timed() -> None:
        return None

    timed()
    (record,) = keeper.records
    # Clock readings whose microseconds a float (or a millisecond format) would lose.
    record.start = 1_764_979_199_999_999_999  # 2025-12-05T23:59:59.999999999Z
    record.end = 1_764_979_200_000_001_999  # the next day, 1 µs (and 999 ns) later
    data, reference = encode_both(record, keeper.options)
    assert data == reference
    trace_event, span_event = orjson.loads(b"[" + data + b"]")
    body = span_event["body"]
    assert body["startTime"] == "2025-12-05T23:59:59.999999Z"
    assert body["endTime"] == "2025-12-06T00:00:00.000001Z"
    assert span_event["timestamp"] == trace_event["timestamp"] == body["endTime"]
    assert trace_event["body"]["timestamp"] == body["startTime"]

    p = live_server.project
    transport = Transport(live_server.url, p.public_key, p.secret_key)
    reply = transport.send("POST", "/api/public/ingestion", b'{"batch":[' + data + b"]}")
    assert reply.status_code == 207 and reply.json()["errors"] == []
    stored = reader.wait_trace(record.trace.id)
    (observation,) = stored["observations"]
    assert observation["startTime"] == "2025-12-05T23:59:59.999999Z"
    assert observation["endTime"] == "2025-12-06T00:00:00.000001Z"
    assert stored["timestamp"] == "2025-12-05T23:59:59.999999Z"


def test_what_the_templates_leave_to_the_reference_path(keeper):
    """A mask, a data URI (media upload), given text ids, trace fields and extra fields
    that override the record's own take the reference path; the exporter still sends
    them (the end-to-end tests cover that path)."""

    @observe(name="r")
    def r(value: Any) -> Any:
        return value

    r("data:image/png;base64," + "A" * 100)
    r("plain")
    r("x", lanterna_trace_id="given-trace-id")

    @observe(name="with-fields")
    def with_fields() -> None:
        context.update_current_trace(user_id="u-1")

    with_fields()
    media, plain, given, fields = keeper.records
    with_media = EventOptions(media=lambda value, *_: value)
    assert FastEncoder(with_media).observation(media) is None
    assert FastEncoder(with_media).observation(plain) is not None
    assert FastEncoder(keeper.options).observation(given) is None
    assert FastEncoder(keeper.options).observation(fields) is None
    plain.extra = {"startTime": "2026-01-01T00:00:00Z"}
    assert FastEncoder(keeper.options).observation(plain) is None
