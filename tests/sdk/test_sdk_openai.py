"""The OpenAI drop-in against the real server, with the real ``openai`` client pointed at
a local stand-in of the provider API: sync, async, streaming (time to first token),
usage with cached and reasoning tokens, the Responses API, embeddings, errors."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sdk_support import by_name

from lanterna import context, observe
from lanterna.sdk.integrations.openai import openai

USAGE = {
    "prompt_tokens": 50,
    "completion_tokens": 20,
    "total_tokens": 70,
    "prompt_tokens_details": {"cached_tokens": 30},
    "completion_tokens_details": {"reasoning_tokens": 5},
}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


class Provider:
    """A stand-in for api.openai.com: canned answers, records request bodies."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                provider.requests.append(body)
                if body.get("model") == "broken":
                    self._json(
                        400,
                        {
                            "error": {
                                "message": "model 'broken' does not exist",
                                "type": "invalid_request_error",
                            }
                        },
                    )
                elif self.path.endswith("/chat/completions") and body.get("stream"):
                    self._stream(body)
                elif self.path.endswith("/chat/completions"):
                    self._json(
                        200,
                        {
                            "id": "c1",
                            "object": "chat.completion",
                            "created": 1700000000,
                            "model": "gpt-4o-2024-08-06",
                            "usage": USAGE,
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": "Hello!"},
                                }
                            ],
                        },
                    )
                elif self.path.endswith("/responses"):
                    self._json(
                        200,
                        {
                            "id": "r1",
                            "object": "response",
                            "created_at": 1700000000,
                            "model": "gpt-4o-mini",
                            "status": "completed",
                            "output": [
                                {
                                    "type": "message",
                                    "id": "m1",
                                    "status": "completed",
                                    "role": "assistant",
                                    "content": [
                                        {
                                            "type": "output_text",
                                            "text": "Hi there",
                                            "annotations": [],
                                        }
                                    ],
                                }
                            ],
                            "usage": {
                                "input_tokens": 10,
                                "output_tokens": 4,
                                "total_tokens": 14,
                                "input_tokens_details": {"cached_tokens": 2},
                                "output_tokens_details": {"reasoning_tokens": 1},
                            },
                        },
                    )
                else:  # embeddings
                    self._json(
                        200,
                        {
                            "object": "list",
                            "model": "text-embedding-3-small",
                            "data": [
                                {"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}
                            ],
                            "usage": {"prompt_tokens": 5, "total_tokens": 5},
                        },
                    )

            def _json(self, status: int, value: Any) -> None:
                data = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                events = [
                    chunk({"role": "assistant", "content": ""}),
                    chunk({"content": "Hel"}),
                    chunk({"content": "lo"}),
                    chunk({}, "stop"),
                ]
                if (body.get("stream_options") or {}).get("include_usage"):
                    events.append({**chunk({}), "choices": [], "usage": USAGE})
                for event in events:
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    yield p
    p.server.shutdown()
    p.server.server_close()


def test_chat_completion_inside_observe(client, reader, provider):
    oai = openai.OpenAI(api_key="sk-test", base_url=provider.url, max_retries=0)
    seen = []

    @observe()
    def answer(question: str) -> str:
        seen.append(context.get_current_trace_id())
        response = oai.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": question}],
            temperature=0.2,
            name="greet",
            metadata={"step": 1},
        )
        return response.choices[0].message.content

    assert answer("hi") == "Hello!"
    assert "name" not in provider.requests[0] and "metadata" not in provider.requests[0]
    assert client.flush(10)
    trace = reader.wait_trace(seen[0], observations=2)
    gen = by_name(trace)["greet"]
    assert gen["type"] == "GENERATION"
    assert gen["parentObservationId"] == by_name(trace)["answer"]["id"]
    assert gen["model"] == "gpt-4o-2024-08-06"
    assert gen["modelParameters"] == {"temperature": 0.2}
    assert gen["input"] == [{"role": "user", "content": "hi"}]
    assert gen["output"] == {"role": "assistant", "content": "Hello!"}
    assert gen["metadata"] == {"step": 1}
    usage = gen["usageDetails"]
    assert (usage["input"], usage["output"], usage["total"]) == (20, 15, 70)
    assert [v for k, v in usage.items() if "cache" in k] == [30]
    assert [v for k, v in usage.items() if "reasoning" in k] == [5]


def test_streaming_records_time_to_first_token_and_usage(client, reader, provider):
    oai = openai.OpenAI(api_key="sk-test", base_url=provider.url, max_retries=0)
    stream = oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
        user_id="u-s",
        session_id="s-s",
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello"
    assert client.flush(10)
    assert client.stats()["sent"] == 2
    trace = reader.wait_trace(_last_trace(reader, "u-s"))
    gen = trace["observations"][0]
    assert trace["sessionId"] == "s-s"
    assert gen["output"] == {"role": "assistant", "content": "Hello"}
    assert gen["completionStartTime"] is not None and gen["timeToFirstToken"] >= 0
    assert gen["usageDetails"]["total"] == 70


def _last_trace(reader, user_id: str) -> str:
    listed = reader.http.get("/api/public/traces", params={"userId": user_id}).json()
    return listed["data"][0]["id"]


def test_async_chat_stream_and_error(client, reader, provider):
    oai = openai.AsyncOpenAI(api_key="sk-test", base_url=provider.url, max_retries=0)
    seen = []

    @observe()
    async def run() -> str:
        seen.append(context.get_current_trace_id())
        first = await oai.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "a"}], name="plain"
        )
        stream = await oai.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "b"}],
            stream=True,
            name="streamed",
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        with pytest.raises(openai.BadRequestError):
            await oai.chat.completions.create(
                model="broken", messages=[{"role": "user", "content": "c"}], name="failed"
            )
        return first.choices[0].message.content + "".join(parts)

    assert asyncio.run(run()) == "Hello!Hello"
    assert client.flush(10)
    obs = by_name(reader.wait_trace(seen[0], observations=4))
    assert obs["plain"]["output"]["content"] == "Hello!"
    assert obs["streamed"]["output"]["content"] == "Hello"
    assert obs["streamed"]["completionStartTime"] is not None
    assert obs["failed"]["level"] == "ERROR" and "broken" in obs["failed"]["statusMessage"]


def test_responses_api_and_embeddings(client, reader, provider):
    oai = openai.OpenAI(api_key="sk-test", base_url=provider.url, max_retries=0)
    seen = []

    @observe()
    def run() -> None:
        seen.append(context.get_current_trace_id())
        assert (
            oai.responses.create(
                model="gpt-4o-mini", input="hey", instructions="be nice"
            ).output_text
            == "Hi there"
        )
        oai.embeddings.create(model="text-embedding-3-small", input="lantern")

    run()
    assert client.flush(10)
    trace = reader.wait_trace(seen[0], observations=3)
    gen = by_name(trace)["OpenAI-generation"]
    assert gen["input"] == {"instructions": "be nice", "input": "hey"}
    assert gen["output"] == "Hi there" and gen["model"] == "gpt-4o-mini"
    assert gen["usageDetails"]["total"] == 14
    emb = by_name(trace)["OpenAI-embedding"]
    assert emb["type"] == "EMBEDDING" and emb["usageDetails"]["input"] == 5
    assert emb["output"] == {"embeddings": 1, "dimensions": 3}


def test_prompt_link_and_explicit_trace(lanterna_capture, provider):
    oai = openai.OpenAI(api_key="sk-test", base_url=provider.url, max_retries=0)
    oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "x"}],
        lanterna_prompt={"name": "qa", "version": 2},
        trace_id="t-given",
        parent_observation_id="p-given",
    )
    (gen,) = lanterna_capture.observations()
    assert gen["promptName"] == "qa" and gen["promptVersion"] == 2
    assert gen["traceId"] == "t-given" and gen["parentObservationId"] == "p-given"
    assert lanterna_capture.traces() == []  # the trace belongs to someone else
