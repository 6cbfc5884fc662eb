"""Datasets with the official clients against a live server, each in its own
virtualenv: langfuse 2.60 (datasets, items, ``item.observe``, ``item.link``, runs) and
langfuse 5.x (``create_dataset_item``, ``get_dataset(...).run_experiment(...)`` with an
evaluator: its traces linked to the items through the OTLP experiment attributes), then
what they stored read back through our API as a user would check it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support import run_sdk_script

pytestmark = [pytest.mark.slow, pytest.mark.clickhouse]


def get(server: Any, path: str, **params: Any) -> Any:
    response = httpx.get(f"{server.url}{path}", params=params, auth=server.project.auth)
    assert response.status_code == 200, response.text
    return response.json()


def test_langfuse2_datasets_observe_and_link(live_server):
    result = run_sdk_script("langfuse2", "lf2_datasets.py", live_server)
    # The archived item is not in the dataset the SDK iterates.
    assert len(result["items"]) == 2 and "lf2-kept" in result["items"]
    assert "lf2-gone" not in result["items"]
    assert result["statuses"] == ["DatasetStatus.ACTIVE"] * 2
    assert result["outputs"] == ["cba", "zyx"]
    # item.observe(): each item's trace is in the run, with the decorated function's
    # output on it.
    assert result["runItems"] == result["traceIds"]
    assert result["runDescription"] == "by observe"
    assert result["linkedTrace"] == [result["manualTrace"]]
    assert result["linkedMetadata"] == {"how": "link"}
    assert result["runNames"] == ["link-run", "observe-run"]
    outputs = [get(live_server, f"/api/public/traces/{t}")["output"] for t in result["traceIds"]]
    assert sorted(outputs) == result["outputs"]
    archived = get(live_server, "/api/public/dataset-items/lf2-gone")
    assert archived["status"] == "ARCHIVED"


def test_langfuse5_run_experiment_links_items_and_scores(live_server):
    result = run_sdk_script("langfuse5", "lf5_datasets.py", live_server)
    assert result["inputSchema"]["required"] == ["q"]
    assert result["firstStatus"] == "ACTIVE"
    assert result["mediaReferences"] == []
    # An upsert by id keeps the fields it leaves out.
    assert result["upsertedInput"] == {"q": "hi"}
    assert result["upsertedMetadata"] == {"edited": True}
    assert result["refused"]["status"] == 400
    assert "'q' is a required property" in result["refused"]["body"]["message"]
    assert result["outputs"] == ["HI", "YO"]
    assert result["evaluations"] == [["exact", 0.0], ["exact", 1.0]]
    assert result["runEvaluations"] == [["mean_exact", 0.5]]

    # The run exists on the dataset, named as the SDK named it, one item per trace.
    run = get(live_server, "/api/public/datasets/lf5%2Fqa/runs/upper-run-1")
    assert run["id"] == result["experimentId"]
    assert sorted(i["traceId"] for i in run["datasetRunItems"]) == result["traceIds"]
    assert {i["datasetItemId"] for i in run["datasetRunItems"]} == set(result["items"])
    # The experiment routes the SDK read: the run with its run-level score and items.
    (experiment,) = result["experiments"]
    assert experiment == {
        "id": result["experimentId"], "name": "upper-run-1", "itemCount": 2,
        "scores": ["mean_exact"],
    }  # fmt: skip
    assert sorted(o for _, o in result["experimentItems"]) == ["HI", "YO"]
    # Each item's score landed on its trace.
    for trace_id in result["traceIds"]:
        scores = get(live_server, "/api/public/v2/scores", traceId=trace_id)["data"]
        assert [s["name"] for s in scores] == ["exact"]
