"""What the gateway writes to, as two small interfaces, with in-memory versions for tests.

- `EventSink.publish(event)`: put an event on `events` (Kafka: binary mode, key project/stage/service).
- `ResourceSink.write(resources)` / `.delete(keys)`: put file versions (or tombstones) on `resources`.
- `TaskTopics.ensure(tasks)`: create the missing `tasks.<task>` topics of an accepted shipyard
  (blocking; the gateway calls it in a thread) and return problems as text instead of raising.

The Kafka versions live in gateway/kafka.py; tests swap these, never the routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tidegate.schemas.errors import TidegateError
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.resources import Resource, ResourceStore


class PublishFailed(TidegateError, RuntimeError):
    """Kafka did not take a write; the message names what and why (shown to the client as a 503)."""


class EventSink(Protocol):
    async def publish(self, event: KeptnEvent) -> None: ...


class ResourceSink(Protocol):
    async def write(self, resources: Sequence[Resource]) -> None: ...

    async def delete(self, keys: Sequence[str]) -> None: ...


class TaskTopics(Protocol):
    def ensure(self, tasks: Sequence[str]) -> list[str]: ...


class MemoryTaskTopics:
    """Remembers the task topics asked for; `problems` is what every call answers (tests set it)."""

    def __init__(self) -> None:
        self.tasks: set[str] = set()
        self.problems: list[str] = []

    def ensure(self, tasks: Sequence[str]) -> list[str]:
        self.tasks.update(tasks)
        return list(self.problems)


class MemoryEventSink:
    """Keeps published events in a list."""

    def __init__(self) -> None:
        self.events: list[KeptnEvent] = []

    async def publish(self, event: KeptnEvent) -> None:
        self.events.append(event)


class MemoryResourceSink:
    """Applies writes straight to a ResourceStore (as the Kafka view would, a moment later)."""

    def __init__(self, store: ResourceStore) -> None:
        self.store = store

    async def write(self, resources: Sequence[Resource]) -> None:
        for resource in resources:
            key, value = resource.to_record()
            self.store.apply(key, value)

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.store.apply(key, None)
