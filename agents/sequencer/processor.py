"""The sequencer's stream processor: consume `events`, decide, produce, keep each key's state, on confluent-kafka.

Why not a Faust agent and table, as the first design had it: measured with `benchmarks/bench_sequencer.py`,
Faust's per-record path (its consumer thread, conductor, stream and event objects on the way in;
`Topic.send` futures on the way out) held one worker to about 600 sequence events/s, 0.03 of a raw
aiokafka consume-and-produce loop, and a Faust agent that only forwards reaches 0.04-0.09 of it. The
sequencer is the one agent every event passes through, so it gets a loop of its own with the same
guarantees (the same worker on this loop: 3,000-4,500 events/s on a 2-core machine shared with the broker):

- **Ownership.** Partitions of `events` are shared out by the consumer group `<prefix>sequencer`. A key
  (project/stage/service) always hashes to the same partition, so one processor at a time owns its
  sequences and their stage lock.
- **State.** Each key's `KeyState` lives in memory and in the compacted topic
  `<prefix>sequencer-sequences-changelog`, in the same partition number as the key's events. When
  partitions are assigned, their state is read back from that topic before their first event.
- **At-least-once with no lost output.** Outputs are produced as they are decided (task events at
  once, through a producer that never lingers; audit records at the end of the batch, through one that
  lingers a few milliseconds, with the state and dead-letter records); the changed keys' state records
  only once neither producer has anything in flight (every output so far acknowledged), and at the
  latest at each commit; offsets are committed only after both producers have flushed everything. A
  crash at any point replays inputs from the last commit: the state's remembered input ids make a
  replay change nothing, and an output is never lost, because no state that counts its input as
  handled is written before it is acknowledged (repeats keep their deterministic ids and are harmless).
- **Timers.** Deadlines are part of the state; once a second due keys get a tick event on `events`, so
  the decision itself happens in order, in the stream (as before).

The processor runs in a thread of the worker process (`agents.sequencer.shell` starts and stops it);
everything it decides comes from the pure core `agents.sequencer.core.decide`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from tidegate.agents.sequencer.core import decide, next_deadline
from tidegate.agents.sequencer.model import KeyState, SequencerConfig
from tidegate.agents.sequencer.outputs import AuditRecord, Emit, Ignored
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key, key_mismatch
from tidegate.schemas.tidegate_events import TICK_TYPE, tick_event
from tidegate.streams.app import note_dead_letter
from tidegate.streams.codec import CE_PREFIX, DecodeError, KafkaRecord, decode, encode
from tidegate.streams.dlq import DeadLetter, DeadLetterCounter, DeadLetterReason, dead_letter_record
from tidegate.streams.logging import bind_event, unbind
from tidegate.streams.metrics import (
    observe_consumed,
    observe_ignored,
    observe_produced,
    set_sequence_load,
)
from tidegate.streams.provision import provision_topics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import COMPACTED, SEQUENCER_STATE, TopicRegistry, TopicSpec

log = logging.getLogger(__name__)

AGENT, STATE_TABLE = SEQUENCER_STATE  # group <prefix>sequencer, state topic <prefix>sequencer-sequences-changelog
TICK_INTERVAL = 1.0  # seconds between scans of the local deadline index
RESCAN_EVERY = 15  # full scans of the state (deadlines, load gauges) every N ticks
# The records no hop waits for (audit, state, dead letters) leave through a second producer that lingers:
# measured (the processor alone on the broker), one producer without linger for everything cost the
# thread ~25% more CPU per event (librdkafka's broker thread woken for every record).
BULK_LINGER_MS = 5
COMMIT_INTERVAL = 1.0  # seconds between offset commits while events flow
BATCH = 500  # records taken from the consumer's queue at once
POLL_TIMEOUT = 0.1  # seconds one poll may block (bounds how late a stop or a tick is noticed)
RESTORE_TIMEOUT = 120.0  # seconds reading back a partition's state may take without progress
RESTART_DELAY = 2.0  # seconds before a failed session is started again
# A killed worker keeps its partitions until its session expires; short, so a restart takes over fast.
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 2_000
TIME_HEADER = f"{CE_PREFIX}time"
ANY_PARTITION = -1  # confluent-kafka: let the partitioner choose (murmur2 of the key)


# --------------------------------------------------------------------- the processor


def producer_config(settings: Settings, *, linger_ms: int = 0) -> dict[str, object]:
    """The processor's producer settings (without its delivery callback); the benchmarks use them too."""
    return {
        **settings.confluent_config(),
        # A hop (task .finished in, next .triggered out) is latency-bound: no Nagle, no linger.
        "socket.nagle.disable": True,
        "partitioner": "murmur2_random",  # the partition Faust, aiokafka and Java clients pick
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": linger_ms,  # 0: records still batch while earlier requests are in flight
        # Only failures are reported (to `_delivery_failed`): acknowledgements are counted by
        # librdkafka itself (`len(producer)` = records not yet acknowledged).
        "delivery.report.only.error": True,
    }


@dataclass(frozen=True, slots=True)
class _Input:
    """A consumed record and where it was read."""

    topic: str
    partition: int
    offset: int
    record: KafkaRecord
    timestamp_ms: int  # the record's timestamp; <= 0 when it has none

    @classmethod
    def of(cls, message: Message) -> _Input:
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        if topic is None or partition is None or offset is None:
            raise ValueError("a consumed message without topic, partition or offset")
        headers = message.headers() or []
        pairs = headers.items() if isinstance(headers, dict) else headers
        record = KafkaRecord(
            key=message.key(),
            value=message.value(),
            headers=tuple((name, value.encode() if isinstance(value, str) else value)
                          for name, value in pairs if value is not None),
        )
        return cls(topic, partition, offset, record, message.timestamp()[1])

    @property
    def timestamp(self) -> datetime | None:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC) if self.timestamp_ms > 0 else None


Prepare = Callable[[KeptnEvent, Key], KeptnEvent]


class SequencerProcessor:
    """The consume-decide-produce loop. `run()` blocks until `stop()`; run it in a thread."""

    def __init__(
        self,
        settings: Settings,
        config: SequencerConfig,
        *,
        prepare: Prepare = lambda event, _key: event,
        ready: Callable[[], bool] = lambda: True,
        dead_letters: DeadLetterCounter | None = None,
    ) -> None:
        self.settings = settings
        self.registry = TopicRegistry.from_settings(settings)
        self.config = config
        self.prepare = prepare  # the shell's hook: read files a trigger needs, fill in gitcommitid
        self.ready = ready  # whether the configuration has been read once (never decide on half of it)
        self.dead_letters = dead_letters if dead_letters is not None else DeadLetterCounter()
        self.group = self.registry.app_id(AGENT)
        self.state_topic = self.registry.changelog(AGENT, STATE_TABLE)
        self.ignored: Counter[str] = Counter()
        self._stop = threading.Event()
        self._states: dict[int, dict[bytes, KeyState]] = {}  # partition -> key -> state
        self._deadlines: dict[bytes, datetime] = {}
        self._sent_ticks: dict[bytes, datetime] = {}
        self._positions: dict[int, int] = {}  # partition -> next offset to commit
        self._committed: dict[int, int] = {}
        self._later: list[Callable[[], None]] = []  # the batch's audit records and metrics, sent after its events
        self._dirty: dict[bytes, int] = {}  # keys whose state changed since it was last written -> partition
        self._failure: str | None = None  # a record the broker refused: nothing after it may count as handled
        self._lags: list[tuple[str, str, int, int]] = []
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None  # task and follow-up events: a hop waits for them
        self._bulk: Producer | None = None  # audit, state and dead-letter records (None: `_producer` for all)

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Process until stopped; a failed session (lost output, broker trouble) starts again from the
        last commit with its state read back, so nothing is lost and nothing is decided twice."""
        while not self._stop.is_set() and not self.ready():
            self._stop.wait(0.1)
        if self._stop.is_set():
            return
        # The worker's long-lived objects (modules, Faust, schemas) leave the collector's generations:
        # full collections that walked them all cost milliseconds in the middle of a hop.
        gc.freeze()
        report = provision_topics(self.settings, [TopicSpec(self.state_topic, self.settings.partitions, COMPACTED)])
        if report.problems:
            log.error("the sequencer's state topic does not fit: %s", "; ".join(report.problems))
        while not self._stop.is_set():
            try:
                self._session()
            except Exception:
                log.exception("the sequencer stopped on an error; starting again from its last commit")
                self._stop.wait(RESTART_DELAY)

    def _session(self) -> None:
        self._reset()
        self._producer = Producer({**producer_config(self.settings), "on_delivery": self._delivery_failed})
        self._bulk = Producer({**producer_config(self.settings, linger_ms=BULK_LINGER_MS),
                               "on_delivery": self._delivery_failed})
        self._consumer = Consumer({
            **self.settings.confluent_config(),
            "socket.nagle.disable": True,  # fetch requests too: a hop waits on them
            "group.id": self.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
        })
        clean = False
        try:
            self._consumer.subscribe(
                [self.registry.events], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
            self._loop()
            self._commit()
            clean = True
        finally:
            if not clean:
                # Leave without committing: the next session reads the state back and replays from the
                # last commit (the revoke during close must not commit what may be half-done).
                self._failure = self._failure or "the session ended on an error"
                self._states.clear()
            self._consumer.close()
            self._flush(10)
            self._consumer = self._producer = self._bulk = None

    def _reset(self) -> None:
        self._states.clear()
        self._deadlines.clear()
        self._sent_ticks.clear()
        self._positions.clear()
        self._committed.clear()
        self._dirty.clear()
        self._later.clear()
        self._failure = None

    def _loop(self) -> None:
        assert self._consumer is not None and self._producer is not None
        consumer = self._consumer
        next_tick = time.monotonic() + TICK_INTERVAL
        next_commit = time.monotonic() + COMMIT_INTERVAL
        ticks = 0
        while not self._stop.is_set():
            first = consumer.poll(POLL_TIMEOUT)
            if first is not None:
                batch = [first, *consumer.consume(BATCH - 1, 0)]
                self._process(batch)
            for producer in self._producers():
                producer.poll(0)  # serve delivery reports (failures only)
            self._write_states_if_acknowledged()
            now = time.monotonic()
            if now >= next_tick:
                ticks += 1
                if ticks % RESCAN_EVERY == 1:
                    self._rescan()
                self._send_ticks()
                self._measure_lag()
                next_tick = now + TICK_INTERVAL
            if now >= next_commit:
                self._commit()
                next_commit = time.monotonic() + COMMIT_INTERVAL

    # ------------------------------------------------------------------ rebalancing

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [tp.partition for tp in partitions]
        started = time.monotonic()
        restored = self._restore(numbers)
        self._rescan()
        log.info("sequencer: assigned events partitions %s; read back %d keys in %.2f s",
                 numbers, restored, time.monotonic() - started)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Everything handled so far is recorded and committed before another worker may take over.
        if self._failure is None:
            self._commit()
        self._forget(tp.partition for tp in partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The group moved on without us (a long stall): another worker may already own these keys.
        self._forget(tp.partition for tp in partitions)

    def _forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            for raw_key in self._states.pop(partition, {}):
                self._deadlines.pop(raw_key, None)
                self._sent_ticks.pop(raw_key, None)
                self._dirty.pop(raw_key, None)
            self._positions.pop(partition, None)
            self._committed.pop(partition, None)

    def _restore(self, partitions: list[int]) -> int:
        """Read the state of `partitions` back from the state topic; returns the number of keys."""
        reader = Consumer({
            **self.settings.confluent_config(),
            "group.id": f"{self.group}-restore",  # never joins or commits: partitions are assigned by hand
            "enable.auto.commit": False,
        })
        try:
            ends: dict[int, int] = {}
            start: list[TopicPartition] = []
            for partition in partitions:
                self._states[partition] = {}
                low, high = reader.get_watermark_offsets(TopicPartition(self.state_topic, partition), timeout=10)
                if high > low:
                    ends[partition] = high
                    start.append(TopicPartition(self.state_topic, partition, low))
            if not start:
                return 0
            reader.assign(start)
            raw: dict[int, dict[bytes, bytes | None]] = {partition: {} for partition in ends}
            deadline = time.monotonic() + RESTORE_TIMEOUT
            while ends:
                messages = reader.consume(1000, 0.5)
                if messages:
                    deadline = time.monotonic() + RESTORE_TIMEOUT
                elif time.monotonic() > deadline:
                    raise RuntimeError(f"reading back {self.state_topic} partitions {sorted(ends)} made no progress "
                                       f"for {RESTORE_TIMEOUT:.0f} s")
                for message in messages:
                    if message.error() is not None:
                        continue
                    read = _Input.of(message)
                    if read.record.key is not None:
                        raw[read.partition][read.record.key] = read.record.value
                    if read.partition in ends and read.offset >= ends[read.partition] - 1:
                        del ends[read.partition]
            for partition, values in raw.items():
                states = self._states[partition]
                for raw_key, value in values.items():
                    if value:
                        states[raw_key] = KeyState.model_validate_json(value)
            return sum(len(self._states[partition]) for partition in partitions)
        finally:
            reader.close()

    # ------------------------------------------------------------------ processing

    def _process(self, messages: list[Message]) -> None:
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("sequencer: consumer error: %s", error)
                continue
            read = _Input.of(message)
            if read.partition not in self._states:
                # Revoked while this batch was being read: its new owner handles it (from our last commit).
                continue
            self._handle(read)
            self._positions[read.partition] = read.offset + 1
        for send in self._later:
            send()
        self._later.clear()

    def _handle(self, message: _Input) -> None:
        partition, topic, record = message.partition, message.topic, message.record
        # A binary-mode input with its time is already its own audit record, byte for byte, and needs
        # no record timestamp to decode; other forms (structured, plain JSON, no ce_time) are encoded anew.
        timed = any(name == TIME_HEADER for name, _value in record.headers)
        try:
            event = decode(record.value, record.headers, timestamp=None if timed else message.timestamp)
        except DecodeError as error:
            unbind()
            self._dead_letter(message, record, error.reason, DeadLetterReason.UNDECODABLE)
            return
        bind_event(event)  # this thread's log lines for the event carry its keptnContext (streams.logging)
        key = Key.of_data(event.data)
        raw_key = key.encode()
        if record.key is not None and record.key != raw_key:
            self._dead_letter(message, record, key_mismatch(record.key, event.data) or "record key mismatch",
                              DeadLetterReason.WRONG_KEY)
            return
        self._defer(partial(observe_consumed, topic, event, AGENT))
        event = self.prepare(event, key)
        states = self._states[partition]
        state = states.get(raw_key)
        try:
            decision = decide(state, event, self.config, datetime.now(UTC))
        except Exception as error:  # a bug must cost one event (kept in the DLQ), not the partition
            log.exception("sequencer failed on %s %s", event.type, event.id)
            self._dead_letter(message, record, f"sequencer error: {type(error).__name__}: {error}",
                              DeadLetterReason.AGENT_ERROR)
            return
        # Task and follow-up events leave at once: they are what the next hop waits for. Audit records
        # follow at the end of the batch (`_defer`), in the order the core decided them, after the
        # input's own copy.
        if event.type != TICK_TYPE:
            as_is = timed and record.key == raw_key
            self._defer(partial(self._audit, record if as_is else None, event, key))
        for output in decision.outputs:
            if isinstance(output, Emit):
                encoded = encode(output.event, output.key)
                self._send(self.registry.destination(output.destination), encoded, output.event)
                if output.destination != "events":  # task-topic sends are audited; `events` is audited when read
                    self._defer(partial(self._audit, encoded, output.event, output.key))
            elif isinstance(output, AuditRecord):
                self._defer(partial(self._audit_transition, output))
            elif isinstance(output, Ignored):
                self.ignored[output.reason.value] += 1
                observe_ignored(AGENT, output.reason.value)
                if output.dead_letter:
                    self._dead_letter(message, record, output.detail, DeadLetterReason.REJECTED)
        if decision.state is not state:
            if decision.state is None:
                states.pop(raw_key, None)
            else:
                states[raw_key] = decision.state
            self._dirty[raw_key] = partition
        deadline = next_deadline(decision.state)
        if deadline is None:
            self._deadlines.pop(raw_key, None)
            self._sent_ticks.pop(raw_key, None)
        else:
            self._deadlines[raw_key] = deadline

    def _defer(self, send: Callable[[], None]) -> None:
        self._later.append(send)  # sent at the end of the batch, in order (see _process)

    def _audit(self, record: KafkaRecord | None, event: KeptnEvent, key: Key) -> None:
        self._send(self.registry.audit, record if record is not None else encode(event, key), event, bulk=True)

    def _audit_transition(self, transition: AuditRecord) -> None:
        self._send(self.registry.audit, transition.to_record(), bulk=True)

    def _send(self, topic: str, record: KafkaRecord, event: KeptnEvent | None = None,
              partition: int = ANY_PARTITION, *, bulk: bool = False) -> None:
        producer = self._bulk if bulk and self._bulk is not None else self._producer
        assert producer is not None
        while True:
            try:
                producer.produce(topic, record.value, key=record.key, partition=partition, headers=list(record.headers))
                break
            except BufferError:  # the local queue is full: let the broker catch up
                producer.poll(0.1)
        if event is not None:
            observe_produced(topic, event)

    def _delivery_failed(self, error: KafkaError | None, message: Message) -> None:
        if error is not None and self._failure is None:
            self._failure = f"{message.topic()}: {error}"

    def _dead_letter(self, message: _Input, record: KafkaRecord, reason: str, code: DeadLetterReason) -> None:
        letter = DeadLetter(reason=reason, source_topic=message.topic, source_partition=message.partition,
                            source_offset=message.offset, agent=AGENT, code=code)
        self._send(self.registry.dlq, dead_letter_record(record, letter), bulk=True)
        note_dead_letter(self.dead_letters, letter)

    def _check_deliveries(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"the broker refused a record ({self._failure}); the inputs since the last "
                               "commit are handled again")

    def _producers(self) -> list[Producer]:
        assert self._producer is not None
        return [self._producer] if self._bulk is None or self._bulk is self._producer else [self._producer, self._bulk]

    def _flush(self, timeout: float) -> int:
        """Wait for every record produced so far to be acknowledged; returns how many are still not."""
        return sum(producer.flush(timeout) for producer in self._producers())

    def _write_states_if_acknowledged(self) -> None:
        if self._dirty and sum(len(producer) for producer in self._producers()) == 0:
            self._write_states()  # every output so far is acknowledged: the state may say so

    def _write_states(self) -> None:
        """Write the changed keys' state; only call when every output so far is acknowledged."""
        self._check_deliveries()
        for raw_key, partition in self._dirty.items():
            state = self._states.get(partition, {}).get(raw_key)
            value = state.model_dump_json().encode() if state is not None else None
            self._send(self.state_topic, KafkaRecord(key=raw_key, value=value, headers=()), partition=partition,
                       bulk=True)
        self._dirty.clear()

    def _commit(self) -> None:
        """Flush the outputs, write the state they allow, flush that too, then commit the positions."""
        assert self._consumer is not None and self._producer is not None
        changed = [TopicPartition(self.registry.events, partition, offset)
                   for partition, offset in self._positions.items() if self._committed.get(partition) != offset]
        if not changed and not self._dirty:
            return
        if self._flush(30):
            raise RuntimeError("outputs were not acknowledged within 30 s")
        self._write_states()
        if self._flush(30):
            raise RuntimeError("the state records were not acknowledged within 30 s")
        self._check_deliveries()
        if changed:
            self._consumer.commit(offsets=changed, asynchronous=False)
            for tp in changed:
                self._committed[tp.partition] = tp.offset

    # ------------------------------------------------------------------ timers

    def _rescan(self) -> None:
        states: list[KeyState] = []
        for partition_states in self._states.values():
            for raw_key, state in partition_states.items():
                states.append(state)
                deadline = next_deadline(state)
                if deadline is not None:
                    self._deadlines[raw_key] = deadline
        set_sequence_load(states)  # tidegate_open_sequences / tidegate_queued_sequences

    def _send_ticks(self) -> None:
        now = datetime.now(UTC)
        for raw_key, deadline in list(self._deadlines.items()):
            if deadline > now or self._sent_ticks.get(raw_key) == deadline:
                continue
            key = Key.parse(raw_key)
            event = tick_event(key, deadline)
            self._send(self.registry.events, encode(event, key), event)
            self._sent_ticks[raw_key] = deadline

    # ------------------------------------------------------------------ for tests and metrics

    def _measure_lag(self) -> None:
        assert self._consumer is not None
        rows: list[tuple[str, str, int, int]] = []
        for partition in list(self._states):
            position = self._positions.get(partition) or self._committed.get(partition)
            if position is None:
                continue  # nothing read yet: unknown, left out (as for Faust's consumers)
            # The high watermark the last fetch brought along; no request to the broker.
            _low, high = self._consumer.get_watermark_offsets(TopicPartition(self.registry.events, partition),
                                                              cached=True)
            if high >= 0:
                rows.append((self.group, self.registry.events, partition, max(high - position, 0)))
        self._lags = rows

    def lags(self) -> list[tuple[str, str, int, int]]:
        """(group, topic, partition, records not yet handled) as of the last tick, for the metrics."""
        return list(self._lags)

    def state_of(self, key: Key) -> KeyState | None:
        raw_key = key.encode()
        for states in self._states.values():
            if raw_key in states:
                return states[raw_key]
        return None


def run_in_thread(processor: SequencerProcessor) -> threading.Thread:
    thread = threading.Thread(target=processor.run, name="tidegate-sequencer", daemon=True)
    thread.start()
    return thread
