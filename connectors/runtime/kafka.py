"""Kafka plumbing of the runtime: its state topics and the connector's state log (the shell part),
on the one Kafka layer (`tidegate.streams.kafka`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from tidegate.connectors.runtime.state import TaskMemory, TaskRecord, decode_record, encode_record
from tidegate.streams.kafka import CompactedReader, Consumed, provision_topics, topic_partitions
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicSpec

log = logging.getLogger("tidegate.connector.runtime")

STATE_TOPIC_CONFIG = {"cleanup.policy": "compact"}


async def ensure_topics(settings: Settings, topics: Iterable[tuple[str, int, dict[str, str]]]) -> dict[str, int]:
    """Create the topics that do not exist yet (name, partitions, config); returns each one's
    partition count as the broker knows it (wanted or not, an existing topic keeps its own)."""
    specs = [TopicSpec(name, partitions, config) for name, partitions, config in topics]
    await asyncio.to_thread(provision_topics, settings, specs)  # waits until the partitions show
    return await asyncio.to_thread(topic_partitions, settings, [spec.name for spec in specs])


class StateLog:
    """The connector's memory (TaskMemory) backed by its compacted state topic.

    `start` reads the topic from the beginning up to its end; the reader keeps following it (other
    instances of the same connector write to it too); `catch_up` waits until every record written
    before the call has been read. `write` waits for the broker's acknowledgement.
    """

    def __init__(self, settings: Settings, topic: str, producer: AIOKafkaProducer) -> None:
        self.topic = topic
        self.memory = TaskMemory()
        self._settings = settings
        self._producer = producer
        self._reader: CompactedReader | None = None

    def _apply(self, consumed: Consumed) -> None:
        decoded = decode_record(consumed.record.key, consumed.record.value)
        if decoded is not None:
            self.memory.apply(*decoded)

    async def start(self, partitions: int, timeout: float = 60.0) -> None:
        """Read the topic (with `partitions` partitions, see ensure_topics) to its end, then follow it."""
        self._reader = CompactedReader(self._settings, self.topic, self._apply, partitions=partitions, poll_ms=200)
        await self._reader.start()
        await self.catch_up(timeout)
        log.info("state log %s: %d task(s) remembered", self.topic, len(self.memory))

    async def catch_up(self, timeout: float = 60.0) -> None:
        """Wait until everything written to the state topic before this call has been read."""
        assert self._reader is not None
        reader = self._reader
        try:
            await reader.wait_ready(timeout)  # re-raises what stopped the reader
            if await reader.sync(timeout):
                return
        except TimeoutError:
            pass
        if reader.error is not None:
            raise reader.error
        raise RuntimeError(
            f"could not read the state topic {self.topic} to its end within {timeout:g} s; is Kafka reachable?"
        )

    async def write(self, triggered_id: str, record: TaskRecord) -> None:
        key, value = encode_record(triggered_id, record)
        await self._producer.send_and_wait(self.topic, value=value, key=key)
        self.memory.apply(triggered_id, record)

    async def stop(self) -> None:
        if self._reader is not None:
            await self._reader.stop()
