"""The SDK end to end against the real server (both backends): what users trace is what
the trace API returns."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sdk_support import by_name

from lanterna import Lanterna, context, get_client, observe


def test_nested_sync_async_and_generators_form_one_tree(client, reader):
    @observe()
    def tokenize(text: str) -> list[str]:
        return text.split()

    @observe(as_type="generation", name="stream")
    def stream(n: int):
        for i in range(n):
            yield f"t{i} "

    @observe(as_type="retriever")
    async def search(query: str):
        for i in range(2):
            await asyncio.sleep(0)
            yield {"doc": i, "query": query}

    @observe(as_type="tool")
    async def lookup(key: str) -> str:
        await asyncio.sleep(0)  # lets the other lookup run: the two interleave
        return key.upper()

    @observe(as_type="agent")
    async def pipeline(question: str, user: str) -> dict:
        context.update_current_trace(
            user_id=user,
            session_id="s-1",
            tags=["b", "a"],
            metadata={"v": 1},
            release="r1",
            version="2",
        )
        words = tokenize(question)
        answer = "".join(stream(2))
        docs = [d async for d in search("q")]
        keys = await asyncio.gather(lookup("x"), lookup("y"))
        trace_ids.append(context.get_current_trace_id())
        return {"words": words, "answer": answer, "docs": len(docs), "keys": keys}

    trace_ids: list[str] = []
    result = asyncio.run(pipeline("hello world", user="u-1"))
    assert result == {
        "words": ["hello", "world"],
        "answer": "t0 t1 ",
        "docs": 2,
        "keys": ["X", "Y"],
    }
    assert client.flush(10)
    trace = reader.wait_trace(trace_ids[0], observations=6)

    assert trace["name"] == "pipeline"
    assert trace["userId"] == "u-1" and trace["sessionId"] == "s-1"
    assert trace["tags"] == ["a", "b"]
    assert trace["metadata"] == {"v": 1}
    assert trace["release"] == "r1" and trace["version"] == "2"
    assert trace["input"] == {"question": "hello world", "user": "u-1"}
    assert trace["output"]["answer"] == "t0 t1 "

    obs = by_name(trace)
    assert sorted(o["name"] for o in trace["observations"]) == [
        "lookup",
        "lookup",
        "pipeline",
        "search",
        "stream",
        "tokenize",
    ]
    root = obs["pipeline"]
    assert root["type"] == "AGENT" and root["parentObservationId"] is None
    assert root["output"] == trace["output"]
    for child in trace["observations"]:
        if child is not root:
            assert child["parentObservationId"] == root["id"]
    assert obs["tokenize"]["input"] == {"text": "hello world"}
    assert obs["tokenize"]["output"] == ["hello", "world"]
    assert obs["stream"]["type"] == "GENERATION" and obs["stream"]["output"] == "t0 t1 "
    assert obs["search"]["type"] == "RETRIEVER"
    assert obs["search"]["output"] == [{"doc": 0, "query": "q"}, {"doc": 1, "query": "q"}]
    assert {o["output"] for o in trace["observations"] if o["name"] == "lookup"} == {"X", "Y"}
    assert obs["lookup"]["type"] == "TOOL"
    assert root["startTime"] <= obs["tokenize"]["startTime"] <= root["endTime"]
    assert trace["latency"] > 0


def test_exception_sets_error_and_propagates_unchanged(client, reader):
    boom = ValueError("bad input")
    seen: list[str] = []

    @observe()
    def inner():
        raise boom

    @observe()
    def outer():
        seen.append(context.get_current_trace_id())
        inner()

    with pytest.raises(ValueError) as caught:
        outer()
    assert caught.value is boom
    assert client.flush(10)
    trace = reader.wait_trace(seen[0], observations=2)
    for name in ("inner", "outer"):
        assert by_name(trace)[name]["level"] == "ERROR"
        assert by_name(trace)[name]["statusMessage"] == "bad input"


def test_async_exception_and_update_current_trace_level(client, reader):
    seen: list[str] = []

    @observe()
    async def resilient_agent_run(prompt: str, user_id: str):
        seen.append(context.get_current_trace_id())
        try:
            raise TimeoutError("provider timed out")
        except Exception as e:
            context.update_current_trace(
                status_message=str(e),
                level="ERROR",
                metadata={"error_type": type(e).__name__, "user_id": user_id},
            )
            return "fallback"

    assert asyncio.run(resilient_agent_run("p", "u")) == "fallback"
    assert client.flush(10)
    trace = reader.wait_trace(seen[0])
    root = trace["observations"][0]
    assert root["level"] == "ERROR" and root["statusMessage"] == "provider timed out"
    assert trace["metadata"]["error_type"] == "TimeoutError"


def test_context_manager_form_sync_and_async(client, reader):
    seen: list[str] = []

    @observe()
    async def process_document(doc_id: str):
        seen.append(context.get_current_trace_id())
        with context.observe(name="load_document") as span:
            span.update(output={"doc_size": 3}, metadata={"doc_id": doc_id})
            inner_id = context.get_current_observation_id()
            assert inner_id == span.id
        async with observe(name="save_result", as_type="tool") as span2:
            await asyncio.sleep(0)
            span2.score(name="saved", value=1)
        with pytest.raises(KeyError), observe(name="failing"):
            raise KeyError("k")
        return "done"

    asyncio.run(process_document("d-1"))
    assert client.flush(10)
    trace = reader.wait_trace(seen[0], observations=4)
    obs = by_name(trace)
    assert obs["load_document"]["output"] == {"doc_size": 3}
    assert obs["load_document"]["metadata"] == {"doc_id": "d-1"}
    assert obs["load_document"]["parentObservationId"] == obs["process_document"]["id"]
    assert obs["save_result"]["type"] == "TOOL"
    assert obs["failing"]["level"] == "ERROR"
    assert [(s["name"], s["observationId"]) for s in trace["scores"]] == [
        ("saved", obs["save_result"]["id"])
    ]


def test_context_manager_alone_starts_a_trace(client, reader):
    with observe(name="batch-job") as span:
        span.update_trace(user_id="cron")
        trace_id = span.trace_id
    assert client.flush(10)
    trace = reader.wait_trace(trace_id)
    assert trace["name"] == "batch-job" and trace["userId"] == "cron"


def test_scores_from_context_and_client(client, reader):
    seen: list[tuple[str, str]] = []

    @observe()
    def generate_report(prompt: str):
        seen.append((context.get_current_trace_id(), context.get_current_observation_id()))
        context.score_current_trace(name="quality_score", value=0.8, comment="auto")
        context.score_current_observation(name="is_short", value=1, data_type="BOOLEAN")
        return "report"

    generate_report("p")
    trace_id, obs_id = seen[0]
    get_client().score(trace_id=trace_id, name="user_rating", value=5, comment="great")
    get_client().score(trace_id=trace_id, name="label", value="good")
    assert client.flush(10)
    trace = reader.wait_trace(trace_id)
    scores = {s["name"]: s for s in trace["scores"]}
    assert scores["quality_score"]["value"] == 0.8 and scores["quality_score"]["comment"] == "auto"
    assert scores["is_short"]["dataType"] == "BOOLEAN"
    assert scores["is_short"]["observationId"] == obs_id
    assert scores["user_rating"]["value"] == 5 and scores["user_rating"]["comment"] == "great"
    assert scores["label"]["stringValue"] == "good"


def test_generation_fields_usage_cost_and_prompt_link(client, reader):
    class Prompt:  # what a prompt client object looks like to the SDK
        name = "research_agent_v1"
        version = 3

    seen: list[str] = []

    @observe(as_type="generation")
    def call_llm(prompt: str) -> str:
        seen.append(context.get_current_trace_id())
        context.update_current_observation(
            model="gpt-4o",
            model_parameters={"temperature": 0.7},
            usage_details={"input": 10, "output": 5},
            cost_details={"input": 0.001, "output": 0.002},
            prompt=Prompt(),
            completion_start_time=None,
        )
        return "answer"

    call_llm("hi")
    assert client.flush(10)
    trace = reader.wait_trace(seen[0])
    gen = trace["observations"][0]
    assert gen["type"] == "GENERATION" and gen["model"] == "gpt-4o"
    assert gen["modelParameters"] == {"temperature": 0.7}
    assert gen["usageDetails"]["input"] == 10 and gen["usageDetails"]["output"] == 5
    assert gen["costDetails"]["total"] == pytest.approx(0.003)
    assert gen["promptName"] == "research_agent_v1" and gen["promptVersion"] == 3
    assert trace["totalCost"] == pytest.approx(0.003)


def test_openai_shaped_usage_is_sent_as_usage_details(client, reader):
    seen: list[str] = []

    @observe(as_type="generation")
    def call():
        seen.append(context.get_current_trace_id())
        context.update_current_observation(
            model="gpt-4o",
            usage={
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "total_tokens": 120,
                "prompt_tokens_details": {"cached_tokens": 40},
            },
        )

    call()
    assert client.flush(10)
    usage = reader.wait_trace(seen[0])["observations"][0]["usageDetails"]
    # the server split the cached tokens out of input (it names the key, not us)
    cached = {k: v for k, v in usage.items() if "cache" in k}
    assert list(cached.values()) == [40]
    assert (usage["input"], usage["output"], usage["total"]) == (60, 20, 120)


def test_threads_and_tasks_keep_their_parents(client, reader):
    seen: list[str] = []

    @observe()
    def work(i: int) -> int:
        return i * 2

    @observe()
    async def task(i: int) -> int:
        for _ in range(3 - i):  # the tasks interleave and end in reverse order
            await asyncio.sleep(0)
        return work(i)

    @observe()
    def fan_out() -> list[int]:
        seen.append(context.get_current_trace_id())
        parent = context.get_current_observation_id()
        with ThreadPoolExecutor(4) as pool:
            # a copied context carries the current observation into the thread ...
            copied = [pool.submit(contextvars.copy_context().run, work, i) for i in range(3)]
            # ... and so do explicit ids (e.g. across a queue or a process boundary)
            explicit = [
                pool.submit(
                    work, 10 + i, lanterna_trace_id=seen[0], lanterna_parent_observation_id=parent
                )
                for i in range(2)
            ]
            results = [f.result() for f in copied + explicit]

        async def gather() -> list[int]:
            return list(await asyncio.gather(*(task(i) for i in range(3))))

        # asyncio.run copies the context too
        results += asyncio.run(gather())
        return results

    assert fan_out() == [0, 2, 4, 20, 22, 0, 2, 4]
    assert client.flush(10)
    trace = reader.wait_trace(seen[0], observations=12)
    root = by_name(trace)["fan_out"]
    tasks = [o for o in trace["observations"] if o["name"] == "task"]
    works = [o for o in trace["observations"] if o["name"] == "work"]
    assert len(tasks) == 3 and len(works) == 8
    assert all(t["parentObservationId"] == root["id"] for t in tasks)
    task_ids = {t["id"] for t in tasks}
    under_root = [w for w in works if w["parentObservationId"] == root["id"]]
    under_tasks = [w for w in works if w["parentObservationId"] in task_ids]
    assert len(under_root) == 5 and len(under_tasks) == 3
    assert {w["output"] for w in under_tasks} == {0, 2, 4}


def test_threads_started_without_context_make_their_own_traces(client, reader):
    ids: list[str] = []

    @observe()
    def job(i: int) -> int:
        ids.append(context.get_current_trace_id())
        return i

    threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.flush(10)
    assert len(set(ids)) == 4
    for trace_id in ids:
        assert reader.wait_trace(trace_id)["name"] == "job"


def test_client_api_trace_span_generation_event_score(client, reader):
    trace = client.trace(
        name="chat",
        user_id="u-9",
        session_id="sess-9",
        input={"q": "hi"},
        metadata={"a": 1},
        tags=["x"],
    )
    span = trace.span(name="retrieve", input="hi")
    gen = span.generation(
        name="llm",
        model="gpt-4o-mini",
        input=[{"role": "user", "content": "hi"}],
        prompt={"name": "p", "version": 1},
    )
    gen.end(output="hello", usage_details={"input": 3, "output": 1})
    span.event(name="cache-miss", metadata={"key": "k"})
    span.end(output=["doc"])
    trace.update(output={"a": "hello"}, metadata={"b": 2})
    trace.score(name="thumbs", value=1)
    gen.score(name="fluency", value=0.5)
    assert client.flush(10)

    stored = reader.wait_trace(trace.id, observations=3)
    assert stored["name"] == "chat" and stored["userId"] == "u-9"
    assert stored["sessionId"] == "sess-9" and stored["tags"] == ["x"]
    assert stored["metadata"] == {"a": 1, "b": 2}
    assert stored["output"] == {"a": "hello"}
    obs = by_name(stored)
    assert obs["retrieve"]["output"] == ["doc"] and obs["retrieve"]["endTime"] is not None
    assert obs["llm"]["parentObservationId"] == span.id
    assert obs["llm"]["output"] == "hello" and obs["llm"]["usageDetails"]["input"] == 3
    assert obs["llm"]["promptName"] == "p" and obs["llm"]["promptVersion"] == 1
    assert obs["cache-miss"]["type"] == "EVENT"
    assert {s["name"]: s["observationId"] for s in stored["scores"]} == {
        "thumbs": None,
        "fluency": gen.id,
    }


def test_span_without_trace_creates_one(client, reader):
    span = client.span(name="standalone")
    span.end()
    assert client.flush(10)
    stored = reader.wait_trace(span.trace_id)
    assert stored["name"] == "standalone"


def test_auth_check(client, live_server, make_client):
    assert client.auth_check() is True
    bad = make_client(public_key="pk-lf-nope", secret_key="sk-lf-nope", host=live_server.url)
    assert bad.auth_check() is False


def _langfuse_env(monkeypatch, live_server) -> None:
    """The live server's project in the LANGFUSE_ variables an app would set."""
    p = live_server.project
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", p.public_key)
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", p.secret_key)
    monkeypatch.setenv("LANGFUSE_HOST", live_server.url)


def test_langfuse_environment_variables_configure_the_client(
    live_server, reader, monkeypatch, make_client
):
    p = live_server.project
    _langfuse_env(monkeypatch, live_server)
    monkeypatch.setenv("LANTERNA_ENVIRONMENT", "staging")
    client = make_client()
    assert isinstance(client, Lanterna) and client.host == live_server.url
    trace = client.trace(name="from-env")
    assert client.flush(10)
    assert client.stats()["sent"] == 1
    stored = httpx.get(f"{live_server.url}/api/public/traces/{trace.id}", auth=p.auth).json()
    assert stored["environment"] == "staging"


def test_lanterna_variables_win_over_langfuse_ones(monkeypatch, make_client):
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-langfuse")
    monkeypatch.setenv("LANTERNA_PUBLIC_KEY", "pk-lanterna")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk")
    monkeypatch.setenv("LANGFUSE_HOST", "http://example.invalid:1/")
    client = make_client(enabled=False)
    assert client.public_key == "pk-lanterna"
    assert client.host == "http://example.invalid:1"


def test_unreadable_environment_values_are_logged_and_the_defaults_used(
    live_server, monkeypatch, make_client, caplog
):
    # A typo in the app's environment must not raise into the app's first traced call,
    # nor turn tracing off: each bad value is named in a warning and its default used.
    _langfuse_env(monkeypatch, live_server)
    bad = {
        "LANTERNA_FLUSH_AT": "abc",
        "LANTERNA_FLUSH_INTERVAL": "1s",
        "LANTERNA_MAX_QUEUE_SIZE": "1e5",
        "LANGFUSE_SAMPLE_RATE": "half",
        "LANTERNA_TIMEOUT": "",  # empty: not set
        "LANTERNA_EXIT_TIMEOUT": "two",
        "LANTERNA_MAX_RETRY_SECONDS": "1m",
        "LANTERNA_ENABLED": "flase",
        "LANTERNA_MEDIA_UPLOAD": "maybe",
    }
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="lanterna"):
        client = make_client()

        @observe()
        def job(x: int) -> int:
            return x + 1

        assert job(1) == 2
    assert client.sample_rate == 1.0 and client.timeout == 20.0
    assert client.flush(10)
    messages = "\n".join(r.getMessage() for r in caplog.records)
    for name, value in bad.items():
        if value:
            assert f"{name}={value!r}" in messages, name
    assert "LANTERNA_TIMEOUT" not in messages
    assert client.stats()["sent"] == 2


def test_the_servers_encryption_key_in_lanterna_secret_key_is_not_sent_as_the_api_secret(
    live_server, monkeypatch, make_client
):
    # A shell set up for `lanterna serve` may hold its encryption key in
    # LANTERNA_SECRET_KEY; the SDK does not take it for the API secret (which the
    # LANGFUSE_ variable then gives), so the app's traces still arrive.
    p = live_server.project
    _langfuse_env(monkeypatch, live_server)
    monkeypatch.setenv("LANTERNA_SECRET_KEY", "ab" * 32)
    client = make_client()
    assert client.secret_key == p.secret_key
    client.trace(name="keyed")
    assert client.flush(10) and client.stats()["sent"] == 1
    monkeypatch.setenv("LANTERNA_SECRET_KEY", p.secret_key)  # an API secret: taken
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-other")
    assert make_client(enabled=False).secret_key == p.secret_key
