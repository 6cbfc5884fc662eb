"""A/B tests through the API on SQLite and PostgreSQL: the seed guide's ``ab_test_prompts``
flow with server-side assignment (two prompt versions, a ``user_rating`` score) gives a
readout equal to scipy's on the ingested values; the ad-hoc comparison by
``metadata.variant`` (the guide's own flow), by tags and by prompt version; states and
the winner's promotion to ``production``; 400s naming the problem, 409 for a running
test's weights; one project never seeing another's tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from ab_seed import definition, ok, prompts_and_score_config, run_flow
from helpers import event, ingest
from lanterna.abtests.assign import variant_for

pytestmark = pytest.mark.clickhouse

AB = "/api/public/ab-tests"


def refused(response: Any, words: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["message"], response.json()


def check_against_scipy(readout: dict[str, Any], ratings: dict[str, list[float]]) -> None:
    a, b = np.array(ratings["A"]), np.array(ratings["B"])
    welch = sps.ttest_ind(b, a, equal_var=False)
    ci = welch.confidence_interval(0.95)
    cmp = readout["primary"]["comparisons"]["B"]
    assert readout["primary"]["variants"]["A"]["n"] == len(a)
    assert readout["primary"]["variants"]["B"]["mean"] == pytest.approx(b.mean())
    assert cmp["difference"] == pytest.approx(b.mean() - a.mean())
    assert cmp["pValue"] == pytest.approx(welch.pvalue, rel=1e-9)
    assert (cmp["ciLow"], cmp["ciHigh"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    mw = sps.mannwhitneyu(b, a, alternative="two-sided")
    assert cmp["mannWhitneyP"] == pytest.approx(mw.pvalue, rel=1e-9)


def test_seed_flow_with_server_side_assignment_reads_out_like_scipy(api):
    prompts_and_score_config(api)
    test = ok(api.post(AB, json=definition()))
    assert test["state"] == "draft" and test["control"] == "A" and test["salt"]
    test = ok(api.post(f"{AB}/{test['name']}/start"))
    assert test["state"] == "running" and test["startedAt"]
    # The server's assignment endpoint and the SDK's local hash agree.
    for user in ("user-1", "user-2", "user-3"):
        got = ok(api.get(f"{AB}/{test['name']}/assign", params={"unitId": user}))
        assert got["variant"] == variant_for(test, user)
        assert got["promptVersion"] == (1 if got["variant"] == "A" else 2)
    ratings = run_flow(api, test)
    out = ok(api.get(f"{AB}/{test['name']}/readout"))
    check_against_scipy(out, ratings)
    assert out["abTest"]["name"] == test["name"]
    ops = out["operational"]
    assert ops["A"]["traces"] == len(ratings["A"]) and ops["A"]["units"] == len(ratings["A"])
    assert ops["A"]["meanCost"] == pytest.approx(0.010) and ops["B"]["meanCost"] == pytest.approx(
        0.011
    )
    assert ops["B"]["errorRate"] == 0
    expected = sps.chisquare([len(ratings["A"]), len(ratings["B"])])
    assert out["srm"]["pValue"] == pytest.approx(expected.pvalue) and not out["srm"]["mismatch"]
    assert [g["metric"] for g in out["guardrails"]] == ["cost", "errorRate"]
    assert out["guardrails"][0]["comparisons"]["B"]["difference"] == pytest.approx(0.001)
    assert out["verdict"]["status"] == "winner" and out["verdict"]["winner"] == "B"
    assert out["verdict"]["text"].startswith("B beats A on user_rating by ")
    assert "cost +10 %" in out["verdict"]["text"]
    assert out["cumulative"][-1]["variants"]["B"]["difference"] == pytest.approx(
        out["primary"]["comparisons"]["B"]["difference"]
    )
    assert len(out["cumulative"]) == 6  # six hours of traffic
    assert out["sampleSizeNeeded"]["B"] > 0
    assert sum(out["distribution"]["A"]["share"]) == pytest.approx(1)

    # Conclude with B and move production to its version.
    done = ok(api.post(f"{AB}/{test['name']}/conclude", json={"winner": "B", "promote": True}))
    assert done["state"] == "concluded" and done["winner"] == "B"
    assert ok(api.get("/api/public/v2/prompts/research_agent"))["version"] == 2
    assert ok(api.get(f"{AB}/{test['name']}/assign", params={"unitId": "x"}))["variant"] == "B"
    for params in ({}, {"unitId": ""}):  # unitId is required and not empty
        refused = api.get(f"{AB}/{test['name']}/assign", params=params)
        assert refused.status_code == 400 and "unitId" in refused.text, refused.text


def test_ad_hoc_comparisons_by_metadata_tags_and_prompt_version(api):
    prompts_and_score_config(api)
    test = ok(api.post(AB, json=definition()))
    ratings = run_flow(api, ok(api.post(f"{AB}/{test['name']}/start")))
    # A trace in none of the groups (no variant, tag or prompt), rated: left out of each.
    outsider = {"id": "outsider", "name": "other", "metadata": {"team": "x"}}
    rating = {"id": "outsider-r", "traceId": "outsider", "name": "user_rating", "value": 1}
    ingest(api, event("trace-create", outsider), event("score-create", rating))
    for params in (
        {"groupBy": "metadata.variant", "control": "A"},
        {
            "groupBy": "tags",
            "tags": ["ab-test:research-agent-prompt:A", "ab-test:research-agent-prompt:B"],
        },
        {"groupBy": "promptVersion", "prompt": "research_agent"},
    ):
        out = ok(api.get(f"{AB}/compare", params={**params, "metric": "user_rating"}))
        assert out["control"] == out["variants"][0] and out["srm"] is None
        names = params.get("tags") or (["A", "B"] if "control" in params else ["1", "2"])
        assert sorted(out["variants"]) == sorted(names), out["variants"]
        if params["groupBy"] == "metadata.variant":
            check_against_scipy(out, ratings)
        else:  # the same groups under other names (tags, versions "1" and "2")
            per = out["primary"]["variants"]
            assert [per[names[0]]["n"], per[names[1]]["n"]] == [len(ratings[v]) for v in "AB"]
            larger = 1 if len(ratings["B"]) > len(ratings["A"]) else 0  # a tie: the first
            assert out["control"] == names[larger]  # the larger group when none is named
    cost = ok(api.get(f"{AB}/compare", params={"groupBy": "metadata.variant", "metric": "cost"}))
    assert cost["primary"]["kind"] == "numeric" and cost["primary"]["lowerIsBetter"]


def test_bad_definitions_are_refused_naming_the_problem(api):
    prompts_and_score_config(api)
    one = {"variants": [{"name": "A", "weight": 1}]}
    refused(api.post(AB, json=definition(**one)), "at least two variants")
    zero = {"variants": [{"name": "A", "weight": 0, "promptVersion": 1},
                         {"name": "B", "weight": 0, "promptVersion": 2}]}  # fmt: skip
    refused(api.post(AB, json=definition(**zero)), "weights must sum to a positive total")
    refused(
        api.post(AB, json=definition(primaryMetric="happiness")),
        "metric 'happiness' does not exist",
    )
    refused(api.post(AB, json=definition(guardrailMetrics=["nope"])), "guardrailMetrics[0]")
    negative = {"variants": [{"name": "A", "weight": -1, "promptVersion": 1},
                             {"name": "B", "weight": 2, "promptVersion": 2}]}  # fmt: skip
    refused(api.post(AB, json=definition(**negative)), "variants[0].weight")
    missing = {"variants": [{"name": "A", "weight": 1, "promptVersion": 1},
                            {"name": "B", "weight": 1, "promptVersion": 9}]}  # fmt: skip
    refused(api.post(AB, json=definition(**missing)), "has no version 9")
    refused(api.post(AB, json=definition(control="Z")), "control 'Z'")
    refused(api.post(AB, json=definition(name="compare")), "reserved")
    refused(api.post(AB, json=[1]), "JSON object")
    refused(api.post(AB, json=definition(colour="red")), "unknown field 'colour'")
    assert ok(api.get(AB))["data"] == []  # nothing stored
    # groupBy and metric are required parameters (the document says so): a 400 naming them.
    for params, name in (
        ({"metric": "user_rating"}, "groupBy"),
        ({"groupBy": "tags", "tags": ["x", "y"]}, "metric"),
    ):
        missing = api.get(f"{AB}/compare", params=params)
        assert missing.status_code == 400 and name in missing.text, missing.text
    refused(
        api.get(f"{AB}/compare", params={"groupBy": "tags", "tags": ["x"], "metric": "cost"}),
        "at least two tags",
    )
    refused(
        api.get(f"{AB}/compare", params={"groupBy": "metadata.variant", "metric": "nope"}),
        "metric 'nope' does not exist",
    )
    assert api.get(f"{AB}/missing/readout").status_code == 404


def test_a_running_tests_assignment_is_fixed_but_its_description_is_not(api):
    prompts_and_score_config(api)
    name = ok(api.post(AB, json=definition()))["name"]
    changed = ok(api.patch(f"{AB}/{name}", json={"variants": [
        {"name": "A", "weight": 80, "promptVersion": 1},
        {"name": "B", "weight": 20, "promptVersion": 2}]}))  # fmt: skip
    assert [v["weight"] for v in changed["variants"]] == [80, 20]  # a draft may change
    ok(api.post(f"{AB}/{name}/start"))
    reweighted = {"variants": [{"name": "A", "weight": 50, "promptVersion": 1},
                               {"name": "B", "weight": 50, "promptVersion": 2}]}  # fmt: skip
    refused(api.patch(f"{AB}/{name}", json=reweighted), "cannot change while", 409)
    refused(api.patch(f"{AB}/{name}", json={"salt": "new"}), "salt cannot change", 409)
    same = {"variants": [{"name": "A", "weight": 80, "promptVersion": 1},
                         {"name": "B", "weight": 20, "promptVersion": 2}]}  # fmt: skip
    assert ok(api.patch(f"{AB}/{name}", json=same))["state"] == "running"  # unchanged: fine
    assert ok(api.patch(f"{AB}/{name}", json={"description": "v2 adds steps"}))["description"]
    refused(api.post(f"{AB}/{name}/start"), "cannot start an A/B test that is running", 409)
    assert ok(api.post(f"{AB}/{name}/stop"))["state"] == "stopped"
    refused(api.post(f"{AB}/{name}/conclude", json={"winner": "C"}), "winner must be one of")
    assert ok(api.post(f"{AB}/{name}/conclude", json={"winner": "A"}))["winner"] == "A"
    assert ok(api.get(AB, params={"state": "concluded"}))["meta"]["totalItems"] == 1
    assert ok(api.delete(f"{AB}/{name}"))["message"]
    assert api.get(f"{AB}/{name}").status_code == 404


def test_another_project_sees_none_of_the_tests(api):
    prompts_and_score_config(api)
    ok(api.post(AB, json=definition()))
    from support import new_project

    other = new_project(api.app, "Other")
    assert api.get(f"{AB}/research-agent-prompt", auth=other.auth).status_code == 404
    assert api.get(AB, auth=other.auth).json()["data"] == []
