"""The web dashboard, served by the same app under ``/`` (the API stays under ``/api``).

One router per page group; ``mount`` adds them, the static files and the redirect
handler to the app; ``error_page`` renders errors on its paths. See docs/ui.md.
"""

from __future__ import annotations

from fastapi import FastAPI

from .ab_tests_page import router as ab_tests_router
from .account import router as account_router
from .alerts_page import router as alerts_router
from .annotate_page import router as annotate_router
from .budgets_page import router as budgets_router
from .channels_page import router as channels_router
from .dashboards_page import router as dashboards_router
from .data_page import router as data_router
from .datasets_page import router as datasets_router
from .evaluations_page import router as evaluations_router
from .metrics_page import router as metrics_router
from .playground_page import router as playground_router
from .prompts_page import router as prompts_router
from .scores_page import router as scores_router
from .sessions_page import router as sessions_router
from .settings_page import router as settings_router
from .sso_page import router as sso_router
from .static import router as static_router
from .traces_page import router as traces_router
from .users_page import router as users_router
from .web import Redirect, error_page, ui_redirect

__all__ = ["error_page", "mount"]

ROUTERS = (
    static_router,
    account_router,
    sso_router,
    traces_router,
    sessions_router,
    users_router,
    scores_router,
    metrics_router,
    dashboards_router,
    alerts_router,
    budgets_router,
    prompts_router,
    datasets_router,
    ab_tests_router,
    settings_router,
    channels_router,
    data_router,
    annotate_router,
    playground_router,
    evaluations_router,
)


def mount(app: FastAPI) -> None:
    """Add the dashboard's routes and its redirect handler to ``app`` (its errors are
    answered by the app's one domain-error handler, with :func:`error_page`)."""
    app.add_exception_handler(Redirect, ui_redirect)
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)
