"""The alert channels settings page through the real app: admins and owners create,
edit, test and delete channels; viewers only see them; secrets never appear in the
page; user text is escaped."""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from pathlib import Path

from conftest import Browser

sys.path.insert(0, str(Path(__file__).parent.parent / "alerts"))
from alert_receivers import http_receiver

SECRET = "ui-signing-secret-123456"


def _post(client: Browser, path: str, **data: str):
    token = client.csrf(path.split("/settings/channels")[0] + "/settings/channels")
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def _signed(secret: str, headers: dict[str, str], body: bytes) -> bool:
    stamp = headers["X-Lanterna-Timestamp"].encode()
    mac = hmac.new(secret.encode(), stamp + b"." + body, hashlib.sha256).hexdigest()
    return headers["X-Lanterna-Signature"] == "sha256=" + mac


def test_owners_manage_channels_and_viewers_only_see_them(two_projects, backend: str) -> None:
    client, a, _ = two_projects
    client.app.state.runtime.settings.outbound_allow = "127.0.0.1"
    assert client.login("owner-a@example.com") == 303
    base = f"/project/{a.id}/settings/channels"
    assert f'href="{base}"' in client.get(f"/project/{a.id}/settings").text
    with http_receiver() as rx:
        name = "<script>alert(1)</script> hook"
        made = _post(client, base, name=name, type="webhook", url=rx.url, secret=SECRET)
        assert made.status_code == 303
        page = client.get(base).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; hook" in page
        assert "<script>alert(1)" not in page
        assert SECRET not in page
        channel_id = page.split('data-channel="')[1].split('"')[0]

        tested = _post(client, f"{base}/{channel_id}/test")
        assert tested.status_code == 200
        assert "Test notification sent through" in tested.text
        assert json.loads(rx.requests[-1].body)["kind"] == "test"
        assert _signed(SECRET, rx.requests[-1].headers, rx.requests[-1].body)

        # Edit with the secret field left empty: renamed, the secret kept.
        edited = _post(client, f"{base}/{channel_id}", name="Ops", url=rx.url, secret="")
        assert edited.status_code == 303
        assert _post(client, f"{base}/{channel_id}/test").status_code == 200
        assert _signed(SECRET, rx.requests[-1].headers, rx.requests[-1].body)
        assert ">Ops<" in client.get(base).text

    bad = _post(client, base, name="x", type="webhook", url="https://h.example", secret="short")
    assert bad.status_code == 400
    assert "config.secret: at least 16 characters" in bad.text
    refused = _post(
        client,
        base,
        name="mail",
        type="email",
        host="smtp.example.com",
        to="",
        **{"from": "a@x.io"},
    )
    assert refused.status_code == 400 and "config.to" in refused.text

    viewer = Browser(client.app, client=("127.0.0.1", 50012))
    assert viewer.login("viewer-a@example.com") == 303
    seen = viewer.get(base).text
    assert ">Ops<" in seen and "Send test" not in seen and "Create channel" not in seen
    token = viewer.csrf(f"/project/{a.id}/settings")
    for path in (base, f"{base}/{channel_id}/test", f"{base}/{channel_id}/delete"):
        answer = viewer.post(path, data={"csrf_token": token, "name": "x", "type": "slack"})
        assert answer.status_code == 403, path

    other = Browser(client.app, client=("127.0.0.1", 50013))
    assert other.login("owner-b@example.com") == 303
    assert other.get(base).status_code == 404

    assert _post(client, f"{base}/{channel_id}/delete").status_code == 303
    assert "No channels yet." in client.get(base).text
    assert _post(client, f"{base}/{channel_id}/delete").status_code == 404


def test_a_refused_destination_is_shown_on_the_page(two_projects, backend: str) -> None:
    client, a, _ = two_projects
    assert client.login("owner-a@example.com") == 303
    base = f"/project/{a.id}/settings/channels"
    with http_receiver() as rx:
        _post(client, base, name="Local", type="webhook", url=rx.url, secret=SECRET)
        channel_id = client.get(base).text.split('data-channel="')[1].split('"')[0]
        answer = _post(client, f"{base}/{channel_id}/test")
    assert answer.status_code == 502
    assert "not delivered" in answer.text and "LANTERNA_OUTBOUND_ALLOW" in answer.text
    assert rx.requests == []
