"""Feeding the history store from Kafka: the live audit follower, the rebuild, and change notices.

- `AuditFollower` consumes `<prefix>audit` in its own consumer group (`<prefix>history`), stores each
  batch, then commits: a crash re-reads the batch and the store drops what it already has.
- `rebuild()` drops the tables and replays `audit` from the beginning up to its current end, without
  a consumer group (so it never moves the follower's offsets).
- `ChangeNotices` tells waiting readers (the gateway's event stream) which keptnContexts changed.

Records that are not audit entries are logged and skipped, never stop the follower.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer

from tidegate.streams.kafka import Consumed, async_consumer, from_aiokafka, read_to_end
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

from .audit import AuditEntry, AuditFormatError, entry_of_record
from .store import HistoryStore

log = logging.getLogger(__name__)

GROUP_SUFFIX = "history"
BATCH_RECORDS = 500


def group_id(settings: Settings) -> str:
    return TopicRegistry.from_settings(settings).app_id(GROUP_SUFFIX)


def entries_of(records: Iterable[Consumed]) -> tuple[list[AuditEntry], int]:
    """The audit entries of consumed records, and how many records were unreadable (logged)."""
    entries: list[AuditEntry] = []
    unreadable = 0
    for record in records:
        try:
            entries.append(entry_of_record(record.record, timestamp=record.timestamp))
        except AuditFormatError as error:
            unreadable += 1
            log.warning(
                "history: skipping %s[%s]@%s, not an audit entry: %s", record.topic, record.partition, record.offset, error
            )
    return entries, unreadable


class ChangeNotices:
    """Which keptnContexts changed: readers wait on a context, the follower announces changes."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Queue[None]]] = defaultdict(set)

    @contextlib.contextmanager
    def watch(self, keptn_context: str) -> Any:
        """A queue that receives a notice each time `keptn_context` changes (while the block runs)."""
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._waiting[keptn_context].add(queue)
        try:
            yield queue
        finally:
            self._waiting[keptn_context].discard(queue)
            if not self._waiting[keptn_context]:
                del self._waiting[keptn_context]

    def announce(self, entries: Iterable[AuditEntry]) -> None:
        for context in {entry.keptn_context for entry in entries if entry.keptn_context}:
            for queue in self._waiting.get(context, ()):
                # One pending notice is enough: the reader re-reads everything new when it wakes.
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

    @property
    def watchers(self) -> int:
        return sum(len(queues) for queues in self._waiting.values())


class AuditFollower:
    """Consumes `audit` into the store until stopped; `caught_up` is set once it reached the end it saw."""

    def __init__(
        self,
        settings: Settings,
        store: HistoryStore,
        *,
        notices: ChangeNotices | None = None,
        group: str | None = None,
        on_stored: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.notices = notices or ChangeNotices()
        self.group = group or group_id(settings)
        self.topic = TopicRegistry.from_settings(settings).audit
        self.caught_up = asyncio.Event()
        self.stored = 0
        self._on_stored = on_stored
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="history-audit-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        try:
            await self._follow()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # reported through /readyz; the gateway keeps serving reads
            self.error = error
            log.exception("history: the audit follower stopped")

    async def _follow(self) -> None:
        consumer = async_consumer(
            self.settings,
            self.topic,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=5000,
        )
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=BATCH_RECORDS)
                records = [from_aiokafka(record) for partition_records in batch.values() for record in partition_records]
                if records:
                    entries, _ = entries_of(records)
                    fresh = await asyncio.to_thread(self.store.ingest, entries)
                    self.stored += len(fresh)
                    if self._on_stored is not None:
                        self._on_stored(len(fresh))
                    self.notices.announce(fresh)
                    await consumer.commit()
                if not self.caught_up.is_set() and await _at_end(consumer):
                    self.caught_up.set()
        finally:
            await consumer.stop()


async def _at_end(consumer: AIOKafkaConsumer) -> bool:
    assigned = consumer.assignment()
    if not assigned:
        return False
    ends = await consumer.end_offsets(list(assigned))
    for partition in assigned:
        if await consumer.position(partition) < ends[partition]:
            return False
    return True


async def rebuild(settings: Settings, store: HistoryStore, *, timeout: float = 60.0) -> int:
    """Drop the store's tables and replay `audit` from the beginning to its current end; return entries stored."""
    topic = TopicRegistry.from_settings(settings).audit
    reset = False
    stored = 0
    async for records in read_to_end(settings, topic, timeout=timeout, max_records=BATCH_RECORDS):
        if not reset:
            await asyncio.to_thread(store.reset)
            reset = True
        entries, _ = entries_of(records)
        stored += len(await asyncio.to_thread(store.ingest, entries))
    if not reset:
        await asyncio.to_thread(store.reset)  # an empty audit topic: an empty history
    return stored
