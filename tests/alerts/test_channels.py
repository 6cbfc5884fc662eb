"""Alert channels against real receivers: a loopback HTTP server checks the webhook's
signature and the Slack body, aiosmtpd receives the email (STARTTLS + AUTH), retries
end in a DeliveryError, and the SSRF guard refuses private destinations before any
request is sent (asserted from the receiver's side)."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import logging
import ssl
from collections.abc import Callable
from datetime import datetime, timezone
from email import policy as email_policy
from pathlib import Path

import pytest

from alert_receivers import http_receiver, self_signed, smtp_server
from lanterna.alerts.channels import (
    Delivery,
    EmailChannel,
    SlackChannel,
    SmtpSettings,
    WebhookChannel,
)
from lanterna.alerts.message import AlertMessage, DeliveryError
from lanterna.alerts.outbound import OutboundPolicy, OutboundRefused, RetryPolicy

SECRET = "whsec-test-0123456789"
AT = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
LOOPBACK = OutboundPolicy.parse("127.0.0.1,::1")


def message(kind: str = "fired", name: str = "Error rate <high> & rising") -> AlertMessage:
    return AlertMessage(
        kind=kind,  # type: ignore[arg-type]
        project_id="p1",
        rule_id="r1",
        rule_name=name,
        condition="error rate > 5% over 5 minutes",
        value=0.1,
        threshold=0.05,
        at=AT,
        url="http://lanterna.example/project/p1/alerts/r1",
        details={"samples": 200},
    )


class Waits:
    """An injected sleep: records the waits, never sleeps."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def delivery(
    policy: OutboundPolicy = LOOPBACK,
    waits: Waits | None = None,
    resolver: Callable[[str, int], list[str]] | None = None,
    attempts: int = 4,
) -> Delivery:
    d = Delivery(
        policy=policy,
        retry=RetryPolicy(attempts=attempts, base=1.0, timeout=5.0),
        sleep=waits or Waits(),
        clock=lambda: 1_765_000_000.0,
    )
    if resolver is not None:
        d.resolver = resolver
    return d


def verify(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    """The receiver's check, as docs/alerts.md shows it."""
    stamp = headers["X-Lanterna-Timestamp"]
    if abs(now - int(stamp)) > 300:
        return False
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), headers["X-Lanterna-Signature"])


def test_webhook_posts_the_documented_body_with_a_signature_the_receiver_verifies() -> None:
    with http_receiver() as rx:
        WebhookChannel(rx.url, SECRET, delivery()).deliver(message())
    assert len(rx.requests) == 1
    got = rx.requests[0]
    assert got.path == "/hook"
    assert got.headers["Content-Type"] == "application/json"
    assert verify(SECRET, got.headers, got.body, now=1_765_000_010)
    assert not verify("another-secret-12345", got.headers, got.body, now=1_765_000_010)
    assert not verify(SECRET, got.headers, got.body + b" ", now=1_765_000_010)
    assert json.loads(got.body) == {
        "version": 1,
        "kind": "fired",
        "project": {"id": "p1"},
        "rule": {"id": "r1", "name": "Error rate <high> & rising"},
        "condition": "error rate > 5% over 5 minutes",
        "value": 0.1,
        "threshold": 0.05,
        "time": "2026-12-05T12:00:00+00:00",
        "url": "http://lanterna.example/project/p1/alerts/r1",
        "details": {"samples": 200},
    }


def test_webhook_retries_5xx_and_429_with_backoff_then_delivers() -> None:
    waits = Waits()
    with http_receiver() as rx:
        rx.statuses = [503, 429, 500]
        WebhookChannel(rx.url, SECRET, delivery(waits=waits)).deliver(message())
    assert len(rx.requests) == 4
    assert waits.waits == [1.0, 2.0, 4.0]
    assert all(verify(SECRET, r.headers, r.body, 1_765_000_000) for r in rx.requests)


def test_webhook_gives_up_after_its_attempts_with_a_delivery_error() -> None:
    waits = Waits()
    with http_receiver() as rx:
        rx.default = 502
        with pytest.raises(DeliveryError, match=r"not delivered after 3 attempts.*502"):
            WebhookChannel(rx.url, SECRET, delivery(waits=waits, attempts=3)).deliver(message())
    assert len(rx.requests) == 3
    assert waits.waits == [1.0, 2.0]


def test_a_refused_connection_is_retried_then_reported() -> None:
    from support import free_port

    waits = Waits()
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with pytest.raises(DeliveryError, match=r"not delivered after 2 attempts.*Connect"):
        WebhookChannel(url, SECRET, delivery(waits=waits, attempts=2)).deliver(message())
    assert waits.waits == [1.0]


def test_a_4xx_answer_is_not_retried() -> None:
    with http_receiver() as rx:
        rx.default = 404
        with pytest.raises(DeliveryError, match="answered 404"):
            WebhookChannel(rx.url, SECRET, delivery()).deliver(message())
    assert len(rx.requests) == 1


def test_redirects_are_not_followed() -> None:
    with http_receiver() as target, http_receiver() as rx:
        rx.default = 307
        rx.extra_headers = {"Location": target.url}
        with pytest.raises(DeliveryError, match="redirects are not followed"):
            WebhookChannel(rx.url, SECRET, delivery()).deliver(message())
    assert len(rx.requests) == 1
    assert target.requests == []


def test_slack_gets_text_and_blocks_with_user_text_escaped() -> None:
    with http_receiver() as rx:
        SlackChannel(rx.url, delivery()).deliver(message("resolved"))
    body = json.loads(rx.requests[0].body)
    assert body["text"] == (
        "Alert resolved: Error rate &lt;high&gt; &amp; rising (error rate &gt; 5% over 5 minutes)"
    )
    header, section, context = body["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Alert resolved: Error rate <high> & rising"},
    }
    assert section["type"] == "section"
    assert [f["text"].split("\n")[0] for f in section["fields"]] == [
        "*Condition*",
        "*Value*",
        "*Threshold*",
        "*Time (UTC)*",
    ]
    assert section["fields"][1]["text"] == "*Value*\n0.1"
    assert context["elements"][0]["text"].startswith(
        "<http://lanterna.example/project/p1/alerts/r1|Open in Lanterna>"
    )


# --- SSRF guard --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/",
        "http://192.168.1.10:8080/hook",
        "http://100.64.0.1/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_and_metadata_addresses_are_refused(url: str) -> None:
    waits = Waits()
    with pytest.raises(OutboundRefused, match="LANTERNA_OUTBOUND_ALLOW"):
        WebhookChannel(url, SECRET, delivery(OutboundPolicy(), waits)).deliver(message())
    assert waits.waits == []  # a refusal is not retried


def test_loopback_is_refused_unless_allowed_and_nothing_reaches_the_receiver() -> None:
    with http_receiver() as rx:
        port = rx.url.split(":")[2].split("/")[0]
        for url in (rx.url, f"http://localhost:{port}/hook"):
            with pytest.raises(OutboundRefused, match=r"resolves to 127\.0\.0\.1"):
                WebhookChannel(url, SECRET, delivery(OutboundPolicy())).deliver(message())
            with pytest.raises(OutboundRefused):
                SlackChannel(url, delivery(OutboundPolicy())).deliver(message())
        assert rx.requests == []
        WebhookChannel(rx.url, SECRET, delivery(OutboundPolicy.parse("127.0.0.0/8"))).deliver(
            message()
        )
        WebhookChannel(
            f"http://localhost:{port}/hook", SECRET, delivery(OutboundPolicy.parse("localhost"))
        ).deliver(message())
    assert len(rx.requests) == 2


def test_ipv6_loopback_is_refused_unless_allowed() -> None:
    with http_receiver("::1") as rx:
        with pytest.raises(OutboundRefused, match="::1"):
            WebhookChannel(rx.url, SECRET, delivery(OutboundPolicy())).deliver(message())
        assert rx.requests == []
        WebhookChannel(rx.url, SECRET, delivery(OutboundPolicy.parse("::1"))).deliver(message())
    assert len(rx.requests) == 1


def test_a_name_resolving_to_loopback_is_refused_and_the_checked_address_is_the_one_used() -> None:
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    with http_receiver() as rx:
        port = int(rx.url.split(":")[2].split("/")[0])
        url = f"http://hooks.example.test:{port}/hook"
        with pytest.raises(OutboundRefused, match=r"hooks\.example\.test"):
            WebhookChannel(url, SECRET, delivery(OutboundPolicy(), resolver=resolver)).deliver(
                message()
            )
        assert rx.requests == []
        # Allowed by name: the connection goes to the address that was checked (the name
        # does not resolve anywhere else), the Host header keeps the name.
        allow = OutboundPolicy.parse("hooks.example.test")
        WebhookChannel(url, SECRET, delivery(allow, resolver=resolver)).deliver(message())
    assert calls == ["hooks.example.test", "hooks.example.test"]
    assert rx.requests[0].headers["Host"] == f"hooks.example.test:{port}"


def test_https_checks_the_certificate_against_the_name_while_connecting_to_the_checked_address(
    tmp_path: Path,
) -> None:
    # The certificate names only hooks.example.test (no IP): the TLS handshake with the
    # checked address 127.0.0.1 succeeds only because SNI and the hostname check use the
    # URL's name.
    cert, key = self_signed(tmp_path, "hooks.example.test", ip=False)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    trusted = ssl.create_default_context(cafile=str(cert))

    def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    with http_receiver(tls=server_tls) as rx:
        port = int(rx.url.split(":")[2].split("/")[0])
        d = delivery(OutboundPolicy.parse("127.0.0.1"), resolver=resolver)
        d.ssl_context = trusted
        WebhookChannel(f"https://hooks.example.test:{port}/hook", SECRET, d).deliver(message())
        assert len(rx.requests) == 1
        assert verify(SECRET, rx.requests[0].headers, rx.requests[0].body, 1_765_000_000)
        # Another name for the same address does not match the certificate: refused by TLS.
        d.retry = RetryPolicy(attempts=1)
        with pytest.raises(DeliveryError, match=r"CERTIFICATE_VERIFY_FAILED"):
            WebhookChannel(f"https://other.example.test:{port}/hook", SECRET, d).deliver(message())
    assert len(rx.requests) == 1


def test_when_the_first_checked_address_refuses_the_connection_the_next_is_tried() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["::1", "127.0.0.1"]  # nothing listens on ::1 at the receiver's port

    waits = Waits()
    with http_receiver() as rx:
        port = int(rx.url.split(":")[2].split("/")[0])
        d = delivery(OutboundPolicy.parse("127.0.0.1,::1"), waits, resolver=resolver)
        WebhookChannel(f"http://hooks.example.test:{port}/hook", SECRET, d).deliver(message())
    assert len(rx.requests) == 1
    assert waits.waits == []  # one attempt


def test_a_name_that_resolves_to_a_public_and_a_private_address_is_refused() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.1.2.3"]

    with pytest.raises(OutboundRefused, match=r"10\.1\.2\.3"):
        WebhookChannel(
            "https://hooks.example.test/x", SECRET, delivery(OutboundPolicy(), resolver=resolver)
        ).deliver(message())


def test_the_allowlist_setting_parses_hosts_and_networks() -> None:
    policy = OutboundPolicy.parse(" hooks.internal , 10.0.0.0/8, ::1 ,")
    assert policy.hosts == frozenset({"hooks.internal"})
    assert [str(n) for n in policy.networks] == ["10.0.0.0/8", "::1/128"]
    with pytest.raises(ValueError, match="not a host or network"):
        OutboundPolicy.parse("10.0.0.0/33")


# --- email -------------------------------------------------------------------------------


def test_email_over_starttls_with_auth_reaches_the_smtp_server(tmp_path: Path) -> None:
    with smtp_server(tmp_path, tls=True) as box:
        d = delivery()
        d.ssl_context = box.client_context
        smtp = SmtpSettings(
            "127.0.0.1",
            box.port,
            "starttls",
            "alerts",
            "lanterna@example.com",
            ["oncall@example.com", "lead@example.com"],
        )
        EmailChannel(smtp, "s3cret-pass", d).deliver(message())
    assert box.logins == ["alerts"]
    [(sender, recipients, raw)] = box.mails
    assert sender == "lanterna@example.com"
    assert recipients == ["oncall@example.com", "lead@example.com"]
    mail = email.message_from_bytes(raw, policy=email_policy.default)
    assert mail["Subject"] == "[Lanterna] Alert firing: Error rate <high> & rising"
    assert mail["To"] == "oncall@example.com, lead@example.com"
    text = mail.get_content()
    assert "Condition: error rate > 5% over 5 minutes" in text
    assert "Value: 0.1" in text
    assert "http://lanterna.example/project/p1/alerts/r1" in text


def test_email_with_a_wrong_password_fails_at_once(tmp_path: Path) -> None:
    waits = Waits()
    with smtp_server(tmp_path, tls=True) as box:
        d = delivery(waits=waits)
        d.ssl_context = box.client_context
        smtp = SmtpSettings(
            "127.0.0.1", box.port, "starttls", "alerts", "a@example.com", ["b@example.com"]
        )
        with pytest.raises(DeliveryError, match="SMTP login refused"):
            EmailChannel(smtp, "wrong", d).deliver(message())
    assert box.mails == []
    assert waits.waits == []


def test_email_refuses_a_server_whose_certificate_is_not_trusted(tmp_path: Path) -> None:
    with smtp_server(tmp_path, tls=True) as box:
        smtp = SmtpSettings(
            "127.0.0.1", box.port, "starttls", "alerts", "a@example.com", ["b@example.com"]
        )
        with pytest.raises(DeliveryError, match=r"not delivered after 2 attempts.*SSL"):
            EmailChannel(smtp, "s3cret-pass", delivery(attempts=2)).deliver(message())
    assert box.mails == []


def test_a_slack_delivery_logs_no_part_of_its_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with http_receiver() as rx:
        rx.statuses = [500]
        SlackChannel(rx.url + "/T0/B0/SLACKTOKEN", delivery()).deliver(message())
        rx.default = 403
        with pytest.raises(DeliveryError) as refused:
            SlackChannel(rx.url + "/T0/B0/SLACKTOKEN", delivery()).deliver(message())
    assert [r.path for r in rx.requests] == ["/hook/T0/B0/SLACKTOKEN"] * 3
    assert "SLACKTOKEN" not in caplog.text
    assert "SLACKTOKEN" not in str(refused.value)


def test_channels_never_show_their_secrets_in_repr() -> None:
    hook = WebhookChannel("https://hooks.example.test/x", SECRET)
    slack = SlackChannel("https://hooks.slack.com/services/T0/B0/SECRETTOKEN")
    assert SECRET not in repr(hook)
    assert "SECRETTOKEN" not in repr(slack)


def test_the_timestamp_is_fresh_per_attempt() -> None:
    stamps = iter([100.0, 200.0])
    with http_receiver() as rx:
        rx.statuses = [503]
        d = delivery()
        d.clock = lambda: next(stamps)
        WebhookChannel(rx.url, SECRET, d).deliver(message())
    assert [r.headers["X-Lanterna-Timestamp"] for r in rx.requests] == ["100", "200"]


def test_bad_outbound_and_key_settings_are_refused_at_start(tmp_path: Path) -> None:
    from lanterna.server.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match=r"LANTERNA_OUTBOUND_ALLOW: .*'10\.0\.0\.0/40'"):
        Settings(data_dir=str(tmp_path), outbound_allow="10.0.0.0/40")
    with pytest.raises(
        SettingsError, match=r"LANTERNA_SECRET_KEY \(or LANTERNA_ENCRYPTION_KEY\) must be 32 bytes"
    ):
        Settings(data_dir=str(tmp_path), secret_key="not-a-key")
    assert Settings(data_dir=str(tmp_path), secret_key="ab" * 32).secret_key == "ab" * 32
    assert "ab" * 32 not in repr(Settings(data_dir=str(tmp_path), secret_key="ab" * 32))


def test_the_sdks_api_secret_in_lanterna_secret_key_does_not_stop_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # LANTERNA_SECRET_KEY is also the SDK's API secret: a shell set up for the SDK holds
    # sk-lf-..., which the server ignores (its key then comes from the data directory),
    # and LANTERNA_ENCRYPTION_KEY names the server's key whatever LANTERNA_SECRET_KEY is.
    from lanterna.alerts.secretbox import load_key
    from lanterna.server.settings import Settings

    monkeypatch.setenv("LANTERNA_SECRET_KEY", "sk-lf-1234")
    with caplog.at_level(logging.WARNING, logger="lanterna"):
        settings = Settings.from_env(data_dir=str(tmp_path))
    assert settings.secret_key == ""
    assert "holds an API secret key" in caplog.text and "sk-lf-1234" not in caplog.text
    assert len(load_key(settings.secret_key, settings.data_dir)) == 32  # secret.key
    monkeypatch.setenv("LANTERNA_ENCRYPTION_KEY", "cd" * 32)
    assert Settings.from_env(data_dir=str(tmp_path)).secret_key == "cd" * 32
    monkeypatch.setenv("LANTERNA_SECRET_KEY", "ab" * 32)
    assert Settings.from_env(data_dir=str(tmp_path)).secret_key == "cd" * 32
    monkeypatch.delenv("LANTERNA_ENCRYPTION_KEY")
    assert Settings.from_env(data_dir=str(tmp_path)).secret_key == "ab" * 32
