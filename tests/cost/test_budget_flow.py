"""The seed guide's budget flow: a session's cost, read back through the SDK over HTTP,
is the sum of its generations' costs."""

from __future__ import annotations

import httpx
import pytest

from lanterna import Lanterna


def test_session_and_user_cost_from_the_sdk_equal_the_generations(live_server):
    project = live_server.project
    client = Lanterna(project.public_key, project.secret_key, live_server.url)
    try:
        for n, model in enumerate(["gpt-4o", "gpt-4o-mini", "claude-3-5-haiku-20241022"]):
            trace = client.trace(name=f"step-{n}", session_id="budget-1", user_id="ada")
            trace.generation(
                name="llm",
                model=model,
                usage_details={"prompt_tokens": 1000 * (n + 1), "completion_tokens": 100},
            )
        trace.generation(name="llm", model="gpt-4o", input="What does this cost?", output="Little.")
        assert client.flush(10)

        auth = (project.public_key, project.secret_key)
        observations = httpx.get(
            f"{live_server.url}/api/public/observations", params={"limit": 100}, auth=auth
        ).json()["data"]
        costs = [o["calculatedTotalCost"] for o in observations]
        assert len(costs) == 4 and all(c > 0 for c in costs)

        assert client.get_session_cost("budget-1") == pytest.approx(sum(costs))
        assert client.get_user_cost("ada") == pytest.approx(sum(costs))
        assert client.get_session_cost("no-such-session") == 0.0
    finally:
        client.shutdown()
