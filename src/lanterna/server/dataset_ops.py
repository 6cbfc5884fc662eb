"""Dataset writes shared by the API (``api/datasets.py``) and the dashboard
(``ui/datasets_page.py``): each checked in the writer, before anything is written."""

from __future__ import annotations

import uuid
from typing import Any

from ..ingest.datasets import InvalidDataset, check_against, check_dataset, check_item
from ..store.db import Conn
from ..timeutil import now
from .dataset_shapes import dataset_json, item_json
from .errors import not_found
from .runtime import Runtime


async def upsert_dataset(rt: Runtime, project_id: str, body: Any) -> dict[str, Any]:
    """Create the dataset named in ``body`` or update it; a new JSON schema must hold for
    the items already stored (400 naming the first that fails). The Dataset JSON."""
    fields = check_dataset(body)
    datasets = rt.store.datasets

    def work(conn: Conn) -> dict[str, Any]:
        stored = datasets.dataset_by_name(conn, project_id, fields["name"])
        if stored is not None and ("input_schema" in fields or "expected_output_schema" in fields):
            merged = {**stored, **fields}
            for item in datasets.items_of_dataset(conn, project_id, stored["id"]):
                check_against(merged, item, f"existing item {item['id']!r}:")
        return dataset_json(conn.dialect, datasets.upsert_dataset(conn, project_id, fields, now()))

    return await rt.write(work)


async def save_item(rt: Runtime, project_id: str, body: Any) -> dict[str, Any]:
    """Create an item, or update the item with ``body["id"]`` (only the fields given),
    checked against its dataset's schemas (400) in a dataset that exists (404). The
    DatasetItem JSON."""
    fields = check_item(body)
    datasets = rt.store.datasets

    def work(conn: Conn) -> dict[str, Any]:
        name = fields.pop("dataset_name")
        dataset = datasets.dataset_by_name(conn, project_id, name)
        if dataset is None:
            raise not_found(f"Dataset {name!r}")
        item_id = fields.get("id") or str(uuid.uuid4())
        stored = datasets.get_item(conn, project_id, item_id)
        if stored is not None and stored["dataset_id"] != dataset["id"]:
            raise InvalidDataset(
                f"id: item {item_id!r} belongs to dataset {stored['dataset_name']!r};"
                " item ids are unique in a project"
            )
        item = {"status": "ACTIVE", **(stored or {}), **fields}
        item["id"], item["dataset_id"] = item_id, dataset["id"]
        check_against(dataset, item)
        return item_json(conn.dialect, datasets.put_item(conn, project_id, item, now()))

    return await rt.write(work)
