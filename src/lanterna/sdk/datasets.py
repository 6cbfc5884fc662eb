"""Datasets in the SDK: fetch a dataset, run a task over its items with evaluators
(a trace per item, linked to the item in a dataset run; per-item scores on each trace
and the run's aggregate scores on the run), and compare two runs item by item.

Explicit, blocking calls: they raise :class:`~lanterna.sdk.errors.LanternaError`
subclasses when the server cannot answer. A task or evaluator that raises does not stop
the run: the item records the error (its trace is marked ERROR) and the others go on.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import LanternaAPIError
from .observe import observe
from .records import new_trace_id

if TYPE_CHECKING:
    from .client import Lanterna

#: What an evaluator returns: a number or bool (named after the evaluator), a dict
#: ``{name, value, comment?}``, or a list of those.
Evaluator = Callable[..., Any]


@dataclass(frozen=True)
class DatasetItem:
    """One item of a dataset, as the server returned it."""

    id: str
    input: Any
    expected_output: Any
    metadata: Any
    status: str
    dataset_name: str


@dataclass
class ItemResult:
    """What one item's run produced: its output (None on error), the trace, the error
    (``repr`` of the exception) and the scores the evaluators gave (name -> value)."""

    item: DatasetItem
    output: Any
    trace_id: str | None
    error: str | None = None
    scores: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """A finished run: its items' results (in the dataset's order) and the run-level
    aggregate scores (``avg_<name>``: the mean of each numeric item score)."""

    dataset_name: str
    run_name: str
    run_id: str | None
    items: list[ItemResult]
    aggregates: dict[str, float]


@dataclass(frozen=True)
class ItemComparison:
    """One dataset item in two runs: each run's output and scores (None: not in it)."""

    item_id: str
    output_a: Any
    output_b: Any
    scores_a: dict[str, Any] | None
    scores_b: dict[str, Any] | None


@dataclass(frozen=True)
class RunComparison:
    """Two runs side by side: per item, and per score name the mean in each run and
    the delta (``b - a``)."""

    run_a: str
    run_b: str
    items: list[ItemComparison]
    aggregates: dict[str, dict[str, float | None]]


def _path(*parts: str) -> str:
    return "/".join(urllib.parse.quote(p, safe="") for p in parts)


def _mean(values: Iterable[Any]) -> float | None:
    numbers = [float(v) for v in values if _numeric(v)]
    return sum(numbers) / len(numbers) if numbers else None


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and (isinstance(value, bool) or math.isfinite(value))


def _evaluations(evaluator: Evaluator, result: Any) -> list[dict[str, Any]]:
    """An evaluator's result as ``[{name, value, comment?}]``."""
    default = getattr(evaluator, "__name__", "evaluator")
    results = result if isinstance(result, list) else [result]
    out = []
    for one in results:
        if isinstance(one, dict):
            if "value" not in one:
                raise ValueError(f"evaluator {default!r} returned a dict without 'value'")
            out.append({"name": one.get("name") or default, **one})
        elif one is not None:
            out.append({"name": default, "value": one})
    return out


class Dataset:
    """A dataset and its active items (``Lanterna.get_dataset``)."""

    def __init__(self, client: Lanterna, body: dict[str, Any], items: list[DatasetItem]) -> None:
        self._client = client
        self.id: str = body["id"]
        self.name: str = body["name"]
        self.description: str | None = body.get("description")
        self.metadata: Any = body.get("metadata")
        self.items = items

    def run(
        self,
        task: Callable[[Any], Any],
        *,
        evaluators: Sequence[Evaluator] = (),
        run_name: str | None = None,
        description: str | None = None,
        metadata: Any = None,
        concurrency: int = 4,
    ) -> RunResult:
        """Run ``task(item.input)`` on every item, ``concurrency`` at a time.

        Each item gets its own trace (named ``dataset-run:<dataset>``; ``@observe``
        functions the task calls nest in it), linked to the item in the run
        ``run_name`` (default: a fresh name). Each evaluator is called as
        ``evaluator(input=..., output=..., expected_output=..., metadata=...)`` and its
        result scored on the item's trace; the mean of each numeric score is scored on
        the run as ``avg_<name>``. Everything is flushed before this returns.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be 1 or more")
        run_name = run_name or f"{self.name}-run-{new_trace_id()[:8]}"
        link = {"runName": run_name, "runDescription": description, "metadata": metadata}
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            done = list(pool.map(lambda item: self._one(item, task, evaluators, link), self.items))
        results = [result for result, _ in done]
        run_id = next((run for _, run in done if run is not None), None)
        aggregates: dict[str, float] = {}
        names = sorted({n for r in results for n in r.scores})
        for name in names:
            mean = _mean(r.scores.get(name) for r in results)
            if mean is not None:
                aggregates[f"avg_{name}"] = mean
        if run_id is not None:
            for name, value in aggregates.items():
                body = {"id": new_trace_id(), "name": name, "value": value, "datasetRunId": run_id}
                self._client.send_event("score-create", body)
        self._client.flush()
        return RunResult(self.name, run_name, run_id, results, aggregates)

    def _one(
        self,
        item: DatasetItem,
        task: Callable[[Any], Any],
        evaluators: Sequence[Evaluator],
        link: dict[str, Any],
    ) -> tuple[ItemResult, str | None]:
        error = None
        output = None
        with observe(name=f"dataset-run:{self.name}") as span:
            span.update(input=item.input)
            span.update_trace(
                input=item.input,
                metadata={"dataset": self.name, "dataset_item_id": item.id, "run": link["runName"]},
            )
            try:
                output = task(item.input)
            except Exception as exc:
                error = repr(exc)
                span.update(level="ERROR", status_message=error)
            span.update(output=output)
            span.update_trace(output=output)
        result = ItemResult(item, output, span.trace_id, error)
        if span.trace_id is None:  # tracing is off: nothing to link or score
            return result, None
        linked = post_json(
            self._client,
            "/api/public/dataset-run-items",
            {**link, "datasetItemId": item.id, "traceId": span.trace_id, "observationId": span.id},
        )
        if error is None:
            self._evaluate(result, evaluators)
        return result, linked.get("datasetRunId")

    def _evaluate(self, result: ItemResult, evaluators: Sequence[Evaluator]) -> None:
        item = result.item
        for evaluator in evaluators:
            try:
                found = _evaluations(
                    evaluator,
                    evaluator(
                        input=item.input,
                        output=result.output,
                        expected_output=item.expected_output,
                        metadata=item.metadata,
                    ),
                )
            except Exception as exc:
                result.error = f"evaluator {getattr(evaluator, '__name__', '?')}: {exc!r}"
                continue
            for one in found:
                value = one["value"]
                self._client.score(
                    trace_id=result.trace_id,
                    name=str(one["name"]),
                    value=value,
                    comment=one.get("comment"),
                )
                result.scores[str(one["name"])] = value


def _item(body: dict[str, Any]) -> DatasetItem:
    return DatasetItem(
        id=body["id"],
        input=body.get("input"),
        expected_output=body.get("expectedOutput"),
        metadata=body.get("metadata"),
        status=body.get("status", "ACTIVE"),
        dataset_name=body.get("datasetName", ""),
    )


def _client_or_default(client: Lanterna | None) -> Lanterna:
    from .client import get_client

    return client if client is not None else get_client()


def create_dataset(
    name: str,
    *,
    description: str | None = None,
    metadata: Any = None,
    input_schema: Any = None,
    expected_output_schema: Any = None,
    client: Lanterna | None = None,
) -> dict[str, Any]:
    """Create the dataset ``name`` (or update it): the server's Dataset. Items are then
    checked against the JSON schemas given. ``client``: default the process-wide one."""
    body = {
        "name": name,
        "description": description,
        "metadata": metadata,
        "inputSchema": input_schema,
        "expectedOutputSchema": expected_output_schema,
    }
    return post_json(_client_or_default(client), "/api/public/v2/datasets", body)


def create_dataset_item(
    dataset_name: str,
    *,
    input: Any = None,
    expected_output: Any = None,
    metadata: Any = None,
    id: str | None = None,
    source_trace_id: str | None = None,
    source_observation_id: str | None = None,
    status: str | None = None,
    client: Lanterna | None = None,
) -> dict[str, Any]:
    """Add an item to a dataset (with ``id``: create or update that item): the server's
    DatasetItem. Raises :class:`LanternaAPIError` (400) when it violates the dataset's
    schema, (404) for an unknown dataset."""
    body = {
        "datasetName": dataset_name,
        "input": input,
        "expectedOutput": expected_output,
        "metadata": metadata,
        "id": id,
        "sourceTraceId": source_trace_id,
        "sourceObservationId": source_observation_id,
        "status": status,
    }
    return post_json(_client_or_default(client), "/api/public/dataset-items", body)


def get_dataset(name: str, *, client: Lanterna | None = None, page_size: int = 50) -> Dataset:
    """The dataset ``name`` with its active items (paged through); ``.run(task,
    evaluators=[...], concurrency=N)`` runs a task over them."""
    client = _client_or_default(client)
    body = client._get("/api/public/v2/datasets/" + _path(name))
    items: list[DatasetItem] = []
    page = 1
    while True:
        answer = client._get(
            "/api/public/dataset-items", {"datasetName": name, "page": page, "limit": page_size}
        )
        items.extend(_item(i) for i in answer["data"])
        if page >= answer["meta"]["totalPages"]:
            break
        page += 1
    return Dataset(client, body, items)


def _run_items(client: Lanterna, dataset_id: str, run_name: str) -> dict[str, dict[str, Any]]:
    """A run's items by dataset item id: ``{output, scores: {name: value}}`` (read from
    ``/api/public/experiment-items``, a page of 100 at a time)."""
    params: dict[str, Any] = {
        "fromStartTime": "1970-01-01T00:00:00Z",
        "datasetId": dataset_id,
        "experimentName": run_name,
        "fields": "core,io,scores",
        "limit": 100,
    }
    out: dict[str, dict[str, Any]] = {}
    while True:
        page = client._get("/api/public/experiment-items", params)
        for row in page["data"]:
            scores = {s["name"]: s.get("value") for s in row.get("scores") or []}
            out.setdefault(row["experimentItemId"], {"output": row.get("output"), "scores": scores})
        cursor = (page.get("meta") or {}).get("cursor")
        if not cursor:
            return out
        params["cursor"] = cursor


def compare_runs(
    a: RunResult | str,
    b: RunResult | str,
    *,
    dataset_name: str | None = None,
    client: Lanterna | None = None,
) -> RunComparison:
    """Two runs of a dataset side by side (results of :meth:`Dataset.run`, or run names
    with ``dataset_name``): each item's outputs and scores in both, and per score name
    the mean in each run and ``delta = b - a`` (None when either run has no numeric
    value for it)."""
    if not isinstance(a, str):
        dataset_name = dataset_name or a.dataset_name
    if dataset_name is None:
        raise ValueError("compare_runs needs dataset_name when given run names")
    run_a = a if isinstance(a, str) else a.run_name
    run_b = b if isinstance(b, str) else b.run_name
    client = _client_or_default(client)
    dataset_id = client._get("/api/public/v2/datasets/" + _path(dataset_name))["id"]
    items_a = _run_items(client, dataset_id, run_a)
    items_b = _run_items(client, dataset_id, run_b)
    rows = []
    for item_id in sorted(set(items_a) | set(items_b)):
        in_a, in_b = items_a.get(item_id), items_b.get(item_id)
        rows.append(
            ItemComparison(
                item_id=item_id,
                output_a=in_a["output"] if in_a else None,
                output_b=in_b["output"] if in_b else None,
                scores_a=in_a["scores"] if in_a else None,
                scores_b=in_b["scores"] if in_b else None,
            )
        )
    names = sorted({n for r in rows for s in (r.scores_a, r.scores_b) if s for n in s})
    aggregates: dict[str, dict[str, float | None]] = {}
    for name in names:
        mean_a = _mean((r.scores_a or {}).get(name) for r in rows)
        mean_b = _mean((r.scores_b or {}).get(name) for r in rows)
        delta = None if mean_a is None or mean_b is None else mean_b - mean_a
        aggregates[name] = {"a": mean_a, "b": mean_b, "delta": delta}
    return RunComparison(run_a, run_b, rows, aggregates)


def post_json(client: Lanterna, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a JSON body (retried twice on connection errors and 429/5xx: the dataset
    routes the SDK posts to are idempotent); the JSON answer."""
    reply = client.transport.request("POST", path, body, retries=2, clock=client._clock)
    data = reply.data()
    if not 200 <= reply.status_code < 300 or not isinstance(data, dict):
        raise LanternaAPIError(reply.status_code, data)
    return data
