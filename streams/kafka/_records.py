"""One record type and one adapter per client library.

`KafkaRecord` (the codec's: key, value, ordered headers) is what every part of Tidegate reads and
writes; `Consumed` adds where a record was read. `from_confluent` and `from_aiokafka` are the only
places that turn a client's message into them (Faust's events are adapted inside the Faust app
factory, `tidegate.streams.app`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tidegate.streams.codec import KafkaRecord

if TYPE_CHECKING:
    from aiokafka.structs import ConsumerRecord
    from confluent_kafka import Message


@dataclass(frozen=True, slots=True)
class Consumed:
    """A consumed record and where it was read."""

    topic: str
    partition: int
    offset: int
    record: KafkaRecord
    timestamp_ms: int  # the record's timestamp; <= 0 when it has none

    @property
    def timestamp(self) -> datetime | None:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC) if self.timestamp_ms > 0 else None


def _headers(pairs: Iterable[tuple[str, Any]]) -> tuple[tuple[str, bytes], ...]:
    headers = tuple(pairs)
    # A client's usual headers (confluent-kafka's, aiokafka's): (name, bytes) tuples already, kept as they
    # are; any other (a null or text value) makes the conversion below (the same result, 4x slower).
    for pair in headers:
        if type(pair) is not tuple or len(pair) != 2 or type(pair[1]) is not bytes:
            return _converted(headers)
    return headers


def _converted(pairs: Iterable[tuple[str, Any]]) -> tuple[tuple[str, bytes], ...]:
    return tuple(
        (name, value.encode("utf-8") if isinstance(value, str) else value) for name, value in pairs if value is not None
    )


def from_confluent(message: Message) -> Consumed:
    """A confluent-kafka message (without error) as a Consumed record."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError("a consumed message without topic, partition or offset")
    headers = message.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    record = KafkaRecord(key=message.key(), value=message.value(), headers=_headers(pairs))
    return Consumed(topic, partition, offset, record, message.timestamp()[1])


def from_aiokafka(record: ConsumerRecord[bytes, bytes]) -> Consumed:
    """An aiokafka consumer record as a Consumed record."""
    raw = KafkaRecord(key=record.key, value=record.value, headers=_headers(record.headers or ()))
    return Consumed(record.topic, record.partition, record.offset, raw, record.timestamp)
