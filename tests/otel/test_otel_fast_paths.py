"""Edge cases of the OTLP decoder's and mapper's fast paths (bench/otlp_decode.py).

Each fast path replaces a general one on the hot path; these tests pin the results the
general one gives where the two could part: empty and unset attribute values, strings
that look almost like JSON, metadata keys that almost match a prefix, extreme
timestamps, and trace updates whose values are equal in Python but not on the wire.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from lanterna.ingest.otlp import OtlpError, decode_json, decode_protobuf, to_events
from lanterna.ingest.otlp_mapping import SpanData, events_of_spans

TRACE = "0af7651916cd43dd8448eb211c80319c"
T0_NS = 1_714_557_600_000_000_000  # 2024-05-01T10:00:00Z
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)


def _any(value: Any) -> AnyValue:
    out = AnyValue()
    if value is None:
        return out  # no value set
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, list):
        out.array_value.values.extend(_any(v) for v in value)
    else:
        out.kvlist_value.values.extend(KeyValue(key=k, value=_any(v)) for k, v in value.items())
    return out


def _export(attrs: dict[str, Any], *, start_ns: int = T0_NS, end_ns: int = T0_NS) -> bytes:
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    scope_spans.scope.name = "my-lib"
    span = scope_spans.spans.add(
        trace_id=bytes.fromhex(TRACE),
        span_id=bytes.fromhex("b7ad6b7169203331"),
        name="work",
        start_time_unix_nano=start_ns,
        end_time_unix_nano=end_ns,
    )
    span.attributes.extend(KeyValue(key=k, value=_any(v)) for k, v in attrs.items())
    return request.SerializeToString()


def _observation(raw: bytes) -> dict[str, Any]:
    [obs] = [e for e in to_events(decode_protobuf(raw)) if e.kind == "observation"]
    return obs.fields


def test_attribute_values_of_every_kind_including_empty_and_unset():
    attrs = {
        "text": "hello",
        "empty": "",
        "unset": None,
        "zero": 0,
        "false": False,
        "number": 1.5,
        "nan": float("nan"),
        "raw": b"\x00\x01",
        "list": ["a", 1, [True]],
        "map": {"k": ["", None]},
    }
    raw_attributes = _observation(_export(attrs))["metadata"]["attributes"]
    assert raw_attributes == {
        "text": "hello",
        "empty": "",
        "unset": None,
        "zero": 0,
        "false": False,
        "number": 1.5,
        "nan": "NaN",
        "raw": "AAE=",
        "list": ["a", 1, [True]],
        "map": {"k": ["", None]},
    }
    assert type(raw_attributes["zero"]) is int and type(raw_attributes["false"]) is bool


def test_a_later_duplicate_attribute_key_wins():
    request = ExportTraceServiceRequest.FromString(_export({"k": "first"}))
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.append(KeyValue(key="k", value=_any(2)))
    fields = _observation(request.SerializeToString())
    assert fields["metadata"]["attributes"] == {"k": 2}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"quoted"', "quoted"),
        ("plain text", "plain text"),
        ("3", 3),
        (" 4", 4),  # JSON may start with whitespace
        ("\n[1]", [1]),
        ("-2.5", -2.5),
        ("true", True),
        ("null", None),
        ("nope", "nope"),  # starts like null, is not JSON
        ("tru", "tru"),
        ("{broken", "{broken"),
        ("Infinity", "Infinity"),
        ("NaN", "NaN"),
        ("\ufeff{}", "\ufeff{}"),
    ],
)
def test_metadata_values_are_decoded_only_when_they_are_json(value, expected):
    fields = _observation(_export({"langfuse.observation.metadata.v": value}))
    assert fields["metadata"]["v"] == expected
    assert type(fields["metadata"]["v"]) is type(expected)


def test_metadata_keys_that_only_resemble_a_prefix():
    attrs = {
        "langfuse.observation.metadata.a.metadata.b": "1",  # nested ".metadata" stays in the key
        "langfuse.observation.metadata.": '"empty key"',
        "langfuse.observation.metadata": '{"blob": 1, "a.metadata.b": 0}',
        "langfuse.observation.metadataX": "not metadata",
        "x.langfuse.observation.metadata.y": "not metadata",
        "langfuse.metadata.shared": "2",
        "ai.telemetry.metadata.userId": "u",  # reserved: not copied
        "ai.telemetry.metadata.team": '"t"',
    }
    for _ in range(2):  # the second time, the keys' classification is remembered
        metadata = _observation(_export(attrs))["metadata"]
        assert {k: v for k, v in metadata.items() if k not in ("attributes", "scope")} == {
            "shared": 2,
            "team": "t",
            "blob": 1,
            "a.metadata.b": 1,
            "": "empty key",
            "resourceAttributes": {},
        }
        # The raw copy leaves out whole families by prefix (otlp_io.CONSUMED_PREFIXES).
        assert set(metadata["attributes"]) == {
            "x.langfuse.observation.metadata.y",
            "langfuse.metadata.shared",
        }


@pytest.mark.parametrize(
    ("start_ns", "expected"),
    [
        (T0_NS + 123_456_999, T0 + timedelta(microseconds=123_456)),  # truncated, not rounded
        (1, datetime(1970, 1, 1, tzinfo=timezone.utc)),
        (2**64 - 1, datetime(2554, 7, 21, 23, 34, 33, 709551, tzinfo=timezone.utc)),
    ],
)
def test_timestamps_from_unix_nanos(start_ns, expected):
    fields = _observation(_export({}, start_ns=start_ns, end_ns=start_ns))
    assert fields["start_time"] == expected == fields["end_time"]
    assert fields["start_time"].tzinfo is timezone.utc


def _child(attrs: dict[str, Any], n: int, start_ms: int = 0) -> SpanData:
    return SpanData(
        trace_id=TRACE,
        span_id=f"{n:016x}",
        parent_span_id="1111111111111111",
        name="child",
        start_ns=T0_NS + start_ms * 1_000_000,
        end_ns=T0_NS + start_ms * 1_000_000,
        attributes=attrs,
    )


def _updates(*spans: SpanData) -> list[dict[str, Any]]:
    return [e.fields for e in events_of_spans(list(spans)) if e.kind == "trace"]


@pytest.mark.parametrize(
    ("key", "values", "read"),
    [
        ("user.id", [1, True, 1.0, "1"], ["1", "true", "1.0", "1"]),
        ("langfuse.trace.tags", [[1], [True], ["1"]], [["1"], ["true"], ["1"]]),
    ],
)
def test_trace_updates_equal_in_python_but_not_on_the_wire_are_all_kept(key, values, read):
    spans = [_child({key: v}, n) for n, v in enumerate(values)]
    field = "user_id" if key == "user.id" else "tags"
    assert [u[field] for u in _updates(*spans)] == read


def test_repeated_updates_collapse_to_the_earliest_until_one_differs():
    same = {"user.id": "u1", "langfuse.trace.metadata.plan": '"pro"'}
    spans = [
        _child(dict(same), 1, start_ms=30),
        _child(dict(same), 2, start_ms=10),
        _child(dict(same), 3, start_ms=20),
    ]
    [update] = _updates(*spans)
    assert update["timestamp"] == T0 + timedelta(milliseconds=10)
    assert update["metadata"] == {"plan": "pro"}
    # Metadata differing only in a value's type is a different update.
    other = _child({"user.id": "u1", "langfuse.trace.metadata.plan": "1"}, 4, start_ms=40)
    again = _child(dict(same), 5, start_ms=50)
    assert [u["metadata"] for u in _updates(*spans, other, again)] == [
        {"plan": "pro"},
        {"plan": 1},
        {"plan": "pro"},
    ]


def test_a_child_marked_as_root_after_a_repeated_update_makes_the_full_trace():
    same = {"user.id": "u1"}
    spans = [
        _child(dict(same), 1),
        _child(dict(same), 2),
        _child({**same, "langfuse.internal.as_root": "true"}, 3),
    ]
    events = [e for e in events_of_spans(spans) if e.kind == "trace"]
    assert [e.is_update for e in events] == [True, False]
    assert events[1].fields["name"] == "child"


# --- OTLP/JSON attributes read without json_format -------------------------------------


def _json_export(attributes: list[Any]) -> bytes:
    span = {
        "traceId": TRACE,
        "spanId": "b7ad6b7169203331",
        "name": "work",
        "startTimeUnixNano": str(T0_NS),
        "endTimeUnixNano": str(T0_NS),
        "attributes": attributes,
        "events": [{"name": "e", "timeUnixNano": str(T0_NS), "attributes": attributes}],
    }
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": attributes},
                "scopeSpans": [
                    {"scope": {"name": "my-lib", "attributes": attributes}, "spans": [span]}
                ],
            }
        ]
    }
    return json.dumps(doc).encode()


CANONICAL = [
    {"key": "s", "value": {"stringValue": "text"}},
    {"key": "empty", "value": {"stringValue": ""}},
    {"key": "i", "value": {"intValue": "-42"}},
    {"key": "n", "value": {"intValue": 7}},
    {"key": "b", "value": {"boolValue": False}},
    {"key": "d", "value": {"doubleValue": 2}},
    {"key": "f", "value": {"doubleValue": 0.5}},
    {"key": "unset", "value": {}},
    {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}},
    {"key": "nolist", "value": {"arrayValue": {}}},
    {
        "key": "map",
        "value": {
            "kvlistValue": {
                "values": [
                    {"key": "k", "value": {"intValue": "1"}},
                    {"key": "k", "value": {"stringValue": "later wins"}},
                ]
            }
        },
    },
]
CANONICAL_READ = {
    "s": "text",
    "empty": "",
    "i": -42,
    "n": 7,
    "b": False,
    "d": 2.0,
    "f": 0.5,
    "unset": None,
    "list": ["a", 1],
    "nolist": [],
    "map": {"k": "later wins"},
}
# Forms json_format reads but the direct reader leaves to it.
UNUSUAL = [
    ({"key": "x", "value": {"intValue": {"low": 1, "high": 1}}}, 2**32 + 1),
    ({"key": "x", "value": {"intValue": 5.0}}, 5),
    ({"key": "x", "value": {"intValue": "+5"}}, 5),
    ({"key": "x", "value": {"doubleValue": "NaN"}}, "NaN"),
    ({"key": "x", "value": {"doubleValue": "-Infinity"}}, "-Infinity"),
    ({"key": "x", "value": {"doubleValue": "1.5"}}, 1.5),
    ({"key": "x", "value": {"bytesValue": "AAE="}}, "AAE="),
    ({"key": "x", "value": {"string_value": "proto field name"}}, "proto field name"),
    ({"key": "x", "value": {"stringValue": None}}, None),
    ({"key": "x"}, None),
    ({"key": "x", "value": {"stringValue": "s"}, "extra": 1}, "s"),
]


def _json_events(raw: bytes) -> list[Any]:
    return [(e.kind, e.entity_id, e.timestamp, e.fields) for e in to_events(decode_json(raw))]


def _via_json_format(raw: bytes) -> list[Any]:
    """The events of ``raw`` parsed by json_format alone, sent as protobuf."""
    doc = json.loads(raw)
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    del span["traceId"], span["spanId"]  # hex in OTLP/JSON, base64 in json_format's mapping
    request = json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    proto_span = request.resource_spans[0].scope_spans[0].spans[0]
    proto_span.trace_id, proto_span.span_id = (
        bytes.fromhex(TRACE),
        bytes.fromhex("b7ad6b7169203331"),
    )
    return [
        (e.kind, e.entity_id, e.timestamp, e.fields)
        for e in to_events(decode_protobuf(request.SerializeToString()))
    ]


def test_canonical_json_attributes_read_like_protobuf_ones():
    raw = _json_export(CANONICAL)
    [obs] = [f for kind, _, _, f in _json_events(raw) if kind == "observation"]
    assert obs["metadata"]["attributes"] == CANONICAL_READ
    assert obs["metadata"]["resourceAttributes"] == CANONICAL_READ
    assert obs["metadata"]["scope"]["attributes"] == CANONICAL_READ
    assert type(obs["metadata"]["attributes"]["d"]) is float
    assert _json_events(raw) == _via_json_format(raw)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "SPAN_KIND_SERVER"),
        ("kind", 3),
        ("kind", "3"),  # a number-string: json_format's way
        ("kind", "NOT_A_KIND"),  # ignored by json_format
        ("status", {"code": "STATUS_CODE_ERROR", "message": "boom"}),
        ("status", {"code": 2}),
        ("status", {"code": "2"}),
        ("status", {"code": 9}),  # unknown, but an int32: kept
        ("status", {}),
        ("startTimeUnixNano", T0_NS + 5_000),
        ("startTimeUnixNano", float(T0_NS)),
        ("endTimeUnixNano", str(T0_NS + 2_000_000)),
        ("flags", 257),
        ("traceState", "k=v"),
        ("droppedAttributesCount", "4"),
        ("name", ""),
        ("unknownField", {"any": "thing"}),
        ("start_time_unix_nano", str(T0_NS + 7_000)),  # the proto field name
    ],
)
def test_json_span_fields_read_like_json_format(field, value):
    doc = json.loads(_json_export(CANONICAL))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0][field] = value
    raw = json.dumps(doc).encode()
    assert _json_events(raw) == _via_json_format(raw)


@pytest.mark.parametrize(("kv", "read"), UNUSUAL)
def test_other_json_attribute_forms_are_still_read(kv, read):
    raw = _json_export([*CANONICAL, kv])
    [obs] = [f for kind, _, _, f in _json_events(raw) if kind == "observation"]
    assert obs["metadata"]["attributes"] == {**CANONICAL_READ, "x": read}
    assert obs["metadata"]["resourceAttributes"] == {**CANONICAL_READ, "x": read}


@pytest.mark.parametrize(
    "kv",
    [
        {"key": "x", "value": {"stringValue": "a", "intValue": "1"}},  # two values
        {"key": "x", "value": {"boolValue": "true"}},
        {"key": "x", "value": {"intValue": "9223372036854775808"}},  # past int64
        {"key": 5, "value": {"stringValue": "a"}},
    ],
)
def test_json_attributes_json_format_refuses_are_refused(kv):
    with pytest.raises(OtlpError, match="Failed to parse OTel JSON Trace"):
        decode_json(_json_export([kv]))


def test_a_non_object_in_a_json_kvlist_is_not_a_crash():
    kv = {"key": "x", "value": {"kvlistValue": {"values": ["not an object"]}}}
    # json_format reads a string item as an empty KeyValue; this used to raise
    # AttributeError (a 500) before json_format was reached.
    [obs] = [f for kind, _, _, f in _json_events(_json_export([kv])) if kind == "observation"]
    assert obs["metadata"]["attributes"] == {"x": {"": None}}
