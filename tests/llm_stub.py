"""A local OpenAI-compatible endpoint on loopback for LLM-as-a-judge and playground
tests: ``POST /v1/chat/completions`` answers fixed completions (or an error status, or
holds the request until a gate is set), recording every request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class LlmStub:
    """What the stub got and what it answers: ``content`` (the completion's text),
    ``usage`` (OpenAI's usage object), ``model``; ``status`` other than 200 answers an
    error; while ``gate`` is set to an unset Event, each request waits for it."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    content: str = '{"score": 0.8, "reasoning": "mostly right"}'
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    )
    model: str = "gpt-4o-mini"
    status: int = 200
    gate: threading.Event | None = None

    @property
    def base_url(self) -> str:
        """What an LLM connection's ``baseURL`` is set to."""
        return self.url + "/v1"


@contextmanager
def llm_stub() -> Iterator[LlmStub]:
    """The stub on 127.0.0.1 (a port the OS chooses), served in a thread."""
    stub: LlmStub

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            stub.requests.append(body)
            stub.headers.append(dict(self.headers.items()))
            if stub.gate is not None:
                stub.gate.wait(30)
            if self.path != "/v1/chat/completions":
                answer, status = {"error": {"message": "no such route"}}, 404
            elif stub.status != 200:
                answer, status = {"error": {"message": "the model is overloaded"}}, stub.status
            else:
                status = 200
                answer = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": stub.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": stub.content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": stub.usage,
                }
            data = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the caller gave up (a timeout test)
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    stub = LlmStub(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        if stub.gate is not None:
            stub.gate.set()
        server.shutdown()
        server.server_close()
