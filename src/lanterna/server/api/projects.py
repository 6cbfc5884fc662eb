"""``GET /api/public/health`` (no auth) and ``GET /api/public/projects``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..._version import __version__
from ..auth import ProjectKey
from ..doc_models import DocModel, answer
from ..errors import not_found
from ..responses import JSON
from ..runtime import runtime
from ..shapes import project_json
from .body import ok
from .core_models import Projects

router = APIRouter()


class Health(DocModel):
    """``{"status": "OK", "version": ...}``; with the database unreachable (503) the
    status names the failure."""

    status: str
    version: str


_HEALTH = answer(Health, "Alive")


@router.get(
    "/api/public/health",
    responses={200: _HEALTH, 503: {**_HEALTH, "description": "The database is unavailable"}},
)
async def health(request: Request, failIfDatabaseUnavailable: bool = False) -> JSON:
    """Liveness; with ``failIfDatabaseUnavailable=true`` also a database round trip."""
    if failIfDatabaseUnavailable:
        try:
            await runtime(request).read(lambda c: c.scalar("SELECT 1"))
        except Exception as exc:
            return JSON(
                {"status": f"Database not available: {type(exc).__name__}", "version": __version__},
                status_code=503,
            )
    return JSON({"status": "OK", "version": __version__})


@router.get("/api/public/projects", responses=ok(Projects))
def list_projects(request: Request, principal: ProjectKey) -> JSON:
    """The key's own project (what ``auth_check()`` looks for)."""
    rt = runtime(request)
    row = rt.read_sync(lambda c: rt.store.projects.get_project(c, principal.project_id))
    if row is None:
        raise not_found("Project")
    return JSON({"data": [project_json(row)]})
