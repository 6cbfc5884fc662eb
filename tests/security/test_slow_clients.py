"""A client that stops sending its request body gets a 408 and its connection closed,
on a real uvicorn server; a complete request on the same server is unaffected."""

from __future__ import annotations

import base64
import socket
from urllib.parse import urlsplit

import pytest

from support import serve


@pytest.fixture
def server(db_url, tmp_path):
    with serve(db_url, tmp_path, body_timeout_ms=300) as live:
        yield live


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=20)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_stalled_upload_gets_408_and_the_connection_closes(server):
    token = base64.b64encode(":".join(server.project.auth).encode()).decode()
    sock = _connect(server.url)
    head = (
        "POST /api/public/ingestion HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Basic {token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"batch": [')  # then nothing more
    answer = _read_all(sock)  # the server answers and closes: no sleeping here
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"did not arrive within 0.3 s" in answer


def test_complete_requests_are_unaffected(server):
    import httpx

    response = httpx.post(
        f"{server.url}/api/public/ingestion",
        json={"batch": []},
        auth=server.project.auth,
    )
    assert response.status_code == 207
