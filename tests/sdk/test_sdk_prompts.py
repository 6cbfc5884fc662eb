"""Prompt management with our SDK against the real server (both backends): create, fetch
by label and version, compile, relabel; the cache (hits make no request, stale entries
are refreshed in the background), fallbacks when the server is down or fails, 404
eviction; generations linked to the prompt version, directly and through the OpenAI and
LangChain integrations, and counted by the per-version metrics.

Requests are counted by a small forwarding proxy between the client and the server,
which can also be told to answer with an error, to hold its answers, or to go away. The
proxied client runs on a virtual clock: cache entries go stale when the test says so.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from sdk_support import VirtualClock, by_name, free_port, wait_until
from test_sdk_openai import Provider

from lanterna import Lanterna, Prompt, PromptError, PromptNotFoundError, context, observe
from lanterna.prompts.compile import MissingVariablesError
from lanterna.sdk.integrations.langchain import CallbackHandler
from lanterna.sdk.integrations.openai import openai
from lanterna.sdk.prompts import PromptUnavailableError


class Proxy:
    """Forwards every request to the live server and counts the prompt fetches.

    ``status`` (when set) is answered instead of forwarding; ``gate`` (when set) holds
    each answer until the test sets that event (a slow server); ``close()`` stops
    listening, so connections are refused.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.fetches: list[str] = []
        #: every GET's path (A/B test fetches among them)
        self.gets: list[str] = []
        self.status: int | None = None
        self.gate: threading.Event | None = None
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.command == "GET":
                    with proxy.lock:
                        proxy.gets.append(self.path)
                if self.command == "GET" and self.path.startswith("/api/public/v2/prompts/"):
                    with proxy.lock:
                        proxy.fetches.append(self.path)
                gate = proxy.gate
                if gate is not None:
                    assert gate.wait(30), "the test never opened the gate"
                if proxy.status is not None:
                    status, body = proxy.status, json.dumps({"message": "scripted"}).encode()
                else:
                    headers = {"authorization": self.headers["authorization"]}
                    if raw:
                        headers["content-type"] = "application/json"
                    answer = httpx.request(
                        self.command, proxy.target + self.path, content=raw, headers=headers
                    )
                    status, body = answer.status_code, answer.content
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.open = True

    def count(self) -> int:
        with self.lock:
            return len(self.fetches)

    def close(self) -> None:
        if self.open:
            self.open = False
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def proxy(live_server: Any) -> Iterator[Proxy]:
    p = Proxy(live_server.url)
    yield p
    p.close()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def proxied(
    live_server: Any, proxy: Proxy, make_client: Callable[..., Lanterna], clock: VirtualClock
) -> Lanterna:
    """A client that reaches the live server through the proxy, on the virtual ``clock``."""
    p = live_server.project
    return make_client(
        public_key=p.public_key,
        secret_key=p.secret_key,
        host=proxy.url,
        flush_interval=0.05,
        clock=clock,
    )


@pytest.fixture
def server_api(live_server: Any) -> Iterator[httpx.Client]:
    """The server's API directly: changes made behind the SDK's back."""
    with httpx.Client(base_url=live_server.url, auth=live_server.project.auth) as http:
        yield http


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "lanterna" and r.levelno == logging.WARNING and text in r.getMessage()
    ]


# --- create, fetch, compile, relabel ----------------------------------------------------


def test_create_fetch_by_label_and_version_and_compile(client: Lanterna) -> None:
    v1 = client.create_prompt(
        name="research_agent_v1",
        prompt="You are a research agent. Topic: {{topic}}",
        config={"model": "gpt-4", "temperature": 0.7},
        labels=["production"],
        tags=["agents"],
        commit_message="first",
    )
    assert (v1.version, v1.type, v1.labels, v1.is_fallback) == (
        1,
        "text",
        ["production", "latest"],
        False,
    )
    assert v1.commit_message == "first" and v1.tags == ["agents"] and v1.id
    v2 = client.create_prompt(name="research_agent_v1", prompt="Be concise about {{ topic }}.")
    assert (v2.version, v2.labels, v2.config) == (2, ["latest"], {})

    production = client.get_prompt("research_agent_v1")
    assert (production.version, production.name) == (1, "research_agent_v1")
    assert production.config == {"model": "gpt-4", "temperature": 0.7}
    assert production.prompt == "You are a research agent. Topic: {{topic}}"
    assert production.compile(topic="whales") == "You are a research agent. Topic: whales"
    assert production.compile() == "You are a research agent. Topic: {{topic}}"
    assert production.variables == ["topic"]
    with pytest.raises(MissingVariablesError, match="topic"):
        production.compile(strict=True)
    assert client.get_prompt("research_agent_v1", label="latest").version == 2
    assert client.get_prompt("research_agent_v1", version=2).compile(topic="owls") == (
        "Be concise about owls."
    )
    assert client.get_prompt("research_agent_v1", 1) == production  # version positionally
    with pytest.raises(ValueError, match="either version or label"):
        client.get_prompt("research_agent_v1", version=1, label="latest")


def test_chat_prompt_in_a_folder_with_placeholders(client: Lanterna) -> None:
    created = client.create_prompt(
        name="support/triage",
        type="chat",
        prompt=[
            {"role": "system", "content": "You triage for {{team}}."},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{question}}"},
        ],
        labels=["production"],
    )
    assert created.type == "chat" and created.version == 1
    chat = client.get_prompt("support/triage", type="chat")
    assert chat.prompt == [
        {"role": "system", "content": "You triage for {{team}}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{question}}"},
    ]
    assert chat.variables == ["team", "question"]
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert chat.compile(team="ops", question="why?", history=history) == [
        {"role": "system", "content": "You triage for ops."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "why?"},
    ]
    # Unfilled placeholders stay in place; strict mode names everything missing.
    assert chat.compile(team="ops", question="q")[1] == {"type": "placeholder", "name": "history"}
    with pytest.raises(MissingVariablesError) as missing:
        chat.compile(strict=True, team="ops")
    assert missing.value.names == ["history", "question"]
    # Variables whose names are not identifiers come as a mapping.
    assert chat.compile({"team": "sre", "question": "x", "history": []})[0]["content"] == (
        "You triage for sre."
    )
    # In LangChain's syntax, for ChatPromptTemplate.from_messages.
    assert chat.get_langchain_prompt() == [
        ("system", "You triage for {team}."),
        ("placeholder", "{history}"),
        ("user", "{question}"),
    ]


def test_update_labels_moves_them_and_refreshes_the_cache(client: Lanterna) -> None:
    client.create_prompt(name="qa", prompt="v1", labels=["production"])
    client.create_prompt(name="qa", prompt="v2")
    assert client.get_prompt("qa").version == 1  # now cached for 60 s
    updated = client.update_prompt_labels("qa", 2, ["production", "staging"])
    assert updated.version == 2 and set(updated.labels) == {"production", "staging", "latest"}
    # The client dropped what it had cached for the name: no 60 s of the old version.
    assert client.get_prompt("qa").version == 2
    assert client.get_prompt("qa", version=1).labels == []
    with pytest.raises(PromptError, match="reserved") as refused:
        client.update_prompt(name="qa", version=1, new_labels=["latest"])
    assert refused.value.status == 400
    with pytest.raises(PromptNotFoundError):
        client.update_prompt_labels("qa", 9, ["staging"])
    with pytest.raises(PromptError, match="cannot be chat"):
        client.create_prompt(name="qa", prompt=[{"role": "user", "content": "x"}])


# --- the cache --------------------------------------------------------------------------


def test_cache_hit_is_served_with_no_request(proxied: Lanterna, proxy: Proxy) -> None:
    proxied.create_prompt(name="cached", prompt="hello {{name}}", labels=["production"])
    first = proxied.get_prompt("cached")
    assert proxy.count() == 1
    for _ in range(20):
        assert proxied.get_prompt("cached") is first
    assert proxy.count() == 1
    # Each (name, version|label) is its own entry.
    assert proxied.get_prompt("cached", version=1).version == 1
    assert proxied.get_prompt("cached", label="latest").version == 1
    assert proxy.count() == 3
    # A TTL of 0 turns the cache off for that call.
    proxied.get_prompt("cached", cache_ttl_seconds=0)
    proxied.get_prompt("cached", cache_ttl_seconds=0)
    assert proxy.count() == 5
    proxied.clear_prompt_cache()
    proxied.get_prompt("cached")
    assert proxy.count() == 6


def test_stale_entry_is_served_at_once_and_refreshed_in_the_background(
    proxied: Lanterna, proxy: Proxy, server_api: httpx.Client, clock: VirtualClock
) -> None:
    proxied.create_prompt(name="swr", prompt="old", labels=["production"])
    assert proxied.get_prompt("swr", cache_ttl_seconds=1).prompt == "old"
    # A new production version, made behind this client's back.
    made = server_api.post(
        "/api/public/v2/prompts", json={"name": "swr", "prompt": "new", "labels": ["production"]}
    )
    assert made.status_code == 200, made.text
    clock.advance(1.05)  # the entry is now stale
    slow = proxy.gate = threading.Event()  # and the server answers only when told

    results: list[str] = []

    def caller() -> None:
        results.append(proxied.get_prompt("swr", cache_ttl_seconds=1).prompt)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        # Every caller got the cached version while the server still held the refresh.
        assert not any(t.is_alive() for t in threads)
        assert results == ["old"] * 8
        wait_until(lambda: proxy.count() == 2, what="the refresh")
    finally:
        proxy.gate = None
        slow.set()
    # One refresh is in flight for the key, however many callers saw the stale entry.
    wait_until(lambda: proxied.get_prompt("swr", cache_ttl_seconds=1).prompt == "new")
    assert proxy.count() == 2
    assert proxied.get_prompt("swr", cache_ttl_seconds=1).version == 2
    assert proxy.count() == 2


# --- when the server is down, failing, or has no such prompt ------------------------------


def test_server_down_uses_the_fallback_and_warns_once(
    make_client: Callable[..., Lanterna], caplog: pytest.LogCaptureFixture, clock: VirtualClock
) -> None:
    down = make_client(
        public_key="pk", secret_key="sk", host=f"http://127.0.0.1:{free_port()}", clock=clock
    )
    caplog.set_level(logging.WARNING, logger="lanterna")
    waits: list[int] = []
    for _ in range(5):
        prompt = down.get_prompt("research_agent_v1", fallback="Fallback about {{topic}}")
        assert prompt.is_fallback and prompt.version == 0 and prompt.type == "text"
        assert prompt.compile(topic="x") == "Fallback about x"
        waits.append(clock.waits)
    assert waits[0] >= 1 and set(waits) == {waits[0]}  # one fetch retried, then no waiting
    assert len(warnings_about(caplog, "research_agent_v1")) == 1
    assert "using the fallback" in warnings_about(caplog, "research_agent_v1")[0]

    # A callable fallback is called when needed; a list makes a chat fallback.
    calls: list[int] = []

    def load() -> list[dict[str, str]]:
        calls.append(1)
        return [{"role": "system", "content": "Offline {{mode}}"}]

    chat = down.get_prompt("triage", type="chat", label="staging", fallback=load)
    assert chat.is_fallback and chat.type == "chat" and chat.labels == ["staging"]
    assert chat.compile(mode="on") == [{"role": "system", "content": "Offline on"}]
    assert calls == [1]
    # Without a fallback the caller learns why.
    with pytest.raises(PromptUnavailableError, match="unreachable"):
        down.get_prompt("no-fallback", max_retries=0)


def _refreshes_done() -> bool:
    return not any(t.name == "lanterna-prompt-refresh" for t in threading.enumerate())


def test_server_down_keeps_serving_the_cached_version(
    proxied: Lanterna, proxy: Proxy, caplog: pytest.LogCaptureFixture, clock: VirtualClock
) -> None:
    proxied.create_prompt(name="kept", prompt="cached text", labels=["production"])
    assert proxied.get_prompt("kept", cache_ttl_seconds=0.2).version == 1
    proxy.close()
    caplog.set_level(logging.WARNING, logger="lanterna")
    clock.advance(0.25)
    for _ in range(3):
        got = proxied.get_prompt("kept", cache_ttl_seconds=0.2, fallback="unused")
        assert (got.prompt, got.is_fallback) == ("cached text", False)
    wait_until(lambda: bool(warnings_about(caplog, "serving the cached version")))
    wait_until(_refreshes_done, what="the end of the refresh")
    clock.advance(0.3)  # stale again: another refresh, which fails as well
    assert proxied.get_prompt("kept", cache_ttl_seconds=0.2).prompt == "cached text"
    wait_until(_refreshes_done, what="the end of the refresh")
    assert len(warnings_about(caplog, "'kept'")) == 1


def test_5xx_answers_use_the_fallback_after_retries(
    proxied: Lanterna, proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    proxied.create_prompt(name="flaky", prompt="real", labels=["production"])
    proxy.status = 502
    caplog.set_level(logging.WARNING, logger="lanterna")
    got = proxied.get_prompt("flaky", fallback="spare", max_retries=1)
    assert (got.prompt, got.is_fallback) == ("spare", True)
    assert proxy.count() == 2  # the first try and one retry
    assert "HTTP 502" in warnings_about(caplog, "'flaky'")[0]
    with pytest.raises(PromptUnavailableError) as failed:
        proxied.get_prompt("flaky", label="latest", max_retries=0)
    assert failed.value.status == 502
    # Once the server answers again, the real prompt comes back.
    proxy.status = None
    proxied.clear_prompt_cache()
    assert proxied.get_prompt("flaky", fallback="spare").prompt == "real"


def test_404_evicts_the_entry_and_raises_unless_there_is_a_fallback(
    proxied: Lanterna, proxy: Proxy, server_api: httpx.Client, clock: VirtualClock
) -> None:
    with pytest.raises(PromptNotFoundError, match="production") as missing:
        proxied.get_prompt("never-made")
    assert "label='latest'" in str(missing.value)  # says what to do
    assert proxied.get_prompt("never-made", fallback="spare").is_fallback

    proxied.create_prompt(name="doomed", prompt="here", labels=["production"])
    assert proxied.get_prompt("doomed", cache_ttl_seconds=0.2).prompt == "here"
    assert server_api.delete("/api/public/v2/prompts/doomed").status_code == 204
    clock.advance(0.25)
    # The stale entry is still served once; its refresh gets the 404 and evicts it.
    before = proxy.count()
    assert proxied.get_prompt("doomed", cache_ttl_seconds=0.2).prompt == "here"
    wait_until(lambda: proxy.count() == before + 1)

    def evicted() -> bool:
        try:
            proxied.get_prompt("doomed", cache_ttl_seconds=0.2)
        except PromptNotFoundError:
            return True
        return False

    wait_until(evicted)
    fallback = proxied.get_prompt("doomed", fallback="gone {{x}}")
    assert fallback.is_fallback and fallback.compile(x=1) == "gone 1"


# --- generations record the prompt ------------------------------------------------------


def test_generations_link_to_the_prompt_version_and_metrics_count_them(
    client: Lanterna, reader: Any, server_api: httpx.Client
) -> None:
    client.create_prompt(name="linked", prompt="v1 {{q}}", labels=["production"])
    client.create_prompt(name="linked", prompt="v2 {{q}}")
    v1 = client.get_prompt("linked")
    v2 = client.get_prompt("linked", version=2)
    fallback = client.get_prompt("absent", fallback="offline {{q}}")

    @observe(as_type="generation", prompt=v1)
    def decorated(q: str) -> str:
        return "a1"

    @observe(as_type="generation")
    def updated(q: str) -> str:
        context.update_current_observation(prompt=v2, model="gpt-4o", input=v2.compile(q=q))
        return "a2"

    @observe(as_type="generation")
    def offline(q: str) -> str:
        context.update_current_observation(prompt=fallback)
        return "a3"

    @observe(name="run")
    def run() -> str | None:
        decorated("x")
        updated("y")
        offline("z")
        with observe(name="block", as_type="generation", prompt=v2) as block:
            block.update(output="a4")
        return context.get_current_trace_id()

    trace_id = run()
    low = client.trace(name="low-level")
    low.generation(name="explicit", prompt=v1, input=v1.compile(q="w")).end(output="a5")
    assert client.flush(10)

    trace = reader.wait_trace(trace_id, observations=5)
    obs = by_name(trace)
    for name, prompt in (("decorated", v1), ("updated", v2), ("block", v2)):
        gen = obs[name]
        assert (gen["promptName"], gen["promptVersion"], gen["promptId"]) == (
            "linked",
            prompt.version,
            prompt.id,
        ), name
    assert obs["offline"]["promptName"] is None and obs["offline"]["promptId"] is None
    explicit = reader.wait_trace(low.id)["observations"][0]
    assert (explicit["promptName"], explicit["promptVersion"]) == ("linked", 1)

    metrics = server_api.get("/api/public/prompts/metrics", params={"name": "linked"}).json()
    assert [(m["version"], m["generations"]) for m in metrics["data"]] == [(1, 2), (2, 2)]


def test_openai_wrapper_links_the_prompt(client: Lanterna, reader: Any) -> None:
    provider = Provider()
    try:
        client.create_prompt(name="oai", prompt="Say {{what}}", labels=["production"])
        prompt = client.get_prompt("oai")
        oai = openai.OpenAI(api_key="sk-test", base_url=provider.url, max_retries=0)

        @observe()
        def ask() -> str | None:
            for kwarg in ("lanterna_prompt", "langfuse_prompt"):
                oai.chat.completions.create(
                    model="gpt-4o",
                    messages=[{"role": "user", "content": prompt.compile(what="hi")}],
                    name=kwarg,
                    **{kwarg: prompt},
                )
            return context.get_current_trace_id()

        trace_id = ask()
        assert client.flush(10)
    finally:
        provider.server.shutdown()
        provider.server.server_close()
    # Our keyword arguments never reach OpenAI.
    assert all("lanterna_prompt" not in r and "langfuse_prompt" not in r for r in provider.requests)
    obs = by_name(reader.wait_trace(trace_id, observations=3))
    for name in ("lanterna_prompt", "langfuse_prompt"):
        assert (obs[name]["promptName"], obs[name]["promptVersion"]) == ("oai", 1)
        assert obs[name]["promptId"] == prompt.id


def fake_llm(n: int = 2) -> GenericFakeChatModel:
    reply = AIMessage(content="Paris", response_metadata={"model_name": "gpt-4o"})
    return GenericFakeChatModel(messages=iter([reply] * n))


def test_langchain_links_the_prompt_in_the_template_metadata(client: Lanterna, reader: Any) -> None:
    client.create_prompt(
        name="lc",
        type="chat",
        prompt=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{q}}"}],
        labels=["production"],
    )
    prompt = client.get_prompt("lc", type="chat")
    template = ChatPromptTemplate.from_messages(prompt.get_langchain_prompt())
    template.metadata = {"langfuse_prompt": prompt, "team": "geo"}  # as with Langfuse
    handler = CallbackHandler()
    chain = template | fake_llm() | StrOutputParser()
    assert chain.invoke({"q": "Capital?"}, config={"callbacks": [handler], "run_name": "qa"})
    plain = ChatPromptTemplate.from_messages([("user", "{q}")]) | fake_llm() | StrOutputParser()
    plain.invoke({"q": "x"}, config={"callbacks": [handler], "run_name": "unlinked"})
    assert handler.flush(10)

    trace = reader.wait_trace(handler.get_trace_id(), observations=4)
    assert trace["name"] == "unlinked"
    gen = next(o for o in trace["observations"] if o["type"] == "GENERATION")
    assert gen["promptName"] is None

    traces = reader.http.get("/api/public/traces", params={"name": "qa"}).json()["data"]
    linked = reader.wait_trace(traces[0]["id"], observations=4)
    gen = next(o for o in linked["observations"] if o["type"] == "GENERATION")
    assert (gen["promptName"], gen["promptVersion"], gen["promptId"]) == ("lc", 1, prompt.id)
    assert gen["input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital?"},
    ]
    # The prompt object itself is not copied into the recorded metadata.
    template_run = by_name(linked)["ChatPromptTemplate"]
    assert template_run["metadata"] == {"team": "geo"}


def test_a_fallback_prompt_links_nothing(lanterna_capture: Any) -> None:
    fallback = Prompt(name="p", version=0, type="text", prompt="x", is_fallback=True)
    real = Prompt(name="p", version=3, type="text", prompt="x")

    with observe(name="g1", as_type="generation", prompt=fallback):
        pass
    with observe(name="g2", as_type="generation", prompt=real):
        pass
    g1, g2 = lanterna_capture.observations()
    assert "promptName" not in g1 and "promptVersion" not in g1
    assert (g2["promptName"], g2["promptVersion"]) == ("p", 3)
