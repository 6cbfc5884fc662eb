"""The exporter's kept-alive session writes its requests and reads the answers itself
(``transport.Session``): these tests talk to it from a raw socket server that answers
each request with scripted bytes, so every way an HTTP/1.x server may frame an answer
is covered (length, chunks, the end of the connection, informational answers)."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lanterna import LanternaConnectionError
from lanterna.sdk.transport import Transport


class RawServer:
    """Accepts connections and answers each request with the next scripted bytes
    (``None``: close the connection without answering; ``(bytes, "close")``: answer,
    then close; ``(bytes, "reset")``: answer, then reset the connection). Records every
    request."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.script: list[bytes | tuple[bytes, str] | None] = []
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)
        self.connections = 0
        self.lock = threading.Lock()
        self.tls: Any = None  # an ssl.SSLContext: connections are wrapped in TLS
        self.ended = threading.Event()  # set when a scripted answer ended its connection
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._start, args=(conn,), daemon=True).start()

    def _start(self, conn: socket.socket) -> None:
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:
                conn.close()
                return
        self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                with self.lock:
                    self.requests.append((head, body))
                    answer = self.script.pop(0) if self.script else _answer(207, b"{}")
                if answer is None:
                    return
                if isinstance(answer, tuple):
                    conn.sendall(answer[0])
                    if answer[1] == "reset":  # after the client has read what was sent
                        time.sleep(0.2)
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)
                    conn.close()
                    self.ended.set()
                    return
                conn.sendall(answer)
                head = answer.lower()  # informational heads included
                framed = b"content-length" in head or b"transfer-encoding: chunked" in head
                if b"connection: close" in head or not framed:
                    return

    def close(self) -> None:
        self.sock.close()


_NO_LINGER = struct.pack("ii", 1, 0)  # close() then sends RST, not FIN


def _answer(status: int, body: bytes, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


_open: list[Any] = []


@pytest.fixture
def raw() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    while _open:
        _open.pop().close()
    server.close()


def _session(url: str, timeout: float = 5) -> Any:
    session = Transport(url, "pk-1", "sk-%d", timeout=timeout).session()
    _open.append(session)
    return session


def test_a_request_head_carries_host_length_auth_and_the_path_prefix(raw: RawServer) -> None:
    session = _session(raw.url + "/prefix")
    reply = session.post("/api/public/ingestion", b'{"batch":[]}')
    assert reply.status_code == 207
    assert reply.json() == {}
    ((head, body),) = raw.requests
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /prefix/api/public/ingestion HTTP/1.1"
    fields = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert fields["host"] == raw.url.removeprefix("http://")
    assert fields["content-length"] == str(len(b'{"batch":[]}'))
    assert fields["content-type"] == "application/json"
    # the secret holds "%d": the head's length placeholder must not swallow it
    assert fields["authorization"] == "Basic cGstMTpzay0lZA=="  # pk-1:sk-%d
    assert body == b'{"batch":[]}'


def test_requests_share_one_connection_and_bodies_of_every_size_arrive(
    raw: RawServer,
) -> None:
    session = _session(raw.url)
    bodies = [b"{}", b'{"x":"' + b"y" * 3_000_000 + b'"}', b"[]"]
    for body in bodies:
        assert session.post("/api/public/ingestion", body).status_code == 207
    assert [b for _, b in raw.requests] == bodies
    assert raw.connections == 1


def test_chunked_answers_informational_answers_and_trailers_are_read(raw: RawServer) -> None:
    payload = json.dumps({"successes": [], "errors": [{"id": "e1", "status": 400}]}).encode()
    chunked = (
        b"HTTP/1.1 207 Multi-Status\r\nTransfer-Encoding: chunked\r\nRetry-After: 3\r\n\r\n"
        + b"%x;ext=1\r\n%s\r\n" % (10, payload[:10])
        + b"%x\r\n%s\r\n" % (len(payload) - 10, payload[10:])
        + b"0\r\nX-Trailer: t\r\n\r\n"
    )
    raw.script = [b"HTTP/1.1 100 Continue\r\n\r\n" + chunked, _answer(200, b'{"n":2}')]
    session = _session(raw.url)
    reply = session.post("/api/public/ingestion", b"{}")
    assert reply.status_code == 207
    assert reply.json()["errors"] == [{"id": "e1", "status": 400}]
    assert reply.headers.get("Retry-After") == "3"  # any case
    assert session.post("/api/public/ingestion", b"{}").json() == {"n": 2}  # same connection
    assert raw.connections == 1


def test_an_answer_that_ends_the_connection_is_read_to_its_end(raw: RawServer) -> None:
    raw.script = [
        b'HTTP/1.0 200 OK\r\n\r\n{"until":"close"}',
        _answer(200, b'{"n":2}', "Connection: close"),
        _answer(204, b""),
    ]
    session = _session(raw.url)
    assert session.post("/api/public/ingestion", b"{}").json() == {"until": "close"}
    assert session.post("/api/public/ingestion", b"{}").json() == {"n": 2}
    assert session.post("/api/public/ingestion", b"{}").status_code == 204
    assert raw.connections == 3  # a new connection after each answer that ended its own


def test_an_idle_connection_the_server_closed_is_reopened_once(raw: RawServer) -> None:
    raw.script = [_answer(207, b"{}"), None]  # the second request finds the door shut
    session = _session(raw.url)
    assert session.post("/api/public/ingestion", b"{}").status_code == 207
    assert session.post("/api/public/ingestion", b"{}").status_code == 207
    assert len(raw.requests) == 3
    assert raw.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}", "close"),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n{}",  # a superscript 2
    ],
    ids=["not-http", "bad-length", "bad-chunk", "cut-short", "two-lengths", "not-ascii"],
)
def test_an_answer_that_cannot_be_read_is_no_answer(raw: RawServer, answer: Any) -> None:
    raw.script = [answer]
    session = _session(raw.url)
    with pytest.raises(LanternaConnectionError):
        session.post("/api/public/ingestion", b"{}")
    assert len(raw.requests) == 1  # a fresh connection is not tried again
    # the session is usable afterwards: a new connection
    assert session.post("/api/public/ingestion", b"{}").status_code == 207


def test_a_server_that_never_answers_times_out(raw: RawServer) -> None:
    raw.script = []
    hold = threading.Event()
    original = raw._handle

    def silent(conn: socket.socket) -> None:
        hold.wait(10)
        conn.close()

    raw._handle = silent  # type: ignore[method-assign]
    session = _session(raw.url, timeout=0.3)
    try:
        with pytest.raises(LanternaConnectionError, match=r"no answer within 0\.3 s"):
            session.post("/api/public/ingestion", b"{}")
    finally:
        hold.set()
        raw._handle = original  # type: ignore[method-assign]


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 207 X\nContent-Length: 2\n\n{}",
        b"HTTP/1.1  207  Multi-Status\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 207\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 207 X\r\nContent-Length: 2, 2\r\n\r\n{}",
        _answer(207, b"{}") + b"\r\n",
        b"HTTP/1.1 207 X\r\nTransfer-Encoding: chunked\r\n\r\n2\n{}\n0\n\n",
    ],
    ids=["lf-only", "spaces", "repeated-length", "joined-length", "stray-crlf", "lf-chunks"],
)
def test_answers_http_client_reads_are_read_on_a_kept_alive_connection(
    raw: RawServer, answer: bytes
) -> None:
    # what the standard library's client accepts, so does the exporter's: a batch the
    # server took must not be sent again for a quirk of its answer's framing
    raw.script = [answer, answer, _answer(200, b'{"n":3}')]
    session = _session(raw.url)
    for _ in range(2):
        reply = session.post("/api/public/ingestion", b"{}")
        assert (reply.status_code, reply.json()) == (207, {})
    assert session.post("/api/public/ingestion", b"{}").json() == {"n": 3}
    assert len(raw.requests) == 3
    assert raw.connections == 1


def test_a_chunked_answer_whose_connection_ends_after_the_last_chunk_is_read(
    raw: RawServer,
) -> None:
    chunked = b"HTTP/1.1 207 X\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
    raw.script = [(chunked, "close")]
    session = _session(raw.url)
    assert session.post("/api/public/ingestion", b"{}").json() == {}
    assert session.post("/api/public/ingestion", b"{}").status_code == 207
    assert raw.connections == 2  # the ended connection was not used again


@pytest.mark.parametrize("end", ["close", "reset"])
def test_a_request_whose_answer_broke_off_is_not_sent_again_unasked(
    raw: RawServer, end: str
) -> None:
    # the server took the batch and began to answer: the session must not silently
    # send it again (the exporter decides, and counts it as retried)
    raw.script = [_answer(207, b"{}"), (b"HTTP/1.1 207 Multi-Sta", end)]
    session = _session(raw.url)
    assert session.post("/api/public/ingestion", b"{}").status_code == 207
    with pytest.raises(LanternaConnectionError):
        session.post("/api/public/ingestion", b"{}")
    assert len(raw.requests) == 2
    assert session.post("/api/public/ingestion", b"{}").status_code == 207


def test_an_answer_sent_before_the_server_stopped_reading_the_body_is_read(
    raw: RawServer,
) -> None:
    # a proxy whose body limit is under the batch answers 413 after the head and closes:
    # the session returns that 413 (the exporter then halves the batch) rather than a
    # connection error (an outage, retried forever)
    def early_413(conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(65536)
            raw.requests.append((head, b""))
            conn.sendall(_answer(413, b'{"message":"too large"}', "Connection: close"))
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _NO_LINGER)

    raw._handle = early_413  # type: ignore[method-assign]
    session = _session(raw.url)
    reply = session.post("/api/public/ingestion", b"x" * 40_000_000)
    assert reply.status_code == 413
    assert reply.json() == {"message": "too large"}
    assert len(raw.requests) == 1


def test_a_proxy_answering_connect_with_garbage_is_no_answer(
    raw: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # http.client's errors on the tunnel (BadStatusLine, LineTooLong) must leave as the
    # SDK's connection error, which the exporter retries, not as an error it cannot handle
    monkeypatch.setenv("HTTPS_PROXY", raw.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    raw.script = [(b"SSH-2.0-OpenSSH_9.6\r\n", "close")]
    session = _session("https://lanterna.invalid")
    with pytest.raises(LanternaConnectionError, match="BadStatusLine"):
        session.post("/api/public/ingestion", b"{}")


def test_an_idle_tls_connection_the_server_reset_is_reopened_once(
    raw: RawServer, tls_cert: Any
) -> None:
    # without close_notify, a reset TLS connection fails as SSLEOFError, not as the
    # ConnectionResetError of a plain one: it is just as stale
    import ssl

    cert, key = tls_cert
    raw.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    raw.tls.load_cert_chain(cert, key)
    raw.script = [(_answer(207, b"{}"), "reset")]
    session = Transport(
        raw.url.replace("http://", "https://"), "pk", "sk", timeout=5, verify=str(cert)
    ).session()
    _open.append(session)
    assert session.post("/api/public/ingestion", b"{}").status_code == 207
    assert raw.ended.wait(5)
    assert session.post("/api/public/ingestion", b"{}").status_code == 207
    assert len(raw.requests) == 2
    assert raw.connections == 2
