"""The connector runtime's Kafka shell: consume task topics, reply, run work off the loop, remember.

For each connector: a consumer in the group `<prefix>connector-<name>` on `tasks.<task>` for each of
its tasks; its state log (see state.py); one idempotent producer for replies, resources, state and
dead letters. Per `.triggered` event the connector wants, in this order:

1. ask the memory (state.py `verdict`): run, skip, or report a task lost in a crash;
2. send `<task>.started` (for the tasks of a fetched batch together) and queue the work as an
   asyncio task;
3. when the work gets its concurrency slot: write `started` to the state topic, wait for the
   acknowledgement, then run the program (bounded by a time limit);
4. commit the consumer offset, never past a task that has not finished: the committed offset of a
   partition is its oldest accepted task's offset (or the next record when none waits or runs). So
   after a crash every unfinished task is delivered again: one whose program had started is
   reported lost (the memory has its `started`), one still waiting for a slot runs now (the memory
   has nothing of it), the finished ones around them are skipped; nothing depends on the same
   instance coming back. On a stop or a rebalance, work still waiting for a slot is dropped without
   a reply and left uncommitted for the next owner.

Known limit: if a partition moves to another instance while a program of it still runs on the old one
(scaling out during work), the new instance reports that task lost. Both replies have the same id
(derived from the triggered id), so a consumer that drops repeated ids keeps whichever came first;
the work itself still ran. Scale connectors while they are idle.

The work ends in exactly one `<task>.finished`: the connector's outcome, an error (an exception, a
timeout), a cancellation by the sequencer (`sh.tidegate.task.cancelled` on the same task topic), or
the connector stopping. Then `finished` is written to the state topic.

Flow control: above `max_waiting` accepted tasks the runtime pauses its partitions but keeps polling,
so the group membership stays alive while the work catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from tidegate.connectors.runtime.connector import Connector, ConnectorOptions, EventFollower
from tidegate.connectors.runtime.context import TaskContext
from tidegate.connectors.runtime.kafka import STATE_TOPIC_CONFIG, StateLog, ensure_topics
from tidegate.connectors.runtime.outcome import TaskOutcome
from tidegate.connectors.runtime.policy import TimeLimit, cancelled, crashed, lost, task_time_limit, timed_out
from tidegate.connectors.runtime.replies import finished_event, started_event
from tidegate.connectors.runtime.state import TaskPhase, TaskRecord, Verdict, consumer_group, state_topic
from tidegate.schemas.events import KeptnEvent, TaskKind, format_time
from tidegate.schemas.keys import Key
from tidegate.schemas.tidegate_events import TASK_CANCELLED_TYPE
from tidegate.streams.codec import DecodeError, KafkaRecord, decode, encode
from tidegate.streams.dlq import DeadLetter, DeadLetterReason, dead_letter_record
from tidegate.streams.kafka import KafkaWait, async_consumer, async_producer, wait_for_kafka
from tidegate.streams.logging import bind_event
from tidegate.streams.metrics import (
    metrics_port,
    observe_consumed,
    observe_dead_letter,
    observe_produced,
    serve,
)
from tidegate.streams.resources import Resource, ResourceStore, ResourceView
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

log = logging.getLogger("tidegate.connector.runtime")

def _now() -> str:
    return format_time(datetime.now(UTC))


@dataclass
class _Running:
    event: KeptnEvent
    task: str
    work: asyncio.Task[None]
    partition: TopicPartition
    offset: int
    cancel_reason: str | None = None
    cancel_message: str | None = None
    stopping: bool = False
    # Set once the work has its slot: from then on its `started` record may exist.
    begun: bool = False
    # Set when its partition was revoked: if it has not begun, it leaves quietly (the next owner runs it).
    revoked: bool = False
    # Set once its `started` record is acknowledged (or failed): a revocation waits for it.
    recorded: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class RunnerStats:
    """Counters for tests and logs."""

    started: int = 0
    finished: int = 0
    skipped: int = 0
    lost: int = 0
    cancelled: int = 0
    dead_letters: int = 0
    outcomes: list[tuple[str, TaskOutcome]] = field(default_factory=list)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConnectorRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.runner.release_partitions(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.runner.claim_partitions(assigned)
        # Another instance may have written `started` for events of these partitions: read them first.
        await self.runner.state.catch_up()


class ConnectorRunner:
    """Runs one connector against Kafka until `stop`."""

    def __init__(
        self,
        connector: Connector,
        settings: Settings,
        producer: AIOKafkaProducer,
        resources: ResourceStore,
        options: ConnectorOptions | None = None,
    ) -> None:
        self.connector = connector
        self.name = connector.name
        self.settings = settings
        self.options = options or ConnectorOptions()
        self.topics = TopicRegistry.from_settings(settings)
        self.task_topics = [self.topics.task(task) for task in connector.tasks]
        self.group = consumer_group(settings.topic_prefix, self.name)
        self.state = StateLog(settings, state_topic(settings.topic_prefix, self.name), producer)
        self.resources = resources
        self.stats = RunnerStats()
        self.ready = asyncio.Event()
        self._producer = producer
        self._consumer: AIOKafkaConsumer | None = None
        self._running: dict[str, _Running] = {}
        self._slots = asyncio.Semaphore(self.options.concurrency)
        self._stopping = asyncio.Event()
        self._paused = False
        # Offset bookkeeping per partition: the next record to read, and the offsets still running.
        self._next: dict[TopicPartition, int] = {}
        self._inflight: dict[TopicPartition, set[int]] = {}
        self._committed: dict[TopicPartition, int] = {}
        # Tasks accepted from the current batch, started together by `_flush`.
        self._pending: list[tuple[KeptnEvent, str, TopicPartition, int]] = []
        # Partitions revoked and not assigned back: a batch being flushed meanwhile leaves their tasks alone.
        self._released: set[TopicPartition] = set()

    # --- lifecycle ---
    async def run(self) -> None:
        """Consume until `stop` is called; then let running work finish (or cancel it) and return."""
        if not self.task_topics:  # e.g. a webhook connector that only sends notifications
            self.ready.set()
            await self._stopping.wait()
            return
        counts = await ensure_topics(self.settings, [(self.state.topic, 1, STATE_TOPIC_CONFIG)])
        await self.state.start(counts.get(self.state.topic, 1))
        consumer = async_consumer(
            self.settings,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # A short session lets a restarted instance take its partitions back quickly.
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )
        consumer.subscribe(self.task_topics, listener=_Listener(self))
        await consumer.start()
        self._consumer = consumer
        log.info("connector %s consuming %s in group %s", self.name, ", ".join(self.task_topics), self.group)
        try:
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=300, max_records=100)
                self.ready.set()
                for tp, records in batch.items():
                    for record in records:
                        await self._handle(record, tp)
                        self._next[tp] = record.offset + 1
                await self._flush()  # before the commit: accepted tasks are recorded as started
                await self._commit(consumer)
                self._flow_control(consumer)
        finally:
            await self._drain()
            with contextlib.suppress(Exception):
                await self._commit(consumer)
            await consumer.stop()
            await self.state.stop()

    def _commit_points(self) -> dict[TopicPartition, int]:
        points: dict[TopicPartition, int] = {}
        for tp, next_offset in self._next.items():
            running = self._inflight.get(tp)
            point = min(running) if running else next_offset
            if point > self._committed.get(tp, -1):
                points[tp] = point
        return points

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        assigned = consumer.assignment()
        points = {tp: offset for tp, offset in self._commit_points().items() if tp in assigned}
        if not points:
            return
        try:
            await consumer.commit(points)
        except (KafkaError, AssertionError) as error:
            # A rebalance took the partitions meanwhile; the next owner re-reads from the last commit,
            # and the memory keeps that from running anything twice.
            log.warning("connector %s: offsets not committed (%s); they are re-read after the rebalance",
                        self.name, error)
            return
        self._committed.update(points)

    async def release_partitions(self, revoked: list[TopicPartition], timeout: float = 30.0) -> None:
        """Partitions taken away in a rebalance: work of theirs still waiting for a slot is dropped
        (the next owner runs it), a `started` record being written is waited for (so the next owner,
        which reads the state topic when it gets the partitions, sees it), and their offsets are the
        next owner's business."""
        gone = set(revoked)
        recording: list[asyncio.Event] = []
        dropped: list[asyncio.Task[None]] = []
        for running in self._running.values():
            if running.partition not in gone:
                continue
            running.revoked = True
            if not running.begun:
                running.work.cancel()
                dropped.append(running.work)
            elif not running.recorded.is_set():
                recording.append(running.recorded)
        # Gone from `_running` before the partitions can come back: a redelivery then runs them.
        await asyncio.gather(*dropped, return_exceptions=True)
        if recording:
            waits = [asyncio.create_task(event.wait()) for event in recording]
            await asyncio.wait(waits, timeout=timeout)
            for wait in waits:
                wait.cancel()
        self._released |= gone
        self.forget_partitions(revoked)

    def claim_partitions(self, assigned: list[TopicPartition]) -> None:
        self._released -= set(assigned)

    def forget_partitions(self, revoked: list[TopicPartition]) -> None:
        """Partitions taken away in a rebalance: their offsets are the next owner's business."""
        for tp in revoked:
            self._next.pop(tp, None)
            self._inflight.pop(tp, None)
            self._committed.pop(tp, None)

    def stop(self) -> None:
        self._stopping.set()

    async def _drain(self) -> None:
        """Drop work still waiting for a slot (left uncommitted: the next instance runs it); give running
        work `stop_grace` seconds, then cancel it (it is then reported lost)."""
        for running in list(self._running.values()):
            if not running.begun:
                running.stopping = True
                running.work.cancel()
        works = [running.work for running in self._running.values()]
        if not works:
            return
        _done, pending = await asyncio.wait(works, timeout=self.options.stop_grace)
        for running in list(self._running.values()):
            if running.work in pending:
                running.stopping = True
                running.work.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _flow_control(self, consumer: AIOKafkaConsumer) -> None:
        full = len(self._running) >= self.options.max_waiting
        if full and not self._paused:
            consumer.pause(*consumer.assignment())
            self._paused = True
        elif not full and self._paused:
            consumer.resume(*consumer.assignment())
            self._paused = False

    # --- one record ---
    async def _handle(self, record: ConsumerRecord, tp: TopicPartition) -> None:
        timestamp = datetime.fromtimestamp(record.timestamp / 1000, UTC) if record.timestamp else None
        try:
            event = decode(record.value, record.headers, timestamp=timestamp)
        except DecodeError as error:
            await self._flush()
            await self._dead_letter(record, error.reason, DeadLetterReason.UNDECODABLE)
            return
        bind_event(event)  # its log lines (and the work task started from here) carry its keptnContext
        observe_consumed(record.topic, event, f"connector-{self.name}")
        if event.type == TASK_CANCELLED_TYPE:
            await self._flush()  # the task it cancels may be among those just accepted
            self._cancel(event)
            return
        parsed = event.parsed_type
        if not (parsed.is_task and parsed.kind == TaskKind.TRIGGERED.value and parsed.task in self.connector.tasks):
            return
        try:
            wanted = self.connector.wants(event)
        except Exception:
            log.exception("connector %s: wants() failed on event %s; leaving it to other connectors", self.name, event.id)
            return
        if not wanted:
            return
        task = parsed.task
        assert task is not None
        pending_ids = {pending[0].id for pending in self._pending}
        verdict = self.state.memory.verdict(event.id, self._running.keys() | pending_ids)
        if verdict is Verdict.RUN:
            self._pending.append((event, task, tp, record.offset))
        elif verdict is Verdict.REPORT_LOST:
            await self._flush()
            await self._report_lost(event, task)
        else:
            self.stats.skipped += 1
            log.info("connector %s: %s.triggered %s already %s; not run again", self.name, task, event.id,
                     "finished" if verdict is Verdict.SKIP_FINISHED else "running")

    async def _flush(self) -> None:
        """Queue the tasks accepted so far: all `.started` replies (they share the round trip), then
        the work, which records `started` in the state topic once it has its slot (`_begin`)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        await asyncio.gather(*(self._publish(started_event(event, self.name)) for event, _, _, _ in pending))
        for event, task, tp, offset in pending:
            if tp in self._released:  # revoked while the replies went out: the next owner runs it
                continue
            limit = task_time_limit(event.data, task, self.options.timeout)
            work = asyncio.create_task(self._work(event, task, limit), name=f"{self.name}:{event.id}")
            self._running[event.id] = _Running(event, task, work, tp, offset)
            self._inflight.setdefault(tp, set()).add(offset)

    async def _work(self, event: KeptnEvent, task: str, limit: TimeLimit) -> None:
        ctx = TaskContext(
            event=event, task=task, connector=self.name, resources=self.resources, settings=self.settings,
            timeout=limit.seconds, store_resource_with=self._store_resource,
        )
        if limit.problem:
            ctx.log.warning("%s; using %s", limit.problem, limit.source)
        try:
            async with self._slots:
                try:
                    begun = await self._begin(event, task)
                except KafkaError as error:  # not recorded, so not run: report it errored
                    log.exception("connector %s could not record %s as started", self.name, event.id)
                    outcome = crashed(self.name, error)
                else:
                    if not begun:
                        self._running.pop(event.id, None)  # not begun: its offset stays uncommitted
                        return
                    outcome = await self._run_bounded(ctx, limit)
        except asyncio.CancelledError:
            running = self._running.get(event.id)
            if running is not None and not running.begun and (running.stopping or running.revoked):
                self._running.pop(event.id, None)  # never begun: the next owner (or instance) runs it
                return
            if running is not None and running.cancel_reason is not None and not running.stopping:
                outcome = cancelled(running.cancel_reason, running.cancel_message)
                self.stats.cancelled += 1
            else:
                outcome = lost(self.name)
                self.stats.lost += 1
        reported = False
        try:
            reported = await self._finish(event, task, outcome)
        finally:
            done = self._running.pop(event.id, None)
            # Unreported, the offset stays uncommitted: after a restart the task is reported lost.
            if done is not None and reported:
                self._inflight.get(done.partition, set()).discard(done.offset)

    async def _begin(self, event: KeptnEvent, task: str) -> bool:
        """With the slot held: record `started` (acknowledged) so that a crash from here on reports the
        task lost instead of running it twice. False if the work must not start here any more (the
        runner stops, or the partition went to another instance)."""
        running = self._running.get(event.id)
        if running is None or running.revoked or self._stopping.is_set():
            return False
        running.begun = True
        try:
            await self.state.write(event.id, TaskRecord(
                state=TaskPhase.STARTED, task=task, key=str(Key.of_data(event.data)), started_at=_now()))
        finally:
            running.recorded.set()
        self.stats.started += 1
        return True

    async def _run_bounded(self, ctx: TaskContext, limit: TimeLimit) -> TaskOutcome:
        try:
            async with asyncio.timeout(limit.seconds) as deadline:
                return await self.connector.run(ctx)
        except TimeoutError as error:
            if deadline.expired():
                return timed_out(self.name, ctx.task, limit)
            return crashed(self.name, error)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            ctx.log.exception("the connector raised")
            return crashed(self.name, error)

    async def _finish(self, event: KeptnEvent, task: str, outcome: TaskOutcome) -> bool:
        try:
            await self._publish(finished_event(event, self.name, outcome))
        except Exception:
            # The state stays `started`: after a restart the task is reported lost, not left hanging.
            log.exception("connector %s could not send %s.finished for %s", self.name, task, event.id)
            return False
        self.stats.finished += 1
        self.stats.outcomes.append((event.id, outcome))
        known = self.state.memory.get(event.id)
        started = known.started_at if known is not None else _now()
        record = TaskRecord(state=TaskPhase.FINISHED, task=task, key=str(Key.of_data(event.data)),
                            started_at=started, finished_at=_now())
        try:
            await self.state.write(event.id, record)
        except Exception:
            # The reply went out; a redelivery would report the task lost once more, which the
            # sequencer drops (same `.finished` id).
            log.exception("connector %s could not record %s as finished", self.name, event.id)
        return True

    async def _report_lost(self, event: KeptnEvent, task: str) -> None:
        log.warning("connector %s: %s.triggered %s was started before a crash; reporting it lost", self.name,
                    task, event.id)
        # The same ids as the first attempt's replies: a consumer that saw `.started` drops the repeat.
        await self._publish(started_event(event, self.name))
        self.stats.lost += 1
        await self._finish(event, task, lost(self.name))

    def _cancel(self, event: KeptnEvent) -> None:
        running = self._running.get(event.triggeredid or "")
        if running is None:
            return
        reason = event.data.get("reason")
        running.cancel_reason = str(reason) if reason else "aborted"
        message = event.data.get("message")
        running.cancel_message = str(message) if message else None
        log.info("connector %s: cancelling %s.triggered %s (%s)", self.name, running.task, running.event.id,
                 running.cancel_reason)
        running.work.cancel()

    # --- output ---
    async def _publish(self, event: KeptnEvent) -> None:
        record = encode(event)
        await self._producer.send_and_wait(
            self.topics.events, value=record.value, key=record.key, headers=list(record.headers)
        )
        observe_produced(self.topics.events, event)

    async def _store_resource(self, resource: Resource) -> None:
        key, value = resource.to_record()
        await self._producer.send_and_wait(self.topics.resources, value=value, key=key)

    async def _dead_letter(self, record: ConsumerRecord, reason: str, code: DeadLetterReason) -> None:
        original = KafkaRecord(record.key, record.value, tuple(record.headers or ()))
        letter = DeadLetter(reason, record.topic, record.partition, record.offset, f"connector-{self.name}", code)
        out = dead_letter_record(original, letter)
        await self._producer.send_and_wait(self.topics.dlq, value=out.value, key=out.key, headers=list(out.headers))
        observe_dead_letter(letter)
        self.stats.dead_letters += 1
        log.warning("connector %s: record %s/%d@%d sent to the DLQ: %s", self.name, record.topic,
                    record.partition, record.offset, reason)


class ConnectorHost:
    """Runs one or several connectors in one process: one producer, one resources view, one runner each."""

    def __init__(
        self,
        connectors: Sequence[Connector],
        settings: Settings | None = None,
        options: dict[str, ConnectorOptions] | None = None,
        resources: ResourceStore | None = None,
    ) -> None:
        names = [connector.name for connector in connectors]
        if len(set(names)) != len(names):
            raise ValueError(f"connector names must be unique in one process, got {names}")
        self.settings = settings or Settings()
        self.connectors = list(connectors)
        self.options = options or {}
        # Connectors that read configuration in `wants` are built with this same store.
        self.resources = resources or ResourceStore()
        self.runners: list[ConnectorRunner] = []
        self.names = names
        # Waited for at start (not an exit): `kafka.reason()` says why the host is not ready meanwhile.
        self.kafka = KafkaWait(self.settings.kafka_bootstrap)
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()
        for runner in self.runners:
            runner.stop()

    async def run(self) -> None:
        port = metrics_port()
        if port is not None:
            serve(port)  # 127.0.0.1:$TIDEGATE_METRICS_PORT/metrics (streams.metrics)
        topics = TopicRegistry.from_settings(self.settings)
        await wait_for_kafka(self.settings, state=self.kafka, what=f"connector {', '.join(self.names)}")
        producer = async_producer(self.settings)
        await producer.start()
        view = ResourceView(self.settings, topics.resources, self.resources)
        try:
            await view.start()
            try:
                await view.wait_ready(timeout=self.settings.started_timeout)
            except TimeoutError as error:
                raise RuntimeError(
                    f"could not read the resources topic {topics.resources} within {self.settings.started_timeout:g} s; "
                    f"is Kafka reachable at {self.settings.kafka_bootstrap} and were the topics created "
                    "(`tidegate topics create`)?"
                ) from error
            self.runners = [
                ConnectorRunner(connector, self.settings, producer, view.store, self.options.get(connector.name))
                for connector in self.connectors
            ]
            if self._stop.is_set():
                return
            works = [asyncio.create_task(runner.run(), name=f"connector:{runner.name}") for runner in self.runners]
            works += [asyncio.create_task(connector.follow(self.settings, self._stop), name=f"follower:{connector.name}")
                      for connector in self.connectors if isinstance(connector, EventFollower)]
            stopper = asyncio.create_task(self._stop.wait())
            await asyncio.wait([*works, stopper], return_when=asyncio.FIRST_COMPLETED)
            self.stop()  # one part ending (a stop, or a failure) ends them all
            results = await asyncio.gather(*works, return_exceptions=True)
            stopper.cancel()
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                    raise result
        finally:
            await view.stop()
            with contextlib.suppress(Exception):
                await producer.stop()

    async def wait_ready(self, timeout: float = 60.0) -> None:
        async def all_ready() -> None:
            while not self.runners:
                await asyncio.sleep(0.05)
            await asyncio.gather(*(runner.ready.wait() for runner in self.runners))

        await asyncio.wait_for(all_ready(), timeout)
