"""Both wire formats apply the field table's limit to an observation name (2,000 UTF-8
bytes): a name within it is stored whole either way; above it the Langfuse JSON path
refuses the event with a 400 naming the limit and OTLP cuts the name to it (a span is
never lost over a name)."""

from __future__ import annotations

from otel_spans import PROTOBUF, protobuf, record, span_id

from helpers import event, ingest
from lanterna.schema import OBSERVATION

NAME = OBSERVATION["name"]
WITHIN = "é" * 900  # 900 characters, 1,800 bytes: over the 1,000 bytes OTLP used to keep
OVER_BYTES = "가" * 700  # 700 characters, 2,100 bytes
OVER_CHARS = "x" * 1500


def _otlp_name(api, name: str) -> str:
    def work(tracer):
        with tracer.start_as_current_span(name):
            pass

    [span] = record(work)
    response = api.post("/api/public/otel/v1/traces", content=protobuf([span]), headers=PROTOBUF)
    assert response.status_code == 200, response.text
    return api.get(f"/api/public/observations/{span_id(span)}").json()["name"]


def _json_name(api, name: str) -> tuple[int, str]:
    body = ingest(api, event("span-create", {"id": "o1", "traceId": "t1", "name": name}))
    if body["errors"]:
        [error] = body["errors"]
        return error["status"], error["error"]
    return 201, api.get("/api/public/observations/o1").json()["name"]


def test_the_limits_are_the_field_tables():
    assert (NAME.max_chars, NAME.max_bytes) == (1000, 2000)


def test_a_name_within_the_limits_is_stored_whole_by_both(api):
    assert _json_name(api, WITHIN) == (201, WITHIN)
    assert _otlp_name(api, WITHIN) == WITHIN


def test_a_name_over_the_byte_limit(api):
    assert _json_name(api, OVER_BYTES) == (400, "name: longer than 2000 bytes (UTF-8)")
    assert _otlp_name(api, OVER_BYTES) == "가" * 666  # 1,998 bytes: whole characters only


def test_a_name_over_the_character_limit(api):
    assert _json_name(api, OVER_CHARS) == (400, "name: longer than 1000 characters")
    assert _otlp_name(api, OVER_CHARS) == "x" * 1000
