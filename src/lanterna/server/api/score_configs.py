"""Score configs (contract 4.2): create, list (newest first), get, update/archive.

Validation follows Langfuse: categories only (and always) for CATEGORICAL configs,
a range only for NUMERIC ones, BOOLEAN configs get the generated True/False categories.
Scores that name a config are checked against it in the scores and ingestion routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ...ingest.score_configs import check_config, check_update
from ...store.db import Conn
from ..auth import ProjectKey
from ..errors import not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import config_json
from .body import json_body, ok, read_json
from .params import LimitParam, PageParam, page_of
from .score_schemas import ScoreConfig, ScoreConfigBody, ScoreConfigList, ScoreConfigPatch

router = APIRouter()

PATH = "/api/public/score-configs"


# POST and PATCH stay looser in the document than their checks: rules between fields
# (categories for CATEGORICAL configs only and always, a range for NUMERIC ones only,
# minValue <= maxValue, unique category labels and values; a PATCH is checked merged
# with the stored config) are not JSON Schema.
@router.post(PATH, responses=ok(ScoreConfig), openapi_extra=json_body(ScoreConfigBody))
async def create_config(request: Request, principal: ProjectKey) -> JSON:
    """Create a config (200 with the ScoreConfig)."""
    fields = check_config(await read_json(request))
    project_id = principal.project_id
    configs = runtime(request).store.score_configs
    created = await runtime(request).write(
        lambda conn: config_json(conn.dialect, configs.create(conn, project_id, fields))
    )
    return JSON(created)


@router.get(PATH, responses=ok(ScoreConfigList))
async def list_configs(
    request: Request, principal: ProjectKey, page: PageParam = None, limit: LimitParam = None
) -> JSON:
    """The project's configs, newest first, in the v1 page envelope."""
    paging = page_of(page, limit)
    project_id = principal.project_id
    configs = runtime(request).store.score_configs

    def read(conn: Conn) -> dict[str, Any]:
        rows, total = configs.page(conn, project_id, paging.limit, paging.offset)
        return paging.envelope([config_json(conn.dialect, r) for r in rows], total)

    return JSON(await runtime(request).read(read))


@router.get(PATH + "/{config_id}", responses=ok(ScoreConfig))
async def get_config(request: Request, config_id: str, principal: ProjectKey) -> JSON:
    """One config of the project (404 when missing)."""
    project_id = principal.project_id
    configs = runtime(request).store.score_configs

    def read(conn: Conn) -> dict[str, Any] | None:
        row = configs.get(conn, project_id, config_id)
        return None if row is None else config_json(conn.dialect, row)

    found = await runtime(request).read(read)
    if found is None:
        raise not_found(f"Score config {config_id}")
    return JSON(found)


@router.patch(
    PATH + "/{config_id}", responses=ok(ScoreConfig), openapi_extra=json_body(ScoreConfigPatch)
)
async def update_config(request: Request, config_id: str, principal: ProjectKey) -> JSON:
    """Change a config's fields (incl. ``isArchived``); the result is validated as on
    create. ``dataType`` cannot change."""
    patch = await read_json(request)
    project_id = principal.project_id
    configs = runtime(request).store.score_configs

    def work(conn: Conn) -> dict[str, Any] | None:
        # In the writer, so the read and the update see the same config.
        stored = configs.get(conn, project_id, config_id)
        if stored is None:
            return None
        fields = check_update(stored, patch)  # InvalidConfig: a 400, nothing written
        return config_json(conn.dialect, configs.update(conn, project_id, config_id, fields))

    outcome = await runtime(request).write(work)
    if outcome is None:
        raise not_found(f"Score config {config_id}")
    return JSON(outcome)
