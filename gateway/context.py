"""What every route works with: the configuration catalog, the two sinks, the history and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request

from tidegate.readside.history.consumer import ChangeNotices
from tidegate.readside.history.store import HistoryStore
from tidegate.schemas.events import KeptnEvent

from .catalog import Catalog
from .errors import ApiError
from .metrics import GatewayMetrics
from .ports import EventSink, PublishFailed, ResourceSink


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Gateway:
    catalog: Catalog
    events: EventSink
    resources: ResourceSink
    history: HistoryStore
    notices: ChangeNotices = field(default_factory=ChangeNotices)
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    # Reasons the gateway is not ready yet (empty: ready); the Kafka wiring fills this in.
    not_ready: Callable[[], list[str]] = field(default=lambda: [])
    clock: Callable[[], datetime] = _now
    version: str = "0.1.0"

    async def publish(self, event: KeptnEvent) -> None:
        try:
            await self.events.publish(event)
        except PublishFailed as error:
            raise ApiError(503, f"the event could not be published: {error}; retry when Kafka is reachable") from error
        self.metrics.events_published.labels(event.parsed_type.category).inc()


def gateway(request: Request) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found
