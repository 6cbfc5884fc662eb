"""Real receivers for alert channel tests: an HTTP server on loopback that records
every request, and an SMTP server (aiosmtpd) with STARTTLS and AUTH on a self-signed
certificate made here."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What a loopback HTTP receiver got, and what it answers next (``statuses`` are
    used in order, then ``default``)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default: int = 200
    extra_headers: dict[str, str] = field(default_factory=dict)


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


@contextmanager
def http_receiver(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """An HTTP server on ``host`` (``127.0.0.1`` or ``::1``), port chosen by the OS;
    HTTPS with the server context ``tls``."""
    got: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            got.requests.append(Received(self.path, dict(self.headers.items()), body))
            status = got.statuses.pop(0) if got.statuses else got.default
            self.send_response(status)
            for name, value in got.extra_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server_class = _V6Server if ":" in host else ThreadingHTTPServer
    server = server_class((host, 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    literal = f"[{host}]" if ":" in host else host
    got = Receiver(url=f"{'https' if tls else 'http'}://{literal}:{port}/hook")
    # A short poll: shutdown() returns within it (the default 0.5 s per test adds up).
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


def self_signed(directory: Path, name: str = "localhost", ip: bool = True) -> tuple[Path, Path]:
    """A certificate for ``name`` (and 127.0.0.1 with ``ip``) and its key, made with
    ``cryptography``; (certificate file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    alt_names: list[x509.GeneralName] = [x509.DNSName(name)]
    if ip:
        alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(alt_names),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class Mailbox:
    """What the SMTP server received: (sender, recipients, raw message) per mail, and
    the logins it accepted."""

    port: int
    mails: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    client_context: ssl.SSLContext | None = None


@contextmanager
def smtp_server(
    tmp_path: Path, *, tls: bool, user: str = "alerts", password: str = "s3cret-pass"
) -> Iterator[Mailbox]:
    """aiosmtpd on 127.0.0.1: with ``tls``, STARTTLS required before AUTH (LOGIN/PLAIN
    with ``user``/``password``) on a self-signed certificate the client context trusts;
    without, AUTH over plain SMTP."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from support import free_port

    box = Mailbox(port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.mails.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 Message accepted"

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        if ok:
            box.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    options: dict[str, Any] = {"authenticator": authenticator}
    if tls:
        cert, key = self_signed(tmp_path)
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        options.update(tls_context=server_context, require_starttls=True, auth_require_tls=True)
        box.client_context = ssl.create_default_context(cafile=str(cert))
    else:
        options.update(auth_require_tls=False)
    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port, **options)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
