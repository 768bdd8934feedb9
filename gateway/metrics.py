"""Prometheus metrics of the gateway, in a registry of its own (several apps may live in one process)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.responses import Response


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tidegate_gateway_requests_total", "HTTP requests by route and status",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "tidegate_gateway_request_seconds", "HTTP request duration by route",
            ["method", "route"], registry=self.registry,
        )
        self.events_published = Counter(
            "tidegate_gateway_events_published_total", "events the gateway put on Kafka, by type category",
            ["category"], registry=self.registry,
        )
        self.events_refused = Counter(
            "tidegate_gateway_events_refused_total", "events refused before reaching Kafka", registry=self.registry,
        )
        self.history_stored = Counter(
            "tidegate_gateway_history_entries_total", "audit entries stored in the history", registry=self.registry,
        )
        self.streams = Gauge(
            "tidegate_gateway_open_streams", "server-sent event streams open", registry=self.registry,
        )

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = _route_of(request)
        method = request.method if request.method in KNOWN_METHODS else "other"
        self.requests.labels(method, route, str(response.status_code)).inc()
        self.latency.labels(method, route).observe(time.perf_counter() - started)
        return response


# Any other method (a client may send any token) is counted as "other": labels stay a bounded set.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route_of(request: Request) -> str:
    # The route template, not the path, so that names in paths do not make unbounded label values.
    # The router records the matched route in the scope, which the middleware shares.
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
