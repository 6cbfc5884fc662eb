"""Datasets in the dashboard: the list (with a form to create one), a dataset's page
(its items, with forms to add and edit them, and its runs with their mean scores), an
item made from a trace or one of its observations, and runs compared side by side.

Everyone with access reads; members and above (``edit_datasets``) write. Writes go
through ``server/dataset_ops.py``, so the API's checks apply (a JSON schema violated, a
name taken by another dataset's item id: the page again with the reason, nothing
written)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ... import _json
from ...errors import DomainError
from ...queries import datasets as views
from ...store.db import Conn
from .. import dataset_ops as ops
from ..audit import audit, created_or_updated
from .web import Form, Page, not_found, page_form, project_page, redirect, render, rt_of

router = APIRouter()


def _base(pid: str) -> str:
    return f"/project/{pid}/datasets"


def _json_field(form: Form, name: str, *, text_ok: bool) -> Any:
    """A form field as JSON: empty is None; text that is not JSON is a string when
    ``text_ok`` (an input or output may be plain text), else a 400 naming the field."""
    raw = form.raw(name).strip()
    if not raw:
        return None
    try:
        return _json.loads(raw)
    except _json.JSONDecodeError:
        if text_ok:
            return raw
        raise DomainError(f"{name.replace('_', ' ')}: not valid JSON", status=400) from None


async def _list(request: Request, page: Page, *, status: int = 200, error: str = "") -> Response:
    store = rt_of(request).store

    def read(conn: Conn) -> list[dict[str, Any]]:
        rows, _ = store.datasets.page_datasets(conn, page.pid, 500, 0)
        counts = store.datasets.dataset_counts(conn, page.pid, [r["id"] for r in rows])
        return [{**r, "items": counts[r["id"]][0], "runs": counts[r["id"]][1]} for r in rows]

    found = await rt_of(request).read(read)
    return render(
        request, "datasets.html", {"datasets": found, "error": error}, page=page, status=status
    )


@router.get("/project/{project_id}/datasets")
async def datasets(request: Request, project_id: str) -> Response:
    """The project's datasets."""
    return await _list(request, await project_page(request, project_id))


@router.post("/project/{project_id}/datasets")
async def create_dataset(request: Request, project_id: str) -> Response:
    """Create a dataset (or update the one with this name) from the form."""
    page, form = await page_form(request, project_id, "edit_datasets")
    try:
        body = {
            "name": form.get("name"),
            "description": form.get("description") or None,
            "inputSchema": _json_field(form, "input_schema", text_ok=False),
            "expectedOutputSchema": _json_field(form, "expected_output_schema", text_ok=False),
        }
        created = await ops.upsert_dataset(rt_of(request), page.pid, body)
    except DomainError as exc:
        if exc.status >= 500:
            raise
        return await _list(request, page, status=exc.status, error=exc.message)
    verb = created_or_updated(created)
    await audit(rt_of(request), page, f"dataset.{verb}", created["id"], {"name": created["name"]})
    return redirect(f"{_base(page.pid)}/{created['id']}")


# --- an item from a trace or an observation --------------------------------------------


def _source(store: Any, conn: Conn, pid: str, trace_id: str, observation_id: str) -> Any:
    """``(input, output)`` of the observation (when given) or the trace; None if absent."""
    if observation_id:
        row = store.observations.get_observation(conn, pid, observation_id)
    else:
        row = store.traces.get_trace(conn, pid, trace_id)
    if row is None:
        return None
    return conn.dialect.json_out(row["input"]), conn.dialect.json_out(row["output"])


async def _new_item_page(
    request: Request, page: Page, values: dict[str, str], *, status: int = 200, error: str = ""
) -> Response:
    store = rt_of(request).store
    names = await rt_of(request).read(
        lambda conn: [r["name"] for r in store.datasets.page_datasets(conn, page.pid, 500, 0)[0]]
    )
    context = {"values": values, "names": names, "error": error}
    return render(request, "dataset_new_item.html", context, page=page, status=status)


def _pretty(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else _json.dumps(value)


@router.get("/project/{project_id}/datasets/new-item")
async def new_item(
    request: Request, project_id: str, traceId: str = "", observationId: str = ""
) -> Response:
    """The form to add an item made from a trace (or one of its observations): its input
    and output prefilled as the item's input and expected output."""
    page = await project_page(request, project_id, "edit_datasets")
    store = rt_of(request).store
    found = await rt_of(request).read(
        lambda conn: _source(store, conn, page.pid, traceId, observationId)
    )
    if found is None:
        raise not_found("Trace or observation")
    values = {
        "trace_id": traceId,
        "observation_id": observationId,
        "input": _pretty(found[0]),
        "expected_output": _pretty(found[1]),
        "dataset": "",
    }
    return await _new_item_page(request, page, values)


@router.post("/project/{project_id}/datasets/new-item")
async def add_item_from_source(request: Request, project_id: str) -> Response:
    """Add the item (creating the dataset when the name is new); then its dataset."""
    page, form = await page_form(request, project_id, "edit_datasets")
    rt = rt_of(request)
    values = {
        k: form.raw(k) for k in ("trace_id", "observation_id", "input", "expected_output")
    } | {"dataset": form.get("dataset")}
    try:
        name = form.get("dataset")
        if not name:
            raise DomainError("dataset: choose a dataset or name a new one", status=400)
        exists = await rt.read(lambda conn: rt.store.datasets.dataset_by_name(conn, page.pid, name))
        if exists is None:
            made = await ops.upsert_dataset(rt, page.pid, {"name": name})
            await audit(rt, page, "dataset.create", made["id"], {"name": name})
        item = await ops.save_item(
            rt,
            page.pid,
            {
                "datasetName": name,
                "input": _json_field(form, "input", text_ok=True),
                "expectedOutput": _json_field(form, "expected_output", text_ok=True),
                "sourceTraceId": form.get("trace_id") or None,
                "sourceObservationId": form.get("observation_id") or None,
            },
        )
    except DomainError as exc:
        if exc.status >= 500:
            raise
        return await _new_item_page(request, page, values, status=exc.status, error=exc.message)
    await audit(rt, page, "dataset_item.create", item["id"], {"dataset": name})
    return redirect(f"{_base(page.pid)}/{item['datasetId']}")


# --- a dataset -------------------------------------------------------------------------


async def _dataset_page(
    request: Request, page: Page, dataset_id: str, *, status: int = 200, error: str = ""
) -> Response:
    store = rt_of(request).store
    found = await rt_of(request).read(
        lambda conn: views.dataset_view(store, conn, page.pid, dataset_id)
    )
    if found is None:
        raise not_found("Dataset")
    dataset, items, total, runs = found
    context = {
        "dataset": dataset,
        "items": items,
        "total": total,
        "runs": runs,
        "error": error,
        "pretty": _pretty,
        "limit": views.ITEM_LIMIT,
    }
    return render(request, "dataset.html", context, page=page, status=status)


@router.get("/project/{project_id}/datasets/{dataset_id}")
async def dataset(request: Request, project_id: str, dataset_id: str) -> Response:
    """A dataset: its items and its runs."""
    return await _dataset_page(request, await project_page(request, project_id), dataset_id)


@router.post("/project/{project_id}/datasets/{dataset_id}/items")
async def save_item(request: Request, project_id: str, dataset_id: str) -> Response:
    """Add an item, or save an edited one (``item_id``), from the form."""
    page, form = await page_form(request, project_id, "edit_datasets")
    rt = rt_of(request)
    found = await rt.read(lambda conn: rt.store.datasets.get_dataset(conn, page.pid, dataset_id))
    if found is None:
        raise not_found("Dataset")
    try:
        body = {
            "datasetName": found["name"],
            "id": form.get("item_id") or None,
            "input": _json_field(form, "input", text_ok=True),
            "expectedOutput": _json_field(form, "expected_output", text_ok=True),
            "metadata": _json_field(form, "metadata", text_ok=False),
            "status": form.get("status") or None,
        }
        item = await ops.save_item(rt, page.pid, body)
    except DomainError as exc:
        if exc.status >= 500:
            raise
        return await _dataset_page(request, page, dataset_id, status=exc.status, error=exc.message)
    verb = created_or_updated(item)
    await audit(rt, page, f"dataset_item.{verb}", item["id"], {"dataset": found["name"]})
    return redirect(f"{_base(page.pid)}/{dataset_id}")


@router.get("/project/{project_id}/datasets/{dataset_id}/compare")
async def compare(request: Request, project_id: str, dataset_id: str) -> Response:
    """Runs side by side (``?runs=<id>&runs=<id>``, two or more): per item the outputs
    and scores, per score the means and the deltas from the first run."""
    page = await project_page(request, project_id)
    run_ids = [r for r in request.query_params.getlist("runs") if r]
    if len(run_ids) < 2:
        raise DomainError("Pick at least two runs to compare.", status=400)
    store = rt_of(request).store

    def read(conn: Conn) -> Any:
        dataset = store.datasets.get_dataset(conn, page.pid, dataset_id)
        if dataset is None:
            return None
        return dataset, views.compare_runs(store, conn, page.pid, dataset_id, run_ids)

    found = await rt_of(request).read(read)
    if found is None or found[1] is None:
        raise not_found("Dataset run")
    context = {"dataset": found[0], "cmp": found[1], "pretty": _pretty}
    return render(request, "dataset_compare.html", context, page=page)
