"""Lanterna: self-hosted LLM observability, compatible with the Langfuse wire protocol.

This package is the Python SDK::

    from lanterna import observe, context

    @observe()
    def answer(question: str) -> str:
        context.update_current_trace(user_id="u1", session_id="s1")
        return "42"

``import lanterna`` pulls in no server dependencies (only the standard library and
orjson). Its explicit calls raise ``LanternaError`` subclasses, never a third-party
exception; tracing never raises. The server lives in ``lanterna.server``
(``pip install 'lanterna[server]'``) and runs with ``lanterna serve``.
"""

from __future__ import annotations

from ._version import __version__

# The version comes first: the SDK modules read it while this module is still loading.
from .sdk.budgets import BudgetCheck, budget_guard
from .sdk.client import Lanterna, get_client, set_client
from .sdk.context import Context, context
from .sdk.datasets import (
    Dataset,
    DatasetItem,
    ItemResult,
    RunComparison,
    RunResult,
    compare_runs,
    create_dataset,
    create_dataset_item,
    get_dataset,
)
from .sdk.errors import (
    BudgetExceeded,
    LanternaAPIError,
    LanternaConnectionError,
    LanternaError,
    LanternaTimeoutError,
)
from .sdk.handles import ObservationHandle, StatefulObservation, StatefulTrace
from .sdk.observe import observe
from .sdk.prompts import Prompt, PromptError, PromptNotFoundError

__all__ = [
    "BudgetCheck",
    "BudgetExceeded",
    "Context",
    "Dataset",
    "DatasetItem",
    "ItemResult",
    "Lanterna",
    "LanternaAPIError",
    "LanternaConnectionError",
    "LanternaError",
    "LanternaTimeoutError",
    "ObservationHandle",
    "Prompt",
    "PromptError",
    "PromptNotFoundError",
    "RunComparison",
    "RunResult",
    "StatefulObservation",
    "StatefulTrace",
    "__version__",
    "budget_guard",
    "compare_runs",
    "context",
    "create_dataset",
    "create_dataset_item",
    "get_client",
    "get_dataset",
    "observe",
    "set_client",
]
