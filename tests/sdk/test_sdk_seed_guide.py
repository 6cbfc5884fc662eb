"""The seed guide's examples with our SDK, their imports changed and nothing else
(sections 3.1-3.4, 4 (prompts), 5.1-5.4), against the real server. Only what the guide
leaves to the app (its documents, agents and ChatOpenAI) is stood in for, without
network."""

from __future__ import annotations

import asyncio
import json
import os
import random
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from sdk_support import by_name

# --- the guide's imports, changed to ours ---------------------------------------------
from lanterna import Lanterna as Langfuse
from lanterna import context as langfuse_context
from lanterna import get_client, observe
from lanterna.sdk.integrations.langchain import CallbackHandler


# --- what the app provides (stand-ins) --------------------------------------------------
def ChatOpenAI(model: str, callbacks: Any = None) -> GenericFakeChatModel:
    reply = AIMessage(
        content=f"answer from {model}",
        usage_metadata={"input_tokens": 12, "output_tokens": 5, "total_tokens": 17},
        response_metadata={"model_name": model},
    )
    return GenericFakeChatModel(messages=iter([reply] * 10), callbacks=callbacks)


def load_document(doc_id: str) -> str:
    return f"contents of {doc_id}"


saved: list[Any] = []


def save_result(result: Any) -> None:
    saved.append(result)


def evaluate_quality(result: str) -> float:
    return 0.9


async def perform_task(task_type: str) -> str:
    return f"{task_type} done"


@pytest.fixture
def guide_env(live_server, monkeypatch, make_client):
    p = live_server.project
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", p.public_key)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", p.secret_key)
    monkeypatch.setenv("LANGFUSE_HOST", live_server.url)
    return make_client(flush_interval=0.05)


# --- 3.1 / 3.2 ---------------------------------------------------------------------------
def get_langfuse_handler(user_id=None, session_id=None, metadata=None) -> CallbackHandler:
    return CallbackHandler(
        public_key=os.getenv("LANGFUSE_PUBLIC_KEY"),
        secret_key=os.getenv("LANGFUSE_SECRET_KEY"),
        host=os.getenv("LANGFUSE_HOST"),
        user_id=user_id,
        session_id=session_id,
        metadata=metadata or {},
    )


class BaseAgent:
    def __init__(self, user_id: str, session_id: str = None):  # noqa: RUF013 (verbatim)
        self.user_id = user_id
        self.session_id = session_id or f"session_{user_id}"
        self.langfuse_handler = get_langfuse_handler(
            user_id=self.user_id,
            session_id=self.session_id,
            metadata={"agent_type": self.__class__.__name__, "version": "1.0"},
        )
        self.llm = ChatOpenAI(model="gpt-4", callbacks=[self.langfuse_handler])
        self.agent_executor = ChatPromptTemplate.from_messages([("human", "{input}")]) | self.llm

    async def run(self, prompt: str):
        # every run is logged automatically
        return await self.agent_executor.ainvoke(
            {"input": prompt}, config={"callbacks": [self.langfuse_handler]}
        )


class ResearchAgent(BaseAgent):
    pass


def test_langchain_agent_3_1_and_3_2(guide_env, reader):
    langfuse_client = Langfuse(
        public_key=os.getenv("LANGFUSE_PUBLIC_KEY"),
        secret_key=os.getenv("LANGFUSE_SECRET_KEY"),
        host=os.getenv("LANGFUSE_HOST"),
    )
    agent = ResearchAgent(user_id="u-42")
    result = asyncio.run(agent.run("Summarize: lanterns"))
    assert result.content == "answer from gpt-4"
    assert langfuse_client.flush(10) and agent.langfuse_handler.flush(10)
    trace = reader.wait_trace(agent.langfuse_handler.get_trace_id(), observations=3)
    assert trace["userId"] == "u-42" and trace["sessionId"] == "session_u-42"
    assert trace["metadata"] == {"agent_type": "ResearchAgent", "version": "1.0"}
    gen = next(o for o in trace["observations"] if o["type"] == "GENERATION")
    assert gen["model"] == "gpt-4" and gen["usageDetails"]["total"] == 17


# --- 3.3 -------------------------------------------------------------------------------
@observe()  # automatic trace
async def process_document(doc_id: str, user_id: str):
    langfuse_context.update_current_trace(user_id=user_id, metadata={"doc_id": doc_id})

    # 1. load the document (a sub-step as a span)
    with langfuse_context.observe(name="load_document") as span:
        doc = load_document(doc_id)
        span.update(output={"doc_size": len(doc)})

    # 2. run the agent
    agent = ResearchAgent(user_id=user_id)
    result = await agent.run(f"Summarize: {doc}")

    # 3. save the result
    with langfuse_context.observe(name="save_result"):
        save_result(result)
    trace_ids.append(langfuse_context.get_current_trace_id())
    return result


trace_ids: list[str] = []


def test_custom_trace_3_3(guide_env, reader):
    trace_ids.clear()
    result = asyncio.run(process_document("doc-1", "u-1"))
    assert result.content == "answer from gpt-4"
    assert guide_env.flush(10)
    trace = reader.wait_trace(trace_ids[0], observations=6)
    obs = by_name(trace)
    assert trace["name"] == "process_document" and trace["userId"] == "u-1"
    assert trace["sessionId"] == "session_u-1"  # the agent's handler joined this trace
    assert obs["load_document"]["output"] == {"doc_size": len("contents of doc-1")}
    root_id = obs["process_document"]["id"]
    assert obs["load_document"]["parentObservationId"] == root_id
    assert obs["save_result"]["parentObservationId"] == root_id
    assert any(o["type"] == "GENERATION" for o in trace["observations"])


# --- 3.4 -------------------------------------------------------------------------------
def test_scores_3_4(guide_env, reader):
    langfuse = Langfuse()

    def record_user_feedback(trace_id: str, rating: int, comment: str = ""):
        langfuse.score(trace_id=trace_id, name="user_rating", value=rating, comment=comment)

    def record_quality_score(trace_id: str, quality: float):
        langfuse.score(trace_id=trace_id, name="quality_score", value=quality)

    agent = ResearchAgent(user_id="u-3")

    @observe()
    async def generate_report(prompt: str, user_id: str):
        result = await agent.run(prompt)
        quality = evaluate_quality(result)  # automatic quality evaluation
        record_quality_score(trace_id=langfuse_context.get_current_trace_id(), quality=quality)
        trace_ids.append(langfuse_context.get_current_trace_id())
        return result

    trace_ids.clear()
    asyncio.run(generate_report("report please", "u-3"))
    record_user_feedback(trace_ids[0], 5, "great")
    assert langfuse.flush(10)
    trace = reader.wait_trace(trace_ids[0], observations=2)
    scores = {s["name"]: s for s in trace["scores"]}
    assert scores["quality_score"]["value"] == 0.9
    assert scores["user_rating"]["value"] == 5 and scores["user_rating"]["comment"] == "great"


# --- 5.1, 5.2 ----------------------------------------------------------------------------
@observe()
async def complex_workflow(user_id: str, task_type: str):
    langfuse_context.update_current_trace(
        user_id=user_id,
        metadata={
            "task_type": task_type,
            "environment": "production",
            "version": "1.2.0",
            "feature_flags": {"new_ui": True, "beta_feature": False},
        },
        tags=["production", "high-priority"],
    )
    result = await perform_task(task_type)
    langfuse_context.update_current_observation(
        output={"result": result, "metrics": {"processing_time": 1.23, "items_processed": 42}},
    )
    trace_ids.append(langfuse_context.get_current_trace_id())
    return result


class FlakyAgent:
    async def run(self, prompt: str) -> str:
        raise ConnectionError("provider unreachable")


agent = FlakyAgent()


@observe()
async def resilient_agent_run(prompt: str, user_id: str):
    trace_ids.append(langfuse_context.get_current_trace_id())
    try:
        return await agent.run(prompt)
    except Exception as e:
        langfuse_context.update_current_trace(
            status_message=str(e),
            level="ERROR",
            metadata={
                "error_type": type(e).__name__,
                "error_details": str(e),
                "user_id": user_id,
                "prompt": prompt,
            },
        )
        raise


def test_metadata_and_errors_5_1_and_5_2(guide_env, reader):
    trace_ids.clear()
    assert asyncio.run(complex_workflow("u-5", "research")) == "research done"
    with pytest.raises(ConnectionError):
        asyncio.run(resilient_agent_run("p", "u-6"))
    assert guide_env.flush(10)

    trace = reader.wait_trace(trace_ids[0])
    assert trace["tags"] == ["high-priority", "production"]
    assert trace["metadata"]["feature_flags"] == {"new_ui": True, "beta_feature": False}
    assert trace["observations"][0]["output"]["metrics"]["items_processed"] == 42

    failed = reader.wait_trace(trace_ids[1])
    root = failed["observations"][0]
    assert root["level"] == "ERROR" and root["statusMessage"] == "provider unreachable"
    assert failed["metadata"]["error_type"] == "ConnectionError"


# --- 5.4 -------------------------------------------------------------------------------
def test_cost_aware_agent_5_4(guide_env, reader):
    get_session_cost = get_client().get_session_cost  # what the guide leaves to implement

    @observe()
    async def cost_aware_agent(prompt: str, budget: float):
        session_id = langfuse_context.get_current_trace_id()
        session_cost = get_session_cost(session_id)
        if session_cost >= budget:
            raise ValueError(f"Budget exceeded: {session_cost} >= {budget}")
        # cheaper model when less than $0.10 remains
        model = "gpt-3.5-turbo" if budget - session_cost < 0.10 else "gpt-4-turbo"
        langfuse_context.update_current_trace(
            metadata={"budget": budget, "session_cost": session_cost, "model_selected": model}
        )
        trace_ids.append(session_id)
        return await ChatOpenAI(model=model).ainvoke(prompt)

    trace_ids.clear()
    assert asyncio.run(cost_aware_agent("hi", 1.0)).content == "answer from gpt-4-turbo"
    assert guide_env.flush(10)
    assert reader.wait_trace(trace_ids[0])["metadata"]["session_cost"] == 0.0


def test_cost_aware_agent_switches_model_as_the_session_budget_runs_low_5_4(
    live_server, make_client, reader
):
    """The guide's ``cost_aware_agent`` verbatim, with ``get_session_cost`` filled in by our
    SDK, over a conversation: one trace whose session id is its trace id (what the guide's
    ``get_current_trace_id()`` names), one agent call per turn. The model calls are priced
    by the server from the built-in prices (gpt-4-turbo: 5000 tokens in, 1000 out is
    $0.08), so with a $0.25 budget the third turn has less than $0.10 left and switches."""
    from sdk_support import VirtualClock

    p = live_server.project
    clock = VirtualClock()  # the SDK's cost cache ages on it: no sleeping
    client = make_client(
        public_key=p.public_key, secret_key=p.secret_key, host=live_server.url, clock=clock
    )

    def get_session_cost(session_id: str) -> float:
        cost = get_client().get_session_cost(session_id)
        return 0.0 if cost is None else cost  # None: the server could not say

    def ChatOpenAI(model: str) -> GenericFakeChatModel:  # the app's model, instrumented
        reply = AIMessage(
            content=f"answer from {model}",
            usage_metadata={"input_tokens": 5000, "output_tokens": 1000, "total_tokens": 6000},
            response_metadata={"model_name": model},
        )
        return GenericFakeChatModel(messages=iter([reply]), callbacks=[CallbackHandler()])

    # --- the guide's code, verbatim ---
    @observe()
    async def cost_aware_agent(prompt: str, budget: float):
        session_id = langfuse_context.get_current_trace_id()
        session_cost = get_session_cost(session_id)
        if session_cost >= budget:
            raise ValueError(f"Budget exceeded: {session_cost} >= {budget}")
        # cheaper model when less than $0.10 remains
        model = "gpt-3.5-turbo" if budget - session_cost < 0.10 else "gpt-4-turbo"
        langfuse_context.update_current_trace(
            metadata={"budget": budget, "session_cost": session_cost, "model_selected": model}
        )
        return await ChatOpenAI(model=model).ainvoke(prompt)

    # --- the app: a conversation of five turns ---
    @observe()
    async def conversation() -> list[str]:
        trace_id = langfuse_context.get_current_trace_id()
        # the trace's fields are sent when it ends: send its session id now, by its id
        client.trace(id=trace_id, session_id=trace_id)
        trace_ids.append(trace_id)
        answers = []
        for turn in range(5):
            answers.append((await cost_aware_agent(f"turn {turn}", 0.25)).content)
            assert client.flush(10)  # the turn's generation is stored
            clock.advance(10)  # and the SDK's cached session cost is stale
        return answers

    trace_ids.clear()
    answers = asyncio.run(conversation())
    assert answers == ["answer from gpt-4-turbo"] * 2 + ["answer from gpt-3.5-turbo"] * 3
    assert client.flush(10)
    trace = reader.wait_trace(trace_ids[0], observations=10)
    generations = [o for o in trace["observations"] if o["type"] == "GENERATION"]
    assert len(generations) == 5
    assert generations[0]["calculatedTotalCost"] == pytest.approx(0.08)
    spent = sum(g["calculatedTotalCost"] for g in generations)
    assert client.get_session_cost(trace_ids[0], max_age=0) == pytest.approx(spent)
    assert 0.15 < spent < 0.25  # the budget held
    assert trace["metadata"]["model_selected"] == "gpt-3.5-turbo"


def test_session_and_user_cost_read_back_equal_the_generations(guide_env, reader):
    client = guide_env
    session = f"sess-{random.getrandbits(32)}"
    costs = [0.0125, 0.003, 0.25]
    for i, cost in enumerate(costs):
        trace = client.trace(name=f"turn-{i}", session_id=session, user_id="budget-user")
        trace.generation(
            name="llm",
            model="my-private-model",
            cost_details={"input": cost / 2, "output": cost / 2},
        ).end()
    client.trace(name="elsewhere", user_id="other").generation(
        name="llm", cost_details={"total": 9.0}
    ).end()
    assert client.flush(10)
    assert client.get_session_cost(session) == pytest.approx(sum(costs))
    assert client.get_user_cost("budget-user") == pytest.approx(sum(costs))
    import datetime as dt

    tomorrow = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    assert client.get_user_cost("budget-user", since=tomorrow) == 0.0
    assert client.get_session_cost("no-such-session") == 0.0


# --- 4. prompts ---------------------------------------------------------------------------
def test_prompt_management_4(guide_env, reader):
    langfuse = Langfuse()
    llm = ChatOpenAI(model="gpt-4", callbacks=[CallbackHandler()])

    # As the guide writes it.
    langfuse.create_prompt(
        name="research_agent_v1",
        prompt="You are a research agent...",
        config={"model": "gpt-4", "temperature": 0.7},
    )
    # The first version of a new prompt is served by default, so this works as written.
    prompt = langfuse.get_prompt("research_agent_v1")
    assert prompt.labels == ["production", "latest"]
    result = llm.invoke(prompt.prompt)
    assert prompt.version == 1 and prompt.config == {"model": "gpt-4", "temperature": 0.7}
    assert result.content == "answer from gpt-4"

    # "then compare v1 vs v2 in the dashboard: average quality score, cost difference":
    # generations linked to the version they used, and a quality score per trace.
    @observe()
    def research(question: str, quality: float) -> str:
        prompt = langfuse.get_prompt("research_agent_v1", cache_ttl_seconds=0)
        model = ChatOpenAI(model=prompt.config["model"], callbacks=[CallbackHandler()])
        answer = model.invoke(
            prompt.prompt + " " + question, config={"metadata": {"langfuse_prompt": prompt}}
        )
        langfuse.score(
            trace_id=langfuse_context.get_current_trace_id(), name="quality_score", value=quality
        )
        return answer.content

    research("lanterns?", 0.6)
    research("candles?", 0.7)
    langfuse.create_prompt(
        name="research_agent_v1",
        prompt="You are a concise research agent...",
        config={"model": "gpt-4o-mini", "temperature": 0.2},
        labels=["production"],
    )
    research("lamps?", 0.9)
    assert langfuse.flush(10) and guide_env.flush(10)

    metrics = reader.http.get("/api/public/prompts/metrics", params={"name": "research_agent_v1"})
    v1, v2 = metrics.json()["data"]
    assert (v1["version"], v1["generations"], v2["version"], v2["generations"]) == (1, 2, 2, 1)
    assert v1["scores"]["quality_score"] == {"avg": pytest.approx(0.65), "count": 2}
    assert v2["scores"]["quality_score"] == {"avg": pytest.approx(0.9), "count": 1}
    assert v1["avgCost"] > v2["avgCost"] > 0  # gpt-4 against gpt-4o-mini


# --- 5.3 -------------------------------------------------------------------------------
class AsyncLLM:
    """The guide awaits ``llm.invoke(...)``: a model whose invoke is a coroutine."""

    async def invoke(self, text: str) -> str:
        return f"answer to: {text}"


def test_ab_testing_5_3(guide_env, reader):
    langfuse = Langfuse()
    llm = AsyncLLM()
    langfuse.create_prompt(
        name="research_agent_v1", prompt="Research briefly: {input}", labels=["production"]
    )
    langfuse.create_prompt(
        name="research_agent_v2", prompt="Research in depth: {input}", labels=["production"]
    )

    @observe()
    async def ab_test_prompts(user_input: str, user_id: str):
        variant = "A" if random.random() < 0.5 else "B"  # 50/50 assignment
        langfuse_context.update_current_trace(metadata={"ab_test": True, "variant": variant})
        prompt = langfuse.get_prompt("research_agent_v1" if variant == "A" else "research_agent_v2")
        result = await llm.invoke(prompt.prompt.format(input=user_input))
        langfuse_context.update_current_observation(output=result)
        trace_ids.append(langfuse_context.get_current_trace_id())
        return result

    trace_ids.clear()
    random.seed(5)
    results = [asyncio.run(ab_test_prompts(f"topic {i}", f"u-{i}")) for i in range(12)]
    # Users rate the answers; in this test, variant B's answers are liked better.
    for trace_id, result in zip(trace_ids, results, strict=True):
        rating = 5 if "in depth" in result else 3
        langfuse.score(trace_id=trace_id, name="user_rating", value=rating)
    assert langfuse.flush(10) and guide_env.flush(10)

    # "filter traces by metadata.variant = A or B; compare the average user_rating"
    def traces_of(variant: str) -> set[str]:
        condition = {"type": "stringObject", "column": "metadata", "key": "variant",
                     "operator": "=", "value": variant}  # fmt: skip
        listed = reader.http.get(
            "/api/public/traces", params={"filter": json.dumps([condition]), "limit": 100}
        )
        return {t["id"] for t in listed.json()["data"]}

    a, b = traces_of("A"), traces_of("B")
    assert a and b and a | b == set(trace_ids) and not a & b
    ratings = reader.http.get("/api/public/v2/scores", params={"name": "user_rating", "limit": 100})
    by_trace = {s["traceId"]: s["value"] for s in ratings.json()["data"]}
    assert sum(by_trace[t] for t in a) / len(a) == 3
    assert sum(by_trace[t] for t in b) / len(b) == 5
    trace = reader.wait_trace(sorted(b)[0])
    assert trace["metadata"] == {"ab_test": True, "variant": "B"}
    assert trace["output"].startswith("answer to: Research in depth: topic")
