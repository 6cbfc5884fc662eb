"""Static files: our CSS and JS from this package, plotly.js from the ``plotly`` wheel."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from .web import HERE

router = APIRouter()

_OWN = {
    "app.css": "text/css",
    "app.js": "text/javascript",
    "charts.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
_LONG_CACHE = "public, max-age=86400"


@cache
def plotly_js() -> Path:
    """The minified plotly.js bundled in the installed ``plotly`` package."""
    import plotly

    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js not found in the plotly package at {path}")
    return path


@cache
def asset_version() -> str:
    """A short hash of our own static files, appended to their URLs to bust caches."""
    digest = hashlib.sha256()
    for name in sorted(_OWN):
        digest.update((HERE / "static" / name).read_bytes())
    return digest.hexdigest()[:10]


@router.get("/static/{name}")
def own_file(name: str) -> Response:
    """One of the dashboard's own CSS/JS files."""
    if name not in _OWN:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(
        HERE / "static" / name, media_type=_OWN[name], headers={"Cache-Control": _LONG_CACHE}
    )


@router.get("/favicon.ico")
def favicon() -> Response:
    """The icon, for browsers and tools that ask at the conventional path (an SVG)."""
    return own_file("favicon.svg")


@router.get("/static/vendor/plotly.min.js")
def plotly_file() -> Response:
    """plotly.js, served from the plotly wheel's package data (never copied here)."""
    return FileResponse(
        plotly_js(), media_type="text/javascript", headers={"Cache-Control": _LONG_CACHE}
    )
