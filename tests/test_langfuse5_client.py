"""The official Langfuse 5.x Python SDK (``langfuse==5.0.4``) against a live server.

The SDK runs in its own virtualenv (``.venvs/langfuse5``, made by ``scripts/test`` from
``tests/clients/langfuse5.txt``) as a subprocess running ``tests/clients/lf5_scores.py``.
5.x sends scores as a JSON list to ``POST /api/public/scores`` (not through ingestion)
and expects ``202 {"message": "Accepted"}`` or ``207 {accepted, rejected, errors}``.
The scores are then read back through our API. No polling: the server answers only after
commit and the SDK's ``flush()`` returns only after every batch got its answer.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from helpers import event
from support import run_sdk_script

pytestmark = [pytest.mark.slow, pytest.mark.clickhouse]

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"  # an OTel-style 32-hex trace id
OBSERVATION_ID = "b7ad6b7169203331"
SESSION_ID = "chat-42"


def run_client(server: Any, *args: str, secret: str | None = None) -> dict[str, Any]:
    """Run lf5_scores.py with the 5.x SDK against ``server``; its JSON result."""
    return run_sdk_script("langfuse5", "lf5_scores.py", server, *args, secret=secret)


def test_auth_check_succeeds_and_fails_with_a_wrong_secret(live_server):
    assert run_client(live_server, "auth") == {"auth": True, "error": None}
    wrong = run_client(live_server, "auth", secret="sk-lf-not-the-secret")
    assert wrong["auth"] is False
    assert wrong["error"].startswith("UnauthorizedError"), wrong


def test_scores_from_the_sdk_arrive_with_their_targets_and_types(live_server):
    auth = live_server.project.auth
    batch = {
        "batch": [
            event("trace-create", {"id": TRACE_ID, "name": "chat", "sessionId": SESSION_ID,
                                   "userId": "u-1", "tags": ["lf5"]}),
            event("span-create", {"id": OBSERVATION_ID, "traceId": TRACE_ID, "name": "step"}),
        ]
    }  # fmt: skip
    seeded = httpx.post(f"{live_server.url}/api/public/ingestion", json=batch, auth=auth)
    assert seeded.status_code == 207 and seeded.json()["errors"] == [], seeded.text

    result = run_client(live_server, "scores", TRACE_ID, OBSERVATION_ID, SESSION_ID)
    assert result["auth"] is True
    # Every good batch was answered 202 and parsed: the SDK logged nothing.
    assert result["good_log"] == [], result["good_log"]
    assert result["shutdown_log"] == [], result["shutdown_log"]
    # The mixed batch got a 207 that the SDK parsed into counts and our message.
    (mixed,) = result["mixed_log"]
    assert "accepted 1 and rejected 1 of 2 scores" in mixed, mixed
    assert "BOOLEAN" in mixed, mixed

    response = httpx.get(
        f"{live_server.url}/api/public/v2/scores", params={"limit": 100}, auth=auth
    )
    assert response.status_code == 200, response.text
    got = {s["id"]: s for s in response.json()["data"]}
    assert set(got) == {
        "lf5-trace", "lf5-observation", "lf5-session", "lf5-categorical", "lf5-boolean",
        "lf5-text", "lf5-good",
    }  # fmt: skip

    trace_score = got["lf5-trace"]
    assert (trace_score["name"], trace_score["value"], trace_score["dataType"]) == (
        "accuracy", 0.92, "NUMERIC",
    )  # fmt: skip
    assert (trace_score["traceId"], trace_score["observationId"]) == (TRACE_ID, None)
    assert trace_score["comment"] == "close enough"
    assert trace_score["metadata"] == {"judge": "human"}
    assert (trace_score["source"], trace_score["environment"]) == ("API", "default")
    assert trace_score["trace"] == {
        "userId": "u-1", "tags": ["lf5"], "environment": "default", "sessionId": SESSION_ID,
    }  # fmt: skip

    obs = got["lf5-observation"]
    assert (obs["traceId"], obs["observationId"], obs["value"]) == (TRACE_ID, OBSERVATION_ID, 0.5)

    session = got["lf5-session"]
    assert (session["sessionId"], session["traceId"], session["trace"]) == (SESSION_ID, None, None)
    assert (session["name"], session["value"], session["dataType"]) == (
        "session-rating", 4, "NUMERIC",
    )  # fmt: skip

    categorical = got["lf5-categorical"]
    assert (categorical["dataType"], categorical["stringValue"], categorical["value"]) == (
        "CATEGORICAL", "friendly", 0,
    )  # fmt: skip

    boolean = got["lf5-boolean"]
    assert (boolean["dataType"], boolean["value"], boolean["stringValue"]) == (
        "BOOLEAN", 1, "True",
    )  # fmt: skip
    assert boolean["environment"] == "staging"

    text = got["lf5-text"]
    assert (text["dataType"], text["stringValue"]) == ("TEXT", "well put")

    # The trace read shows its scores (the observation's included), not the session's.
    trace = httpx.get(f"{live_server.url}/api/public/traces/{TRACE_ID}", auth=auth).json()
    assert sorted(s["id"] for s in trace["scores"]) == sorted(
        ["lf5-trace", "lf5-observation", "lf5-categorical", "lf5-boolean", "lf5-text", "lf5-good"]
    )
