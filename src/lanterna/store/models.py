"""A project's custom model definitions (prices, match pattern, tiers, tokenizer)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from ..cost.calculate import Pricing
from ..cost.prices import PriceModel, custom_model, order_custom
from ..timeutil import now
from .db import Conn

_COLUMNS = (
    "id, project_id, model_name, match_pattern, start_date, unit, tokenizer_id,"
    " tokenizer_config, pricing_tiers, created_at, updated_at"
)


def _decode(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    d = conn.dialect
    row = dict(row)
    row["start_date"] = d.ts_parse(row["start_date"])
    row["created_at"] = d.ts_parse(row["created_at"])
    row["updated_at"] = d.ts_parse(row["updated_at"])
    row["tokenizer_config"] = d.json_out(row["tokenizer_config"])
    tiers = d.json_out(row["pricing_tiers"]) or []
    # Each tier gets a stable id derived from the model's (tiers are stored inline).
    row["pricing_tiers"] = [{"id": f"{row['id']}-tier-{i}", **t} for i, t in enumerate(tiers)]
    return row


def create(conn: Conn, project_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Store a validated model definition (:func:`lanterna.cost.prices.check_create`)."""
    d = conn.dialect
    model_id = str(uuid.uuid4())
    stamp = d.ts(now())
    conn.run(
        f"INSERT INTO models ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            model_id,
            project_id,
            fields["model_name"],
            fields["match_pattern"],
            d.ts(fields["start_date"]),
            fields["unit"],
            fields["tokenizer_id"],
            d.json(fields["tokenizer_config"]),
            d.json(fields["pricing_tiers"]),
            stamp,
            stamp,
        ),
    )
    row = get(conn, project_id, model_id)
    assert row is not None
    return row


def get(conn: Conn, project_id: str, model_id: str) -> dict[str, Any] | None:
    """One custom model of the project, decoded, or None."""
    row = conn.one(
        f"SELECT {_COLUMNS} FROM models WHERE project_id = ? AND id = ?", (project_id, model_id)
    )
    return None if row is None else _decode(conn, row)


def list_custom(conn: Conn, project_id: str) -> list[dict[str, Any]]:
    """All the project's custom models, newest first."""
    rows = conn.all(
        f"SELECT {_COLUMNS} FROM models WHERE project_id = ? ORDER BY created_at DESC, id DESC",
        (project_id,),
    )
    return [_decode(conn, r) for r in rows]


def delete(conn: Conn, project_id: str, model_id: str) -> bool:
    """Delete a custom model; False when the project has none with that id."""
    return (
        conn.run("DELETE FROM models WHERE project_id = ? AND id = ?", (project_id, model_id)) > 0
    )


# Converted PriceModels by (id, updated_at): a batch loads the rows, not the conversion.
_converted: dict[tuple[str, Any], PriceModel] = {}


def price_models(conn: Conn, project_id: str) -> list[PriceModel]:
    """The project's custom models as PriceModels, in matching order."""
    out = []
    for row in list_custom(conn, project_id):
        key = (row["id"], row["updated_at"])
        model = _converted.get(key)
        if model is None:
            if len(_converted) > 10_000:
                _converted.clear()
            model = _converted[key] = custom_model(row)
        out.append(model)
    return order_custom(out)


#: How long a process trusts the custom models it read (another process, e.g. a second
#: replica, may have changed them). Changes made through this process apply at once.
CACHE_SECONDS = 5.0
_cache: dict[str, tuple[float, int, list[PriceModel]]] = {}
_generation = [0]
_cache_lock = threading.Lock()


def forget(project_id: str) -> None:
    """Drop the cached custom models of a project (call after a committed change)."""
    with _cache_lock:
        _generation[0] += 1
        _cache.pop(project_id, None)


def cached_price_models(conn: Conn, project_id: str) -> list[PriceModel]:
    """:func:`price_models`, read at most every ``CACHE_SECONDS`` per project."""
    hit = _cache.get(project_id)
    if hit is not None and hit[0] > time.monotonic() and hit[1] == _generation[0]:
        return hit[2]
    generation = _generation[0]
    models = price_models(conn, project_id)
    with _cache_lock:
        # A change committed while we read may be missing from what we read: keep it
        # only if nothing was forgotten meanwhile.
        if generation == _generation[0]:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[project_id] = (time.monotonic() + CACHE_SECONDS, generation, models)
    return models


def pricing(conn: Conn, project_id: str) -> Pricing:
    """A pricing context for one write batch: custom models are read at most once."""
    return Pricing(lambda: cached_price_models(conn, project_id))
