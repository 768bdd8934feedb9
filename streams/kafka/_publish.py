"""Publish KeptnEvents to a topic from outside Faust: the CLI and CI (confluent-kafka), async code (aiokafka).

Both write the codec's binary-mode record keyed `project/stage/service` and both hash keys with
murmur2, as Faust and Java clients do, so an event lands on the same partition whoever sends it
(confluent-kafka's own default, `consistent_random`, would not).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaProducer
from confluent_kafka import KafkaError, Message, Producer

from tidegate.schemas.errors import TidegateError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.streams.codec import KafkaRecord, encode
from tidegate.streams.kafka._config import aiokafka_config, confluent_config
from tidegate.streams.metrics import observe_produced
from tidegate.streams.settings import Settings

DELIVERY_TIMEOUT = 30.0


def async_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent aiokafka producer (murmur2, like Faust and Java clients), not started yet."""
    return AIOKafkaProducer(**aiokafka_config(settings, enable_idempotence=True, **overrides))


class PublishError(TidegateError, RuntimeError):
    """The broker did not take an event; the message names the event, the topic and the cause."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a published event landed."""

    topic: str
    partition: int
    offset: int


class EventPublisher:
    """Synchronous publisher on confluent-kafka; `publish` returns once the broker acknowledged."""

    def __init__(self, settings: Settings, **config: Any) -> None:
        self._producer = Producer(
            confluent_config(settings, **{"partitioner": "murmur2_random", "enable.idempotence": True,
                                          "linger.ms": 5, **config})
        )

    def publish(self, topic: str, event: KeptnEvent, *, key: Key | None = None) -> Delivery:
        return self.publish_record(topic, encode(event, key), what=f"event {event.id} ({event.type})")

    def publish_record(self, topic: str, record: KafkaRecord, *, what: str = "record") -> Delivery:
        """Publish an already encoded record (structured mode, or raw bytes in tests)."""
        outcome: list[Message | KafkaError] = []

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            outcome.append(error if error is not None else message)

        self._producer.produce(
            topic, value=record.value, key=record.key, headers=list(record.headers), on_delivery=on_delivery
        )
        self._producer.flush(DELIVERY_TIMEOUT)
        if not outcome:
            raise PublishError(f"{what} was not acknowledged by {topic} within {DELIVERY_TIMEOUT:.0f} s; is Kafka up?")
        result = outcome[0]
        if isinstance(result, KafkaError):
            raise PublishError(f"{what} could not be published to {topic}: {result.str()}")
        partition, offset = result.partition(), result.offset()
        return Delivery(topic, partition if partition is not None else -1, offset if offset is not None else -1)

    def close(self) -> None:
        self._producer.flush(DELIVERY_TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncEventPublisher:
    """Asyncio publisher on aiokafka (murmur2 is its default partitioner); use as `async with`."""

    def __init__(self, settings: Settings, **config: Any) -> None:
        self._producer = async_producer(settings, **config)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, topic: str, event: KeptnEvent, *, key: Key | None = None) -> Delivery:
        delivery = await self.publish_record(topic, encode(event, key), what=f"event {event.id} ({event.type})")
        observe_produced(topic, event)  # tidegate_events_produced_total (streams.metrics)
        return delivery

    async def publish_record(self, topic: str, record: KafkaRecord, *, what: str = "record") -> Delivery:
        try:
            metadata = await self._producer.send_and_wait(
                topic, value=record.value, key=record.key, headers=list(record.headers)
            )
        except Exception as error:  # aiokafka raises its own KafkaError family
            raise PublishError(f"{what} could not be published to {topic}: {error}") from error
        return Delivery(metadata.topic, metadata.partition, metadata.offset)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
