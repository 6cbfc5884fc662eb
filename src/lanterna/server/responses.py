"""The JSON response used by every route: orjson, UTF-8, no pydantic on the way out."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from .. import _json


class JSON(Response):
    """A response whose body is ``content`` encoded with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode the body."""
        return _json.dumpb(content)
