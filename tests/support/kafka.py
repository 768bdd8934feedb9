"""Test helpers on the real broker: publish a project's files, and collect decoded events from a topic."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping

from aiokafka import AIOKafkaConsumer

from tidegate.schemas.events import KeptnEvent
from tidegate.streams.codec import DecodeError, KafkaRecord, decode
from tidegate.streams.kafka import EventPublisher
from tidegate.streams.resources import Resource
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry


def publish_files(settings: Settings, project: str, files: Mapping[str, bytes | str], stage: str = "", service: str = "") -> list[Resource]:
    """Write files to the resources topic as the gateway does (path -> content)."""
    registry = TopicRegistry.from_settings(settings)
    written = []
    with EventPublisher(settings) as publisher:
        for path, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            resource = Resource.new(project, path, data, stage=stage, service=service)
            key, value = resource.to_record()
            publisher.publish_record(registry.resources, KafkaRecord(key=key, value=value), what=path)
            written.append(resource)
    return written


class EventCollector:
    """Reads a topic from the beginning in the background; `wait_for` blocks until a condition holds."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self.events: list[KeptnEvent] = []
        self.keys: list[bytes | None] = []
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> EventCollector:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=f"collector-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            async for record in consumer:
                try:
                    event = decode(record.value, record.headers)
                except DecodeError:
                    continue
                self.events.append(event)
                self.keys.append(record.key)
                self._changed.set()
        finally:
            await consumer.stop()

    def of_type(self, event_type: str) -> list[KeptnEvent]:
        return [e for e in self.events if e.type == event_type]

    async def wait_for(self, condition: Callable[[list[KeptnEvent]], bool], timeout: float, what: str) -> list[KeptnEvent]:
        deadline = time.monotonic() + timeout
        while not condition(self.events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = "\n".join(f"  {e.type} {e.data.get('stage', '')} {e.data.get('result', '')}" for e in self.events[-40:])
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last events on {self.topic}:\n{seen}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))
        return self.events
