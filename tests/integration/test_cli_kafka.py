"""`--kafka`: the CLI publishes straight to `<prefix>events` (no gateway), validated first, keyed
`project/stage/service` and partitioned with murmur2 exactly as aiokafka (and so Faust) would."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka.partitioner import DefaultPartitioner

from tidegate.cli.client import CliError, publish_to_kafka
from tidegate.cli.events_build import delivery_trigger
from tidegate.streams.codec import decode_record
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration


def test_direct_publish_is_keyed_partitioned_and_validated(
    tidegate_settings: Settings, kafka_reader: Callable[..., list], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDEGATE_TOPIC_PREFIX", tidegate_settings.topic_prefix)
    with pytest.raises(CliError, match=r"data\.service"):
        publish_to_kafka({"type": "sh.keptn.event.dev.delivery.triggered", "data": {"project": "p", "stage": "dev"}},
                         tidegate_settings.kafka_bootstrap)
    context = publish_to_kafka(delivery_trigger("sockshop", "dev", "carts", "carts:3", keptn_context="ci-run-5"),
                               tidegate_settings.kafka_bootstrap)
    topic = TopicRegistry.from_settings(tidegate_settings).events
    [record] = kafka_reader(topic, 1)
    assert record.key == b"sockshop/dev/carts"
    event = decode_record(record)
    assert event.shkeptncontext == context
    assert event.data["configurationChange"]["values"]["image"] == "carts:3"

    # The partition is the one aiokafka's murmur2 partitioner picks for the key.
    from confluent_kafka import Consumer, TopicPartition

    partitions = list(range(tidegate_settings.partitions))
    expected = DefaultPartitioner()(record.key, partitions, partitions)
    consumer = Consumer({"bootstrap.servers": tidegate_settings.kafka_bootstrap, "group.id": "probe"})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()
    assert [p for p, end in ends.items() if end > 0] == [expected]
