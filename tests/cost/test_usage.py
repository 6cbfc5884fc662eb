"""Usage shapes of every SDK become one vocabulary of disjoint parts."""

from __future__ import annotations

import pytest
from cost_helpers import generation, observation

from helpers import event, ingest
from lanterna.cost.usage import canonical_key, canonical_usage, split_totals
from lanterna.ingest.usage import normalize_usage_details


def test_openai_chat_usage_passes_through():
    # What ingestion makes of an OpenAI Chat Completions usage object.
    provided = normalize_usage_details(
        {
            "prompt_tokens": 1200,
            "completion_tokens": 600,
            "total_tokens": 1800,
            "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 50},
            "completion_tokens_details": {"reasoning_tokens": 400, "audio_tokens": 10},
        }
    )
    assert canonical_usage(provided) == {
        "input": 150,
        "input_cached_tokens": 1000,
        "input_audio_tokens": 50,
        "output": 190,
        "output_reasoning_tokens": 400,
        "output_audio_tokens": 10,
        "total": 1800,
    }


def test_anthropic_usage_keeps_cache_tokens_beside_input():
    usage = canonical_usage(
        {
            "input_tokens": 20,
            "output_tokens": 300,
            "cache_read_input_tokens": 5000,
            "cache_creation_input_tokens": 700,
            "total": 6020,  # ingestion adds the sum when none is sent
        }
    )
    assert usage == {
        "input": 20,
        "output": 300,
        "input_cached_tokens": 5000,
        "input_cache_creation": 700,
        "total": 6020,
    }
    assert split_totals(usage) == (5720, 300, 6020)


@pytest.mark.parametrize(
    "metadata",
    [
        {"promptTokenCount": 1000, "cachedContentTokenCount": 600, "candidatesTokenCount": 80,
         "thoughtsTokenCount": 120, "toolUsePromptTokenCount": 30},
        {"prompt_token_count": 1000, "cached_content_token_count": 600,
         "candidates_token_count": 80, "thoughts_token_count": 120,
         "tool_use_prompt_token_count": 30},
    ],
    ids=["camelCase", "snake_case"],
)  # fmt: skip
def test_gemini_prompt_count_includes_the_cache(metadata):
    # Ingestion fills the missing total with the sum of every value (cache counted
    # twice); the vocabulary recomputes it from the disjoint parts.
    provided = normalize_usage_details(metadata)
    assert provided is not None and provided["total"] == 1830
    assert canonical_usage(provided) == {
        "input": 400,
        "input_cached_tokens": 600,
        "input_tool_use": 30,
        "output": 80,
        "output_reasoning_tokens": 120,
        "total": 1230,
    }


def test_a_total_that_was_sent_is_kept():
    assert canonical_usage({"promptTokenCount": 10, "candidatesTokenCount": 5,
                            "totalTokenCount": 99})["total"] == 99  # fmt: skip
    assert canonical_usage({"input": 10, "output": 5, "total": 16})["total"] == 16


def test_one_part_reported_under_two_names_counts_once():
    usage = canonical_usage({"input": 100, "input_tokens": 100, "output": 7, "total": 207})
    assert usage == {"input": 100, "output": 7, "total": 107}


def test_unknown_keys_are_kept_not_dropped():
    usage = canonical_usage({"input": 10, "output": 2, "input_modality_1": 3, "total": 15})
    assert usage == {"input": 10, "output": 2, "input_modality_1": 3, "total": 15}


def test_price_key_aliases_name_the_same_parts():
    assert canonical_key("cache_read_input_tokens") == "input_cached_tokens"
    assert canonical_key("input_cache_read") == "input_cached_tokens"
    assert canonical_key("cache_creation_input_tokens") == "input_cache_creation"
    assert canonical_key("reasoning_tokens") == "output_reasoning_tokens"
    assert canonical_key("my_custom_unit") == "my_custom_unit"


def test_provided_usage_is_kept_as_sent_beside_the_normalised_one(api):
    anthropic = {"input_tokens": 20, "output_tokens": 300, "cache_read_input_tokens": 5000}
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation("g", "claude-3-5-haiku-20241022",
                                              usageDetails=anthropic)),
    )  # fmt: skip
    obs = observation(api, "g")
    assert obs["providedUsageDetails"] == {**anthropic, "total": 5320}
    assert obs["usageDetails"] == {
        "input": 20, "output": 300, "input_cached_tokens": 5000, "total": 5320,
    }  # fmt: skip
    assert (obs["usage"]["input"], obs["usage"]["output"]) == (5020, 300)
    assert obs["costInfo"]["source"] == "calculated"
