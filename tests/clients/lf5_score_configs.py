"""Create, list, read and archive score configs with the official Langfuse 5.x SDK's
``api.score_configs`` client.

Run under .venvs/langfuse5 by tests/test_score_configs.py, configured by
LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_BASE_URL. Prints one JSON line:
what the SDK parsed from each answer, and the status of a refused call.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langfuse import Langfuse
from langfuse.api import ConfigCategory
from langfuse.api.core.api_error import ApiError


def describe(config: Any) -> dict[str, Any]:
    """What the SDK made of one ScoreConfig: its model class and typed fields."""
    return {
        "class": type(config).__name__,
        "id": config.id,
        "name": config.name,
        "dataType": str(config.data_type),
        "isArchived": config.is_archived,
        "minValue": config.min_value,
        "maxValue": config.max_value,
        "categories": None
        if config.categories is None
        else [{"value": c.value, "label": c.label} for c in config.categories],
        "description": config.description,
        "createdAtType": type(config.created_at).__name__,
    }


def main() -> None:
    client = Langfuse()
    configs = client.api.score_configs
    numeric = configs.create(
        name="accuracy", data_type="NUMERIC", min_value=0, max_value=1, description="0..1"
    )
    categorical = configs.create(
        name="tone",
        data_type="CATEGORICAL",
        categories=[
            ConfigCategory(value=1, label="friendly"),
            ConfigCategory(value=0, label="rude"),
        ],
    )
    boolean = configs.create(name="correct", data_type="BOOLEAN")
    listed = configs.get(page=1, limit=2)
    fetched = configs.get_by_id(numeric.id)
    archived = configs.update(numeric.id, is_archived=True)
    try:
        configs.create(name="bad", data_type="TEXT", min_value=1)
        refused: Any = None
    except ApiError as exc:
        refused = exc.status_code
    client.shutdown()
    out = {
        "created": [describe(c) for c in (numeric, categorical, boolean)],
        "listed": [describe(c) for c in listed.data],
        "meta": {
            "page": listed.meta.page,
            "limit": listed.meta.limit,
            "totalItems": listed.meta.total_items,
            "totalPages": listed.meta.total_pages,
        },
        "fetched": describe(fetched),
        "archived": describe(archived),
        "refused": refused,
    }
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
