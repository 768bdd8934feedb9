"""The bridge's HTTP edge: a FastAPI router for Alertmanager's webhook, and where its events go.

    bridge = AlertmanagerBridge(BridgeSettings(), KafkaSink(Settings()))
    app.include_router(bridge_router(bridge), prefix="/api/alertmanager")   # in the gateway
    create_bridge_app(bridge)                                              # standalone (uvicorn)

Answers (Alertmanager retries on 5xx only, and a retry is harmless: event ids are deterministic):
- 200 with `{accepted: [...], rejected: [...]}`: every accepted alert's event is acknowledged by
  Kafka; each rejected alert is reported with its reasons and is on the DLQ;
- 401 without the right credentials; 400 for a body that is not JSON; 422 for JSON that is not a
  version-4 webhook payload, or when every alert of the batch was rejected;
- 503 when Kafka did not acknowledge within TIDEGATE_ALERTMANAGER_PUBLISH_TIMEOUT: nothing is
  answered as done before it is on the broker, so nothing is lost while Kafka is briefly away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from tidegate.gateway.alertmanager.auth import Credentials
from tidegate.gateway.alertmanager.settings import BridgeSettings
from tidegate.gateway.alertmanager.translate import Batch, PayloadError, Rejected, translate
from tidegate.schemas.errors import TidegateError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.streams.codec import KafkaRecord
from tidegate.streams.dlq import DeadLetter, DeadLetterReason, dead_letter_record
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

log = logging.getLogger(__name__)

WEBHOOK_SOURCE = "alertmanager-webhook"
AGENT = "alertmanager-bridge"


class SinkUnavailable(TidegateError, RuntimeError):
    """Kafka did not take the events in time; the caller must answer 503 so Alertmanager retries."""


class EventSink(Protocol):
    """Where the bridge's events and dead letters go (Kafka in production, a list in tests)."""

    async def publish(self, topic: str, event: KeptnEvent, key: Key) -> None: ...

    async def publish_record(self, topic: str, record: KafkaRecord) -> None: ...

    async def close(self) -> None: ...


class KafkaSink:
    """An aiokafka publisher started on first use and restarted after a failure."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._publisher: Any = None
        self._lock = asyncio.Lock()

    async def _started(self) -> Any:
        from tidegate.streams.kafka import AsyncEventPublisher

        async with self._lock:
            if self._publisher is None:
                publisher = AsyncEventPublisher(
                    self._settings, request_timeout_ms=int(self._timeout * 1000), retry_backoff_ms=200
                )
                try:
                    await publisher.start()
                except BaseException:
                    # A producer that failed to connect still holds a client: close it before giving up.
                    with contextlib.suppress(Exception):
                        await publisher.stop()
                    raise
                self._publisher = publisher
            return self._publisher

    async def _run(self, what: str, send: Any) -> None:
        try:
            await asyncio.wait_for(self._send(send), self._timeout)
        except Exception as error:
            await self._reset()
            reason = "timed out" if isinstance(error, TimeoutError) else str(error) or type(error).__name__
            raise SinkUnavailable(f"Kafka ({self._settings.kafka_bootstrap}) did not take {what}: {reason}") from error

    async def _send(self, send: Any) -> None:
        publisher = await self._started()
        await send(publisher)

    async def publish(self, topic: str, event: KeptnEvent, key: Key) -> None:
        await self._run(f"event {event.id}", lambda p: p.publish(topic, event, key=key))

    async def publish_record(self, topic: str, record: KafkaRecord) -> None:
        await self._run("a dead letter", lambda p: p.publish_record(topic, record, what="dead letter"))

    async def _reset(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            try:
                await asyncio.wait_for(publisher.stop(), 5)
            except Exception:  # a broken producer may fail to stop; it is dropped either way
                log.debug("stopping a failed Kafka producer failed", exc_info=True)

    async def close(self) -> None:
        await self._reset()


class AlertmanagerBridge:
    """Alertmanager webhook calls -> events on `events`, rejected alerts -> DLQ."""

    def __init__(self, settings: BridgeSettings, sink: EventSink, registry: TopicRegistry | None = None) -> None:
        self.settings = settings
        self.credentials = Credentials.from_settings(settings)  # refuses to run without credentials
        self.sink = sink
        self.registry = registry or TopicRegistry()

    async def handle(self, authorization: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON body answering one webhook call."""
        if not self.credentials.allows(authorization):
            return 401, {"error": "missing or wrong credentials: send the bearer token or basic auth configured "
                                  "in TIDEGATE_ALERTMANAGER_TOKEN / _USER / _PASSWORD"}
        try:
            batch = translate(body, self.settings)
        except PayloadError as error:
            status = 400 if error.reasons and "not JSON" in error.reasons[0] else 422
            return status, {"error": "the body is not an Alertmanager webhook payload (version 4)",
                            "reasons": error.reasons}
        try:
            await self._deliver(batch)
        except SinkUnavailable as error:
            log.warning("answering 503 to Alertmanager: %s", error)
            return 503, {"error": f"{error}; Alertmanager will retry"}
        report = {
            "accepted": [a.report() for a in batch.accepted],
            "rejected": [r.report() for r in batch.rejected],
        }
        if batch.rejected and not batch.accepted:
            return 422, report
        return 200, report

    async def _deliver(self, batch: Batch) -> None:
        for accepted in batch.accepted:
            await self.sink.publish(self.registry.events, accepted.event, accepted.key)
        for rejected in batch.rejected:
            await self.sink.publish_record(self.registry.dlq, self._dead_letter(batch, rejected))
            log.warning("alert %s rejected: %s", rejected.alertname or rejected.index, "; ".join(rejected.reasons))

    def _dead_letter(self, batch: Batch, rejected: Rejected) -> KafkaRecord:
        alert: Any = rejected.raw
        if len(json.dumps(alert)) > self.settings.max_event // 2:  # the dead letter must fit a Kafka record too
            alert = {"omitted": "the alert is too large to keep; Alertmanager still has it",
                     "alertname": (rejected.alertname or "")[:200], "fingerprint": (rejected.fingerprint or "")[:200]}
        value = json.dumps({
            "receiver": batch.envelope.receiver[:200],
            "groupKey": batch.envelope.groupKey[:200],
            "externalURL": batch.envelope.externalURL[:200],
            "alert": alert,
        }).encode()
        original = KafkaRecord(key=None, value=value, headers=(("content-type", b"application/json"),))
        letter = DeadLetter(
            reason="; ".join(rejected.reasons)[:2000],
            source_topic=WEBHOOK_SOURCE,
            source_partition=-1,
            source_offset=rejected.index,
            agent=AGENT,
            code=DeadLetterReason.REJECTED,  # a readable alert this intake cannot turn into an event
        )
        return dead_letter_record(original, letter)


def bridge_router(bridge: AlertmanagerBridge, paths: tuple[str, ...] = ("", "/")) -> APIRouter:
    """The webhook endpoint, to include under a prefix (the gateway mounts it at `/api/alertmanager`)."""
    router = APIRouter()

    async def receive(request: Request) -> JSONResponse:
        status, body = await bridge.handle(request.headers.get("authorization"), await request.body())
        headers = {"WWW-Authenticate": bridge.credentials.challenge} if status == 401 else None
        if status == 503:
            headers = {"Retry-After": "5"}
        return JSONResponse(body, status_code=status, headers=headers)

    for path in paths:
        router.add_api_route(path, receive, methods=["POST"], summary="Alertmanager webhook (payload version 4)")
    return router


def create_bridge_app(bridge: AlertmanagerBridge) -> FastAPI:
    """The bridge on its own: the webhook at `/` and at `/api/alertmanager` (the gateway's path), plus `/healthz`."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await bridge.sink.close()

    app = FastAPI(title="Tidegate Alertmanager bridge", lifespan=lifespan)
    app.include_router(bridge_router(bridge), prefix="/api/alertmanager")
    app.include_router(bridge_router(bridge, paths=("/",)))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
