"""Built-in prices: our cost equals what genai-prices computes for the same usage.

Each case sends a real model name with usage in the shape its SDK reports, and states
the same usage in genai-prices' terms (``input_tokens`` is *all* input, the cache and
reasoning counts are parts of it). Cached and reasoning tokens must be priced once:
neither double counted nor dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from cost_helpers import generation, observation
from genai_prices import Usage, calc_price

from helpers import T0, event, ingest
from lanterna.cost.calculate import Pricing
from lanterna.ingest.langfuse_events import observation_fields


@dataclass(frozen=True)
class Case:
    name: str  # observation id
    model: str  # the model name the client sends
    body: dict[str, Any]  # usage as the client sends it
    model_id: str  # the built-in model it must resolve to
    usage: dict[str, int]  # the same usage in genai-prices' terms
    ref: tuple[str, str | None] = ("", None)  # (model_ref, provider_id) for genai-prices
    tier: str = "Standard"
    expect: dict[str, int] = field(default_factory=dict)  # usage details we must store


def chat(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}  # fmt: skip
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return {"usageDetails": usage}


CASES = [
    # --- OpenAI ---
    Case("gpt-4o-cached", "gpt-4o", chat(1200, 300, cached=1000), "builtin:openai:gpt-4o",
         {"input_tokens": 1200, "cache_read_tokens": 1000, "output_tokens": 300},
         expect={"input": 200, "input_cached_tokens": 1000, "output": 300, "total": 1500}),
    Case("gpt-4o-dated", "gpt-4o-2024-08-06", chat(100, 20), "builtin:openai:gpt-4o",
         {"input_tokens": 100, "output_tokens": 20}),
    Case("gpt-4o-mini-legacy", "gpt-4o-mini", {"usage": {"input": 500, "output": 60}},
         "builtin:openai:gpt-4o-mini", {"input_tokens": 500, "output_tokens": 60}),
    Case("gpt-4o-mini-litellm", "openai/gpt-4o-mini", chat(80, 8),
         "builtin:openai:gpt-4o-mini", {"input_tokens": 80, "output_tokens": 8},
         ref=("gpt-4o-mini", "openai")),
    Case("o1-reasoning", "o1", chat(100, 500, reasoning=400), "builtin:openai:o1",
         {"input_tokens": 100, "output_tokens": 500, "output_reasoning_tokens": 400},
         expect={"input": 100, "output": 100, "output_reasoning_tokens": 400, "total": 600}),
    Case("o3-mini-responses", "o3-mini-2025-01-31",
         {"usageDetails": {"input_tokens": 300, "output_tokens": 900, "total_tokens": 1200,
                           "input_tokens_details": {"cached_tokens": 100},
                           "output_tokens_details": {"reasoning_tokens": 700}}},
         "builtin:openai:o3-mini",
         {"input_tokens": 300, "cache_read_tokens": 100, "output_tokens": 900,
          "output_reasoning_tokens": 700}),
    Case("gpt-4.1", "gpt-4.1", chat(5000, 1000, cached=4000), "builtin:openai:gpt-4.1",
         {"input_tokens": 5000, "cache_read_tokens": 4000, "output_tokens": 1000}),
    Case("gpt-3.5", "gpt-3.5-turbo-0125", chat(700, 70), "builtin:openai:gpt-3.5-turbo",
         {"input_tokens": 700, "output_tokens": 70}),
    # --- Anthropic: input_tokens excludes the cache, which is reported beside it ---
    Case("claude-cache", "claude-3-5-sonnet-20241022",
         {"usageDetails": {"input_tokens": 50, "output_tokens": 200,
                           "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 300}},
         "builtin:anthropic:claude-3-5-sonnet",
         {"input_tokens": 1350, "cache_read_tokens": 1000, "cache_write_tokens": 300,
          "output_tokens": 200},
         expect={"input": 50, "input_cached_tokens": 1000, "input_cache_creation": 300,
                 "output": 200, "total": 1550}),
    Case("claude-alias", "claude-3-5-sonnet-latest", {"usage": {"input": 10, "output": 5}},
         "builtin:anthropic:claude-3-5-sonnet", {"input_tokens": 10, "output_tokens": 5}),
    Case("claude-1h-cache", "claude-sonnet-4-20250514",
         {"usageDetails": {"input": 100, "output": 50, "input_cache_creation_1h": 2000}},
         "builtin:anthropic:claude-sonnet-4-0",
         {"input_tokens": 2100, "cache_write_tokens": 2000, "cache_write_1h_tokens": 2000,
          "output_tokens": 50}),
    Case("claude-haiku", "claude-3-haiku-20240307", chat(4000, 400),
         "builtin:anthropic:claude-3-haiku", {"input_tokens": 4000, "output_tokens": 400}),
    # --- Google: promptTokenCount includes the cache; thoughts are beside candidates ---
    Case("gemini-long", "gemini-2.5-pro",
         {"usageDetails": {"promptTokenCount": 250000, "cachedContentTokenCount": 50000,
                           "candidatesTokenCount": 2000, "thoughtsTokenCount": 3000,
                           "totalTokenCount": 255000}},
         "builtin:google:gemini-2.5-pro",
         {"input_tokens": 250000, "cache_read_tokens": 50000, "output_tokens": 5000,
          "output_reasoning_tokens": 3000},
         tier="Input over 200,000 tokens",
         expect={"input": 200000, "input_cached_tokens": 50000, "output": 2000,
                 "output_reasoning_tokens": 3000, "total": 255000}),
    Case("gemini-short", "gemini-2.5-pro",
         {"usageDetails": {"promptTokenCount": 1000, "candidatesTokenCount": 100}},
         "builtin:google:gemini-2.5-pro", {"input_tokens": 1000, "output_tokens": 100}),
    Case("gemini-1.5-tier", "models/gemini-1.5-pro-002",
         {"usageDetails": {"prompt_token_count": 150000, "candidates_token_count": 1000}},
         "builtin:google:gemini-1.5-pro", {"input_tokens": 150000, "output_tokens": 1000},
         tier="Input over 128,000 tokens"),
    Case("gemini-flash", "gemini-2.0-flash", chat(9000, 900, cached=3000),
         "builtin:google:gemini-2.0-flash",
         {"input_tokens": 9000, "cache_read_tokens": 3000, "output_tokens": 900}),
    # --- Mistral ---
    Case("mistral-large", "mistral-large-latest", chat(2000, 500),
         "builtin:mistral:mistral-large", {"input_tokens": 2000, "output_tokens": 500}),
    Case("codestral", "codestral-latest", chat(1500, 300), "builtin:mistral:codestral",
         {"input_tokens": 1500, "output_tokens": 300}),
    Case("mistral-small", "mistral-small-latest", chat(1000, 100),
         "builtin:mistral:mistral-small-latest", {"input_tokens": 1000, "output_tokens": 100}),
    # --- Meta (served by hosts: genai-prices needs the provider) ---
    Case("llama-groq", "llama-3.3-70b-versatile", chat(3000, 600),
         "builtin:groq:llama-3.3-70b-versatile", {"input_tokens": 3000, "output_tokens": 600},
         ref=("llama-3.3-70b-versatile", "groq")),
    Case("llama-bedrock", "meta.llama3-1-70b-instruct-v1:0", chat(1200, 240),
         "builtin:aws:meta.llama3-1-70b-instruct-v1:0",
         {"input_tokens": 1200, "output_tokens": 240},
         ref=("meta.llama3-1-70b-instruct-v1:0", "aws")),
    Case("llama-groq-prefixed", "groq/llama-3.1-8b-instant", chat(400, 40),
         "builtin:groq:llama-3.1-8b-instant", {"input_tokens": 400, "output_tokens": 40},
         ref=("llama-3.1-8b-instant", "groq")),
    # --- DeepSeek: off-peak prices depend on the time of day (10:00 UTC here) ---
    Case("deepseek", "deepseek-chat", chat(10000, 1000, cached=6000),
         "builtin:deepseek:deepseek-chat",
         {"input_tokens": 10000, "cache_read_tokens": 6000, "output_tokens": 1000}),
]  # fmt: skip


def oracle(case: Case) -> Decimal:
    """What genai-prices itself charges for this usage."""
    ref, provider = case.ref
    result = calc_price(
        Usage(**case.usage),
        ref or case.model,
        provider_id=provider,
        genai_request_timestamp=T0,
    )
    return result.total_price


def test_the_table_covers_every_provider_family():
    families = {c.model_id.split(":")[1] for c in CASES}
    assert {"openai", "anthropic", "google", "mistral", "groq", "aws"} <= families
    assert len({c.model for c in CASES}) >= 15


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_calculated_cost_is_exactly_genai_prices(case: Case):
    """Decimal-exact: ingestion's parsing, then our calculation, against genai-prices."""
    record = observation_fields({"model": case.model, **case.body}, generation=True)
    record["start_time"] = T0
    calc = Pricing(list).calculate(record)
    assert calc.model is not None and calc.model.id == case.model_id
    assert calc.info["source"] == "calculated"
    assert calc.info["tier"] == case.tier
    assert calc.total == oracle(case)
    # Per-key costs add up to the total: no key priced twice, none left out.
    assert sum(calc.cost.values()) == calc.total


def test_every_case_through_the_api(api):
    """The same table ingested as one batch and read back through the public API."""
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        *(event("generation-create", generation(c.name, c.model, **c.body)) for c in CASES),
    )
    for case in CASES:
        obs = observation(api, case.name)
        assert obs["modelId"] == case.model_id, case.name
        info = obs["costInfo"]
        assert (info["source"], info["tier"], info["usage"]) == (
            "calculated",
            case.tier,
            "provided",
        )
        assert obs["calculatedTotalCost"] == pytest.approx(float(oracle(case)), rel=1e-12)
        assert obs["costDetails"]["total"] == obs["calculatedTotalCost"]
        # Every input and output token is counted once in the read API's sums.
        assert obs["usage"]["input"] == case.usage["input_tokens"], case.name
        assert obs["usage"]["output"] == case.usage["output_tokens"], case.name
        if case.expect:
            assert obs["usageDetails"] == case.expect


def test_cached_tokens_are_priced_at_the_cache_rate_once(api):
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation("g", "gpt-4o", **chat(1200, 300, cached=1000))),
    )
    obs = observation(api, "g")
    # gpt-4o: $2.50 / M input, $1.25 / M cached input, $10 / M output.
    expected = {"input": 200 * 2.5e-6, "input_cached_tokens": 1000 * 1.25e-6, "output": 300 * 1e-5}
    assert obs["costDetails"] == pytest.approx({**expected, "total": sum(expected.values())})
    assert (obs["inputPrice"], obs["outputPrice"]) == (2.5e-6, 1e-5)
    assert obs["costInfo"]["prices"]["input_cached_tokens"] == "0.00000125"


def test_reasoning_tokens_are_output_tokens_priced_once(api):
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation("g", "o1", **chat(100, 500, reasoning=400))),
    )
    obs = observation(api, "g")
    # o1: $15 / M input, $60 / M output; the 400 reasoning tokens are among the 500.
    assert obs["costDetails"]["total"] == pytest.approx(100 * 15e-6 + 500 * 60e-6)
    assert obs["usage"] == {**obs["usage"], "input": 100, "output": 500, "total": 600}


def test_long_context_uses_the_upper_tier_and_short_the_standard(api):
    def gemini(prompt: int) -> dict[str, Any]:
        return {"usageDetails": {"promptTokenCount": prompt, "candidatesTokenCount": 1000}}

    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation("long", "gemini-2.5-pro", **gemini(200_001))),
        event("generation-create", generation("edge", "gemini-2.5-pro", **gemini(200_000))),
    )
    long, edge = observation(api, "long"), observation(api, "edge")
    # Above 200k input tokens every token costs the upper rate ($2.50 in, $15 out / M).
    assert long["costInfo"]["tier"] == "Input over 200,000 tokens"
    assert long["costDetails"]["total"] == pytest.approx(200_001 * 2.5e-6 + 1000 * 15e-6)
    assert long["inputPrice"] == 2.5e-6
    v2 = api.get("/api/public/v2/observations", params={"fields": "core,usage,model"}).json()
    tiers = {o["id"]: o["usagePricingTierName"] for o in v2["data"]}
    assert tiers == {"long": "Input over 200,000 tokens", "edge": "Standard"}
    prices = {o["id"]: o["inputPrice"] for o in v2["data"]}
    assert prices == {"long": "0.0000025", "edge": "0.00000125"}
    assert edge["costDetails"]["total"] == pytest.approx(200_000 * 1.25e-6 + 1000 * 10e-6)


def test_an_unknown_model_keeps_its_usage_and_says_no_price_matched(api):
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation("g", "acme-inhouse-llm-7", **chat(100, 10))),
    )
    obs = observation(api, "g")
    assert obs["usageDetails"] == {"input": 100, "output": 10, "total": 110}
    assert obs["costDetails"] == {} and obs["calculatedTotalCost"] is None
    assert obs["modelId"] is None
    assert obs["costInfo"] == {
        "usage": "provided",
        "source": "none",
        "reason": "no price matched model 'acme-inhouse-llm-7'",
    }
    matched = api.get("/api/public/models", params={"match": "acme-inhouse-llm-7"}).json()
    assert matched["data"] == [] and matched["meta"]["totalItems"] == 0
    assert matched["message"] == "no price matched model 'acme-inhouse-llm-7'"
    trace = api.get("/api/public/traces/t").json()
    assert trace["totalCost"] == 0


def test_a_provided_cost_wins_over_the_price(api):
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation(
            "g", "gpt-4o", **chat(1000, 100), costDetails={"input": 1.5, "output": 0.5})),
    )  # fmt: skip
    obs = observation(api, "g")
    assert obs["costDetails"] == {"input": 1.5, "output": 0.5, "total": 2.0}
    assert obs["costInfo"]["source"] == "provided"
    assert obs["modelId"] == "builtin:openai:gpt-4o"  # the matched model is still shown
