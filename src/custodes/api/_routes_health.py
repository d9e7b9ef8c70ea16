"""``GET /v1/health``: liveness, without authentication and without touching personal data."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["health"])


class Health(BaseModel):
    """The service answers."""

    status: str


@router.get("/health", response_model=Health, operation_id="health")
async def health() -> Health:
    """Report that the service is up (public; no data, no ledger entry)."""
    # async: nothing here blocks, and a thread-pool hop costs ~120 µs of CPU per request here.
    return Health(status="ok")
