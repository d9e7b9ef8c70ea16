"""``GET /metrics``: the app's Prometheus metrics, for oversight roles only.

Request counts and latencies by route template and status, and vault decisions by action and
outcome. Even aggregate counts say who is busy with what, so they are not public.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from custodes.api._schemas import errors
from custodes.api.deps import OversightCaller, ServiceDep

__all__ = ["router"]

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Metrics in the Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **errors(401, 403, 429),
    },
)
def metrics(_: OversightCaller, service: ServiceDep) -> Response:
    """Return the metrics in the Prometheus text format (oversight roles only)."""
    return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
