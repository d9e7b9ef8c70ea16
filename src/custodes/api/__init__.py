"""The HTTP API (FastAPI): records, cases, ledger and alerts under ``/v1``; see ``create_app``."""

from __future__ import annotations

from custodes.api._app import create_app
from custodes.api._credentials import Credentials
from custodes.api._service import Service

__all__ = ["Credentials", "Service", "create_app"]
