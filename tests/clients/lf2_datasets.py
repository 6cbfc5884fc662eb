"""Datasets with the official Langfuse 2.60 SDK: ``create_dataset``,
``create_dataset_item`` (one archived by an upsert), ``get_dataset(...).items`` with
``item.observe()`` (a decorated function's trace linked to the item) and ``item.link()``
(a trace linked explicitly), then the run read back with ``get_dataset_run``.

Run under .venvs/langfuse2 by tests/test_datasets_clients.py. Prints one JSON line.
"""

from __future__ import annotations

import json
from typing import Any

from langfuse import Langfuse
from langfuse.decorators import langfuse_context, observe


@observe()
def app(question: str) -> str:
    """The app under test."""
    return question[::-1]


def main() -> None:
    client = Langfuse()
    created = client.create_dataset(name="lf2-qa", description="two-sixty", metadata={"v": 2})
    client.create_dataset_item(dataset_name="lf2-qa", input={"q": "abc"}, expected_output="cba")
    client.create_dataset_item(dataset_name="lf2-qa", input={"q": "xyz"}, id="lf2-kept")
    client.create_dataset_item(dataset_name="lf2-qa", input={"q": "old"}, id="lf2-gone")
    client.create_dataset_item(dataset_name="lf2-qa", id="lf2-gone", status="ARCHIVED")
    dataset = client.get_dataset("lf2-qa")
    outputs = []
    trace_ids = []
    for item in dataset.items:
        with item.observe(run_name="observe-run", run_description="by observe") as trace_id:
            outputs.append(app(item.input["q"]))
            trace_ids.append(trace_id)
    langfuse_context.flush()
    trace = client.trace(name="manual", input="m")
    first = dataset.items[0]
    first.link(trace, "link-run", run_metadata={"how": "link"})
    client.flush()
    run = client.get_dataset_run(dataset_name="lf2-qa", dataset_run_name="observe-run")
    linked = client.get_dataset_run(dataset_name="lf2-qa", dataset_run_name="link-run")
    runs: Any = client.get_dataset_runs("lf2-qa")
    print(
        json.dumps(
            {
                "datasetId": created.id,
                "items": sorted(str(i.id) for i in dataset.items),
                "statuses": sorted(str(i.status) for i in dataset.items),
                "outputs": sorted(outputs),
                "traceIds": sorted(trace_ids),
                "runItems": sorted(i.trace_id for i in run.dataset_run_items),
                "runDescription": run.description,
                "linkedTrace": [i.trace_id for i in linked.dataset_run_items],
                "manualTrace": trace.id,
                "linkedMetadata": linked.metadata,
                "runNames": sorted(r.name for r in runs.data),
            }
        )
    )


if __name__ == "__main__":
    main()
