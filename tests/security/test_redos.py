"""Custom model patterns run on RE2: a catastrophic pattern cannot stall the server."""

from __future__ import annotations

import threading

import httpx
import pytest

from helpers import event

HOSTILE = "^(a+)+$"


def test_catastrophic_pattern_does_not_stall_ingestion_or_health(live_server):
    # No timing: with a backtracking engine the longer names take hours (26 a's took
    # 2.4 s on Python's re and every extra one doubles it), so a request or health probe
    # that does not answer within the client's timeout fails the test.
    auth = live_server.project.auth
    with httpx.Client(base_url=live_server.url, auth=auth, timeout=20) as client:
        created = client.post(
            "/api/public/models",
            json={"modelName": "evil", "matchPattern": HOSTILE, "inputPrice": 1},
        )
        assert created.status_code == 200, created.text  # harmless on RE2

        stop = threading.Event()
        answered = threading.Event()
        failures: list[BaseException] = []

        def probe() -> None:
            with httpx.Client(base_url=live_server.url, timeout=20) as other:
                while not stop.is_set():
                    try:
                        assert other.get("/api/public/health").status_code == 200
                    except BaseException as exc:  # reported by the test
                        failures.append(exc)
                        return
                    answered.set()

        thread = threading.Thread(target=probe)
        thread.start()
        assert answered.wait(10)
        try:
            for length in (26, 30, 40, 2000):
                name = "a" * length + "!"
                gen = {"id": f"g{length}", "traceId": "t", "model": name}
                response = client.post(
                    "/api/public/ingestion",
                    json={"batch": [event("generation-create", gen)]},
                )
                assert response.status_code == 207, response.text
                assert response.json()["successes"], response.text
            # A name the pattern does match is priced by it.
            matched = {"id": "gm", "traceId": "t", "model": "aaaa"}
            client.post(
                "/api/public/ingestion", json={"batch": [event("generation-create", matched)]}
            )
            assert (
                client.get("/api/public/observations/gm").json()["modelId"] == created.json()["id"]
            )
            answered.clear()  # the probe answers after the last ingestion too
            assert answered.wait(20) or failures
        finally:
            stop.set()
            thread.join(30)
    assert failures == []


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
