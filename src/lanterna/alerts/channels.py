"""Alert channels: generic webhook (signed JSON), Slack incoming webhook, email over
SMTP. Each implements :class:`~lanterna.alerts.message.Channel`; docs/alerts.md
("Channels") documents the payloads and how to verify the webhook signature.

A stored channel is a kind, a name, its settings (``config``, shown as they are) and its
secrets (kept encrypted, shown masked): :func:`check_channel` checks what a user sends,
:func:`open_channel` builds the deliverable channel from it.
"""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from .. import _json
from ..errors import InvalidInput
from .message import AlertMessage, Channel, DeliveryError
from .outbound import (
    OutboundPolicy,
    Resolver,
    RetryPolicy,
    Sleep,
    check_url,
    post,
    resolve_host,
)

KINDS = ("webhook", "slack", "email")
#: Which config fields of each kind are secrets (stored encrypted, answered masked).
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "webhook": ("secret",),
    "slack": ("url",),
    "email": ("password",),
}
#: What a secret is shown as; sending it back in an update keeps the stored secret.
MASK = "********"
SIGNATURE_HEADER = "X-Lanterna-Signature"
TIMESTAMP_HEADER = "X-Lanterna-Timestamp"
SMTP_SECURITY = ("starttls", "tls", "none")


class InvalidChannel(InvalidInput):
    """400: a channel's body is wrong; the message names the field."""


# --- payloads --------------------------------------------------------------------------


def webhook_payload(message: AlertMessage) -> dict[str, Any]:
    """The generic webhook's JSON body (docs/alerts.md, "Webhook payload")."""
    return {
        "version": 1,
        "kind": message.kind,
        "project": {"id": message.project_id},
        "rule": {"id": message.rule_id, "name": message.rule_name},
        "condition": message.condition,
        "value": message.value,
        "threshold": message.threshold,
        "time": message.at.isoformat(),
        "url": message.url,
        "details": message.details,
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256, keyed with
    the channel's secret, of ``<timestamp>.<raw body>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


_TITLES = {"fired": "Alert firing", "resolved": "Alert resolved", "test": "Test notification"}


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _slack_escape(text: str) -> str:
    """Slack mrkdwn's three control characters, escaped (a rule name is user input)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def headline(message: AlertMessage) -> str:
    """One line: what happened to which rule."""
    return f"{_TITLES[message.kind]}: {message.rule_name}"


def slack_payload(message: AlertMessage) -> dict[str, Any]:
    """An incoming-webhook body: ``text`` (the notification's fallback) and ``blocks``."""
    name = _slack_escape(message.rule_name)
    condition = _slack_escape(message.condition)
    text = f"{_TITLES[message.kind]}: {name} ({condition})"
    fields = [
        {"type": "mrkdwn", "text": f"*Condition*\n{condition}"},
        {"type": "mrkdwn", "text": f"*Value*\n{_number(message.value)}"},
        {"type": "mrkdwn", "text": f"*Threshold*\n{_number(message.threshold)}"},
        {"type": "mrkdwn", "text": f"*Time (UTC)*\n{message.at.isoformat()}"},
    ]
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline(message)[:150]}},
            {"type": "section", "fields": fields},
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"<{message.url}|Open in Lanterna> · {message.kind}"}
                ],
            },
        ],
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def email_message(message: AlertMessage, sender: str, recipients: list[str]) -> EmailMessage:
    """The email: subject ``[Lanterna] <headline>``, a plain-text body."""
    mail = EmailMessage()
    mail["Subject"] = _one_line(f"[Lanterna] {headline(message)}")[:200]
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain="lanterna")
    lines = [
        headline(message),
        "",
        f"Condition: {message.condition}",
        f"Value: {_number(message.value)}",
        f"Threshold: {_number(message.threshold)}",
        f"Time (UTC): {message.at.isoformat()}",
        f"Project: {message.project_id}",
        "",
        f"Open in Lanterna: {message.url}",
    ]
    if message.details:
        lines += ["", "Details:", _json.dumps(message.details)]
    mail.set_content("\n".join(lines) + "\n")
    return mail


# --- channels --------------------------------------------------------------------------


@dataclass
class Delivery:
    """How a channel delivers: the SSRF policy, retries and their (injectable) wait."""

    policy: OutboundPolicy = field(default_factory=OutboundPolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Sleep = time.sleep
    resolver: Resolver = resolve_host
    #: Seconds since the epoch, for the webhook's signed timestamp.
    clock: Callable[[], float] = time.time
    #: Trusted CAs for TLS, HTTPS and SMTP (None: the default ones).
    ssl_context: ssl.SSLContext | None = None


class WebhookChannel:
    """POSTs :func:`webhook_payload` as JSON, signed with HMAC-SHA256."""

    def __init__(self, url: str, secret: str, delivery: Delivery | None = None) -> None:
        self.url = url
        self._secret = secret
        self.delivery = delivery or Delivery()

    def __repr__(self) -> str:  # never the secret
        return f"WebhookChannel(url={self.url!r})"

    def deliver(self, message: AlertMessage) -> None:
        """POST the signed payload; DeliveryError after the retries."""
        body = _json.dumpb(webhook_payload(message))
        d = self.delivery

        def headers() -> dict[str, str]:
            stamp = str(int(d.clock()))
            return {
                "Content-Type": "application/json",
                "User-Agent": "Lanterna-Alerts/1",
                TIMESTAMP_HEADER: stamp,
                SIGNATURE_HEADER: sign(self._secret, stamp, body),
            }

        post(
            self.url,
            body,
            headers,
            policy=d.policy,
            retry=d.retry,
            sleep=d.sleep,
            resolver=d.resolver,
            verify=d.ssl_context or True,
        )


class SlackChannel:
    """POSTs :func:`slack_payload` to a Slack incoming-webhook URL (a credential)."""

    def __init__(self, url: str, delivery: Delivery | None = None) -> None:
        self._url = url
        self.delivery = delivery or Delivery()

    def __repr__(self) -> str:  # the URL is the credential
        return "SlackChannel()"

    def deliver(self, message: AlertMessage) -> None:
        """POST the Slack body; DeliveryError after the retries."""
        body = _json.dumpb(slack_payload(message))
        d = self.delivery
        post(
            self._url,
            body,
            lambda: {"Content-Type": "application/json", "User-Agent": "Lanterna-Alerts/1"},
            policy=d.policy,
            retry=d.retry,
            sleep=d.sleep,
            resolver=d.resolver,
            verify=d.ssl_context or True,
        )


@dataclass
class SmtpSettings:
    """Where and how an email channel sends: its own SMTP server, per channel."""

    host: str
    port: int
    security: str  # starttls | tls | none
    username: str
    sender: str
    recipients: list[str]


class EmailChannel:
    """Sends :func:`email_message` through the channel's SMTP server (STARTTLS or
    implicit TLS, AUTH when a user name is set); retries connection errors and 4xx."""

    def __init__(self, smtp: SmtpSettings, password: str, delivery: Delivery | None = None) -> None:
        self.smtp = smtp
        self._password = password
        self.delivery = delivery or Delivery()

    def __repr__(self) -> str:
        return f"EmailChannel(host={self.smtp.host!r}, to={self.smtp.recipients!r})"

    def _send_once(self, mail: EmailMessage) -> None:
        s, d = self.smtp, self.delivery
        context = d.ssl_context or ssl.create_default_context()
        timeout = d.retry.timeout
        client: smtplib.SMTP
        if s.security == "tls":
            client = smtplib.SMTP_SSL(s.host, s.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=timeout)
        with client:
            client.ehlo()
            if s.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if s.username:
                client.login(s.username, self._password)
            client.send_message(mail, from_addr=s.sender, to_addrs=s.recipients)

    def deliver(self, message: AlertMessage) -> None:
        """Send the email; DeliveryError after the retries (at once for a refusal)."""
        mail = email_message(message, self.smtp.sender, self.smtp.recipients)
        d = self.delivery
        last = ""
        for attempt in range(1, d.retry.attempts + 1):
            if attempt > 1:
                d.sleep(d.retry.wait(attempt - 1))
            try:
                self._send_once(mail)
                return
            except smtplib.SMTPAuthenticationError as exc:
                raise DeliveryError(f"SMTP login refused ({exc.smtp_code})") from None
            except smtplib.SMTPResponseException as exc:
                raw = exc.smtp_error
                reason = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
                last = f"SMTP server answered {exc.smtp_code} {reason}"
                if not 400 <= exc.smtp_code < 500:
                    raise DeliveryError(last) from None
            except smtplib.SMTPRecipientsRefused:
                raise DeliveryError("SMTP server refused every recipient") from None
            except (OSError, smtplib.SMTPException) as exc:
                last = f"{type(exc).__name__}: {exc}"
        raise DeliveryError(f"not delivered after {d.retry.attempts} attempts: {last}")


# --- stored channels -------------------------------------------------------------------


@dataclass
class ChannelFields:
    """A checked channel: name, kind, settings and secrets (plaintext, to be sealed)."""

    name: str
    kind: str
    config: dict[str, Any]
    secrets: dict[str, str]


def _text(body: dict[str, Any], name: str, where: str, *, limit: int = 2000) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidChannel(f"{where}{name}: required, a non-empty string")
    if len(value) > limit:
        raise InvalidChannel(f"{where}{name}: at most {limit} characters")
    return value.strip()


def _url(body: dict[str, Any], name: str, *, https: bool = False) -> str:
    url = _text(body, name, "config.")
    try:
        scheme, _, _ = check_url(url)
    except DeliveryError as exc:
        raise InvalidChannel(f"config.{name}: {exc}") from None
    if https and scheme != "https":
        raise InvalidChannel(f"config.{name}: must be an https:// URL")
    return url


def _address(value: Any, where: str) -> str:
    if not isinstance(value, str) or "@" not in value or len(value) > 254:
        raise InvalidChannel(f"{where}: an email address")
    if any(c in value for c in "\r\n,;<>"):
        raise InvalidChannel(f"{where}: one plain email address (name@example.com)")
    return value.strip()


def _check_config(kind: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    if kind == "webhook":
        secret = _text(config, "secret", "config.", limit=500)
        if len(secret) < 16:
            raise InvalidChannel("config.secret: at least 16 characters")
        return {"url": _url(config, "url")}, {"secret": secret}
    if kind == "slack":
        return {}, {"url": _url(config, "url", https=True)}
    host = _text(config, "host", "config.", limit=253)
    port = _json.integral(config.get("port", 587))
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise InvalidChannel("config.port: an integer from 1 to 65535")
    security = config.get("security", "starttls")
    if security not in SMTP_SECURITY:
        raise InvalidChannel(f"config.security: one of {', '.join(SMTP_SECURITY)}")
    username = config.get("username") or ""
    if not isinstance(username, str) or len(username) > 254:
        raise InvalidChannel("config.username: a string of at most 254 characters")
    password = config.get("password") or ""
    if not isinstance(password, str) or len(password) > 1000:
        raise InvalidChannel("config.password: a string of at most 1000 characters")
    if username and not password:
        raise InvalidChannel("config.password: required when config.username is set")
    to = config.get("to")
    if isinstance(to, str):
        to = [p for p in to.replace(";", ",").split(",") if p.strip()]
    if not isinstance(to, list) or not to or len(to) > 50:
        raise InvalidChannel("config.to: a list of 1 to 50 email addresses")
    recipients = [_address(a, f"config.to[{i}]") for i, a in enumerate(to)]
    settings = {
        "host": host,
        "port": port,
        "security": security,
        "username": username,
        "from": _address(config.get("from"), "config.from"),
        "to": recipients,
    }
    return settings, ({"password": password} if password else {})


def check_channel(body: Any, stored: ChannelFields | None = None) -> ChannelFields:
    """A create body (``name``, ``type``, ``config``) checked, or with ``stored`` an
    update: fields left out keep their stored values; within ``config`` a secret
    left out or sent as :data:`MASK` keeps the stored secret. InvalidChannel names the
    field that is wrong."""
    if not isinstance(body, dict):
        raise InvalidChannel("the body must be a JSON object")
    unknown = sorted(set(body) - {"name", "type", "config"})
    if unknown:
        raise InvalidChannel(f"{unknown[0]}: unknown field (name, type, config)")
    named = stored is None or "name" in body
    name = _text(body, "name", "", limit=200) if named or stored is None else stored.name
    kind = body.get("type", stored.kind if stored else None)
    if kind not in KINDS:
        raise InvalidChannel(f"type: one of {', '.join(KINDS)}")
    if stored is not None and kind != stored.kind:
        raise InvalidChannel("type: cannot change; create another channel")
    config = body.get("config", {} if stored else None)
    if not isinstance(config, dict):
        raise InvalidChannel("config: required, an object")
    kept: set[str] = set()  # stored secrets the update keeps without sending them
    if stored is not None:
        merged: dict[str, Any] = {**stored.config}
        for key, secret in stored.secrets.items():
            merged[key] = secret
            kept.add(key)
        for key, value in config.items():
            if key in SECRET_FIELDS[kind] and value in (MASK, None):
                continue
            merged[key] = value
            kept.discard(key)
        config = merged
    allowed = _ALLOWED[kind]
    extra = sorted(set(config) - allowed)
    if extra:
        raise InvalidChannel(f"config.{extra[0]}: unknown for a {kind} channel")
    settings, secrets = _check_config(kind, config)
    if stored is not None and "password" in kept and "password" in secrets:
        # The SMTP password is sent to the host at login: kept while the server it
        # goes to changes, an admin who never saw it could read it on a host of theirs.
        moved = [k for k in _PASSWORD_GOES_TO if settings.get(k) != stored.config.get(k)]
        if moved:
            raise InvalidChannel(
                f"config.password: give the password again to change {', '.join(moved)}"
                " (the stored one is only sent to the server it was given for)"
            )
    return ChannelFields(name, kind, settings, secrets)


#: Email settings that decide where the stored SMTP password is sent.
_PASSWORD_GOES_TO = ("host", "port", "security", "username")


_ALLOWED: dict[str, set[str]] = {
    "webhook": {"url", "secret"},
    "slack": {"url"},
    "email": {"host", "port", "security", "username", "password", "from", "to"},
}


def masked_config(kind: str, config: dict[str, Any], secret_names: list[str]) -> dict[str, Any]:
    """``config`` with each secret field: :data:`MASK` when stored, else None."""
    out = dict(config)
    for name in SECRET_FIELDS[kind]:
        out[name] = MASK if name in secret_names else None
    return out


def open_channel(fields: ChannelFields, delivery: Delivery | None = None) -> Channel:
    """The deliverable channel of checked (or stored and decrypted) fields."""
    c, s = fields.config, fields.secrets
    if fields.kind == "webhook":
        return WebhookChannel(c["url"], s["secret"], delivery)
    if fields.kind == "slack":
        return SlackChannel(s["url"], delivery)
    smtp = SmtpSettings(
        c["host"], int(c["port"]), c["security"], c["username"], c["from"], list(c["to"])
    )
    return EmailChannel(smtp, s.get("password", ""), delivery)


def make_test_message(project_id: str, channel_name: str, url: str, at: Any) -> AlertMessage:
    """The AlertMessage of a "send test" action (kind ``test``)."""
    return AlertMessage(
        kind="test",
        project_id=project_id,
        rule_id="test",
        rule_name=f"Test of channel {channel_name}",
        condition="a test notification from Lanterna",
        value=None,
        threshold=None,
        at=at,
        url=url,
        details={"channel": channel_name},
    )
