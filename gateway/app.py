"""The FastAPI application: routers, auth, errors, body limit, metrics.

`create_app(gateway, api_token=...)` builds the app around an already wired `Gateway` (tests pass
in-memory sinks); `tidegate.gateway.kafka.create_kafka_app` wires the real one in its lifespan.
Homes above the gateway add themselves through `extensions` (the Bridge's `install`), so the gateway
never imports them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from tidegate.gateway.routes.analytics import install as install_analytics

from . import errors
from .auth import LoopbackHostOnly
from .context import Gateway
from .limits import BodyLimit
from .metrics import GatewayMetrics
from .routes import api_v1, control_plane, datastore, health, resources, secrets, stream
from .slashes import MergeSlashes

DESCRIPTION = """Tidegate's HTTP API: Keptn v1's API surface (api-service, shipyard-controller,
resource-service, mongodb-datastore) on Kafka. Every `/api` request needs the `x-token` header.
Errors answer `{"code", "message", "problems": [{"field", "message"}]}`."""

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
#: Adds routes to the app (the Bridge's `install`); called once, after the API's own routes.
Extension = Callable[[FastAPI], None]


def create_app(
    gateway: Gateway | None = None,
    *,
    api_token: str | None,
    max_body: int = 16 * 1024 * 1024,
    lifespan: Lifespan | None = None,
    metrics: GatewayMetrics | None = None,
    extensions: Iterable[Extension] = (),
) -> FastAPI:
    """The app; give `gateway` now, or set `app.state.gateway` in `lifespan`."""

    @asynccontextmanager
    async def _no_lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(
        title="Tidegate API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan or _no_lifespan,
    )
    app.state.api_token = api_token
    if gateway is not None:
        app.state.gateway = gateway
    chosen_metrics = metrics or (gateway.metrics if gateway is not None else GatewayMetrics())
    app.state.metrics = chosen_metrics
    errors.install(app)
    for router in (api_v1.router, control_plane.router, resources.router, datastore.router, secrets.router,
                   stream.router, health.router):
        app.include_router(router)
    install_analytics(app, chosen_metrics.registry)  # /api/analytics/v1; Tidegate's shared metrics in /metrics
    for extend in extensions:
        extend(app)
    app.middleware("http")(chosen_metrics.middleware)
    app.add_middleware(BodyLimit, max_bytes=max_body)
    app.add_middleware(MergeSlashes)  # outermost: routing and every check see Keptn's merged path
    if api_token is None:
        app.add_middleware(LoopbackHostOnly)  # local mode: no DNS rebinding onto the API (auth.py)
    return app


def openapi_document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()
