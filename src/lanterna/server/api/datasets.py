"""Datasets, dataset items, runs and run items (contract 4.4).

- ``/api/public/v2/datasets``: list, upsert by name, get by name (no items);
- the legacy v1 routes the SDKs still call: ``/api/public/datasets`` (list, create) and
  ``/api/public/datasets/{name}`` (with ``items`` and ``runs``), a dataset's runs
  (``/runs``, ``/runs/{runName}``: get with its run items, delete);
- ``/api/public/dataset-items``: create or upsert by ``id``, list (by dataset, source
  trace or observation, ``version`` = as of a timestamp), get, delete;
- ``/api/public/dataset-run-items``: link a trace (or observation) to an item in a run,
  the run created on first use; list a run's items.

Every write runs in the writer and is checked there before anything is written: an
item that violates its dataset's JSON schema, an unknown dataset or item, a run item
without a trace or observation id are a 4xx naming the problem, nothing stored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ...ingest.datasets import InvalidDataset, check_run_item
from ...store.db import Conn
from ...store.interface import Datasets, Store
from ...timeutil import now, parse_ts
from ..audit import audit, created_or_updated
from ..auth import Principal, ProjectKey
from ..dataset_ops import save_item, upsert_dataset
from ..dataset_shapes import dataset_json, item_json, run_item_json, run_json
from ..errors import ApiError, not_found
from ..responses import JSON
from ..runtime import runtime
from . import dataset_models as m
from .body import Deleted, json_body, ok, read_json
from .params import LimitParam, PageParam, page_of

router = APIRouter(tags=["Datasets"])

V2 = "/api/public/v2/datasets"
V1 = "/api/public/datasets"
ITEMS = "/api/public/dataset-items"
RUN_ITEMS = "/api/public/dataset-run-items"


def _store(request: Request) -> Store:
    return runtime(request).store


def _dataset(store: Datasets, conn: Conn, project_id: str, name: str) -> dict[str, Any]:
    found = store.dataset_by_name(conn, project_id, name)
    if found is None:
        raise not_found(f"Dataset {name!r}")
    return found


# --- datasets --------------------------------------------------------------------------


async def _upsert(request: Request, principal: Principal) -> dict[str, Any]:
    rt = runtime(request)
    shown = await upsert_dataset(rt, principal.project_id, await read_json(request))
    await audit(rt, principal, f"dataset.{created_or_updated(shown)}", shown["id"],
                {"name": shown["name"]})  # fmt: skip
    return shown


_DATASET_BODY = json_body(m.DatasetBody)


@router.post(V2, responses=ok(m.Dataset), openapi_extra=_DATASET_BODY)
async def create_dataset(request: Request, principal: ProjectKey) -> JSON:
    """Create a dataset, or update the one with this name (200 with the Dataset)."""
    return JSON(await _upsert(request, principal))


@router.get(V2, responses=ok(m.PaginatedDatasets))
async def list_datasets(
    request: Request, principal: ProjectKey, page: PageParam = None, limit: LimitParam = None
) -> JSON:
    """The project's datasets, newest first (v1 page envelope)."""
    paging = page_of(page, limit)
    datasets = _store(request).datasets

    def read(conn: Conn) -> dict[str, Any]:
        rows, total = datasets.page_datasets(
            conn, principal.project_id, paging.limit, paging.offset
        )
        return paging.envelope([dataset_json(conn.dialect, r) for r in rows], total)

    return JSON(await runtime(request).read(read))


@router.get(V2 + "/{dataset_name:path}", responses=ok(m.Dataset))
async def get_dataset(request: Request, dataset_name: str, principal: ProjectKey) -> JSON:
    """One dataset by name, without its items (404 when missing)."""
    datasets = _store(request).datasets

    def read(conn: Conn) -> dict[str, Any]:
        return dataset_json(
            conn.dialect, _dataset(datasets, conn, principal.project_id, dataset_name)
        )

    return JSON(await runtime(request).read(read))


def _legacy(conn: Conn, datasets: Datasets, project_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """The v1 Dataset: with its active items and the names of its runs."""
    items, _ = datasets.page_items(
        conn, project_id, dataset_id=row["id"], limit=1_000_000, offset=0
    )
    runs, _ = datasets.page_runs(conn, project_id, row["id"], 1_000_000, 0)
    return {
        **dataset_json(conn.dialect, row),
        "items": [item_json(conn.dialect, i) for i in items],
        "runs": [r["name"] for r in runs],
    }


@router.post(V1, responses=ok(m.Dataset), openapi_extra=_DATASET_BODY)
async def create_dataset_v1(request: Request, principal: ProjectKey) -> JSON:
    """Legacy create (the JS v3 SDK's ``createDataset``): as the v2 upsert."""
    return JSON(await _upsert(request, principal))


@router.get(V1, responses=ok(m.PaginatedLegacyDatasets))
async def list_datasets_v1(
    request: Request, principal: ProjectKey, page: PageParam = None, limit: LimitParam = None
) -> JSON:
    """Legacy list: each dataset with its items and run names."""
    paging = page_of(page, limit)
    datasets = _store(request).datasets
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any]:
        rows, total = datasets.page_datasets(conn, project_id, paging.limit, paging.offset)
        return paging.envelope([_legacy(conn, datasets, project_id, r) for r in rows], total)

    return JSON(await runtime(request).read(read))


@router.get(V1 + "/{dataset_name:path}/runs/{run_name:path}", responses=ok(m.DatasetRunWithItems))
async def get_run(
    request: Request, dataset_name: str, run_name: str, principal: ProjectKey
) -> JSON:
    """A dataset run with its run items (404 for an unknown dataset or run)."""
    datasets = _store(request).datasets
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any]:
        dataset = _dataset(datasets, conn, project_id, dataset_name)
        run = datasets.get_run(conn, project_id, dataset["id"], run_name)
        if run is None:
            raise not_found(f"Dataset run {run_name!r}")
        items, _ = datasets.page_run_items(conn, project_id, run["id"], 1_000_000, 0)
        out = run_json(conn.dialect, run)
        out["datasetRunItems"] = [run_item_json(conn.dialect, i) for i in items]
        return out

    return JSON(await runtime(request).read(read))


@router.delete(V1 + "/{dataset_name:path}/runs/{run_name:path}", responses=ok(Deleted))
async def delete_run(
    request: Request, dataset_name: str, run_name: str, principal: ProjectKey
) -> JSON:
    """Delete a dataset run and its run items (the traces stay)."""
    datasets = _store(request).datasets
    project_id = principal.project_id

    def work(conn: Conn) -> None:
        dataset = _dataset(datasets, conn, project_id, dataset_name)
        run = datasets.get_run(conn, project_id, dataset["id"], run_name)
        if run is None:
            raise not_found(f"Dataset run {run_name!r}")
        datasets.delete_run(conn, project_id, run["id"])

    await runtime(request).write(work)
    detail = {"dataset": dataset_name, "run": run_name}
    await audit(runtime(request), principal, "dataset_run.delete", run_name, detail)
    return JSON({"message": "Dataset run successfully deleted"})


@router.get(V1 + "/{dataset_name:path}/runs", responses=ok(m.PaginatedDatasetRuns))
async def list_runs(
    request: Request,
    dataset_name: str,
    principal: ProjectKey,
    page: PageParam = None,
    limit: LimitParam = None,
) -> JSON:
    """A dataset's runs, newest first (v1 page envelope)."""
    paging = page_of(page, limit)
    datasets = _store(request).datasets
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any]:
        dataset = _dataset(datasets, conn, project_id, dataset_name)
        rows, total = datasets.page_runs(
            conn, project_id, dataset["id"], paging.limit, paging.offset
        )
        return paging.envelope([run_json(conn.dialect, r) for r in rows], total)

    return JSON(await runtime(request).read(read))


@router.get(V1 + "/{dataset_name:path}", responses=ok(m.LegacyDataset))
async def get_dataset_v1(request: Request, dataset_name: str, principal: ProjectKey) -> JSON:
    """Legacy get by name: the dataset with its active items and run names."""
    datasets = _store(request).datasets
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any]:
        row = _dataset(datasets, conn, project_id, dataset_name)
        return _legacy(conn, datasets, project_id, row)

    return JSON(await runtime(request).read(read))


# --- items -----------------------------------------------------------------------------


@router.post(ITEMS, responses=ok(m.DatasetItem), openapi_extra=json_body(m.DatasetItemBody))
async def create_item(request: Request, principal: ProjectKey) -> JSON:
    """Create an item, or update the item with this ``id`` (only the fields given);
    checked against the dataset's schemas (400, nothing written)."""
    rt = runtime(request)
    shown = await save_item(rt, principal.project_id, await read_json(request))
    verb = created_or_updated(shown)
    detail = {"dataset": shown["datasetName"]}
    await audit(rt, principal, f"dataset_item.{verb}", shown["id"], detail)
    return JSON(shown)


@router.get(ITEMS, responses=ok(m.PaginatedDatasetItems))
async def list_items(
    request: Request,
    principal: ProjectKey,
    datasetName: str | None = None,
    sourceTraceId: str | None = None,
    sourceObservationId: str | None = None,
    version: Annotated[str | None, Query(json_schema_extra={"format": "date-time"})] = None,
    page: PageParam = None,
    limit: LimitParam = None,
) -> JSON:
    """Active items, newest first; ``version`` (with ``datasetName``): as they were at
    that time."""
    paging = page_of(page, limit)
    at = None
    if version is not None:
        if datasetName is None:
            raise ApiError(400, "Invalid request data", "version: needs datasetName")
        try:
            at = parse_ts(version)
        except ValueError as exc:
            raise ApiError(400, "Invalid request data", f"version: {exc}") from None
    datasets = _store(request).datasets
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any]:
        dataset_id = None
        if datasetName is not None:
            dataset_id = _dataset(datasets, conn, project_id, datasetName)["id"]
        rows, total = datasets.page_items(
            conn,
            project_id,
            dataset_id=dataset_id,
            source_trace_id=sourceTraceId,
            source_observation_id=sourceObservationId,
            version=at,
            limit=paging.limit,
            offset=paging.offset,
        )
        return paging.envelope([item_json(conn.dialect, r) for r in rows], total)

    return JSON(await runtime(request).read(read))


@router.get(ITEMS + "/{item_id:path}", responses=ok(m.DatasetItem))
async def get_item(request: Request, item_id: str, principal: ProjectKey) -> JSON:
    """One item, whatever its status (404 when missing)."""
    datasets = _store(request).datasets

    def read(conn: Conn) -> dict[str, Any] | None:
        row = datasets.get_item(conn, principal.project_id, item_id)
        return None if row is None else item_json(conn.dialect, row)

    found = await runtime(request).read(read)
    if found is None:
        raise not_found(f"Dataset item {item_id!r}")
    return JSON(found)


@router.delete(ITEMS + "/{item_id:path}", responses=ok(Deleted))
async def delete_item(request: Request, item_id: str, principal: ProjectKey) -> JSON:
    """Delete an item and its run items (reads as of an earlier ``version`` still see
    it)."""
    datasets = _store(request).datasets
    project_id = principal.project_id
    deleted = await runtime(request).write(
        lambda conn: datasets.delete_item(conn, project_id, item_id, now())
    )
    if not deleted:
        raise not_found(f"Dataset item {item_id!r}")
    await audit(runtime(request), principal, "dataset_item.delete", item_id)
    return JSON({"message": "Dataset item successfully deleted"})


# --- run items -------------------------------------------------------------------------


@router.post(
    RUN_ITEMS, responses=ok(m.DatasetRunItem), openapi_extra=json_body(m.DatasetRunItemBody)
)
async def create_run_item(request: Request, principal: ProjectKey) -> JSON:
    """Link a trace (or an observation: its trace is looked up) to a dataset item in a
    run, creating the run on first use."""
    fields = check_run_item(await read_json(request))
    store = _store(request)
    project_id = principal.project_id

    def work(conn: Conn) -> dict[str, Any]:
        item = store.datasets.get_item(conn, project_id, fields["dataset_item_id"])
        if item is None:
            raise not_found(f"Dataset item {fields['dataset_item_id']!r}")
        trace_id = fields["trace_id"]
        if trace_id is None:
            observation = store.observations.get_observation(
                conn, project_id, fields["observation_id"]
            )
            if observation is None:
                raise InvalidDataset(
                    f"observation {fields['observation_id']!r} is not stored yet: send its traceId"
                )
            trace_id = observation["trace_id"]
        at = now()
        is_new = store.datasets.get_run(conn, project_id, item["dataset_id"], fields["run_name"])
        new_run.append(is_new is None)
        run = store.datasets.ensure_run(
            conn,
            project_id,
            item["dataset_id"],
            fields["run_name"],
            description=fields["description"],
            metadata=fields["metadata"],
            at=at,
        )
        row = store.datasets.add_run_item(
            conn,
            project_id,
            run["id"],
            item["id"],
            trace_id,
            fields["observation_id"],
            dataset_version=fields["dataset_version"],
            created_at=fields["created_at"] or at,
            at=at,
        )
        return run_item_json(conn.dialect, row)

    new_run: list[bool] = []
    rt = runtime(request)
    shown = await rt.write(work)
    if new_run[-1]:  # the run was created by this link (run items themselves are data)
        detail = {"name": fields["run_name"]}
        await audit(rt, principal, "dataset_run.create", shown["datasetRunId"], detail)
    return JSON(shown)


@router.get(RUN_ITEMS, responses=ok(m.PaginatedDatasetRunItems))
async def list_run_items(
    request: Request,
    principal: ProjectKey,
    datasetId: Annotated[str, Query(min_length=1)],
    runName: Annotated[str, Query(min_length=1)],
    page: PageParam = None,
    limit: LimitParam = None,
) -> JSON:
    """A run's items, oldest first; ``datasetId`` and ``runName`` required."""
    paging = page_of(page, limit)
    datasets = _store(request).datasets
    project_id = principal.project_id

    def read(conn: Conn) -> dict[str, Any]:
        run = datasets.get_run(conn, project_id, datasetId, runName)
        if run is None:
            raise not_found(f"Dataset run {runName!r}")
        rows, total = datasets.page_run_items(
            conn, project_id, run["id"], paging.limit, paging.offset
        )
        return paging.envelope([run_item_json(conn.dialect, r) for r in rows], total)

    return JSON(await runtime(request).read(read))
