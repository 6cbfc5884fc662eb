"""The LangChain CallbackHandler against the real server, with langchain-core's fake chat
model (no network): chains, LLM calls with model/usage/latency, tools, retrievers,
errors, nesting, handler arguments, per invocation and on the model object."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from sdk_support import by_name

from lanterna import context, observe
from lanterna.sdk.integrations.langchain import CallbackHandler


def reply(text: str) -> AIMessage:
    return AIMessage(
        content=text,
        usage_metadata={
            "input_tokens": 30,
            "output_tokens": 12,
            "total_tokens": 42,
            "input_token_details": {"cache_read": 10},
            "output_token_details": {"reasoning": 2},
        },
        response_metadata={"model_name": "gpt-4o-2024-08-06"},
    )


def fake_llm(*texts: str, **kwargs: Any) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([reply(t) for t in texts]), **kwargs)


class Docs(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return [Document(page_content=f"about {query}", metadata={"source": "kb"})]


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def test_chain_with_handler_arguments(client, reader):
    handler = CallbackHandler(
        user_id="u-7",
        session_id="session_u-7",
        metadata={"agent_type": "ResearchAgent", "version": "1.0"},
        tags=["agents"],
    )
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{input}")])
    chain = prompt | fake_llm("Paris") | StrOutputParser()
    assert (
        chain.invoke(
            {"input": "Capital of France?"}, config={"callbacks": [handler], "run_name": "qa"}
        )
        == "Paris"
    )
    assert handler.flush(10)

    trace = reader.wait_trace(handler.get_trace_id(), observations=4)
    assert trace["name"] == "qa"
    assert trace["userId"] == "u-7" and trace["sessionId"] == "session_u-7"
    assert trace["metadata"] == {"agent_type": "ResearchAgent", "version": "1.0"}
    assert trace["tags"] == ["agents"]
    assert trace["input"] == {"input": "Capital of France?"} and trace["output"] == "Paris"
    obs = by_name(trace)
    root = obs["qa"]
    gen = obs["GenericFakeChatModel"]
    assert gen["type"] == "GENERATION" and gen["parentObservationId"] == root["id"]
    assert gen["model"] == "gpt-4o-2024-08-06"
    assert gen["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert gen["output"] == {"role": "assistant", "content": "Paris"}
    usage = gen["usageDetails"]
    # cached and reasoning tokens are split out (the server picks the key names)
    assert (usage["input"], usage["output"], usage["total"]) == (20, 10, 42)
    assert [v for k, v in usage.items() if "cache" in k] == [10]
    assert [v for k, v in usage.items() if "reasoning" in k] == [2]
    assert gen["latency"] is not None and gen["latency"] >= 0
    assert obs["ChatPromptTemplate"]["parentObservationId"] == root["id"]


def test_tools_retrievers_and_errors(client, reader):
    handler = CallbackHandler()
    config = {"callbacks": [handler]}
    assert add.invoke({"a": 2, "b": 3}, config=config) == 5
    tool_trace = handler.get_trace_id()
    docs = Docs().invoke("lanterns", config=config)
    retriever_trace = handler.get_trace_id()
    assert docs[0].page_content == "about lanterns"

    def fail(_: Any) -> None:
        raise RuntimeError("tool exploded")

    with pytest.raises(RuntimeError):
        RunnableLambda(fail, name="fragile").invoke({}, config=config)
    error_trace = handler.get_trace_id()
    assert handler.flush(10)

    t = reader.wait_trace(tool_trace)["observations"][0]
    assert t["type"] == "TOOL" and t["name"] == "add" and t["output"] == 5
    assert t["input"] == {"a": 2, "b": 3}
    r = reader.wait_trace(retriever_trace)["observations"][0]
    assert r["type"] == "RETRIEVER" and r["input"] == "lanterns"
    assert r["output"] == [{"page_content": "about lanterns", "metadata": {"source": "kb"}}]
    e = reader.wait_trace(error_trace)["observations"][0]
    assert e["level"] == "ERROR" and e["statusMessage"] == "tool exploded"


def test_handler_on_the_model_object_and_streaming(client, reader):
    handler = CallbackHandler(user_id="u-1")
    llm = fake_llm("one two three", callbacks=[handler])
    chunks = [c.content for c in llm.stream("count")]
    assert "".join(chunks) == "one two three"
    assert handler.flush(10)
    trace = reader.wait_trace(handler.get_trace_id())
    gen = trace["observations"][0]
    assert trace["userId"] == "u-1"
    assert gen["type"] == "GENERATION" and gen["input"] == [{"role": "user", "content": "count"}]
    assert gen["output"]["content"] == "one two three"
    assert gen["completionStartTime"] is not None
    assert gen["startTime"] <= gen["completionStartTime"] <= gen["endTime"]
    assert gen["timeToFirstToken"] >= 0


def test_runs_nest_under_observed_functions_async(client, reader):
    handler = CallbackHandler(session_id="s-async")
    seen = []

    @observe()
    async def agent_run(prompt: str) -> str:
        seen.append(context.get_current_trace_id())
        chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | fake_llm("done")
        result = await chain.ainvoke({"q": prompt}, config={"callbacks": [handler]})
        return result.content

    assert asyncio.run(agent_run("go")) == "done"
    assert client.flush(10)
    trace = reader.wait_trace(seen[0], observations=4)
    obs = by_name(trace)
    assert trace["name"] == "agent_run" and trace["sessionId"] == "s-async"
    sequence = next(o for o in trace["observations"] if o["name"] == "RunnableSequence")
    assert sequence["parentObservationId"] == obs["agent_run"]["id"]
    assert obs["GenericFakeChatModel"]["parentObservationId"] == sequence["id"]


def test_handler_with_explicit_keys_like_the_seed_guide(live_server, make_client, reader):
    p = live_server.project
    make_client(public_key=p.public_key, secret_key=p.secret_key, host=live_server.url)
    handler = CallbackHandler(
        public_key=p.public_key,
        secret_key=p.secret_key,
        host=live_server.url,
        user_id="u",
        session_id="s",
        metadata={},
    )
    assert handler.auth_check()
    fake_llm("ok", callbacks=[handler]).invoke("hi")
    assert handler.flush(10)
    assert reader.wait_trace(handler.get_trace_id())["sessionId"] == "s"


def test_usage_sent_uses_the_price_key_vocabulary(lanterna_capture):
    handler = CallbackHandler()
    fake_llm("x", callbacks=[handler]).invoke("hi")
    (gen,) = lanterna_capture.observations(type="generation")
    assert gen["usageDetails"] == {
        "input": 20,
        "input_cache_read": 10,
        "output": 10,
        "output_reasoning": 2,
        "total": 42,
    }
