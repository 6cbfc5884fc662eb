"""Our SDK's datasets against a live server: create a dataset and items, ``dataset.run``
(a trace per item linked in a run, evaluator scores on each trace, the run's aggregate
scores on the run, a failing task recorded and the others going on), and
``compare_runs`` of two runs (outputs and scores per item, deltas of the means)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from lanterna import (
    LanternaAPIError,
    compare_runs,
    create_dataset,
    create_dataset_item,
    get_dataset,
    observe,
)


def exact(*, output: Any, expected_output: Any, **_: Any) -> float:
    return 1.0 if output == expected_output else 0.0


def length(*, output: Any, **_: Any) -> dict[str, Any]:
    return {"name": "length", "value": len(str(output)), "comment": "characters"}


@observe(name="shout")
def shout(text: str) -> str:
    if text == "boom":
        raise RuntimeError("task failed on purpose")
    return text.upper()


def test_dataset_run_traces_scores_and_compare(client, reader):
    create_dataset("sdk-qa", input_schema={"type": "string"})
    for text, expected in (("hi", "HI"), ("yo", "nope"), ("boom", "BOOM")):
        create_dataset_item("sdk-qa", input=text, expected_output=expected, id=f"it-{text}")
    with pytest.raises(LanternaAPIError) as refused:
        create_dataset_item("sdk-qa", input={"not": "a string"})
    assert refused.value.status == 400

    dataset = get_dataset("sdk-qa")
    assert sorted(i.id for i in dataset.items) == ["it-boom", "it-hi", "it-yo"]
    threads: set[str] = set()

    def task(text: str) -> str:
        threads.add(threading.current_thread().name)
        return shout(text)

    first = dataset.run(task, evaluators=[exact, length], run_name="v1", concurrency=3)
    assert first.run_name == "v1" and first.run_id is not None
    by_item = {r.item.id: r for r in first.items}
    assert by_item["it-hi"].output == "HI"
    assert by_item["it-hi"].scores == {"exact": 1.0, "length": 2}
    assert by_item["it-yo"].scores["exact"] == 0.0
    failed = by_item["it-boom"]
    assert failed.output is None and "task failed on purpose" in (failed.error or "")
    assert first.aggregates == {"avg_exact": 0.5, "avg_length": 2.0}
    assert len(threads) > 1  # the items ran concurrently

    # Each item's trace: named after the dataset, the task's span nested in it, the
    # evaluator scores on it; the failed one is marked ERROR.
    trace = reader.trace(by_item["it-hi"].trace_id)
    assert trace["name"] == "dataset-run:sdk-qa" and trace["output"] == "HI"
    assert {o["name"] for o in trace["observations"]} == {"dataset-run:sdk-qa", "shout"}
    assert {s["name"]: s["value"] for s in trace["scores"]} == {"exact": 1.0, "length": 2}
    assert reader.trace(failed.trace_id)["observations"][0]["level"] == "ERROR"
    # The run on the server: one run item per item, and the aggregates on the run.
    run = reader.http.get("/api/public/datasets/sdk-qa/runs/v1").json()
    assert sorted(i["traceId"] for i in run["datasetRunItems"]) == sorted(
        r.trace_id for r in first.items
    )
    run_scores = reader.http.get("/api/public/v2/scores", params={"datasetRunId": run["id"]})
    assert {s["name"]: s["value"] for s in run_scores.json()["data"]} == first.aggregates

    second = dataset.run(lambda text: text.upper() + "!", evaluators=[exact], run_name="v2")
    comparison = compare_runs(first, second)
    assert (comparison.run_a, comparison.run_b) == ("v1", "v2")
    rows = {r.item_id: r for r in comparison.items}
    assert (rows["it-hi"].output_a, rows["it-hi"].output_b) == ("HI", "HI!")
    assert rows["it-hi"].scores_a == {"exact": 1.0, "length": 2}
    assert rows["it-hi"].scores_b == {"exact": 0.0}
    assert comparison.aggregates["exact"] == {"a": 0.5, "b": 0.0, "delta": -0.5}
    by_name = compare_runs("v1", "v2", dataset_name="sdk-qa", client=client)
    assert by_name.aggregates == comparison.aggregates
