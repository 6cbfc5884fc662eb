"""Custom models through /api/public/models: shape, validation, precedence, recompute."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cost_helpers import generation, observation

from helpers import event, ingest, iso
from lanterna.cli import main as cli_main

MODEL_FIELDS = {
    "id", "modelName", "matchPattern", "startDate", "inputPrice", "outputPrice", "totalPrice",
    "tokenizerId", "tokenizerConfig", "isLangfuseManaged", "createdAt", "prices", "pricingTiers",
}  # fmt: skip


def create(api: Any, **body: Any) -> dict[str, Any]:
    response = api.post("/api/public/models", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    details: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion}
    if cached:
        details["prompt_tokens_details"] = {"cached_tokens": cached}
    return {"usageDetails": details}


def test_create_get_list_delete(api):
    model = create(
        api,
        modelName="acme-llm",
        matchPattern="(?i)^acme-llm(-\\d+)?$",
        unit="TOKENS",
        inputPrice=0.000001,
        outputPrice=0.000002,
        tokenizerId="openai",
        tokenizerConfig={"tokenizerModel": "gpt-4o"},
    )
    assert set(model) >= MODEL_FIELDS
    assert model["isLangfuseManaged"] is False
    assert (model["inputPrice"], model["outputPrice"], model["totalPrice"]) == (1e-6, 2e-6, None)
    assert model["prices"] == {"input": {"price": 1e-6}, "output": {"price": 2e-6}}
    [tier] = model["pricingTiers"]
    assert {k: tier[k] for k in ("name", "isDefault", "priority", "conditions")} == {
        "name": "Standard", "isDefault": True, "priority": 0, "conditions": [],
    }  # fmt: skip
    assert api.get(f"/api/public/models/{model['id']}").json() == model

    page = api.get("/api/public/models", params={"limit": 3}).json()
    assert page["data"][0] == model  # custom models come first
    assert [m["isLangfuseManaged"] for m in page["data"][1:]] == [True, True]
    assert page["meta"]["totalItems"] > 2000  # genai-prices' catalogue
    assert page["meta"]["totalPages"] == -(-page["meta"]["totalItems"] // 3)

    assert api.delete(f"/api/public/models/{model['id']}").status_code == 204
    assert api.get(f"/api/public/models/{model['id']}").status_code == 404
    assert api.delete(f"/api/public/models/{model['id']}").status_code == 404


def test_built_in_models_are_listed_and_cannot_be_deleted(api):
    gpt = api.get("/api/public/models/builtin:openai:gpt-4o").json()
    assert gpt["isLangfuseManaged"] is True and gpt["provider"] == "openai"
    assert gpt["modelName"] == "gpt-4o"
    assert gpt["prices"]["input"] == {"price": 2.5e-6}
    assert gpt["prices"]["input_cached_tokens"] == {"price": 1.25e-6}
    assert set(gpt) >= MODEL_FIELDS
    response = api.delete("/api/public/models/builtin:openai:gpt-4o")
    assert response.status_code == 403
    assert "cannot be deleted" in response.json()["message"]
    # Later pages of the list walk the built-in catalogue.
    second = api.get("/api/public/models", params={"page": 2, "limit": 100}).json()
    assert len(second["data"]) == 100 and all(m["isLangfuseManaged"] for m in second["data"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"matchPattern": "x", "inputPrice": 1}, "modelName"),
        ({"modelName": "m", "inputPrice": 1}, "matchPattern"),
        ({"modelName": "m", "matchPattern": "(unclosed", "inputPrice": 1}, "invalid regex"),
        ({"modelName": "m", "matchPattern": "m"}, "prices required"),
        ({"modelName": "m", "matchPattern": "m", "inputPrice": -1}, "non-negative"),
        ({"modelName": "m", "matchPattern": "m", "inputPrice": "cheap"}, "non-negative"),
        # A decimal string beyond a double: its answer could not show it as a number.
        ({"modelName": "m", "matchPattern": "m", "inputPrice": "1e400"}, "non-negative"),
        ({"modelName": "m", "matchPattern": "m", "inputPrice": 1, "totalPrice": 2}, "totalPrice"),
        ({"modelName": "m", "matchPattern": "m", "unit": "PARSECS", "inputPrice": 1}, "unit"),
        ({"modelName": "m", "matchPattern": "m", "startDate": "2024-01-01T00:00:00",
          "inputPrice": 1}, "startDate"),
        ({"modelName": "m", "matchPattern": "m", "inputPrice": 1,
          "pricingTiers": [{"name": "S", "isDefault": True, "priority": 0, "conditions": [],
                            "prices": {"input": 1}}]}, "either pricingTiers or flat"),
        ({"modelName": "m", "matchPattern": "m",
          "pricingTiers": [{"name": "S", "isDefault": False, "priority": 1,
                            "conditions": [{"usageDetailPattern": "input", "operator": "gt",
                                            "value": 5}],
                            "prices": {"input": 1}}]}, "exactly one tier"),
        ({"modelName": "m", "matchPattern": "m",
          "pricingTiers": [{"name": "S", "isDefault": True, "priority": 0, "conditions": [],
                            "prices": {}}]}, "at least one price"),
        ({"modelName": "m", "matchPattern": "m",
          "pricingTiers": [{"name": "S", "isDefault": True, "priority": 0, "conditions": [],
                            "prices": {"input": 1}},
                           {"name": "L", "isDefault": False, "priority": 1,
                            "conditions": [{"usageDetailPattern": "input", "operator": "huge",
                                            "value": 5}],
                            "prices": {"input": 2}}]}, "operator"),
    ],
)  # fmt: skip
def test_invalid_models_are_refused_with_a_reason(api, body, message):
    response = api.post("/api/public/models", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert api.get("/api/public/models", params={"limit": 1}).json()["data"][0][
        "isLangfuseManaged"
    ]  # nothing was stored


def test_not_json_is_a_400(api):
    response = api.post("/api/public/models", content=b"{nope", headers={"content-type": "a/b"})
    assert response.status_code == 400


def test_a_custom_model_wins_over_the_built_in_one(api):
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation("before", "gpt-4o", **usage(1000, 100))),
    )
    custom = create(
        api, modelName="gpt-4o (our contract)", matchPattern="(?i)^gpt-4o(-\\d{4}-\\d{2}-\\d{2})?$",
        inputPrice=0.000001, outputPrice=0.000004,
    )  # fmt: skip
    matched = api.get("/api/public/models", params={"match": "gpt-4o-2024-08-06"}).json()
    assert [m["id"] for m in matched["data"]] == [custom["id"]]
    mini = api.get("/api/public/models", params={"match": "gpt-4o-mini"}).json()
    assert [m["id"] for m in mini["data"]] == ["builtin:openai:gpt-4o-mini"]

    ingest(
        api,
        event("generation-create", generation("after", "gpt-4o-2024-08-06", **usage(1000, 100))),
        event("generation-create", generation("mini", "gpt-4o-mini", **usage(1000, 100))),
    )
    after = observation(api, "after")
    assert after["modelId"] == custom["id"]
    assert after["costInfo"]["builtIn"] is False
    assert after["costDetails"]["total"] == pytest.approx(1000 * 1e-6 + 100 * 4e-6)
    assert (after["inputPrice"], after["outputPrice"]) == (1e-6, 4e-6)
    assert observation(api, "mini")["modelId"] == "builtin:openai:gpt-4o-mini"
    # Stored observations keep the price they were calculated with until a recompute.
    assert observation(api, "before")["modelId"] == "builtin:openai:gpt-4o"

    other = api.new_project()
    seen = api.get("/api/public/models", params={"limit": 1}, auth=other.auth).json()
    assert seen["data"][0]["isLangfuseManaged"] is True  # another project's model is private
    assert api.get(f"/api/public/models/{custom['id']}", auth=other.auth).status_code == 404


def test_cached_tokens_without_a_cache_price_cost_the_input_price(api):
    create(api, modelName="flat", matchPattern="^flat$", inputPrice=0.00001, outputPrice=0.0)
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation("g", "flat", **usage(1000, 10, cached=800))),
    )
    obs = observation(api, "g")
    assert obs["costDetails"] == pytest.approx(
        {"input": 200 * 1e-5, "input_cached_tokens": 800 * 1e-5, "output": 0.0, "total": 1e-2}
    )


def test_pricing_tiers_usage_and_attribute_conditions(api):
    model = create(
        api,
        modelName="tiered",
        matchPattern="(?i)^tiered$",
        pricingTiers=[
            {"name": "Standard", "isDefault": True, "priority": 0, "conditions": [],
             "prices": {"input": 0.000001, "output": 0.000002,
                        "cache_read_input_tokens": 0.0000001}},
            {"name": "Priority", "isDefault": False, "priority": 1,
             "conditions": [{"source": "model_parameters", "key": "service_tier",
                             "operator": "in", "values": ["priority"]}],
             "prices": {"input": 0.000005, "output": 0.00001}},
            {"name": "Long", "isDefault": False, "priority": 2,
             "conditions": [{"usageDetailPattern": "^input", "operator": "gt", "value": 100000,
                             "caseSensitive": False}],
             "prices": {"input": 0.000002, "output": 0.000004}},
        ],
    )  # fmt: skip
    assert [t["name"] for t in model["pricingTiers"]] == ["Standard", "Priority", "Long"]
    assert model["pricingTiers"][2]["conditions"][0]["usageDetailPattern"] == "^input"
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation("small", "tiered", **usage(1000, 100, cached=500))),
        event("generation-create", generation("long", "tiered", **usage(150000, 100))),
        event("generation-create", generation(
            "fast", "tiered", modelParameters={"service_tier": "priority"},
            **usage(150000, 100))),
    )  # fmt: skip
    small, long, fast = (observation(api, x) for x in ("small", "long", "fast"))
    assert small["costInfo"]["tier"] == "Standard"
    # The price given for "cache_read_input_tokens" prices the cached input tokens.
    assert small["costDetails"]["input_cached_tokens"] == pytest.approx(500 * 1e-7)
    assert long["costInfo"]["tier"] == "Long"
    assert long["costDetails"]["total"] == pytest.approx(150000 * 2e-6 + 100 * 4e-6)
    assert fast["costInfo"]["tier"] == "Priority"  # lower priority number is tried first


def test_start_date_decides_which_definition_applies(api):
    old = create(api, modelName="m", matchPattern="^m$", inputPrice=0.001)
    new = create(api, modelName="m", matchPattern="^m$", inputPrice=0.002,
                 startDate=iso(seconds=3600))  # fmt: skip
    future = create(api, modelName="m", matchPattern="^m$", inputPrice=0.003,
                    startDate="2999-01-01T00:00:00Z")  # fmt: skip
    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation("early", "m", usage={"input": 10}), at=0),
        event("generation-create", generation("late", "m", usage={"input": 10}), at=7200),
    )
    assert observation(api, "early")["modelId"] == old["id"]
    assert observation(api, "late")["modelId"] == new["id"]
    assert observation(api, "late")["costDetails"]["total"] == pytest.approx(0.02)
    assert future["id"] not in {observation(api, x)["modelId"] for x in ("early", "late")}


def _recompute_in(db_url: str, tmp_path: Path, *extra: str, events_url: str = "") -> int:
    where = (
        ["--data-dir", str(Path(db_url.removeprefix("sqlite:///")).parent)]
        if db_url.startswith("sqlite")
        else ["--database-url", db_url]
    )
    if events_url:
        where += ["--events-url", events_url]
    return cli_main(["costs", "recompute", "--since", "2024-01-01", *where, *extra])


def _daily_cost(api: Any) -> float:
    """The project's cost by the daily metrics API (read from the rollups)."""
    days = api.get("/api/public/metrics/daily", params={"limit": 50}).json()["data"]
    return sum(float(d["totalCost"]) for d in days)


@pytest.mark.clickhouse
def test_recompute_reprices_calculated_costs_and_keeps_provided_ones(
    api, db_url, events_url, tmp_path, capsys
):
    """Also on the ClickHouse event store (``--events-url``): new row versions there, and
    the rollups (the daily metrics) move with the costs."""

    def _recompute(*extra: str) -> int:
        return _recompute_in(db_url, tmp_path, "--project", api.project.id, *extra,
                             events_url=events_url)  # fmt: skip

    ingest(
        api,
        event("trace-create", {"id": "t"}),
        event("generation-create", generation("calc", "gpt-4o", **usage(1000, 100))),
        event("generation-create", generation(
            "given", "gpt-4o", **usage(1000, 100), costDetails={"total": 0.5})),
        event("generation-create", generation("old", "gpt-4o", **usage(10, 1)), at=-86400 * 365),
    )  # fmt: skip
    builtin_total = 1000 * 2.5e-6 + 100 * 1e-5
    assert observation(api, "calc")["costDetails"]["total"] == pytest.approx(builtin_total)
    custom = create(api, modelName="gpt-4o", matchPattern="^gpt-4o$", inputPrice=1e-6,
                    outputPrice=1e-6)  # fmt: skip

    assert _recompute("--batch-size", "2") == 0
    # Both now name the custom model; only the calculated one changes its cost.
    assert "recomputed 2 observation(s): 2 changed" in capsys.readouterr().out
    calc = observation(api, "calc")
    assert calc["modelId"] == custom["id"]
    assert calc["costDetails"]["total"] == pytest.approx(1100 * 1e-6)
    given = observation(api, "given")
    assert given["costDetails"] == {"total": 0.5} and given["costInfo"]["source"] == "provided"
    assert given["modelId"] == custom["id"]
    assert observation(api, "old")["modelId"] == "builtin:openai:gpt-4o"  # before --since
    trace = api.get("/api/public/traces/t").json()
    assert trace["totalCost"] == pytest.approx(1100e-6 + 0.5 + 10 * 2.5e-6 + 1e-5)
    assert _daily_cost(api) == pytest.approx(trace["totalCost"])

    # Deleting the custom model and recomputing goes back to the built-in price.
    assert api.delete(f"/api/public/models/{custom['id']}").status_code == 204
    assert _recompute("--until", "2030-01-01T00:00:00Z") == 0
    assert observation(api, "calc")["costDetails"]["total"] == pytest.approx(builtin_total)
    assert _daily_cost(api) == pytest.approx(builtin_total + 0.5 + 10 * 2.5e-6 + 1e-5)
    capsys.readouterr()
    assert _recompute() == 0  # nothing left to change
    assert "recomputed 2 observation(s): 0 changed" in capsys.readouterr().out
