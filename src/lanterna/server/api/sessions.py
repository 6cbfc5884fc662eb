"""Sessions: routes of this resource (see the Langfuse contract, section 4)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
