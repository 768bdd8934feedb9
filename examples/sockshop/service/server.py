"""The demo carts service (not product code): stdlib HTTP server plus prometheus_client metrics.

    python -m examples.sockshop.service.server --port 8080 --metrics-port 9101 --version 0.11.1

Endpoints: `/` (service and version), `/carts` (latency by version, see behaviour.py), `/orders`
(latency rises with concurrent load per process), `/health`, `/metrics`.

Metrics (per process):
    http_request_duration_seconds{handler}      histogram
    http_requests_total{handler,status}          counter, status is the HTTP code ("200", "500")
    http_requests_in_flight{handler}             gauge
    sockshop_build_info{service,version}         info, always 1

Replicas. The listening socket sets SO_REUSEPORT, so several processes can serve one port and the
kernel spreads new connections across them: scaling out is starting another process with the same
`--port`. Each process keeps its own metrics, though, and a scrape of `/metrics` on the shared port
reaches one process picked at random, so Prometheus would see counters jump between processes. So
each replica also serves `/metrics` on a port of its own (`--metrics-port`, no SO_REUSEPORT), and
Prometheus scrapes every replica's metrics port as a separate instance of the same job, exactly as
it scrapes each pod of a Kubernetes deployment; `sum by (le) (rate(...{job=...}))` adds them up.
With a single process, `/metrics` on the service port is fine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from examples.sockshop.service.behaviour import Behaviour, behaviour_for

# Wide enough to tell 10 ms from 600 ms and to show queueing on /orders.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
HANDLERS = ("/", "/carts", "/orders")


class Metrics:
    """One process's metrics, in a registry of its own so several services can live in one test process."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.duration = Histogram(
            "http_request_duration_seconds", "Time to answer a request.", ["handler"],
            buckets=BUCKETS, registry=self.registry,
        )
        self.requests = Counter(
            "http_requests", "Requests answered, by HTTP status code.", ["handler", "status"], registry=self.registry
        )
        self.in_flight = Gauge(
            "http_requests_in_flight", "Requests being served right now.", ["handler"], registry=self.registry
        )
        Info("sockshop_build", "The running release.", registry=self.registry).info(
            {"service": behaviour.service, "version": behaviour.version}
        )
        # Export zero-valued series from the start: rate() over a window needs a sample from before
        # the first request, or the first burst of traffic would be invisible to an SLI query.
        for handler in HANDLERS:
            self.duration.labels(handler=handler)
            self.requests.labels(handler=handler, status="200")
            self.in_flight.labels(handler=handler)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _ReusePortServer(ThreadingHTTPServer):
    daemon_threads = True
    # Several processes may bind the same service port; the kernel balances connections among them.
    allow_reuse_port = True


class _MetricsOnlyServer(ThreadingHTTPServer):
    daemon_threads = True


def _handler_class(service: DemoService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so every request can land on another replica.
        protocol_version = "HTTP/1.0"

        def do_GET(self) -> None:
            service.handle(self)

        def do_POST(self) -> None:
            service.handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test and demo output quiet

    return Handler


class DemoService:
    """The carts service on `host:port` (0 = any free port), optionally with a separate metrics port."""

    def __init__(
        self,
        behaviour: Behaviour,
        host: str = "127.0.0.1",
        port: int = 0,
        metrics_port: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.behaviour = behaviour
        self._host = host
        self.metrics = Metrics(behaviour)
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._order_workers = threading.BoundedSemaphore(behaviour.order_workers)
        self._server = _ReusePortServer((host, port), _handler_class(self))
        self._metrics_server = (
            _MetricsOnlyServer((host, metrics_port), _handler_class(self)) if metrics_port is not None else None
        )
        self._threads: list[threading.Thread] = []
        self._routes: dict[str, Callable[[], tuple[int, dict[str, Any]]]] = {
            "/": self._index,
            "/carts": self._carts,
            "/orders": self._orders,
        }

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def metrics_port(self) -> int | None:
        return int(self._metrics_server.server_address[1]) if self._metrics_server else None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> DemoService:
        """Serve in background threads (for tests); `serve_forever()` blocks instead."""
        for server in self._servers():
            # A short poll interval makes stop() quick; tests start and stop many services.
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="demo-service", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def serve_forever(self) -> None:
        if self._metrics_server is not None:
            threading.Thread(target=self._metrics_server.serve_forever, daemon=True).start()
        self._server.serve_forever()

    def stop(self) -> None:
        for server in self._servers():
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join()
        self._threads.clear()

    def _servers(self) -> list[ThreadingHTTPServer]:
        return [self._server] + ([self._metrics_server] if self._metrics_server else [])

    # -- request handling ------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(request, HTTPStatus.OK, self.metrics.exposition(), CONTENT_TYPE_LATEST)
            return
        if path == "/health":
            self._reply(request, HTTPStatus.OK, b"ok\n", "text/plain")
            return
        route = self._routes.get(path)
        if route is None or request.server is self._metrics_server:
            self._reply(request, HTTPStatus.NOT_FOUND, b'{"error": "not found"}\n', "application/json")
            return
        started = time.perf_counter()
        gauge = self.metrics.in_flight.labels(handler=path)
        gauge.inc()
        try:
            status, body = route()
        finally:
            gauge.dec()
            self.metrics.duration.labels(handler=path).observe(time.perf_counter() - started)
        self.metrics.requests.labels(handler=path, status=str(status)).inc()
        self._reply(request, status, (json.dumps(body) + "\n").encode(), "application/json")

    def _index(self) -> tuple[int, dict[str, Any]]:
        return 200, {"service": self.behaviour.service, "version": self.behaviour.version}

    def _carts(self) -> tuple[int, dict[str, Any]]:
        with self._rng_lock:
            delay = self.behaviour.carts_delay(self._rng)
            fails = self.behaviour.carts_fails(self._rng)
        time.sleep(delay)
        if fails:
            return 500, {"error": "the cart could not be loaded"}
        return 200, {"items": [], "version": self.behaviour.version}

    def _orders(self) -> tuple[int, dict[str, Any]]:
        # A fixed pool of workers per process: extra concurrent requests queue here.
        with self._order_workers:
            time.sleep(self.behaviour.order_seconds)
        return 200, {"order": "accepted", "version": self.behaviour.version}

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.sockshop.service.server", description="Demo carts service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="service port, shared by all replicas")
    parser.add_argument("--metrics-port", type=int, help="this replica's own /metrics port (for Prometheus)")
    parser.add_argument("--version", default="0.11.1", help="release; 0.11.2 is the slow one")
    parser.add_argument("--service", default="carts")
    parser.add_argument("--latency-ms", type=float, help="override the version's /carts latency")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="share of /carts requests answered with 500")
    parser.add_argument("--order-workers", type=int, default=2, help="concurrent /orders one replica serves")
    parser.add_argument("--order-ms", type=float, default=50.0, help="time one /orders request takes to serve")
    args = parser.parse_args(argv)
    try:
        behaviour = behaviour_for(
            args.version,
            service=args.service,
            latency_ms=args.latency_ms,
            failure_rate=args.failure_rate,
            order_workers=args.order_workers,
            order_ms=args.order_ms,
        )
        service = DemoService(behaviour, args.host, args.port, args.metrics_port)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    metrics = f", metrics on port {service.metrics_port}" if service.metrics_port else ""
    print(f"{behaviour.service} {behaviour.version} serving on {service.url}{metrics}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        service.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
