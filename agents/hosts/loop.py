"""The loop host: an agent on the shared consume-decide-produce loop (`tidegate.streams.kafka.loop`).

The loop runs in a thread of the worker process, with its own consumer group `<prefix><agent>`, its
inputs' partitions and each key's state in memory and in the agent's state topic; a task of the
worker's Faust app starts it (with the app, not after Faust's table recovery) and stops it.
Everything the agent decides comes from its core through `kernel.Runner`, as on the Faust host.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic

from tidegate.agents.kernel import Hosted, Out, Position, Rejected, Runner, S, Step
from tidegate.agents.shell import WorkerContext
from tidegate.streams.app import note_dead_letter
from tidegate.streams.dlq import DeadLetterCounter
from tidegate.streams.kafka._records import Consumed
from tidegate.streams.kafka.loop import StreamLoop, run_in_thread
from tidegate.streams.metrics import add_lag_source
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

log = logging.getLogger(__name__)

SYNC_TIMEOUT = 30.0  # seconds an input may wait for the resources view to catch up
STOP_TIMEOUT = 40.0  # seconds the worker waits for the loop's last commit on shutdown


class AgentHandler(Generic[S]):
    """An agent as the loop's handler: `kernel.Runner` per record, the agent's codec and timers."""

    def __init__(self, hosted: Hosted[S, Any], registry: TopicRegistry, sync: Callable[[], None]) -> None:
        self.hosted = hosted
        self.agent = hosted.agent
        self.name = hosted.agent.name
        self.runner: Runner[S, Any] = Runner(hosted, registry)
        self.ignored = self.runner.ignored
        self._sync = sync

    def handle(self, read: Consumed, state_of: Callable[[bytes], Any]) -> Step[S] | None:
        runner = self.runner
        got = runner.read(read.topic, read.record, read.timestamp, Position(read.topic, read.partition, read.offset))
        if got is None:
            return None
        if isinstance(got, Rejected):
            return Step(None, None, False, dead_letter=got.reason, code=got.code)
        if runner.stale(got):
            self._sync()
        prepared = runner.prepared(got)
        return runner.step(state_of(got.raw_key), prepared, datetime.now(UTC), read.record)

    def encode_state(self, state: S) -> bytes:
        assert self.agent.state is not None
        return self.agent.state.encode(state)

    def decode_state(self, value: bytes) -> S:
        assert self.agent.state is not None
        return self.agent.state.decode(value)

    def next_deadline(self, state: S | None) -> datetime | None:
        return self.agent.next_deadline(state)

    def tick(self, key: bytes, deadline: datetime) -> Out | None:
        return self.runner.tick(key, deadline)

    def refused(self, out: Out, reason: str) -> list[Out]:
        return self.runner.undeliverable(out, reason, datetime.now(UTC))

    def scanned(self, states: list[S]) -> None:
        if self.agent.scanned is not None:
            self.agent.scanned(states)


def loop_for(
    settings: Settings,
    hosted: Hosted[S, Any],
    *,
    sync: Callable[[], None] = lambda: None,
    ready: Callable[[], bool] = lambda: True,
    dead_letters: DeadLetterCounter | None = None,
    instance_id: str | None = None,
) -> StreamLoop:
    """The loop that runs `hosted` (not started): group `<prefix><agent>`, its inputs, its state topic;
    a static member of that group as `instance_id` when given."""
    registry = TopicRegistry.from_settings(settings)
    agent = hosted.agent
    handler = AgentHandler(hosted, registry, sync)
    state_topic = registry.changelog(*agent.state_topic) if agent.state is not None and agent.state_topic else None
    return StreamLoop(settings, handler, group=registry.app_id(agent.name), topics=handler.runner.topics,
                      state_topic=state_topic, ready=ready, dead_letters=dead_letters,
                      note_dead_letter=note_dead_letter, instance_id=instance_id)


def register(ctx: WorkerContext, hosted: Hosted[S, Any]) -> StreamLoop:
    """Run `hosted` on the loop, in a thread the worker starts and stops."""
    app = ctx.app
    holder: dict[str, asyncio.AbstractEventLoop] = {}

    def sync() -> None:
        # Runs in the loop's thread; the resources view lives on the worker's event loop.
        if "loop" in holder:
            asyncio.run_coroutine_threadsafe(ctx.sync_resources(), holder["loop"]).result(SYNC_TIMEOUT)

    view = ctx.view
    loop = loop_for(app.tidegate_settings, hosted, sync=sync,
                    ready=(lambda: view.ready.is_set()) if view is not None else (lambda: True),
                    dead_letters=app.dead_letters,
                    # The worker's static membership (agents.worker): the Faust app's, in the loop's own group.
                    instance_id=app.conf.consumer_group_instance_id)

    async def run_loop() -> None:
        # Started with the app (not after Faust's table recovery, which the loop does not need) and
        # cancelled on shutdown; the loop's thread then commits what it handled and closes its consumer.
        holder["loop"] = asyncio.get_running_loop()
        thread = run_in_thread(loop, hosted.agent.name)
        try:
            while thread.is_alive():
                await asyncio.sleep(0.5)
        finally:
            loop.stop()
            await asyncio.to_thread(thread.join, STOP_TIMEOUT)

    run_loop.__name__ = run_loop.__qualname__ = f"{hosted.agent.name.replace('-', '_')}_loop"
    app.task_from_start(run_loop)
    add_lag_source(loop.lags)  # tidegate_consumer_lag{group="<prefix><agent>"}
    return loop
