"""Helpers for the cost tests: read observations back through the public API."""

from __future__ import annotations

from typing import Any


def observation(api: Any, obs_id: str) -> dict[str, Any]:
    """``GET /api/public/observations/{id}`` (v1 ObservationsView)."""
    response = api.get(f"/api/public/observations/{obs_id}")
    assert response.status_code == 200, response.text
    return response.json()


def generation(
    obs_id: str, model: str | None, trace_id: str = "t", **fields: Any
) -> dict[str, Any]:
    """A generation-create body."""
    body: dict[str, Any] = {"id": obs_id, "traceId": trace_id, **fields}
    if model is not None:
        body["model"] = model
    return body
