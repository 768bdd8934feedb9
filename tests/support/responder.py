"""A scripted task responder on the real broker: plays the connectors in integration tests and benchmarks.

It consumes every `tasks.<task>` topic of a prefix and answers each `.triggered` with `.started` and
`.finished` carrying the result its rules give (pass by default; `silent` answers nothing), exactly as
a Keptn integration does. Rules reuse the simulator's `--respond` grammar: `TASK=RESULT[@STAGE]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer

from tidegate.agents.sequencer.driver import Reply, Responders, RespondRule
from tidegate.schemas.events import EventType, KeptnEvent, Status, task_type
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key
from tidegate.streams.codec import DecodeError, decode
from tidegate.streams.kafka import AsyncEventPublisher
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry


class TaskResponder:
    def __init__(
        self, settings: Settings, rules: Iterable[str] = (), *, source: str = "test-responder", delay: float = 0.0
    ) -> None:
        self.settings = settings
        self.registry = TopicRegistry.from_settings(settings)
        self.responders = Responders(tuple(RespondRule.parse(rule) for rule in rules))
        self.source = source
        # Seconds between a task's `.triggered` and its `.finished` (`.started` is sent at once). Tasks
        # are answered concurrently, like independent connectors: a delay keeps many tasks in flight.
        self.delay = delay
        self.seen: list[KeptnEvent] = []
        self.extra_data: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self._answering: set[asyncio.Task[None]] = set()
        self._publisher = AsyncEventPublisher(settings)

    async def __aenter__(self) -> TaskResponder:
        await self._publisher.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in [self._task, *self._answering]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._publisher.stop()

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=f"{self.settings.topic_prefix}test-responder",
            auto_offset_reset="earliest",
            metadata_max_age_ms=1000,
        )
        consumer.subscribe(pattern=f"^{re.escape(self.registry.prefix)}tasks\\..*")
        await consumer.start()
        try:
            async for record in consumer:
                try:
                    event = decode(record.value, record.headers)
                except DecodeError:
                    continue
                parsed = EventType.parse(event.type)
                if not parsed.is_task or parsed.kind != "triggered" or parsed.task is None:
                    continue
                self.seen.append(event)
                if self.delay > 0:
                    answering = asyncio.create_task(self._answer(event, parsed.task))
                    self._answering.add(answering)
                    answering.add_done_callback(self._answering.discard)
                else:
                    await self._answer(event, parsed.task)
        finally:
            await consumer.stop()

    async def _answer(self, event: KeptnEvent, task: str) -> None:
        if task == "approval":
            return  # the approver agent answers approvals
        reply = self.responders.reply_for(task, event.stage)
        if reply is Reply.SILENT:
            return
        key = Key.of_data(event.data)
        common = {k: event.data.get(k) for k in ("project", "stage", "service", "labels") if event.data.get(k)}
        started = KeptnEvent(
            id=derived_id(event.id, f"{self.source}:started"),
            type=task_type(task, "started"),
            source=self.source,
            shkeptncontext=event.shkeptncontext,
            triggeredid=event.id,
            gitcommitid=event.gitcommitid,
            data={**common, "status": Status.SUCCEEDED.value},
        )
        status, result = (
            (Status.ERRORED.value, "fail") if reply is Reply.ERRORED else (Status.SUCCEEDED.value, reply.value)
        )
        finished = KeptnEvent(
            id=derived_id(event.id, f"{self.source}:finished"),
            type=task_type(task, "finished"),
            source=self.source,
            shkeptncontext=event.shkeptncontext,
            triggeredid=event.id,
            gitcommitid=event.gitcommitid,
            data={**common, **self.extra_data.get(task, {}), "status": status, "result": result,
                  "message": f"{self.source} answered {result}"},
        )
        events = self.registry.events
        await self._publisher.publish(events, started, key=key)
        if reply is not Reply.HANG:
            if self.delay > 0:
                await asyncio.sleep(self.delay)
            await self._publisher.publish(events, finished, key=key)
