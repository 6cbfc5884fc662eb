"""Custom model patterns run on RE2: a catastrophic pattern cannot stall the server."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from helpers import event

HOSTILE = "^(a+)+$"


def test_catastrophic_pattern_does_not_stall_ingestion_or_health(live_server):
    auth = live_server.project.auth
    with httpx.Client(base_url=live_server.url, auth=auth, timeout=30) as client:
        created = client.post(
            "/api/public/models",
            json={"modelName": "evil", "matchPattern": HOSTILE, "inputPrice": 1},
        )
        assert created.status_code == 200, created.text  # harmless on RE2

        health_times: list[float] = []
        stop = threading.Event()
        answered = threading.Event()

        def probe() -> None:
            with httpx.Client(base_url=live_server.url, timeout=30) as other:
                while not stop.is_set():
                    started = time.monotonic()
                    assert other.get("/api/public/health").status_code == 200
                    health_times.append(time.monotonic() - started)
                    answered.set()

        thread = threading.Thread(target=probe)
        thread.start()
        assert answered.wait(10)
        try:
            # With Python's re, 26 a's took 2.4 s and every extra one doubled it.
            for length in (26, 30, 40, 2000):
                name = "a" * length + "!"
                gen = {"id": f"g{length}", "traceId": "t", "model": name}
                started = time.monotonic()
                response = client.post(
                    "/api/public/ingestion",
                    json={"batch": [event("generation-create", gen)]},
                )
                elapsed = time.monotonic() - started
                assert response.status_code == 207, response.text
                assert response.json()["successes"], response.text
                assert elapsed < 0.5, (length, elapsed)
            # A name the pattern does match is priced by it.
            matched = {"id": "gm", "traceId": "t", "model": "aaaa"}
            client.post(
                "/api/public/ingestion", json={"batch": [event("generation-create", matched)]}
            )
            assert (
                client.get("/api/public/observations/gm").json()["modelId"] == created.json()["id"]
            )
        finally:
            time.sleep(0.1)  # let the probe answer after the last ingestion too
            stop.set()
            thread.join(30)
    assert max(health_times) < 0.5, max(health_times)


@pytest.mark.parametrize(
    ("field", "pattern"),
    [
        ("matchPattern", "(?=gpt)gpt-4"),  # lookahead: RE2 has none
        ("matchPattern", "(a)\\1"),  # backreference
    ],
)
def test_patterns_re2_cannot_run_are_refused_naming_the_field(api, field, pattern):
    response = api.post(
        "/api/public/models", json={"modelName": "m", field: pattern, "inputPrice": 1}
    )
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert message.startswith("matchPattern: invalid regex") and "RE2" in message


def test_usage_condition_pattern_is_checked_with_re2(api):
    tiers = [
        {
            "name": "Standard",
            "isDefault": True,
            "priority": 0,
            "conditions": [],
            "prices": {"input": 1},
        },
        {
            "name": "Long",
            "isDefault": False,
            "priority": 1,
            "conditions": [{"usageDetailPattern": "(?<=x)input", "operator": "gt", "value": 1}],
            "prices": {"input": 2},
        },
    ]
    response = api.post(
        "/api/public/models", json={"modelName": "m", "matchPattern": "m", "pricingTiers": tiers}
    )
    assert response.status_code == 400
    assert (
        "pricingTiers[1].conditions[0].usageDetailPattern: invalid regex"
        in response.json()["error"]
    )


def test_langfuse_style_patterns_still_work(api):
    """Langfuse's default price list writes patterns like this one: (?i), groups, \\d."""
    body = {
        "modelName": "acme",
        "matchPattern": "(?i)^(acme/)?(acme-4(-\\d{4})?)$",
        "inputPrice": 1,
    }
    model = api.post("/api/public/models", json=body).json()
    api.post(
        "/api/public/ingestion",
        json={
            "batch": [
                event("generation-create", {"id": "g", "traceId": "t", "model": "ACME/acme-4-2024"})
            ]
        },
    )
    assert api.get("/api/public/observations/g").json()["modelId"] == model["id"]
