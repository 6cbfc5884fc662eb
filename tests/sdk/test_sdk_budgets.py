"""The SDK's cost calls and ``budget_guard`` against the live server (uvicorn on a port,
SQLite and PostgreSQL): costs equal what the server computed from the built-in model
prices, answers are cached on the client's injected clock, a closed port gives None
(never an exception), and the guard raises only when asked to enforce."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from sdk_support import VirtualClock, free_port

from lanterna import BudgetExceeded, LanternaError, budget_guard


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def sdk(live_server: Any, make_client: Any, clock: VirtualClock) -> Any:
    p = live_server.project
    return make_client(
        public_key=p.public_key, secret_key=p.secret_key, host=live_server.url, clock=clock
    )


def priced_turn(client: Any, *, session: str, user: str, model: str, tokens: int) -> None:
    """A trace with one generation priced by the server from the built-in prices."""
    trace = client.trace(name="turn", session_id=session, user_id=user)
    trace.generation(
        name="llm",
        model=model,
        usage_details={"prompt_tokens": tokens, "completion_tokens": tokens // 10},
    ).end()


def stored_costs(live_server: Any) -> float:
    observations = httpx.get(
        f"{live_server.url}/api/public/observations",
        params={"limit": 100},
        auth=live_server.project.auth,
    ).json()["data"]
    costs = [o["calculatedTotalCost"] for o in observations]
    assert costs and all(c > 0 for c in costs)
    return float(sum(costs))


def test_session_and_user_costs_equal_the_server_costs_and_are_cached(sdk, live_server, clock):
    session = f"s-{uuid.uuid4().hex[:8]}"
    priced_turn(sdk, session=session, user="ada", model="gpt-4o", tokens=2000)
    priced_turn(sdk, session=session, user="ada", model="gpt-4o-mini", tokens=5000)
    assert sdk.flush(10)
    spent = stored_costs(live_server)
    assert sdk.get_session_cost(session) == pytest.approx(spent)
    for period in ("day", "week", "month", "total"):
        assert sdk.get_user_cost("ada", period) == pytest.approx(spent)
    assert sdk.get_user_cost("ada", since=dt.datetime.now(dt.timezone.utc) + dt.timedelta(1)) == 0
    assert sdk.get_session_cost("no-such-session") == 0.0

    # one more turn: the cached answer stands until it is 5 seconds old on the client's clock
    priced_turn(sdk, session=session, user="ada", model="gpt-4o", tokens=1000)
    assert sdk.flush(10)
    assert sdk.get_session_cost(session) == pytest.approx(spent)
    assert sdk.get_session_cost(session, max_age=0) > spent  # asked afresh
    clock.advance(5)
    now = stored_costs(live_server)
    assert sdk.get_session_cost(session) == pytest.approx(now)
    assert sdk.get_user_cost("ada", "day") == pytest.approx(now)


def test_a_closed_port_gives_none_and_the_guard_lets_code_run(make_client, clock):
    down = make_client(
        public_key="pk", secret_key="sk", host=f"http://127.0.0.1:{free_port()}", clock=clock
    )
    assert down.get_session_cost("s1") is None
    assert down.get_user_cost("u1", "month") is None
    with budget_guard(session_id="s1", limit_usd=0.01, enforce=True, client=down) as check:
        ran = True
    assert ran and check.spent_usd is None and not check.exceeded and check.remaining_usd is None
    with budget_guard(budget_id="b1", enforce=True, client=down) as check:
        assert not check.known
    with pytest.raises(LanternaError):  # the explicit status call does raise
        down.get_budget_status("b1")


def test_the_guard_raises_only_when_enforcing(sdk, live_server):
    session = f"s-{uuid.uuid4().hex[:8]}"
    priced_turn(sdk, session=session, user="bob", model="gpt-4o", tokens=10_000)
    assert sdk.flush(10)
    spent = stored_costs(live_server)

    with budget_guard(session_id=session, limit_usd=spent * 2, enforce=True, client=sdk) as ok:
        assert ok.remaining_usd == pytest.approx(spent) and not ok.exceeded
    with budget_guard(session_id=session, limit_usd=spent / 2, client=sdk) as warned:
        assert warned.exceeded  # not enforced: the code runs
    enforced = budget_guard(session_id=session, limit_usd=spent / 2, enforce=True, client=sdk)
    with pytest.raises(BudgetExceeded) as raised, enforced:
        pytest.fail("the guarded code ran")
    assert raised.value.spent_usd == pytest.approx(spent)
    assert raised.value.limit_usd == pytest.approx(spent / 2)
    assert f"session {session}" in str(raised.value) and "Budget exceeded" in str(raised.value)
    assert isinstance(raised.value, LanternaError)

    calls: list[str] = []

    @budget_guard(user_id="bob", period="day", limit_usd=spent / 2, enforce=True, client=sdk)
    def expensive() -> None:
        calls.append("sync")

    @budget_guard(user_id="bob", period="month", limit_usd=spent * 2, enforce=True, client=sdk)
    async def cheap() -> str:
        calls.append("async")
        return "done"

    with pytest.raises(BudgetExceeded, match="user bob"):
        expensive()
    assert asyncio.run(cheap()) == "done" and calls == ["async"]


def test_the_guard_follows_a_server_side_budget(sdk, live_server):
    priced_turn(sdk, session="s", user="cy", model="gpt-4o", tokens=10_000)
    assert sdk.flush(10)
    spent = stored_costs(live_server)
    http = httpx.Client(base_url=live_server.url, auth=live_server.project.auth)
    try:

        def budget(limit: float) -> str:
            body = {"name": "cy", "scope": "user", "scopeValue": "cy", "limitUsd": limit}
            reply = http.post("/api/public/budgets", json=body)
            assert reply.status_code == 200, reply.text
            return str(reply.json()["id"])

        roomy, tight = budget(spent * 10), budget(spent * 0.9)
    finally:
        http.close()
    status = sdk.get_budget_status(tight)
    assert status["state"] == "exceeded" and status["spentUsd"] == pytest.approx(spent)
    with budget_guard(budget_id=roomy, enforce=True, client=sdk) as check:
        assert check.limit_usd == pytest.approx(spent * 10)
    enforced = budget_guard(budget_id=tight, enforce=True, client=sdk)
    with pytest.raises(BudgetExceeded, match=f"budget {tight}"), enforced:
        pytest.fail("the guarded code ran")
    with budget_guard(budget_id=tight, client=sdk) as check:
        assert check.exceeded
    with budget_guard(budget_id="no-such-budget", enforce=True, client=sdk) as check:
        assert not check.known  # a 404 fails open too


def test_wrong_guard_arguments_fail_at_once():
    with pytest.raises(ValueError, match="exactly one"):
        budget_guard(limit_usd=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        budget_guard(session_id="s", user_id="u", limit_usd=1.0)
    with pytest.raises(ValueError, match="budget_id alone"):
        budget_guard(budget_id="b", limit_usd=1.0)
