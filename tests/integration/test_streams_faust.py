"""A real Faust worker on the real broker: undecodable input goes to the DLQ, the agent goes on.

The module is also the worker's app (`faust -A tests.integration.test_streams_faust:app worker`):
the subprocess reads the test's settings from `TIDEGATE_*` variables. Building the app at import
does no I/O, so pytest importing this module is harmless.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from tests.conftest import ReadRecords, StartWorker
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.app import create_app, decode_or_dlq, send_event
from tidegate.streams.codec import KafkaRecord, decode_record, encode
from tidegate.streams.dlq import read_dead_letter
from tidegate.streams.kafka import EventPublisher
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

app = create_app(Settings(), "echo")


@app.agent(app.channels.events)
async def echo(stream: AsyncIterator[object]) -> None:
    """Forward every decodable event to `audit`, unchanged."""
    async for record in stream.events():  # type: ignore[attr-defined]
        event = await decode_or_dlq(record)
        if event is None:
            continue
        await send_event(app, app.topic_registry.audit, event)


def delivery_event(service: str) -> KeptnEvent:
    return KeptnEvent(
        type="sh.keptn.event.dev.delivery.triggered",
        source="test",
        time=datetime(2024, 5, 17, 9, 30, 12, 345000, tzinfo=UTC),  # Keptn's millisecond precision
        shkeptncontext="08735340-6f9e-4b32-97ff-3b6c292bc509",
        data={"project": "sockshop", "stage": "dev", "service": service},
    )


@pytest.mark.integration
def test_bad_record_goes_to_the_dlq_and_the_next_one_is_processed(
    tidegate_settings: Settings, faust_worker: StartWorker, kafka_reader: ReadRecords
) -> None:
    registry = TopicRegistry.from_settings(tidegate_settings)
    valid = delivery_event("carts")
    key = encode(valid).key
    bad = KafkaRecord(key=key, value=b"this is not an event", headers=(("traceparent", b"00-1234"),))
    with EventPublisher(tidegate_settings) as publisher:
        # Same key, so the same partition: the valid event comes strictly after the bad one.
        bad_at = publisher.publish_record(registry.events, bad)
        valid_at = publisher.publish(registry.events, valid)
    assert bad_at.partition == valid_at.partition

    worker = faust_worker("tests.integration.test_streams_faust:app", tidegate_settings)
    try:
        [forwarded] = kafka_reader(
            registry.audit, 1, timeout=tidegate_settings.started_timeout, check=worker.assert_running
        )
        [dead] = kafka_reader(registry.dlq, 1, check=worker.assert_running)
    except AssertionError as error:
        raise AssertionError(f"{error}\nworker log:\n{worker.log_tail()}") from error

    assert decode_record(forwarded) == valid
    assert forwarded.key == key

    assert dead.key == key
    assert dead.value == b"this is not an event"
    assert dead.header("traceparent") == b"00-1234"
    letter = read_dead_letter(dead)
    assert letter is not None
    assert "not valid JSON" in letter.reason
    assert letter.source_topic == registry.events
    assert letter.source_partition == bad_at.partition
    assert letter.source_offset == bad_at.offset
    assert letter.agent == "echo"

    worker.assert_running()  # the bad record did not crash the agent
    assert worker.stop() == 0, worker.log_tail()
