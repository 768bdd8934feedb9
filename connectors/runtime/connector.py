"""The connector contract: what a side-effect integration implements to run on the runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tidegate.connectors.runtime.context import TaskContext
from tidegate.connectors.runtime.outcome import TaskOutcome
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.settings import Settings


@runtime_checkable
class Connector(Protocol):
    """A task connector. The runtime consumes `tasks.<task>` for every task in `tasks`, asks `wants`
    for each `.triggered` event, replies `.started`, calls `run`, and replies `.finished` with the
    outcome. `run` may raise: the exception becomes an errored task with its message."""

    @property
    def name(self) -> str: ...

    @property
    def tasks(self) -> Sequence[str]: ...

    def wants(self, event: KeptnEvent) -> bool: ...

    async def run(self, ctx: TaskContext) -> TaskOutcome: ...


@runtime_checkable
class EventFollower(Protocol):
    """A connector that also follows the `events` topic (notifications), beside its tasks. The host
    runs `follow` until `stop` is set."""

    async def follow(self, settings: Settings, stop: asyncio.Event) -> None: ...


@dataclass(frozen=True, slots=True)
class ConnectorOptions:
    """How the runtime runs one connector."""

    concurrency: int = 4
    """Tasks running at once; more wait (their `.started` is sent at once all the same)."""
    timeout: float = 600.0
    """Seconds a task may run unless its `properties.timeout` (data.<task>.timeout) says otherwise."""
    max_waiting: int = 64
    """Accepted tasks (running + waiting) above which the runtime pauses reading the task topics."""
    stop_grace: float = 10.0
    """Seconds running tasks get to finish when the connector stops, before they are cancelled."""

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {self.timeout}")
        if self.max_waiting < self.concurrency:
            raise ValueError(f"max_waiting ({self.max_waiting}) must be at least concurrency ({self.concurrency})")
