"""The Faust host: an agent as Faust agents of the worker's app, one per input topic, with a table.

The table `<table>` of the worker's app (changelog `<prefix>worker-<table>-changelog`, the agent's
`state_topic`) holds each key's state; Faust owns the consumer group `<prefix>worker`, commits and
table recovery. One key's read-decide-send-write never interleaves with another input's (a lock per
key: the agent's inputs are separate Faust agents). Timers: a Faust timer sends due keys their tick.
Everything the agent decides comes from its core through `kernel.Runner`, as on the loop host.

No agent runs here by default (`agents.worker.HOSTS`); `TIDEGATE_AGENT_HOSTS=<agent>=faust` still puts one
here (benchmarks and tests of Faust's table and group). This host carries a data-loss bug of
faust-streaming 0.15.3 (the latest release): after an assignment, Faust fetches while it seeks the input
partitions to their committed offsets, then clears its streams' queues (`flow_control.resume()`), so
what it fetched in between is dropped; a partition without a committed offset is never sought back, and
a worker killed -9 before its first commit and restarted skips records. `SeekingConsumer` seeks those
partitions to their first record, through Faust's public surface only; it narrows the window but cannot
close it (the drain loop's read offsets and the consumer thread's concurrent fetches race the seek):
tests/integration/test_worker_crash.py with `TIDEGATE_AGENT_HOSTS=approver=faust,remediator=faust` still
loses records in some runs. The loop host reads with confluent-kafka and has no such window.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, EventT

from tidegate.agents.kernel import Hosted, Out, Position, Rejected, Runner, S
from tidegate.agents.shell import WorkerContext
from tidegate.streams.app import TidegateApp, record_of, send_to_dlq
from tidegate.streams.metrics import observe_produced

log = logging.getLogger(__name__)

TICK_INTERVAL = 1.0  # seconds between scans of the local deadline index
RESCAN_EVERY = 15  # full table scans (after recovery or rebalance) every N ticks


async def _send(app: TidegateApp, out: Out) -> None:
    topic, record, event = out
    if event is not None:
        observe_produced(topic, event)
    await app.channels.topic(topic).send(key=record.key, value=record.value, headers=list(record.headers))


class SeekingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, whose seek to the committed offsets also seeks every input partition the
    group never committed to its first record (what `auto_offset_reset=earliest` promises; before the log
    start, Kafka resets offset 0 to the earliest). Changelog partitions are left to Faust's table recovery.

    Faust's seek leaves such a partition where its fetches took it, past what Faust fetched and dropped
    (module docstring). Public surface only: the public `seek_to_committed` overridden, installed as the
    `Consumer` of a `Transport` subclass that the host sets as the app's `transport` (a public setter).
    """

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        changelogs = self.app.tables.changelog_topics
        never = {tp: 0 for tp, offset in committed.items() if not offset and tp.topic not in changelogs}
        if never:
            # In the consumer's own thread (aiokafka is not thread-safe), waiting for the new positions.
            await self.seek_wait(never)
        return committed


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport (the worker's `kafka://` broker URLs) with the `SeekingConsumer`."""

    Consumer = SeekingConsumer


def register(ctx: WorkerContext, hosted: Hosted[S, Any]) -> Runner[S, Any]:
    """Add `hosted` to the worker's app: its table, one Faust agent per input, its ticker."""
    app = ctx.app
    if not isinstance(app.transport, Transport):
        app.transport = Transport(app.conf.broker_consumer, app)  # before Faust builds its consumer from it
    agent = hosted.agent
    runner: Runner[S, Any] = Runner(hosted, app.topic_registry)
    codec = agent.state
    table = None
    if codec is not None:
        if agent.state_topic is None or app.topic_registry.app_id(agent.state_topic[0]) != app.conf.id:
            raise ValueError(f"the Faust host keeps {agent.name}'s state in a table of its app {app.conf.id}; "
                             f"the agent names the state topic {agent.state_topic}")
        table = app.Table(agent.state_topic[1], default=None, partitions=app.tidegate_settings.partitions,
                          key_type=bytes, value_type=bytes)
    locks: defaultdict[bytes, asyncio.Lock] = defaultdict(asyncio.Lock)
    deadlines: dict[bytes, datetime] = {}
    sent_ticks: dict[bytes, datetime] = {}

    async def handle(record: EventT[bytes]) -> None:
        message = record.message
        raw = record_of(record)
        stamp = datetime.fromtimestamp(message.timestamp, UTC) if message.timestamp else None
        got = runner.read(message.topic, raw, stamp, Position(message.topic, message.partition, message.offset))
        if got is None:
            return
        if isinstance(got, Rejected):
            await send_to_dlq(record, got.reason, code=got.code)
            return
        if runner.stale(got):
            await ctx.sync_resources()  # the files this input needs may have been written a moment ago
        read = runner.prepared(got)
        raw_key = read.raw_key
        async with locks[raw_key]:
            stored = table.get(raw_key) if table is not None else None
            state = codec.decode(stored) if codec is not None and stored else None
            step = runner.step(state, read, datetime.now(UTC), raw)
            # Outputs are queued before the state is written: after a crash in between, the input is read
            # again and the same outputs (same ids) go out again instead of being lost behind a state that
            # already remembers the input (Faust flushes its producer before it commits).
            for out in (*step.hop, *step.later):
                await _send(app, out)
            if step.dead_letter is not None:
                await send_to_dlq(record, step.dead_letter, code=step.code)
            if table is not None and codec is not None and step.changed:
                table[raw_key] = codec.encode(step.state) if step.state is not None else None
        if agent.tick is not None:
            deadline = agent.next_deadline(step.state)
            if deadline is None:
                deadlines.pop(raw_key, None)
            else:
                deadlines[raw_key] = deadline

    for index, logical in enumerate(agent.inputs):
        # One Faust agent per input topic (a single channel over two topics left messages unacknowledged);
        # the first keeps the agent's name, the others add their topic: `evaluator`, `evaluator-events`.
        name = agent.name if index == 0 else f"{agent.name}-{logical.removeprefix('tasks.')}"
        channel = app.channels.topic(app.topic_registry.destination(logical))

        async def consume(stream: Any) -> None:
            await ctx.wait_ready()  # never decide on a half-read configuration
            async for record in stream.events():
                await handle(record)

        consume.__name__ = consume.__qualname__ = name.replace("-", "_")
        app.agent(channel, name=name)(consume)

    if agent.tick is not None and table is not None and codec is not None:
        scans = {"count": 0}

        async def ticker() -> None:
            assert table is not None and codec is not None
            scans["count"] += 1
            if scans["count"] % RESCAN_EVERY == 1:
                # After a restart or a rebalance the index is rebuilt from the recovered table.
                for raw_key, stored in list(table.items()):
                    if stored:
                        deadline = agent.next_deadline(codec.decode(stored))
                        if deadline is not None:
                            deadlines[raw_key] = deadline
            now = datetime.now(UTC)
            for raw_key, deadline in list(deadlines.items()):
                if deadline > now or sent_ticks.get(raw_key) == deadline:
                    continue
                out = runner.tick(raw_key, deadline)
                if out is not None:
                    await _send(app, out)
                sent_ticks[raw_key] = deadline

        ticker.__name__ = ticker.__qualname__ = f"{agent.name.replace('-', '_')}_ticker"
        app.timer(TICK_INTERVAL)(ticker)
    return runner
