"""What every route works with: the configuration catalog, the two sinks, the history, the clock, the
event size limit and the task topics of accepted shipyards."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request

from tidegate.readside.history.consumer import ChangeNotices
from tidegate.readside.history.store import HistoryStore
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.shipyard import Shipyard
from tidegate.streams.codec import encode
from tidegate.streams.secrets import SecretStore, secret_store

from .catalog import Catalog
from .errors import ApiError
from .metrics import GatewayMetrics
from .ports import EventSink, PublishFailed, ResourceSink, TaskTopics
from .settings import DEFAULT_MAX_EVENT

PROVISION_SECONDS = 20.0


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
    # Keptn's secrets (`/api/secrets/v1`): Kubernetes Secrets in a cluster, else a 0600 file (streams.secrets).
    secrets: SecretStore = field(default_factory=secret_store)
    version: str = "0.1.0"
    max_event: int = DEFAULT_MAX_EVENT
    """Largest event published, in bytes of its Kafka record (TIDEGATE_GATEWAY_MAX_EVENT)."""
    task_topics: TaskTopics | None = None
    """Creates the task topics of accepted shipyards (None: nobody does, as in most unit tests)."""

    async def provision_tasks(self, shipyard: Shipyard) -> list[str]:
        """Make sure `tasks.<task>` exists for every task of `shipyard`, off the event loop and within
        PROVISION_SECONDS; returns warnings for the client (the shipyard is accepted either way)."""
        if self.task_topics is None:
            return []
        tasks = sorted({task.name for stage in shipyard.spec.stages for seq in stage.sequences for task in seq.tasks})
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.task_topics.ensure, tasks), PROVISION_SECONDS)
        except TimeoutError:
            return [f"the task topics ({', '.join(tasks)}) were not confirmed by Kafka within {PROVISION_SECONDS:g} s; "
                    "sequences reaching a task without its topic end with an error: check with `tidegate topics list`"]

    async def publish(self, event: KeptnEvent) -> None:
        size = record_size(event)
        if size > self.max_event:
            self.metrics.events_refused.inc()
            raise ApiError(413, f"the event is {size} bytes as a Kafka record; events are limited to {self.max_event} "
                                "bytes (TIDEGATE_GATEWAY_MAX_EVENT): keep large content in resources and send its name")
        try:
            await self.events.publish(event)
        except PublishFailed as error:
            raise ApiError(503, f"the event could not be published: {error}; retry when Kafka is reachable") from error
        self.metrics.events_published.labels(event.parsed_type.category).inc()


def record_size(event: KeptnEvent) -> int:
    """Bytes of the event's Kafka record: key, value and headers (what the broker's limit counts)."""
    record = encode(event)
    return (len(record.key or b"") + len(record.value or b"")
            + sum(len(name) + len(value) for name, value in record.headers))


def gateway(request: Request) -> Gateway:
    found: Gateway = request.app.state.gateway
    return found
