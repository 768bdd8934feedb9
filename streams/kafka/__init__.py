"""The one Kafka layer: every Kafka client of the product is configured and built here.

Outside this package, only Faust (inside a Faust app) constructs Kafka clients;
`tests/unit/test_kafka_layer.py` says so. The consume-decide-produce loop that runs agents outside
Faust is `tidegate.streams.kafka.loop` (`StreamLoop`, imported from there: it loads confluent-kafka).

Public names (stable; import them from `tidegate.streams.kafka`):

- Client configuration, one function per library, from `Settings` (bootstrap, security protocol,
  SASL, TLS):
  - `confluent_config(settings, **overrides) -> dict`: for confluent-kafka's Producer, Consumer and
    AdminClient; overrides use librdkafka's dotted names (`**{"group.id": "g"}`);
  - `aiokafka_config(settings, **overrides) -> dict`: keyword arguments for aiokafka's clients
    (includes an `ssl_context` for SSL / SASL_SSL);
  - `faust_credentials(settings)`: Faust's `broker_credentials`;
  - `ssl_context(settings)`: the TLS context the asyncio clients share (None without TLS).
- Records: `KafkaRecord` (the codec's record: key, value, headers), `Consumed` (a record and where it
  was read), one adapter per client library: `from_confluent(message)`, `from_aiokafka(record)`.
- Topics: `provision_topics`, `describe_topics`, `delete_topics`, `topic_partitions`, `plan_topics`,
  `ProvisionReport`, `ProvisionError` (one provisioner, on confluent-kafka's AdminClient).
- Publishing: `EventPublisher` (sync, confluent-kafka), `AsyncEventPublisher` (aiokafka), both
  murmur2-partitioned and idempotent; `async_producer(settings, **overrides)` for raw records.
- Reading: `CompactedReader` (a topic from its beginning into a callback, then following it;
  `ready`, `sync()` for read-your-writes), `read_to_end` (a topic's records up to the end it had when
  called), `async_consumer(settings, *topics, **overrides)` for group consumers.
- Starting without Kafka: `wait_for_kafka(settings, ...)` retries with backoff and a bounded rate of
  log lines until a broker answers; `KafkaWait` tells a health endpoint what is being waited for.

Importing this package loads no Kafka client library; each part loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tidegate.schemas.lazy import lazy_surface
from tidegate.streams.codec import KafkaRecord
from tidegate.streams.kafka._config import aiokafka_config, confluent_config, faust_credentials, ssl_context

if TYPE_CHECKING:
    from tidegate.streams.kafka._admin import (
        ProvisionError,
        ProvisionReport,
        TopicPlan,
        TopicState,
        delete_topics,
        describe_topics,
        plan_topics,
        provision_topics,
        topic_partitions,
    )
    from tidegate.streams.kafka._publish import (
        AsyncEventPublisher,
        Delivery,
        EventPublisher,
        PublishError,
        async_producer,
    )
    from tidegate.streams.kafka._read import CompactedReader, async_consumer, read_to_end
    from tidegate.streams.kafka._records import Consumed, from_aiokafka, from_confluent
    from tidegate.streams.kafka._wait import KafkaWait, wait_for_kafka

# Loaded on first use (schemas/lazy.py): public name -> its module, relative to this package.
_LAZY = {
    **dict.fromkeys(
        ("ProvisionError", "ProvisionReport", "TopicPlan", "TopicState", "delete_topics", "describe_topics",
         "plan_topics", "provision_topics", "topic_partitions"),
        "_admin",
    ),
    **dict.fromkeys(("AsyncEventPublisher", "Delivery", "EventPublisher", "PublishError", "async_producer"), "_publish"),
    **dict.fromkeys(("CompactedReader", "async_consumer", "read_to_end"), "_read"),
    **dict.fromkeys(("Consumed", "from_aiokafka", "from_confluent"), "_records"),
    **dict.fromkeys(("KafkaWait", "wait_for_kafka"), "_wait"),
}
if not TYPE_CHECKING:  # type checkers read the imports above
    __getattr__, __dir__ = lazy_surface(__name__, _LAZY)

__all__ = [
    "AsyncEventPublisher",
    "CompactedReader",
    "Consumed",
    "Delivery",
    "EventPublisher",
    "KafkaRecord",
    "KafkaWait",
    "ProvisionError",
    "ProvisionReport",
    "PublishError",
    "TopicPlan",
    "TopicState",
    "aiokafka_config",
    "async_consumer",
    "async_producer",
    "confluent_config",
    "delete_topics",
    "describe_topics",
    "faust_credentials",
    "from_aiokafka",
    "from_confluent",
    "plan_topics",
    "provision_topics",
    "read_to_end",
    "ssl_context",
    "topic_partitions",
    "wait_for_kafka",
]
