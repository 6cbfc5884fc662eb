"""The exporter's templated encoding (sdk/wire.py) against the reference encoding
(``to_events`` + orjson) and against the real server: the same bytes, accepted, and
read back as sent, for every observation type; timestamps exact to the microsecond."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import gc
import uuid
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lanterna import Lanterna, context, observe, set_client
from lanterna.sdk import _errors, wire
from lanterna.sdk.exporter import BatchExporter, encode
from lanterna.sdk.observe import AS_TYPES
from lanterna.sdk.records import (
    FROZEN_FIELDS,
    EventOptions,
    Observation,
    Trace,
    freeze,
    iso,
    new_observation,
    thaw,
)
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

    # The LLM call most apps make: model and usage only (no metadata, level or status),
    # as a trace's root and as a child.
    @observe(as_type="generation", name="llm")
    def llm(prompt: str) -> str:
        context.update_current_observation(
            model="gpt-4o", usage_details={"input": 200, "output": 100, "total": 300}
        )
        return prompt[::-1]

    llm("q" * 1024 + "%s %%")

    @observe(name="failing")
    def failing() -> None:
        raise ValueError('bad input: "quoted" \u00e9')

    @observe(name="outer")
    def outer() -> None:
        generate("p" * 1024)
        llm("data")
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
    # The calls above reach every shape written from one tuple (bytes checked above).
    io = wire._END | wire._INPUT | wire._OUTPUT
    assert {
        io | wire._ROOT,
        io | wire._ROOT | wire._EXTRA,
        io | wire._PARENT,
        io | wire._PARENT | wire._EXTRA,
    } <= set(batch_encoder._templates)

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


class Capture:
    """A sender that keeps every POSTed body and answers 207 with no errors."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def post(self, body: bytes) -> Any:
        self.bodies.append(body)
        return SimpleNamespace(status_code=207, headers={}, json=lambda: {"errors": []})

    def close(self) -> None:
        pass


def test_the_exporter_queues_frozen_records_and_sends_the_reference_events(keeper):
    """What the exporter queues for an observed call is ``freeze(record)`` (a tuple; the
    record itself when it carries trace fields), and what it sends of them is, event for
    event, the reference encoding; records the templates refuse (media, given ids)
    are thawed for the reference path with the same result."""
    traced_calls()

    @observe(name="r")
    def r(value: Any) -> Any:
        return value

    r("data:image/png;base64," + "A" * 100)
    r("x", lanterna_trace_id="given-trace-id")
    r("x" * 70_000)  # a large value: counted in the queue's bytes, reference path

    @observe(name="with-fields")
    def with_fields() -> None:
        context.update_current_trace(user_id="u-1", tags=["a"])

    with_fields()
    records = keeper.records
    for options in (keeper.options, EventOptions(media=lambda value, *_: value)):
        sender = Capture()
        exporter = BatchExporter(sender, options, flush_at=1 << 20, flush_interval=1e9)
        exporter._start_needed = False  # no thread yet: look at the queue first
        for record in records:
            assert exporter.submit(record)
        queued = list(exporter._queue)
        assert exporter._bytes == sum(record.size for record in records) > 0
        for record, item in zip(records, queued, strict=True):
            frozen = freeze(record)
            assert item == (record if frozen is None else frozen)
            if frozen is not None:
                assert frozen[FROZEN_FIELDS.index("root")] == (record.trace.root_id == record.oid)
                assert dict(zip(FROZEN_FIELDS[1:], frozen[1:], strict=True)) == {
                    key: getattr(thaw(frozen), key)
                    for key in FROZEN_FIELDS[1:7] + FROZEN_FIELDS[8:]
                } | {"root": frozen[7]}
        assert frozen is None  # the trace with fields was queued as it is
        exporter._start_needed = True
        assert exporter.flush(10)
        sent = [event for body in sender.bodies for event in orjson.loads(body)["batch"]]
        reference = [event for record in records for event in record.to_events(options)]
        assert len(sent) == len(reference) == exporter.stats()["sent"]
        assert len({event["id"] for event in sent}) == len(sent)
        for got, want in zip(sent, reference, strict=True):
            want["id"] = got["id"]
            assert got == want
        assert exporter._bytes == 0
        exporter.shutdown(1)


def test_a_queued_record_leaves_the_cyclic_gc(keeper):
    """A frozen record holding no container (ids, times, names, a string or number
    result) is untracked at the first collection it meets, so records waiting in the
    queue are neither walked nor promoted by the cyclic GC. (CPython keeps a tuple that
    holds a dict tracked: such a record is one tracked object instead of the two or
    more that an Observation and its Trace were.)"""

    @observe()
    def noop() -> None:
        return None

    @observe()
    def answer() -> str:
        return "x" * 1024

    @observe()
    def parent() -> int:
        noop()
        return 42

    noop()
    answer()
    parent()
    frozen = [freeze(record) for record in keeper.records]
    gc.collect()
    assert [gc.is_tracked(item) for item in frozen] == [False] * 4


_NS = st.integers(min_value=1, max_value=4_102_444_800 * 10**9)  # up to 2100


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(_NS, st.integers(min_value=0, max_value=3 * 10**9)).map(
            lambda pair: (pair[0], pair[0] + pair[1])
        ),
        min_size=1,
        max_size=30,
    )
)
def test_one_encoder_writes_every_timestamp_exactly(readings):
    """One encoder over many records (its cached second and millisecond in play): every
    start and end written to the microsecond, as the reference path writes them."""
    options = EventOptions(environment="e")
    fast = FastEncoder(options)
    fast.new_batch()
    trace = Trace(1 << 127, None, True)  # type: ignore[arg-type]
    for i, (start, end) in enumerate(readings):
        obs = new_observation(trace, None if i % 2 else 7, "span", "t")
        trace.root_id = obs.oid if i % 2 else None
        obs.top = bool(i % 2)
        obs.start, obs.end = start, end
        got = fast.observation(obs)
        assert got is not None
        events = obs.to_events(options)
        data = got[0]
        for event, sent in zip(events, orjson.loads(b"[" + data + b"]"), strict=True):
            event["id"] = sent["id"]
        assert data == encode(events)[1:-1]
        body = orjson.loads(b"[" + data + b"]")[-1]["body"]
        assert (body["startTime"], body["endTime"]) == (iso(start), iso(end))


def test_records_queued_during_an_export_fill_the_same_batches(keeper):
    """The exporter takes records until the queue is empty and sends full batches as
    they fill: 2,048 calls (4,096 events) queued at once go out in five POSTs of 1,000,
    1,000, 1,000, 1,000 and 96 events, not in a batch and a remainder per wake-up."""

    @observe()
    def noop() -> None:
        return None

    for _ in range(2048):
        noop()
    sender = Capture()
    exporter = BatchExporter(sender, keeper.options, flush_at=512, flush_interval=1e9)
    exporter._start_needed = False  # queue everything first
    for record in keeper.records:
        assert exporter.submit(record)
    exporter._start_needed = True
    assert exporter.flush(10)
    sizes = [len(orjson.loads(body)["batch"]) for body in sender.bodies]
    assert sizes == [1000, 1000, 1000, 1000, 96]
    assert exporter.stats()["sent"] == 4096 and exporter.pending() == 0
    exporter.shutdown(1)


class _Text(str):
    pass


class _Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class _Point:
    x: int
    y: int


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        'quotes " and \\ and é ✓',
        _Text("a str subclass"),
        {"a": 1, "b": [1, 2.5, None], "c": {"d": "e"}},
        {1: "int key", "b": True},
        {_Text("k"): 1},
        {None: 1, 2.5: "x", True: False},
        [{"x": {2: 3}}],
        {"when": dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)},
        {"object": Keeper},
        1 << 70,
        {"nan": float("nan"), "inf": float("-inf")},
        {"enum": _Colour.RED, "uuid": uuid.UUID(int=7), "point": _Point(1, 2)},
        {"bytes": b"raw", "set": {1}},
        pytest.param("numpy", id="numpy"),
    ],
)
def test_the_templates_value_encoding_is_the_reference_one(value):
    """``wire._dumps`` tries orjson without options or ``default`` first (keywords cost
    orjson ~0.2 µs), then with the reference's: the bytes (or the refusal) are the
    reference options' own, for what orjson takes natively and what it refuses."""
    if value == "numpy":
        np = pytest.importorskip("numpy")
        value = {"array": np.arange(3), "scalar": np.float32(0.5), "int": np.int64(7)}
    try:
        want: Any = orjson.dumps(value, default=str, option=wire.OPTS)
    except orjson.JSONEncodeError as exc:
        want = type(exc)
    try:
        got: Any = wire._dumps(value)
    except orjson.JSONEncodeError as exc:
        got = type(exc)
    assert got == want


def test_an_exporter_bug_before_any_record_is_taken_does_not_spin(keeper):
    """A failure in ``_export`` before it takes a record ends the drain (reported) rather
    than looping on the same queue; the next wake-up (here, flush) delivers."""

    @observe()
    def noop() -> None:
        return None

    for _ in range(3):
        noop()
    sender = Capture()
    exporter = BatchExporter(sender, keeper.options, flush_interval=1e9)
    assert exporter._fast is not None
    calls = []
    real = exporter._fast.new_batch

    def failing_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("bug")
        real()

    exporter._fast.new_batch = failing_once  # type: ignore[method-assign]
    exporter._start_needed = False
    for record in keeper.records:
        exporter.submit(record)
    exporter._drain()  # on this thread: fails once, returns with the queue intact
    assert len(calls) == 1 and exporter.pending() == 3 and not exporter._busy
    assert [where for where, _ in _errors.recent] == ["exporter.export"]
    _errors.recent.clear()
    exporter._drain()
    assert exporter.stats()["sent"] == 6 and exporter.stats()["failed"] == 0
    exporter.shutdown(1)
