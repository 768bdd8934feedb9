"""Helpers for connector tests: triggered events, an in-process connector host, and a scripted connector."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tidegate.connectors.runtime import Connector, ConnectorOptions, TaskContext, TaskOutcome
from tidegate.connectors.runtime.runner import ConnectorHost
from tidegate.schemas.events import KeptnEvent, TaskKind, task_type
from tidegate.streams.kafka import AsyncEventPublisher
from tidegate.streams.resources import ResourceStore
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

PYTHON = sys.executable


def triggered(task: str, data: dict[str, Any] | None = None, *, project: str = "sockshop", stage: str = "dev",
              service: str = "carts", event_id: str | None = None) -> KeptnEvent:
    """A `<task>.triggered` event as the sequencer sends it (no triggeredid)."""
    return KeptnEvent(
        id=event_id or str(uuid.uuid4()),
        source="shipyard-controller",
        type=task_type(task, TaskKind.TRIGGERED),
        shkeptncontext=str(uuid.uuid4()),
        gitcommitid="c0ffee",
        data={"project": project, "stage": stage, "service": service, "labels": {"team": "carts"}, **(data or {})},
    )


Work = Callable[[TaskContext], Awaitable[TaskOutcome]]


@dataclass
class ScriptedConnector:
    """A connector whose `run` is a test function; counts the runs it started."""

    work: Work
    name: str = "scripted"
    tasks: Sequence[str] = ("deployment",)
    runs: list[str] = field(default_factory=list)

    def wants(self, event: KeptnEvent) -> bool:
        return event.data.get("skip") is not True

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        self.runs.append(ctx.event.id)
        return await self.work(ctx)


@contextlib.asynccontextmanager
async def hosted(connectors: Sequence[Connector], settings: Settings, options: ConnectorOptions | None = None,
                 resources: ResourceStore | None = None) -> AsyncIterator[ConnectorHost]:
    """Run connectors in this event loop until the block ends."""
    host = ConnectorHost(connectors, settings, {c.name: options or ConnectorOptions() for c in connectors},
                         resources=resources)
    running = asyncio.create_task(host.run())
    try:
        ready = asyncio.create_task(host.wait_ready(60))
        done, _ = await asyncio.wait([ready, running], return_when=asyncio.FIRST_COMPLETED)
        if running in done:
            running.result()
            raise AssertionError("the connector host stopped before it was ready")
        ready.result()
        yield host
    finally:
        host.stop()
        await asyncio.wait_for(running, 60)


async def publish_tasks(settings: Settings, *events: KeptnEvent) -> None:
    topics = TopicRegistry.from_settings(settings)
    async with AsyncEventPublisher(settings) as publisher:
        for event in events:
            task = event.parsed_type.task
            assert task is not None, event.type
            await publisher.publish(topics.task(task), event)


def cancellation(triggered_event: KeptnEvent, reason: str = "aborted") -> KeptnEvent:
    """The sequencer's cancellation of a task (schemas/tidegate_events.py TASK_CANCELLED_TYPE)."""
    from tidegate.schemas.tidegate_events import TASK_CANCELLED_TYPE

    task = triggered_event.parsed_type.task
    return KeptnEvent(
        source="shipyard-controller",
        type=TASK_CANCELLED_TYPE,
        shkeptncontext=triggered_event.shkeptncontext,
        triggeredid=triggered_event.id,
        data={key: triggered_event.data[key] for key in ("project", "stage", "service")}
        | {"task": task, "reason": reason, "message": "aborted by a user"},
    )


async def publish_on_task_topic(settings: Settings, task: str, event: KeptnEvent) -> None:
    topics = TopicRegistry.from_settings(settings)
    async with AsyncEventPublisher(settings) as publisher:
        await publisher.publish(topics.task(task), event)
