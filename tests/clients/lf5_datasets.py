"""Datasets with the official Langfuse 5.x SDK: ``create_dataset`` (with an input
schema), ``create_dataset_item`` (one upserted by id, one refused by the schema),
``get_dataset(...).run_experiment(...)`` with an item evaluator and a run evaluator,
then the run read back through ``api.experiments``.

Run under .venvs/langfuse5 by tests/test_datasets_clients.py. Prints one JSON line.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from langfuse import Evaluation, Langfuse
from langfuse.api.core.api_error import ApiError

SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


def task(*, item: Any, **_: Any) -> str:
    """The app under test: upper-cases the question."""
    return str(item.input["q"]).upper()


def exact(*, output: Any, expected_output: Any = None, **_: Any) -> Evaluation:
    """1 when the output is the expected output."""
    return Evaluation(name="exact", value=1.0 if output == expected_output else 0.0)


def mean_exact(*, item_results: list[Any], **_: Any) -> Evaluation:
    """The share of items that matched exactly."""
    values = [e.value for r in item_results for e in r.evaluations if e.name == "exact"]
    return Evaluation(name="mean_exact", value=sum(values) / max(len(values), 1))


def main() -> None:
    started = datetime.now(UTC) - timedelta(minutes=5)
    client = Langfuse()
    created = client.create_dataset(name="lf5/qa", description="questions", input_schema=SCHEMA)
    first = client.create_dataset_item(
        dataset_name="lf5/qa", input={"q": "hi"}, expected_output="HI", id="lf5-item-1"
    )
    client.create_dataset_item(dataset_name="lf5/qa", input={"q": "yo"}, expected_output="no")
    upserted = client.create_dataset_item(
        dataset_name="lf5/qa", id="lf5-item-1", metadata={"edited": True}
    )
    try:
        client.create_dataset_item(dataset_name="lf5/qa", input={"question": "x"})
        refused: Any = None
    except ApiError as exc:
        refused = {"status": exc.status_code, "body": exc.body}
    dataset = client.get_dataset("lf5/qa")
    result = dataset.run_experiment(
        name="upper",
        run_name="upper-run-1",
        task=task,
        evaluators=[exact],
        run_evaluators=[mean_exact],
    )
    client.flush()
    experiments = client.api.experiments.list(from_start_time=started, fields="core,scores")
    items = client.api.experiments.list_items(from_start_time=started, fields="core,io")
    print(
        json.dumps(
            {
                "datasetId": created.id,
                "inputSchema": created.input_schema,
                "firstStatus": str(first.status),
                "mediaReferences": first.media_references,
                "upsertedInput": upserted.input,
                "upsertedMetadata": upserted.metadata,
                "refused": refused,
                "items": sorted(str(i.id) for i in dataset.items),
                "runName": result.run_name,
                "experimentId": result.experiment_id,
                "outputs": sorted(str(r.output) for r in result.item_results),
                "traceIds": sorted(str(r.trace_id) for r in result.item_results),
                "evaluations": sorted(
                    (e.name, e.value) for r in result.item_results for e in r.evaluations
                ),
                "runEvaluations": [(e.name, e.value) for e in result.run_evaluations],
                "experiments": [
                    {
                        "id": e.id,
                        "name": e.name,
                        "itemCount": e.item_count,
                        "scores": [s.name for s in e.scores or []],
                    }
                    for e in experiments.data
                ],
                "experimentItems": sorted(
                    (str(i.experiment_item_id), str(i.output)) for i in items.data
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
