"""Prometheus metrics of one app: requests by route template and status, and vault decisions.

Each app has its own ``CollectorRegistry`` (no module-level globals), so two apps in one process
(tests, an embedding program) never share or double-register counters. Requests are labelled by
the route *template* (``/v1/cases/{case_id}``), never the concrete path, so that ids do not
become label values; unmatched paths share one label.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from custodes.api._observe import observed
from custodes.errors import AccessDenied

__all__ = ["Metrics", "MetricsMiddleware"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The app's metrics and their registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "custodes_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "custodes_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ("method", "route"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "custodes_decisions",
            "Vault decisions made for API callers, by action and outcome (allow or deny).",
            ("action", "decision"),
            registry=self.registry,
        )
        # The labelled children, looked up once per label set (``labels()`` costs a few µs a
        # call; the label sets are the registry's own, so this holds no more than it does).
        self._answered: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._decided: dict[tuple[str, bool], Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (method, route, status)
        children = self._answered.get(key)
        if children is None:
            children = self._answered[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def decided(self, action: str, allowed: bool) -> None:
        """Count one vault decision."""
        child = self._decided.get((action, allowed))
        if child is None:
            child = self._decided[action, allowed] = self.decisions.labels(
                action, "allow" if allowed else "deny"
            )
        child.inc()

    @contextmanager
    def deciding(self, action: str) -> Iterator[None]:
        """Count the vault call inside as allowed, or denied if it raises AccessDenied."""
        try:
            yield
        except AccessDenied:
            self.decided(action, False)
            raise
        self.decided(action, True)

    def exposition(self) -> bytes:
        """Return the metrics in the Prometheus text format."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware that times every HTTP request and counts it by route template."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        def done(status: int, seconds: float) -> None:
            # The router writes the matched route into the (shared) scope.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(scope["method"], route, status, seconds)

        await observed(self.app, scope, receive, send, done)
