"""The gateway on Kafka: event and resource sinks, the resources view and the audit follower, wired in
the app's lifespan.

- events go to `<prefix>events` through `AsyncEventPublisher` (aiokafka, murmur2, idempotent);
- file versions go to `<prefix>resources` keyed `project/stage/service/path` (tombstone = delete) and
  are applied to the local view at once, so a client reads its own writes;
- the `ResourceView` follows `resources` from the beginning; the gateway is ready once it caught up;
- the `AuditFollower` stores `<prefix>audit` in the history and wakes the event streams.

The gateway starts without Kafka: it serves at once (`/readyz` says "waiting for Kafka" while the
broker does not answer) and starts its Kafka parts once a broker answers (`wait_for_kafka`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI

from tidegate.readside.history.consumer import AuditFollower, ChangeNotices
from tidegate.readside.history.store import HistoryStore
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.kafka import (
    AsyncEventPublisher,
    KafkaWait,
    PublishError,
    async_producer,
    wait_for_kafka,
)
from tidegate.streams.resources import Resource, ResourceView
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

from .app import Extension, create_app
from .catalog import Catalog, VersionedResourceStore
from .context import Gateway
from .metrics import GatewayMetrics
from .ports import PublishFailed
from .settings import GatewaySettings
from .task_topics import KafkaTaskTopics

if TYPE_CHECKING:
    from tidegate.gateway.alertmanager.app import AlertmanagerBridge

log = logging.getLogger(__name__)


class KafkaEventSink:
    def __init__(self, settings: Settings) -> None:
        self.topic = TopicRegistry.from_settings(settings).events
        self._publisher = AsyncEventPublisher(settings, request_timeout_ms=15000)

    async def start(self) -> None:
        await self._publisher.start()

    async def stop(self) -> None:
        await self._publisher.stop()

    async def publish(self, event: KeptnEvent) -> None:
        try:
            await self._publisher.publish(self.topic, event)
        except PublishError as error:
            raise PublishFailed(str(error)) from error


class KafkaResourceSink:
    def __init__(self, settings: Settings, store: VersionedResourceStore) -> None:
        self.topic = TopicRegistry.from_settings(settings).resources
        self.store = store
        self._producer = async_producer(settings, request_timeout_ms=15000)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def write(self, resources: Sequence[Resource]) -> None:
        records = [resource.to_record() for resource in resources]
        await self._send([(key, value) for key, value in records])

    async def delete(self, keys: Sequence[str]) -> None:
        await self._send([(key.encode("utf-8"), None) for key in keys])

    async def _send(self, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        try:
            futures = [await self._producer.send(self.topic, key=key, value=value) for key, value in records]
            for future in futures:
                await future
        except Exception as error:  # aiokafka's own error family
            raise PublishFailed(f"writing to {self.topic} failed: {error}") from error
        for key, value in records:
            self.store.apply(key, value)


class Startable(Protocol):
    async def start(self) -> None: ...


START_PAUSES = (1.0, 30.0)  # seconds: the first pause before starting a failed part again, and the longest


async def start_parts(parts: Sequence[Startable], started: list[Any], retrying: list[str],
                      pauses: tuple[float, float] = START_PAUSES) -> None:
    """Start `parts` in order, each once, appending each to `started`; a part whose start fails (the
    broker answered but timed out under load, a coordinator was not ready) is started again after a
    growing pause, with its reason in `retrying` for `/readyz`, rather than leaving the gateway
    unready for good."""
    pause = pauses[0]
    while len(started) < len(parts):
        part = parts[len(started)]
        try:
            await part.start()
        except Exception as error:  # the clients' own error families; all are worth another attempt
            retrying[:] = [f"starting {type(part).__name__} on Kafka failed ({error}); trying again in {pause:.0f} s"]
            log.warning("gateway: %s", retrying[0])
            await asyncio.sleep(pause)
            pause = min(pause * 2, pauses[1])
            continue
        started.append(part)
        retrying.clear()


@asynccontextmanager
async def kafka_gateway(
    settings: Settings, gateway_settings: GatewaySettings, metrics: GatewayMetrics | None = None
) -> AsyncIterator[Gateway]:
    """A Gateway on Kafka, started, and stopped when the block ends."""
    registry = TopicRegistry.from_settings(settings)
    store = VersionedResourceStore()
    view = ResourceView(settings, registry.resources, store)
    events = KafkaEventSink(settings)
    resources = KafkaResourceSink(settings, store)
    history = HistoryStore(gateway_settings.history_url)
    notices = ChangeNotices()
    metrics = metrics or GatewayMetrics()
    follower = (
        AuditFollower(settings, history, notices=notices, on_stored=metrics.history_stored.inc)
        if gateway_settings.follow_audit
        else None
    )

    kafka = KafkaWait(settings.kafka_bootstrap)
    parts: list[KafkaEventSink | KafkaResourceSink | ResourceView | AuditFollower] = [events, resources, view]
    if follower is not None:
        parts.append(follower)
    started: list[KafkaEventSink | KafkaResourceSink | ResourceView | AuditFollower] = []

    retrying: list[str] = []  # why the last attempt to start a part failed, while it is retried

    async def start_on_kafka() -> None:
        await wait_for_kafka(settings, state=kafka, what="gateway")
        await start_parts(parts, started, retrying)

    def not_ready() -> list[str]:
        reasons = []
        waiting = kafka.reason()
        if waiting is not None:
            reasons.append(waiting)
        elif retrying:
            reasons.append(retrying[-1])
        elif starting.done() and not starting.cancelled() and starting.exception() is not None:
            reasons.append(f"could not start on Kafka: {starting.exception()}")
        if not view.ready.is_set():
            reasons.append(f"still loading the configuration from {registry.resources}")
        if follower is not None and follower.error is not None:
            reasons.append(f"the audit follower stopped: {follower.error}")
        return reasons

    starting = asyncio.create_task(start_on_kafka(), name="gateway-kafka-start")
    try:
        yield Gateway(
            catalog=Catalog(store),
            events=events,
            resources=resources,
            history=history,
            notices=notices,
            metrics=metrics,
            not_ready=not_ready,
            max_event=gateway_settings.max_event,
            task_topics=KafkaTaskTopics(settings),
        )
    finally:
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await starting
        for part in reversed(started):
            await part.stop()
        if len(started) < len(parts):  # the part whose start failed may hold half-open clients
            with contextlib.suppress(Exception):
                await parts[len(started)].stop()
        history.close()


def create_kafka_app(
    settings: Settings, gateway_settings: GatewaySettings, extensions: Iterable[Extension] = ()
) -> FastAPI:
    """The gateway app wired to Kafka when it starts (uvicorn runs the lifespan)."""
    metrics = GatewayMetrics()

    bridge = _alertmanager_bridge(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with kafka_gateway(settings, gateway_settings, metrics) as gateway:
            app.state.gateway = gateway
            yield
        if bridge is not None:
            await bridge.sink.close()

    token = gateway_settings.api_token.get_secret_value() if gateway_settings.api_token else None
    app = create_app(None, api_token=token, max_body=gateway_settings.max_body, lifespan=lifespan, metrics=metrics,
                     extensions=extensions)
    if bridge is not None:
        from tidegate.gateway.alertmanager.app import bridge_router

        app.include_router(bridge_router(bridge), prefix="/api/alertmanager", tags=["alertmanager"])
    return app


def _alertmanager_bridge(settings: Settings) -> AlertmanagerBridge | None:
    """The Alertmanager webhook for `/api/alertmanager`, when its credentials are configured.

    It authenticates with its own bearer/basic credentials (what Alertmanager can send), not x-token.
    """
    from tidegate.gateway.alertmanager.app import AlertmanagerBridge, KafkaSink
    from tidegate.gateway.alertmanager.settings import BridgeSettings

    bridge_settings = BridgeSettings()
    if bridge_settings.token is None and bridge_settings.password is None:
        return None
    return AlertmanagerBridge(bridge_settings, KafkaSink(settings), TopicRegistry.from_settings(settings))
