"""Reading topics: the one compacted-topic reader, a read to a topic's current end, group consumers.

`CompactedReader` reads a topic from its beginning into a callback and then keeps following it; its
`ready` is set once it reached the end offsets it saw at start, and `sync()` waits until everything
written before the call has been read (read-your-writes). The resources view, the connector runtime's
state log and the sequencer's state restore are built on it (the last through `read_to_end`).
Positions, not record offsets, say how far a reader got: compaction and transaction markers leave
gaps, and the end offset can lie past the last record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from tidegate.streams.kafka._config import aiokafka_config
from tidegate.streams.kafka._records import Consumed, from_aiokafka
from tidegate.streams.settings import Settings

log = logging.getLogger(__name__)


def async_consumer(settings: Settings, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer of `topics` (none: assign partitions yourself), not started yet."""
    return AIOKafkaConsumer(*topics, **aiokafka_config(settings, **overrides))


class CompactedReader:
    """Reads `topic` from its beginning into `apply`, in the background, and follows it.

    Without `partitions`, the reader subscribes without a consumer group: it is assigned every
    partition of the topic (waiting for the topic to exist) and follows new ones. With `partitions`,
    it reads partitions 0..partitions-1 by number (a consumer's metadata only covers topics it
    already reads, so a just-created topic is best assigned that way).
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        apply: Callable[[Consumed], None],
        *,
        partitions: int | None = None,
        poll_ms: int = 500,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.ready = asyncio.Event()
        self.error: BaseException | None = None
        self._apply = apply
        self._partitions = partitions
        self._poll_ms = poll_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    @property
    def client_config(self) -> dict[str, Any]:
        """The keyword arguments its consumer is built with (connection and security included)."""
        return aiokafka_config(
            self.settings, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
        )

    async def start(self) -> None:
        """Follow the topic in a background task (stop with `stop()`)."""
        self._task = asyncio.create_task(self.run(), name=f"compacted-reader:{self.topic}")

    async def run(self) -> None:
        """Follow the topic in the calling task until cancelled (for hosts that own their tasks, like Faust)."""
        try:
            await self._follow()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self.error = error
            async with self._progress:
                self._progress.notify_all()
            raise

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until `ready`; raises what stopped the background reader, or TimeoutError."""
        task = self._task
        if task is None:
            await asyncio.wait_for(self.ready.wait(), timeout)
            return
        ready = asyncio.ensure_future(self.ready.wait())
        try:
            await asyncio.wait({ready, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self.ready.is_set():
            return
        if task.done():
            task.result()  # re-raises the reader's error
            raise RuntimeError(f"the reader of {self.topic} stopped before it was ready")
        raise TimeoutError(f"{self.topic} was not read to its end within {timeout:g} s")

    async def sync(self, timeout: float = 10.0) -> bool:
        """Wait until everything written to the topic before this call has been read.

        Returns False when the reader could not catch up within `timeout` (or has stopped).
        """
        consumer = self._consumer
        if consumer is None or not consumer.assignment():
            return False
        ends = await consumer.end_offsets(list(consumer.assignment()))

        def caught_up() -> bool:
            return self.error is not None or all(
                self._positions.get(tp, 0) >= end for tp, end in ends.items() if end > 0
            )

        async with self._progress:
            try:
                await asyncio.wait_for(self._progress.wait_for(caught_up), timeout)
            except TimeoutError:
                return False
        return self.error is None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _assigned(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        if self._partitions is not None:
            assigned = [TopicPartition(self.topic, p) for p in range(self._partitions)]
            consumer.assign(assigned)
            return assigned
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)  # joins the topic's metadata; nothing is read yet
            if not consumer.assignment():
                await asyncio.sleep(0.2)
        return sorted(consumer.assignment())

    async def _follow(self) -> None:
        topics = () if self._partitions is not None else (self.topic,)
        consumer = AIOKafkaConsumer(*topics, **self.client_config)
        await consumer.start()
        self._consumer = consumer
        try:
            assigned = await self._assigned(consumer)
            await consumer.seek_to_beginning(*assigned)
            ends = await consumer.end_offsets(assigned)
            while True:
                for tp in sorted(consumer.assignment()):
                    self._positions[tp] = await consumer.position(tp)
                async with self._progress:
                    self._progress.notify_all()
                if not self.ready.is_set() and all(self._positions.get(tp, 0) >= end for tp, end in ends.items()):
                    self.ready.set()
                batch = await consumer.getmany(timeout_ms=self._poll_ms)
                for records in batch.values():
                    for record in records:
                        self._apply(from_aiokafka(record))
        finally:
            self._consumer = None
            await consumer.stop()


async def read_to_end(
    settings: Settings,
    topic: str,
    *,
    partitions: Iterable[int] | None = None,
    timeout: float = 60.0,
    max_records: int = 500,
) -> AsyncIterator[list[Consumed]]:
    """The records of `topic` (or of its `partitions`) from the beginning up to the end offsets they had
    when called, in batches; no consumer group is joined or moved. Raises LookupError when the topic
    does not exist within `timeout`, TimeoutError when reading makes no progress for `timeout`."""
    from tidegate.streams.kafka._admin import topic_partitions

    loop = asyncio.get_running_loop()
    if partitions is None:
        deadline = loop.time() + timeout
        while not (counts := await asyncio.to_thread(topic_partitions, settings, [topic], timeout=10)):
            if loop.time() > deadline:
                raise LookupError(
                    f"topic {topic!r} does not exist on {settings.kafka_bootstrap}; "
                    "create it with `tidegate topics create` (or check TIDEGATE_TOPIC_PREFIX)"
                )
            await asyncio.sleep(0.5)
        partitions = range(counts[topic])
    assigned = [TopicPartition(topic, p) for p in sorted(set(partitions))]
    if not assigned:
        return
    consumer = async_consumer(settings, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        pending = {tp for tp in assigned if await consumer.position(tp) < ends[tp]}
        last_progress = loop.time()
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=max_records)
            records = [from_aiokafka(r) for tp, rs in batch.items() for r in rs if r.offset < ends[tp]]
            if records:
                last_progress = loop.time()
                yield records
            elif loop.time() - last_progress > timeout:
                raise TimeoutError(f"reading {topic} to its end made no progress for {timeout:g} s; is Kafka reachable?")
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
