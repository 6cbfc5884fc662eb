"""``create_app(settings)``: the ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .._version import __version__
from ..alerts.evaluator import ChannelLookup
from ..cost.builtin import warm_up as warm_up_prices
from ..store.interface import Store
from .api import (
    ab_tests,
    alerts,
    annotation_queues,
    blob_storage,
    budgets,
    channels,
    comments,
    dashboards,
    datasets,
    evaluations,
    experiments,
    feedback,
    ingestion,
    lifecycle,
    media,
    metrics,
    models,
    observations,
    org_projects,
    organizations,
    otel,
    projects,
    prompts,
    scim,
    score_configs,
    scores,
    sessions,
    traces,
    users,
)
from .channel_ops import stored_channels_of_rules
from .errors import RESPONSES as ERROR_RESPONSES
from .errors import install as install_error_handlers
from .guards import PublicApiCors, RequestGuard, SlowBodyGuard, trust_proxies
from .openapi import install as install_openapi
from .runtime import Runtime
from .settings import Settings
from .ui import error_page
from .ui import mount as mount_ui


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    alert_channels: ChannelLookup | None = None,
) -> FastAPI:
    """Build the app. The database is migrated and the writer (and the alert evaluator)
    started in the lifespan.

    ``store`` is what every route reads and writes stored data through (the
    SQLite/PostgreSQL :class:`~lanterna.store.interface.SqlStore` by default);
    ``alert_channels`` gives the channels an alert rule notifies (by default the rule's
    stored channels: ``channel_ops.rule_channels``).
    """
    settings = settings or Settings.from_env()
    rt = Runtime(settings, store, alert_channels or stored_channels_of_rules(lambda: rt))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt.start()
        receiver = None
        try:  # whatever fails from here, the runtime's threads stop
            warm_up_prices()  # load genai-prices' data off the request path
            if settings.otlp_grpc_port:  # OTLP over gRPC, off unless asked for
                from .otlp_grpc import GrpcReceiver

                receiver = GrpcReceiver(rt, settings.host, settings.otlp_grpc_port)
                receiver.start()
            app.state.otlp_grpc = receiver
            yield
        finally:
            if receiver is not None:
                receiver.stop()
            rt.stop()

    app = FastAPI(
        title="Lanterna",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.runtime = rt
    install_error_handlers(app, html_page=error_page)  # JSON on the API, HTML on the UI
    # Browser SDKs post scores cross-origin: CORS on /api/public only, no credentials.
    app.add_middleware(PublicApiCors)
    app.add_middleware(SlowBodyGuard, seconds=settings.body_timeout_ms / 1000)
    # Refuses NUL bytes in paths and query strings before CORS or any route runs; HSTS
    # when the public URL is https.
    app.add_middleware(RequestGuard, hsts=settings.base_url.startswith("https://"))
    # X-Forwarded-For/-Proto only from the proxies in forwarded_allow_ips (off by default).
    trust_proxies(app, settings.forwarded_allow_ips)
    for module in (projects, ingestion, traces, observations, sessions, scores, prompts, otel):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.include_router(score_configs.router, responses=ERROR_RESPONSES)
    for module in (models, metrics, users):  # cost tracking
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.include_router(dashboards.router, responses=ERROR_RESPONSES)
    app.include_router(budgets.router, responses=ERROR_RESPONSES)
    app.include_router(channels.router, responses=ERROR_RESPONSES)  # alert channels
    app.include_router(alerts.router, responses=ERROR_RESPONSES)
    app.include_router(lifecycle.router, responses=ERROR_RESPONSES)  # retention, export, audit
    app.include_router(datasets.router, responses=ERROR_RESPONSES)  # datasets, runs
    app.include_router(experiments.router, responses=ERROR_RESPONSES)  # runs, read-only
    for module in (comments, annotation_queues, evaluations):  # evaluation and annotation
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.include_router(ab_tests.router, responses=ERROR_RESPONSES)
    app.include_router(media.router, responses=ERROR_RESPONSES)  # /api/public/media
    app.include_router(organizations.router, responses=ERROR_RESPONSES)  # org-key routes
    app.include_router(org_projects.router, responses=ERROR_RESPONSES)  # projects, their keys
    app.include_router(scim.router, responses=ERROR_RESPONSES)  # SCIM 2.0 provisioning
    app.include_router(feedback.router, responses=ERROR_RESPONSES)  # POST /api/public/feedback
    app.include_router(blob_storage.router, responses=ERROR_RESPONSES)  # scheduled exports
    mount_ui(app)  # the dashboard under /
    install_openapi(app)  # auth schemes and the answers every route may give
    return app
