"""Builders for Langfuse ingestion events, used across the tests."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)


def iso(dt: datetime | None = None, *, seconds: float = 0) -> str:
    """An ISO timestamp with ``Z``, ``seconds`` after ``dt`` (default T0)."""
    value = (dt or T0) + timedelta(seconds=seconds)
    return value.isoformat().replace("+00:00", "Z")


def event(
    type_: str, body: dict[str, Any], *, at: float = 0, id: str | None = None
) -> dict[str, Any]:
    """One ingestion envelope."""
    return {
        "id": id or str(uuid.uuid4()),
        "type": type_,
        "timestamp": iso(seconds=at),
        "body": body,
    }


def ingest(api: Any, *events: dict[str, Any], auth: Any = None) -> dict[str, Any]:
    """POST a batch, assert the 207, return the body."""
    kwargs = {"auth": auth} if auth is not None else {}
    response = api.post("/api/public/ingestion", json={"batch": list(events)}, **kwargs)
    assert response.status_code == 207, response.text
    return response.json()


def price_model(client: Any, model: str, input_price: float, output_price: float) -> None:
    """Create a custom model price matching exactly ``model`` (USD per token)."""
    response = client.post(
        "/api/public/models",
        json={
            "modelName": model,
            "matchPattern": f"^{model}$",
            "inputPrice": input_price,
            "outputPrice": output_price,
        },
    )
    assert response.status_code == 200, response.text


def write_row(db_url: str, sql: str, params: list[Any]) -> None:
    """Run one statement on the database at ``db_url`` in its own transaction (a test
    setting up a state the write path would not make)."""
    from lanterna.store.db import Database

    db = Database(db_url)
    try:
        with db.transaction() as conn:
            conn.run(sql, params)
    finally:
        db.close()
