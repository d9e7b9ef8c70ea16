"""``create_app(settings)``: the HTTP service, built from one settings object.

The app owns what it opens (the vault, its store and key store) and closes them on shutdown.
Routers: ``/v1`` (the API, in the OpenAPI document), the transparency portal (``/portal``) and
the auditor dashboard (``/dashboard``), which are server-rendered pages outside the document.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from custodes.api._credentials import Credentials
from custodes.api._errors import install_error_handlers
from custodes.api._service import Service
from custodes.clock import Clock, system_clock
from custodes.config import Settings
from custodes.ledger import CheckpointLog
from custodes.vault import Vault

__all__ = ["create_app"]


def create_app(
    settings: Settings, *, clock: Clock = system_clock, vault: Vault | None = None
) -> FastAPI:
    """Build the service for the vault home ``settings`` describe.

    ``vault`` lets an embedding program (or a test) pass a vault it opened itself; the app then
    closes it on shutdown all the same.

    Raises:
        ConfigError: a key file, schema or policy is missing or invalid.
        StoreError: the database cannot be opened.
    """
    opened = vault if vault is not None else Vault.open(settings, clock=clock)
    service = Service(
        settings=settings,
        vault=opened,
        credentials=Credentials(store=opened.store, clock=clock),
        checkpoints=CheckpointLog.open(settings),
        clock=clock,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
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
    )
    app.state.service = service
    install_error_handlers(app)
    _include_routers(app)
    return app


def _include_routers(app: FastAPI) -> None:
    from custodes.api import _routes_health

    app.include_router(_routes_health.router)
