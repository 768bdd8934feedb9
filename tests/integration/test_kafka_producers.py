"""aiokafka and confluent-kafka publishers agree on partitions, and what they write decodes the same."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import DefaultPartitioner

from tests.conftest import ReadRecords
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.codec import decode_record, encode
from tidegate.streams.kafka import AsyncEventPublisher, Delivery, EventPublisher
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

SERVICES = ["carts", "catalogue", "orders", "payment", "shipping", "user", "front-end", "queue-master"]


def triggered(service: str) -> KeptnEvent:
    return KeptnEvent(
        source="ci",
        type="sh.keptn.event.deployment.triggered",
        time=datetime(2024, 5, 17, 9, 30, 12, 345000, tzinfo=UTC),  # Keptn's millisecond precision
        shkeptncontext="08735340-6f9e-4b32-97ff-3b6c292bc509",
        gitcommitid="8fe4a1b",
        data={"project": "sockshop", "stage": "dev", "service": service, "deployment": {"strategy": "direct"}},
    )


@pytest.mark.integration
async def test_both_publishers_put_a_key_on_the_same_partition_and_decode_identically(
    tidegate_settings: Settings, kafka_reader: ReadRecords
) -> None:
    topic = TopicRegistry.from_settings(tidegate_settings).events
    events = {service: triggered(service) for service in SERVICES}
    by_confluent: dict[str, Delivery] = {}
    with EventPublisher(tidegate_settings) as publisher:
        for service, event in events.items():
            by_confluent[service] = publisher.publish(topic, event)
    by_aiokafka: dict[str, Delivery] = {}
    async with AsyncEventPublisher(tidegate_settings) as async_publisher:
        for service, event in events.items():
            by_aiokafka[service] = await async_publisher.publish(topic, event)

    murmur2 = DefaultPartitioner()  # the hashing of Java clients and Faust
    all_partitions = list(range(tidegate_settings.partitions))
    for service, event in events.items():
        expected = murmur2(encode(event).key, all_partitions, all_partitions)
        assert by_confluent[service].partition == by_aiokafka[service].partition == expected, service
    # Eight keys over four partitions: the agreement is not everything landing on one partition.
    assert len({delivery.partition for delivery in by_confluent.values()}) > 1

    by_key = defaultdict(list)
    for record in kafka_reader(topic, 2 * len(SERVICES)):
        by_key[record.key].append(decode_record(record))
    for event in events.values():
        assert by_key[encode(event).key] == [event, event]
