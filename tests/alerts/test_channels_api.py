"""``/api/public/alert-channels`` on both backends: create, list, get, update, delete,
secrets masked in every answer and sealed in the database, bad input named, "send
test" through real receivers and through the SSRF guard."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from alert_receivers import http_receiver, smtp_server
from lanterna.server.app import create_app
from lanterna.store.db import Database
from support import Project, make_settings, new_project

URL = "/api/public/alert-channels"
SECRET = "whsec-api-test-0123456789"
MASK = "********"


class Client(TestClient):
    project: Project


def _client(db_url: str, tmp_path: Path, allow: str) -> Iterator[Client]:
    settings = make_settings(db_url, tmp_path)
    settings.outbound_allow = allow
    app = create_app(settings)
    project = new_project(db_url)
    with Client(app) as client:
        client.project = project
        client.auth = project.auth
        yield client


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Client]:
    """The app with loopback allowed for outbound requests (the receivers are local)."""
    yield from _client(db_url, tmp_path, "127.0.0.1")


@pytest.fixture
def guarded(db_url: str, tmp_path: Path) -> Iterator[Client]:
    """The app with the default outbound policy (no allowlist)."""
    yield from _client(db_url, tmp_path, "")


def _signed_by(secret: str, headers: dict[str, str], body: bytes) -> bool:
    stamp = headers["X-Lanterna-Timestamp"].encode()
    mac = hmac.new(secret.encode(), stamp + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + mac, headers["X-Lanterna-Signature"])


def _webhook(api: TestClient, url: str, secret: str = SECRET, name: str = "Ops hook") -> dict:
    r = api.post(
        URL, json={"name": name, "type": "webhook", "config": {"url": url, "secret": secret}}
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_crud_answers_secrets_masked_and_keeps_them_across_updates(
    api: Client, backend: str
) -> None:
    with http_receiver() as rx:
        made = _webhook(api, rx.url)
        assert made["type"] == "webhook"
        assert made["config"] == {"url": rx.url, "secret": MASK}
        cid = made["id"]
        slack = api.post(
            URL,
            json={
                "name": "Slack #alerts",
                "type": "slack",
                "config": {"url": "https://hooks.slack.com/services/T0/B0/TOKENVALUE"},
            },
        ).json()
        assert slack["config"] == {"url": MASK}

        listed = api.get(URL)
        assert [c["name"] for c in listed.json()["data"]] == ["Ops hook", "Slack #alerts"]
        for answer in (
            listed.text,
            api.get(f"{URL}/{cid}").text,
            api.get(f"{URL}/{slack['id']}").text,
        ):
            assert SECRET not in answer
            assert "TOKENVALUE" not in answer

        # Rename only, and send the mask back: the stored secret is kept.
        renamed = api.patch(f"{URL}/{cid}", json={"name": "Renamed", "config": {"secret": MASK}})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["name"] == "Renamed"
        assert renamed.json()["config"]["secret"] == MASK
        assert api.post(f"{URL}/{cid}/test").json() == {"delivered": True, "error": None}
        assert _signed_by(SECRET, rx.requests[-1].headers, rx.requests[-1].body)
        payload = json.loads(rx.requests[-1].body)
        assert payload["kind"] == "test"
        assert payload["project"] == {"id": api.project.id}

        # A new secret signs from now on.
        new_secret = "rotated-secret-9876543210"
        api.patch(f"{URL}/{cid}", json={"config": {"secret": new_secret}}).raise_for_status()
        api.post(f"{URL}/{cid}/test").raise_for_status()
        assert _signed_by(new_secret, rx.requests[-1].headers, rx.requests[-1].body)

    assert api.delete(f"{URL}/{cid}").json() == {"message": "Alert channel deleted successfully"}
    assert api.get(f"{URL}/{cid}").status_code == 404
    assert api.delete(f"{URL}/{cid}").status_code == 404
    assert [c["name"] for c in api.get(URL).json()["data"]] == ["Slack #alerts"]


def test_secrets_are_sealed_in_the_database(api: Client, backend: str) -> None:
    _webhook(api, "https://hooks.example.com/x")
    api.post(
        URL,
        json={
            "name": "Mail",
            "type": "email",
            "config": {
                "host": "smtp.example.com",
                "username": "alerts",
                "password": "smtp-password-123",
                "from": "lanterna@example.com",
                "to": ["oncall@example.com"],
            },
        },
    ).raise_for_status()
    db = Database(api.app.state.runtime.db.url)  # type: ignore[attr-defined]
    try:
        with db.read() as conn:
            rows = conn.all("SELECT * FROM alert_channels")
    finally:
        db.close()
    stored = repr(rows)
    assert len(rows) == 2
    assert SECRET not in stored
    assert "smtp-password-123" not in stored
    assert all(str(r["secrets"]).startswith("v1:") for r in rows)


def _hook(**config: object) -> dict:
    return {"name": "x", "type": "webhook", "config": {"url": "https://a.example", **config}}


def _mail(**config: object) -> dict:
    base = {"host": "smtp.example.com", "from": "a@example.com", "to": ["b@example.com"]}
    return {"name": "x", "type": "email", "config": {**base, **config}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "type": "pager", "config": {}}, "type"),
        ({"type": "webhook", "config": {"url": "https://a.example", "secret": SECRET}}, "name"),
        (_hook(url="ftp://a.example", secret=SECRET), "config.url"),
        (_hook(secret="short"), "config.secret"),
        (_hook(secret=SECRET, headers={}), "config.headers"),
        ({"name": "x", "type": "slack", "config": {"url": "http://h.example/x"}}, "config.url"),
        (_mail(to=[]), "config.to"),
        (_mail(port=0), "config.port"),
        (_mail(security="ssl3"), "config.security"),
        (_mail(**{"from": "a@example.com\r\nBcc: c@example.com"}), "config.from"),
        (_mail(username="alerts"), "config.password"),
        ({**_hook(secret=SECRET), "extra": 1}, "extra"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_written(
    api: Client, backend: str, body: dict, field: str
) -> None:
    r = api.post(URL, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith(f"{field}:")
    assert api.get(URL).json()["data"] == []


def test_an_update_cannot_change_the_type(api: Client, backend: str) -> None:
    cid = _webhook(api, "https://hooks.example.com/x")["id"]
    r = api.patch(f"{URL}/{cid}", json={"type": "slack"})
    assert r.status_code == 400
    assert r.json()["message"].startswith("type:")


def test_channels_are_project_scoped(api: Client, backend: str) -> None:
    cid = _webhook(api, "https://hooks.example.com/x")["id"]
    other = new_project(api.app.state.runtime.db.url, "Other")  # type: ignore[attr-defined]
    assert api.get(URL, auth=other.auth).json()["data"] == []
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"name": "taken"}} if method == "patch" else {}
        r = getattr(api, method)(f"{URL}/{cid}", auth=other.auth, **kwargs)
        assert r.status_code == 404, (method, r.text)
    assert api.post(f"{URL}/{cid}/test", auth=other.auth).status_code == 404
    assert api.get(URL, auth=None).status_code == 401


def test_send_test_to_a_loopback_url_is_refused_without_the_allowlist(
    guarded: Client, backend: str
) -> None:
    with http_receiver() as rx:
        cid = _webhook(guarded, rx.url)["id"]
        r = guarded.post(f"{URL}/{cid}/test")
        assert r.status_code == 502
        assert r.json()["delivered"] is False
        assert "127.0.0.1" in r.json()["error"]
        assert "LANTERNA_OUTBOUND_ALLOW" in r.json()["error"]
        port = rx.url.split(":")[2].split("/")[0]
        for url in (f"http://localhost:{port}/hook", "http://169.254.169.254/latest/meta-data/"):
            cid = _webhook(guarded, url, name=url)["id"]
            assert guarded.post(f"{URL}/{cid}/test").status_code == 502
    assert rx.requests == []


def test_send_test_by_email_reaches_the_smtp_server_and_logs_no_secret(
    api: Client, backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Plain SMTP with AUTH here (the TLS path is tested in test_channels.py with a
    # certificate the client is told to trust; the server uses the system's CAs).
    with smtp_server(tmp_path, tls=False, password="smtp-password-123") as box:
        made = api.post(
            URL,
            json={
                "name": "Mail",
                "type": "email",
                "config": {
                    "host": "127.0.0.1",
                    "port": box.port,
                    "security": "none",
                    "username": "alerts",
                    "password": "smtp-password-123",
                    "from": "lanterna@example.com",
                    "to": "oncall@example.com, lead@example.com",
                },
            },
        ).json()
        assert made["config"]["password"] == MASK
        assert made["config"]["to"] == ["oncall@example.com", "lead@example.com"]
        r = api.post(f"{URL}/{made['id']}/test")
        assert r.json() == {"delivered": True, "error": None}
        # The stored password goes only to the server it was given for: moving the
        # channel to another host, port, security or username needs it again (or an
        # admin who never saw it could send it to a server of theirs with "Send test").
        url = f"{URL}/{made['id']}"
        for moved in ({"host": "localhost"}, {"port": box.port + 1}, {"username": "me"}):
            refused = api.patch(url, json={"config": {**moved, "password": MASK}})
            assert refused.status_code == 400, refused.text
            assert "config.password: give the password again" in refused.json()["message"]
        kept = api.patch(url, json={"config": {"to": "oncall@example.com"}})
        assert kept.status_code == 200 and kept.json()["config"]["password"] == MASK
        again = {"host": "localhost", "password": "smtp-password-123"}
        assert api.patch(url, json={"config": again}).status_code == 200
        assert api.post(f"{url}/test").json() == {"delivered": True, "error": None}
    [(_, recipients, raw), (_, to_one, _)] = box.mails
    assert to_one == ["oncall@example.com"]
    assert recipients == ["oncall@example.com", "lead@example.com"]
    assert b"Test notification: Test of channel Mail" in raw
    assert "smtp-password-123" not in caplog.text


def test_the_routes_are_in_the_openapi_document(api: Client, backend: str) -> None:
    paths = api.get("/api/openapi.json").json()["paths"]
    assert set(paths[URL]) == {"get", "post"}
    assert set(paths[URL + "/{channel_id}"]) == {"get", "patch", "delete"}
    assert set(paths[URL + "/{channel_id}/test"]) == {"post"}


def test_the_key_file_is_made_private_in_the_data_dir(api: Client, backend: str) -> None:
    _webhook(api, "https://hooks.example.com/x")
    key_file = Path(api.app.state.runtime.settings.data_dir) / "secret.key"  # type: ignore[attr-defined]
    assert key_file.exists()
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_a_changed_server_key_asks_for_the_secrets_again(
    db_url: str, tmp_path: Path, backend: str
) -> None:
    settings = make_settings(db_url, tmp_path)
    settings.outbound_allow = "127.0.0.1"
    settings.secret_key = "11" * 32
    project = new_project(db_url)
    with http_receiver() as rx:
        with Client(create_app(settings)) as first:
            first.auth = project.auth
            cid = _webhook(first, rx.url)["id"]
            assert first.post(f"{URL}/{cid}/test").status_code == 200
        settings.secret_key = "22" * 32
        with Client(create_app(settings)) as second:
            second.auth = project.auth
            r = second.post(f"{URL}/{cid}/test")
            assert r.status_code == 502
            assert "enter the channel's secrets again" in r.json()["error"]
            r = second.patch(f"{URL}/{cid}", json={"name": "Renamed"})
            assert r.status_code == 400 and r.json()["message"].startswith("config.secret:")
            fresh = "a-fresh-secret-after-key-change"
            second.patch(f"{URL}/{cid}", json={"config": {"secret": fresh}}).raise_for_status()
            assert second.post(f"{URL}/{cid}/test").status_code == 200
    assert len(rx.requests) == 2
    assert _signed_by(fresh, rx.requests[-1].headers, rx.requests[-1].body)


def test_the_evaluator_lookup_opens_a_rules_stored_channels(
    api: Client, backend: str, tmp_path: Path
) -> None:
    from datetime import datetime, timezone

    from lanterna.alerts.message import AlertMessage, DeliveryError
    from lanterna.server.channel_ops import rule_channels

    rt = api.app.state.runtime  # type: ignore[attr-defined]
    with http_receiver() as rx:
        cid = _webhook(api, rx.url)["id"]
        channels_for = rule_channels(rt)
        rule = {"project_id": api.project.id, "channel_ids": [cid, "deleted-channel", cid]}
        [(found_id, channel)] = channels_for(rule)
        assert found_id == cid
        at = datetime(2026, 12, 5, 12, tzinfo=timezone.utc)
        fired = AlertMessage(
            "fired", api.project.id, "r1", "Errors", "error rate > 5%", 0.1, 0.05, at, "http://x/r1"
        )
        channel.deliver(fired)
        assert json.loads(rx.requests[0].body)["rule"] == {"id": "r1", "name": "Errors"}
        assert _signed_by(SECRET, rx.requests[0].headers, rx.requests[0].body)
        # Another project's rule does not reach this project's channel.
        assert channels_for({"project_id": "other", "channel_ids": [cid]}) == []
        assert channels_for({"project_id": api.project.id, "channel_ids": []}) == []
        # Sealed under another key: the channel fails with the reason, recorded by the
        # evaluator as a delivery error.
        rt.settings.secret_key = "33" * 32
        [(_, unusable)] = rule_channels(rt)(rule)
        with pytest.raises(DeliveryError, match="enter the channel's secrets again"):
            unusable.deliver(fired)
    assert len(rx.requests) == 1
