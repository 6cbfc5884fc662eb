"""Outbound HTTP for alert channels, behind an SSRF guard.

A channel's URL is user input (any project admin sets one), and the server posts to it
from inside the deployment's network. So before a request is sent:

- the host is resolved **once**; every address it resolves to must be a public
  (globally routable) address: private (10/8, 172.16/12, 192.168/16), loopback,
  link-local (169.254/16, with the cloud metadata address 169.254.169.254), shared
  (100.64/10), unique-local IPv6 (fc00::/7, with AWS's metadata fd00:ec2::254),
  IPv4-mapped IPv6 forms of those, multicast, reserved and unspecified addresses are
  refused with :class:`OutboundRefused`, unless the allowlist
  (``LANTERNA_OUTBOUND_ALLOW``) names the host or a network holding the address;
- the connection goes to the address that was checked (the URL's host is kept for the
  ``Host`` header and TLS: SNI and certificate checks), so a second DNS answer cannot
  swap in another address (no DNS-rebinding gap);
- redirects are never followed: a 3xx answer is a delivery failure.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from .message import DeliveryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``(host, port) -> addresses``; :func:`resolve_host` by default (tests may pass another).
Resolver = Callable[[str, int], list[str]]


class OutboundRefused(DeliveryError):
    """The URL's host is (or resolves to) an address the SSRF guard refuses."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a literal address resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryError(f"cannot resolve host {host!r}: {exc}") from None
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in seen:
            seen.append(address)
    return seen


@dataclass(frozen=True)
class OutboundPolicy:
    """Which non-public destinations are allowed anyway: host names (exact,
    case-insensitive) and networks (``127.0.0.1``, ``10.0.0.0/8``, ``::1``)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> OutboundPolicy:
        """The policy of a comma-separated allowlist (``LANTERNA_OUTBOUND_ALLOW``);
        ValueError names an entry that is neither a host name nor an address/network."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in text.split(","):
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or ":" in entry or " " in entry:
                raise ValueError(f"outbound allowlist entry {entry!r} is not a host or network")
            hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        """True when ``address`` (resolved from ``host``) may be connected to."""
        if host.lower().rstrip(".") in self.hosts:
            return True
        if any(address in net for net in self.networks):
            return True
        return is_public(address)


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address (what a webhook may reach)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``connect_urls``: the URL with the host
    replaced by each checked address, in the resolver's order) and the original host
    for ``Host`` and TLS."""

    url: str
    connect_urls: tuple[str, ...]
    host: str
    host_header: str


def check_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL; DeliveryError when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DeliveryError(f"invalid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("the URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise DeliveryError("the URL must not carry a user name or password")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def guard(url: str, policy: OutboundPolicy, resolver: Resolver = resolve_host) -> Target:
    """Resolve ``url``'s host once and check every address; the :class:`Target` to
    connect to, or :class:`OutboundRefused` naming the refused address."""
    scheme, host, port = check_url(url)
    addresses = resolver(host, port)
    if not addresses:
        raise DeliveryError(f"host {host!r} resolves to no address")
    for text in addresses:
        address = ipaddress.ip_address(text)
        if not policy.allows(host, address):
            raise OutboundRefused(
                f"refused to send to {host!r}: it resolves to {address}, a private, loopback,"
                " link-local or metadata address (allow it with LANTERNA_OUTBOUND_ALLOW)"
            )
    parts = urlsplit(url)
    connect = []
    for text in addresses:
        literal = f"[{text}]" if ":" in text else text
        connect.append(
            urlunsplit((scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        )
    default_port = port == (443 if scheme == "https" else 80)
    host_literal = f"[{host}]" if ":" in host else host
    host_header = host_literal if default_port else f"{host_literal}:{port}"
    return Target(url, tuple(connect), host, host_header)


#: How long the channel waits before retry ``n`` (1, 2, ...): an injectable sleep.
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff: ``attempts`` in all, waiting ``base``,
    ``2*base``, ``4*base``... seconds (at most ``cap``) between them."""

    attempts: int = 4
    base: float = 1.0
    cap: float = 30.0
    timeout: float = 10.0

    def wait(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1 for the first retry)."""
        return float(min(self.cap, self.base * 2 ** (retry - 1)))


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def post(
    url: str,
    body: bytes,
    headers: Callable[[], dict[str, str]],
    *,
    policy: OutboundPolicy,
    retry: RetryPolicy,
    sleep: Sleep,
    resolver: Resolver = resolve_host,
    verify: ssl.SSLContext | bool = True,
) -> int:
    """POST ``body`` to ``url`` through the guard; retry connection errors, timeouts,
    429 and 5xx with backoff; the final status, or DeliveryError saying why not.
    ``headers()`` is called per attempt (a signature's timestamp is fresh each time).
    The guard runs once per attempt; a refusal is never retried. ``verify``: the CAs
    an https receiver's certificate is checked against (True: the default ones); the
    certificate must name the URL's host, not the address connected to."""
    last = ""
    # The transport, not a Client: a Client logs every request's URL at INFO, and a
    # Slack URL is a credential.
    with httpx.HTTPTransport(verify=verify, trust_env=False) as transport:
        for attempt in range(1, retry.attempts + 1):
            if attempt > 1:
                sleep(retry.wait(attempt - 1))
            target = guard(url, policy, resolver)
            try:
                status, data, reason = _send(transport, target, body, headers(), retry.timeout)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if 300 <= status < 400:
                raise DeliveryError(f"the receiver answered {status} (redirects are not followed)")
            if _retryable(status):
                last = f"the receiver answered {status}"
                continue
            if status >= 400:
                raise DeliveryError(f"the receiver answered {status}: {_text(data, reason)}")
            return status
    raise DeliveryError(f"not delivered after {retry.attempts} attempts: {last}")


def post_for_answer(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    policy: OutboundPolicy,
    timeout: float,
    limit: int = 4 * 1024 * 1024,
    resolver: Resolver = resolve_host,
    verify: ssl.SSLContext | bool = True,
) -> tuple[int, bytes]:
    """POST ``body`` to ``url`` once through the guard (no retries, no redirects); the
    status and the answer's body (DeliveryError when it is larger than ``limit`` bytes,
    the connection fails or ``timeout`` seconds pass). For calls whose answer is used:
    an LLM endpoint's completion."""
    with httpx.HTTPTransport(verify=verify, trust_env=False) as transport:
        target = guard(url, policy, resolver)
        try:
            status, data, _reason = _send(transport, target, body, headers, timeout, limit + 1)
        except httpx.TimeoutException:
            raise DeliveryError(f"no answer within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            ) from None
    if 300 <= status < 400:
        raise DeliveryError(f"the endpoint answered {status} (redirects are not followed)")
    if len(data) > limit:
        raise DeliveryError(f"the answer is larger than {limit} bytes")
    return status, data


def _send(
    transport: httpx.HTTPTransport,
    target: Target,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    limit: int = 1024,
) -> tuple[int, bytes, str]:
    """POST to the target's addresses in turn until one accepts the connection; the
    status, the start of the answer (at most about ``limit`` bytes) and its reason."""
    failure: httpx.HTTPError | None = None
    for connect_url in target.connect_urls:
        request = httpx.Request(
            "POST",
            connect_url,
            content=body,
            headers={**headers, "Host": target.host_header},
            extensions={"sni_hostname": target.host, "timeout": httpx.Timeout(timeout).as_dict()},
        )
        try:
            response = transport.handle_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            failure = exc  # the next address may answer (e.g. IPv6 first, no IPv6 route)
            continue
        try:
            return response.status_code, _head(response, limit), response.reason_phrase
        finally:
            response.close()
    assert failure is not None
    raise failure


def _head(response: httpx.Response, limit: int) -> bytes:
    """The start of the answer's body (reading stops once ``limit`` bytes are in)."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return data


def _text(data: bytes, reason: str) -> str:
    """The start of an answer, for messages."""
    return data[:200].decode(errors="replace").strip() or reason
