"""Shared by the lf2_*.py scripts: run under .venvs/langfuse2 (the official Langfuse 2.x SDK).

The SDK never raises into user code: it logs what went wrong (a rejected batch, a
failed request) on the ``langfuse`` logger. Every script installs :func:`capture_log`
and prints what was logged, so the test can insist that the SDK saw no problem.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.levelname} {record.name}: {record.getMessage()}")


_handler = _Collect()


def capture_log() -> None:
    """Collect every warning or error the SDK logs (it logs instead of raising)."""
    root = logging.getLogger("langfuse")
    root.addHandler(_handler)
    root.setLevel(logging.WARNING)


def emit(result: dict[str, Any]) -> None:
    """Print the script's result as one JSON line, with what the SDK logged."""
    result["sdk_log"] = list(_handler.records)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
