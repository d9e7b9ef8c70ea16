"""``create_app(settings)``: the HTTP service, built from one settings object.

The app owns what it opens (the vault, its store and key store) and closes them on shutdown.
Routers: ``/v1`` (the API, in the OpenAPI document), the transparency portal (``/portal``) and
the auditor dashboard (``/dashboard``), which are server-rendered pages outside the document.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI

from custodes.api._credentials import Credentials
from custodes.api._errors import install_error_handlers
from custodes.api._express import ExpressLane
from custodes.api._guard import CACHE_SECONDS
from custodes.api._limits import BodyLimit
from custodes.api._metrics import MetricsMiddleware
from custodes.api._openapi import complete_document
from custodes.api._service import Service
from custodes.clock import Clock, system_clock
from custodes.config import Settings
from custodes.ledger import CheckpointLog
from custodes.vault import Vault

__all__ = ["create_app"]

# FastAPI 0.16x reports every request to OpenTelemetry's global providers unless told not to:
# a lookup of three providers and of OTEL_* variables per request (py-spy, bench/http.py: ~2 %
# of an audited read's samples, ~10 % of a health check's), and request metadata (routes,
# status) handed to whatever exporter another library may have installed. custodes reports
# through its own /metrics and access log only.
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def create_app(
    settings: Settings, *, clock: Clock = system_clock, vault: Vault | None = None
) -> FastAPI:
    """Build the service for the vault home ``settings`` describe.

    ``vault`` lets an embedding program (or a test) pass a vault it opened itself; the app then
    closes it on shutdown all the same.

    Raises:
        ConfigError: a key file, schema or policy is missing or invalid, or the OIDC settings
            name an unusable JWKS.
        StoreError: the database cannot be opened.
    """
    opened = vault if vault is not None else Vault.open(settings, clock=clock)
    try:
        service = Service(
            settings=settings,
            vault=opened,
            credentials=Credentials(store=opened.store, clock=clock, cache_seconds=CACHE_SECONDS),
            checkpoints=CheckpointLog.open(settings),
            clock=clock,
        )
    except BaseException:
        opened.close()  # the app owns the vault, even when it fails to start
        raise

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if service.inline_calls:  # SQLite: reads commit on the loop; checkpoint elsewhere
            service.vault.keep_wal_bounded()
        yield
        service.close()

    app = FastAPI(
        title="custodes",
        version=version("custodes"),
        summary="Personal records behind purpose-bound, ledgered access.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        **_NO_TELEMETRY,
    )
    app.state.service = service
    install_error_handlers(app)
    # Pure ASGI middleware (not BaseHTTPMiddleware): cheap on the hot path. The last added is
    # the outermost: metrics see every answer, including the body limit's 413s.
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    # Outermost of ours: well-formed record reads and writes skip the stack (see _express).
    from custodes.api._routes_records import router as records

    app.add_middleware(
        ExpressLane,
        routes=records.routes,
        metrics=service.metrics,
        max_bytes=settings.api.max_body_bytes,
        handlers=app.exception_handlers,
    )
    _include_routers(app)
    complete_document(
        app,
        collections=list(opened.schema.collections),
        purposes=sorted(opened.policy.purposes),
    )
    return app


def _include_routers(app: FastAPI) -> None:
    from custodes.api import (
        _routes_alerts,
        _routes_cases,
        _routes_health,
        _routes_ledger,
        _routes_metrics,
        _routes_records,
    )

    app.include_router(_routes_health.router)
    app.include_router(_routes_records.router)
    app.include_router(_routes_cases.router)
    app.include_router(_routes_ledger.router)
    app.include_router(_routes_metrics.router)
    app.include_router(_routes_alerts.router)
    from custodes import web  # the pages import the API's dependencies: import them last

    app.include_router(web.portal_router())
    app.include_router(web.dashboard_router())
    app.mount(web.STATIC_PATH, web.static_files(), name="static")
