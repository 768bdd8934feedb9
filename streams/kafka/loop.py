"""The consume-decide-produce loop: consume inputs, hand each to a handler, produce its outputs, keep each
key's state, commit; on confluent-kafka, in a thread. Any agent runs on it through `agents.hosts.loop`.

Why not Faust for every agent: measured with `benchmarks/bench_sequencer.py`, Faust's per-record path
(its consumer thread, conductor, stream and event objects on the way in; `Topic.send` futures on the
way out) held one worker to about 600 sequence events/s, 0.03 of a raw aiokafka consume-and-produce
loop; the sequencer on this loop: 3,000-4,500 events/s on a 2-core machine shared with the broker.

- **Ownership.** Partitions of the input topics are shared out by the loop's consumer group. A key
  (project/stage/service) always hashes to the same partition number in every co-partitioned topic,
  so one loop at a time owns a key and its state.
- **State.** Each key's state lives in memory and in a compacted state topic, in the same partition
  number as the key's inputs (a Faust table's changelog has the same layout, so an agent keeps its
  state when it moves between hosts). When partitions are assigned, their state is read back from
  that topic before their first input.
- **At-least-once with no lost output.** Outputs are produced as they are decided (what a next hop
  waits for at once, through a producer that never lingers; audit records at the end of the batch,
  through one that lingers a few milliseconds, with the state and dead-letter records); the changed
  keys' state records only once neither producer has anything in flight (every output so far
  acknowledged), and at the latest at each commit; offsets are committed only after both producers
  have flushed everything. A crash at any point replays inputs from the last commit: the state's
  remembered inputs (the handler gets each input's partition and offset; the sequencer keeps the last
  offset it applied per partition and a few recent ids) make a replay change nothing, and an output
  is never lost, because no state that counts its input as handled is written before it is
  acknowledged.
- **One key never stops the others.** A record the broker refuses for good (its topic does not exist,
  it is too large, ...) goes to the DLQ with the reason, and the handler may answer it (the agent host
  turns an undeliverable task trigger into that task's errored `.finished`, so the sequence ends with
  the error); a key's state record the broker refuses goes to the DLQ and the key starts afresh (an
  agent's core keeps its state well below that: the sequencer's `TIDEGATE_MAX_STATE_BYTES`). Only failures that are not a record's own (the broker unreachable) end the session, which
  starts again from the last commit.
- **Timers.** Once a second, due keys (the handler's `next_deadline`) get the handler's tick record,
  produced to an input topic, so the decision itself happens in order, in the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from tidegate.streams.codec import KafkaRecord
from tidegate.streams.dlq import DeadLetter, DeadLetterCounter, DeadLetterReason, dead_letter_record
from tidegate.streams.kafka._config import confluent_config
from tidegate.streams.kafka._records import Consumed, from_confluent
from tidegate.streams.metrics import observe_produced_many
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

log = logging.getLogger(__name__)

TICK_INTERVAL = 1.0  # seconds between scans of the local deadline index
RESCAN_EVERY = 15  # full scans of the state (deadlines, gauges) every N ticks
# The records no hop waits for (audit, state, dead letters) leave through a second producer that lingers:
# measured (the sequencer alone on the broker), one producer without linger for everything cost the
# thread ~25% more CPU per event (librdkafka's broker thread woken for every record).
BULK_LINGER_MS = 5
# What a next hop waits for leaves in bursts: each record produced on its own (a partition queue going from
# empty to one record) wakes librdkafka's broker thread, which on a busy machine takes the loop thread's core;
# while draining a backlog that cost the thread more than anything else it does (py-spy: a third of its
# time, ~45x per record what an audit record in the batch-end burst costs). A hop record waits at most this
# long for the others of its batch; a batch of one (no backlog) sends it as soon as it is decided, as before.
HOP_WAIT = 0.01  # seconds
COMMIT_INTERVAL = 1.0  # seconds between offset commits while inputs flow
BATCH = 500  # records taken from the consumer's queue at once
POLL_TIMEOUT = 0.1  # seconds one poll may block (bounds how late a stop or a tick is noticed)
RESTORE_TIMEOUT = 120.0  # seconds reading back a partition's state may take without progress
RESTART_DELAY = 2.0  # seconds before a failed session is started again
# A killed worker keeps its partitions until its session expires; short, so a restart takes over fast.
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 2_000
ANY_PARTITION = -1  # confluent-kafka: let the partitioner choose (murmur2 of the key)
TOPIC_RECHECK = 5.0  # seconds a missing topic is remembered as missing before it is looked up again
# A record's own failure: the broker (or the client, before sending) refuses this record and would refuse
# it again. Anything else (timeouts, a broker gone) is the session's failure.
REFUSED_FOR_GOOD = frozenset({
    KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError.INVALID_RECORD,
    KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.TOPIC_EXCEPTION,
    KafkaError.INVALID_REQUIRED_ACKS,
    KafkaError.POLICY_VIOLATION,
})

REFUSED_VALUE_KEPT = 64 * 1024  # a refused record's dead letter keeps its value up to this size

Out = tuple[str, KafkaRecord, Any]  # (topic, record, what observe_produced counts: an event, or None)


class Handled(Protocol):
    """What one input makes the loop do (`agents.kernel.Step` is one)."""

    @property
    def key(self) -> bytes | None: ...  # the state key it concerns (None: none)

    @property
    def state(self) -> Any: ...  # that key's new state (None: none stored)

    @property
    def changed(self) -> bool: ...

    @property
    def hop(self) -> Sequence[Out]: ...  # produced at once, in order

    @property
    def later(self) -> Sequence[Out]: ...  # produced at the end of the batch, in order

    @property
    def dead_letter(self) -> str | None: ...  # the input goes to the DLQ with this reason

    @property
    def code(self) -> DeadLetterReason: ...  # and this code


class Handler(Protocol):
    """What the loop runs: one agent (see `agents.hosts.loop`)."""

    name: str  # for log lines, dead letters and metrics

    def handle(self, read: Consumed, state_of: Callable[[bytes], Any]) -> Handled | None: ...

    def encode_state(self, state: Any) -> bytes: ...

    def decode_state(self, value: bytes) -> Any: ...

    def next_deadline(self, state: Any) -> datetime | None: ...

    def tick(self, key: bytes, deadline: datetime) -> Out | None: ...

    def refused(self, out: Out, reason: str) -> list[Out]: ...

    def scanned(self, states: list[Any]) -> None: ...


def producer_config(settings: Settings, *, linger_ms: int = 0) -> dict[str, object]:
    """The loop's producer settings (without its delivery callback); the benchmarks use them too."""
    return confluent_config(settings, **{
        # A hop (task .finished in, next .triggered out) is latency-bound: no Nagle, no linger.
        "socket.nagle.disable": True,
        "partitioner": "murmur2_random",  # the partition Faust, aiokafka and Java clients pick
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": linger_ms,  # 0: records still batch while earlier requests are in flight
        # Only failures are reported (to `_delivery_failed`): acknowledgements are counted by
        # librdkafka itself (`len(producer)` = records not yet acknowledged).
        "delivery.report.only.error": True,
    })


@contextlib.contextmanager
def batch_without_collection() -> Iterator[None]:
    """No cyclic garbage collection while a batch is handled (process-wide; as it was once the batch is done).

    A batch holds 10,000-20,000 container objects until it is sent (its events, outputs, records), nearly
    all freed by reference counting at its end; with Python's default thresholds the collector ran ~900 young,
    ~80 middle and ~7 full collections per 20,000 events drained, walking them again and again: 10-25% of
    the thread's CPU (offline, the whole loop with stub clients: 222 -> 193 us CPU per event). After the
    batch it runs as usual, on the few objects that outlive it (a batch of one, no backlog, is unchanged).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class StreamLoop:
    """The consume-decide-produce loop for one handler. `run()` blocks until `stop()`; run it in a thread."""

    def __init__(
        self,
        settings: Settings,
        handler: Handler,
        *,
        group: str,
        topics: Iterable[str],
        state_topic: str | None,
        ready: Callable[[], bool] = lambda: True,
        dead_letters: DeadLetterCounter | None = None,
        note_dead_letter: Callable[[DeadLetterCounter, DeadLetter], None] | None = None,
        instance_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.registry = TopicRegistry.from_settings(settings)
        self.handler = handler
        self.group = group
        self.topics = list(topics)
        self.state_topic = state_topic
        # A static member of its group (`group.instance.id`, stable per worker): after a crash, the same
        # worker started again gets its partitions back at once instead of after the dead member's session.
        self.instance_id = instance_id
        self.ready = ready  # whether the configuration has been read once (never decide on half of it)
        self.dead_letters = dead_letters if dead_letters is not None else DeadLetterCounter()
        self._note = note_dead_letter
        self._stop = threading.Event()
        self._states: dict[int, dict[bytes, Any]] = {}  # partition -> key -> state
        self._deadlines: dict[bytes, datetime] = {}
        self._sent_ticks: dict[bytes, datetime] = {}
        self._positions: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset to commit
        self._committed: dict[tuple[str, int], int] = {}
        self._hops: list[Out] = []  # the batch's hop records not sent yet (at most HOP_WAIT old)
        self._hops_due = 0.0  # monotonic time by which the first of `_hops` leaves
        self._later: list[Out] = []  # the batch's deferred records, sent after its hops
        self._dirty: dict[bytes, int] = {}  # keys whose state changed since it was last written -> partition
        self._failure: str | None = None  # a failure that is not a record's own: nothing after it counts
        self._refusals: list[tuple[Out, str]] = []  # records the broker refused for good, to answer
        self._topics_known: dict[str, float] = {}  # topic -> monotonic time it was found missing (0: exists)
        self._produced: list[Out] = []  # sent since the produced-events metric was last told (once per round)
        self._lags: list[tuple[str, str, int, int]] = []
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None  # what a hop waits for
        self._bulk: Producer | None = None  # audit, state and dead-letter records (None: `_producer` for all)

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Process until stopped; a failed session (broker trouble) starts again from the last commit
        with its state read back, so nothing is lost and nothing is decided twice."""
        while not self._stop.is_set() and not self.ready():
            self._stop.wait(0.1)
        if self._stop.is_set():
            return
        # The worker's long-lived objects (modules, Faust, schemas) leave the collector's generations:
        # full collections that walked them all cost milliseconds in the middle of a hop.
        gc.freeze()
        provisioned = self.state_topic is None
        while not self._stop.is_set():
            # Provisioning is retried like a session: workers starting together race to create the
            # state topic, and the loser can read its metadata before the brokers know it
            # (UNKNOWN_TOPIC_OR_PART); an error here must not end the thread (a worker with no loop).
            try:
                if not provisioned:
                    self._provision_state_topic()
                    provisioned = True
                self._session()
            except Exception:
                log.exception("%s stopped on an error; starting again from its last commit", self.handler.name)
                self._stop.wait(RESTART_DELAY)

    def _provision_state_topic(self) -> None:
        from tidegate.streams.kafka._admin import provision_topics

        assert self.state_topic is not None
        report = provision_topics(self.settings, [self.registry.spec(self.state_topic)])
        if report.problems:
            log.error("%s: the state topic does not fit: %s", self.handler.name, "; ".join(report.problems))

    def _session(self) -> None:
        self._reset()
        self._producer = Producer({**producer_config(self.settings), "on_delivery": self._delivery_failed})
        self._bulk = Producer({**producer_config(self.settings, linger_ms=BULK_LINGER_MS),
                               "on_delivery": self._delivery_failed})
        self._consumer = Consumer(confluent_config(self.settings, **{
            "socket.nagle.disable": True,  # fetch requests too: a hop waits on them
            "group.id": self.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
            **({"group.instance.id": self.instance_id} if self.instance_id else {}),
        }))
        log.info("%s: joining group %s%s", self.handler.name, self.group,
                 f" as static member {self.instance_id}" if self.instance_id else "")
        clean = False
        try:
            self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                     on_lost=self._on_lost)
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
            self._count_produced()
            self._consumer = self._producer = self._bulk = None

    def _reset(self) -> None:
        self._states.clear()
        self._deadlines.clear()
        self._sent_ticks.clear()
        self._positions.clear()
        self._committed.clear()
        self._dirty.clear()
        self._hops.clear()
        self._later.clear()
        self._refusals.clear()
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
            self._answer_refusals()
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
            self._count_produced()

    # ------------------------------------------------------------------ rebalancing

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted({tp.partition for tp in partitions} - set(self._states))
        started = time.monotonic()
        restored = self._restore(numbers)
        self._rescan()
        inputs = "/".join(topic.removeprefix(self.registry.prefix) for topic in self.topics)
        log.info("%s: assigned %s partitions %s; read back %d keys in %.2f s",
                 self.handler.name, inputs, numbers, restored, time.monotonic() - started)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Everything handled so far is recorded and committed before another worker may take over.
        if self._failure is None:
            self._commit()
        self._forget(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The group moved on without us (a long stall): another worker may already own these keys.
        self._forget(partitions)

    def _forget(self, partitions: Iterable[TopicPartition]) -> None:
        # Co-partitioned inputs are assigned and revoked together (range assignment, eager rebalancing):
        # a partition number's keys go with the first of its topics revoked.
        numbers = set()
        for tp in partitions:
            self._positions.pop((tp.topic, tp.partition), None)
            self._committed.pop((tp.topic, tp.partition), None)
            numbers.add(tp.partition)
        for partition in numbers:
            for raw_key in self._states.pop(partition, {}):
                self._deadlines.pop(raw_key, None)
                self._sent_ticks.pop(raw_key, None)
                self._dirty.pop(raw_key, None)

    def _restore(self, partitions: list[int]) -> int:
        """Read the state of `partitions` back from the state topic; returns the number of keys."""
        for partition in partitions:
            self._states[partition] = {}
        if self.state_topic is None or not partitions:
            return 0
        from tidegate.streams.kafka._read import read_to_end

        raw: dict[int, dict[bytes, bytes | None]] = {partition: {} for partition in partitions}

        async def read() -> None:
            assert self.state_topic is not None
            async for batch in read_to_end(self.settings, self.state_topic, partitions=partitions,
                                           timeout=RESTORE_TIMEOUT):
                for consumed in batch:
                    if consumed.record.key is not None:
                        raw[consumed.partition][consumed.record.key] = consumed.record.value

        asyncio.run(read())
        decode = self.handler.decode_state
        # Every object decoded here lives on (the states): collections in between only walk them again
        # (10,000 sequencer states: ~0.6 s of CPU to decode with the collector on, ~0.35 s without).
        with batch_without_collection():
            for partition, values in raw.items():
                states = self._states[partition]
                for raw_key, value in values.items():
                    if value:
                        states[raw_key] = decode(value)
        return sum(len(self._states[partition]) for partition in partitions)

    # ------------------------------------------------------------------ processing

    def _process(self, messages: list[Message]) -> None:
        with batch_without_collection():
            try:
                self._process_batch(messages)
            finally:
                self._count_produced()  # and the events it holds are freed before the collector runs again

    def _process_batch(self, messages: list[Message]) -> None:
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("%s: consumer error: %s", self.handler.name, error)
                continue
            read = from_confluent(message)
            if read.partition not in self._states:
                # Revoked while this batch was being read: its new owner handles it (from our last commit).
                continue
            self._handle(read)
            self._positions[(read.topic, read.partition)] = read.offset + 1
            if self._hops and time.monotonic() >= self._hops_due:
                self._send_hops()
        self._send_hops()
        later, self._later = self._later, []
        for out in later:
            self._send(out, bulk=True)

    def _send_hops(self) -> None:
        hops, self._hops = self._hops, []
        for out in hops:
            self._send(out)

    def _handle(self, read: Consumed) -> None:
        states = self._states[read.partition]
        handled = self.handler.handle(read, states.get)
        if handled is None:
            return
        if handled.hop:  # what the next hop waits for: within HOP_WAIT, in order, before the batch's audit
            if not self._hops:
                self._hops_due = time.monotonic() + HOP_WAIT
            self._hops.extend(handled.hop)
        self._later.extend(handled.later)  # the rest at the end of the batch, in the decided order
        if handled.dead_letter is not None:
            self._dead_letter(read, handled.dead_letter, handled.code)
        raw_key = handled.key
        if raw_key is None:
            return
        if handled.changed:
            if handled.state is None:
                states.pop(raw_key, None)
            else:
                states[raw_key] = handled.state
            self._dirty[raw_key] = read.partition
        deadline = self.handler.next_deadline(handled.state)
        if deadline is None:
            self._deadlines.pop(raw_key, None)
            self._sent_ticks.pop(raw_key, None)
        else:
            self._deadlines[raw_key] = deadline

    def _send(self, out: Out, partition: int = ANY_PARTITION, *, bulk: bool = False) -> None:
        topic, record, event = out
        producer = self._bulk if bulk and self._bulk is not None else self._producer
        assert producer is not None
        if self._topics_known.get(topic) != 0.0 and self._missing(topic):  # 0.0: known to exist
            self._refusals.append((out, f"topic {topic} does not exist"))
            return
        while True:
            try:
                producer.produce(topic, record.value, key=record.key, partition=partition, headers=list(record.headers))
                break
            except BufferError:  # the local queue is full: let the broker catch up
                producer.poll(0.1)
            except KafkaException as error:
                self._refusals.append((out, str(error.args[0] if error.args else error)))
                return
        if event is not None:
            self._produced.append(out)

    def _count_produced(self) -> None:
        """The produced-events metric for the records sent since it was last told, each label set added once."""
        if self._produced:
            produced, self._produced = self._produced, []
            observe_produced_many((topic, event) for topic, _record, event in produced)

    def _missing(self, topic: str) -> bool:
        """Whether `topic` does not exist (looked up once, a missing one again after TOPIC_RECHECK s)."""
        missing_since = self._topics_known.get(topic)
        if missing_since == 0.0 or (missing_since is not None and time.monotonic() - missing_since < TOPIC_RECHECK):
            return missing_since != 0.0
        assert self._producer is not None
        try:
            metadata = self._producer.list_topics(topic, timeout=10).topics.get(topic)
        except KafkaException:
            return False  # no answer: the produce itself finds out
        exists = metadata is not None and metadata.error is None
        self._topics_known[topic] = 0.0 if exists else time.monotonic()
        return not exists

    def _delivery_failed(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            return
        topic = message.topic() or ""
        if error.code() in REFUSED_FOR_GOOD:
            headers = cast(list[tuple[str, bytes]], message.headers() or [])
            record = KafkaRecord(key=message.key(), value=message.value(), headers=tuple(headers))
            self._refusals.append(((topic, record, None), str(error)))
        elif self._failure is None:
            self._failure = f"{topic}: {error}"

    def _answer_refusals(self) -> None:
        """Records refused for good: each goes to the DLQ with the reason, the handler may answer it, and
        a refused state record drops that key's state; nothing else stops."""
        while self._refusals:
            refusals, self._refusals = self._refusals, []
            for out, reason in refusals:
                topic, record, _event = out
                log.error("%s: %s refused a record (%s); it goes to the DLQ", self.handler.name, topic, reason)
                if topic == self.registry.dlq:
                    continue  # a dead letter the DLQ refuses: logged, nothing more can be done
                if topic == self.state_topic and record.key is not None:
                    if record.value is not None:
                        self._drop_state(record.key, record, reason)
                    continue
                self._dead_letter_refused(record, DeadLetter(
                    reason=f"{self.handler.name} could not write this record to {topic}: {reason}",
                    source_topic=topic, source_partition=-1, source_offset=-1, agent=self.handler.name))
                for answer in self.handler.refused(out, reason):
                    self._send(answer)

    def _drop_state(self, raw_key: bytes, record: KafkaRecord, reason: str) -> None:
        """A key's state that cannot be written: to the DLQ, and the key starts afresh (its old record is
        deleted, so a restart cannot bring back a state older than its inputs)."""
        partition = self._dirty.pop(raw_key, None)
        for number, states in self._states.items():
            if states.pop(raw_key, None) is not None and partition is None:
                partition = number
        self._deadlines.pop(raw_key, None)
        self._sent_ticks.pop(raw_key, None)
        self._dead_letter_refused(record, DeadLetter(
            reason=f"the state of {raw_key.decode(errors='replace')} cannot be written ({reason}); "
                   "its state is dropped and it starts afresh", source_topic=self.state_topic or "",
            source_partition=partition if partition is not None else -1, source_offset=-1, agent=self.handler.name))
        if self.state_topic is not None and partition is not None:
            self._send((self.state_topic, KafkaRecord(key=raw_key, value=None, headers=()), None), partition,
                       bulk=True)

    def _dead_letter(self, read: Consumed, reason: str, code: DeadLetterReason) -> None:
        letter = DeadLetter(reason=reason, source_topic=read.topic, source_partition=read.partition,
                            source_offset=read.offset, agent=self.handler.name, code=code)
        self._dead_letter_record(read.record, letter)

    def _dead_letter_refused(self, record: KafkaRecord, letter: DeadLetter) -> None:
        """The letter for a record the broker refused: its value is left out when large (it may be why)."""
        size = len(record.value) if record.value is not None else 0
        if size > REFUSED_VALUE_KEPT:
            record = KafkaRecord(key=record.key, value=None, headers=record.headers)
            letter = dataclasses.replace(letter, reason=f"{letter.reason} (its {size}-byte value is left out)")
        self._dead_letter_record(record, letter)

    def _dead_letter_record(self, record: KafkaRecord, letter: DeadLetter) -> None:
        self._send((self.registry.dlq, dead_letter_record(record, letter), None), bulk=True)
        if self._note is not None:
            self._note(self.dead_letters, letter)
        else:
            self.dead_letters.add(letter)

    def _check_deliveries(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"the broker failed a record ({self._failure}); the inputs since the last "
                               "commit are handled again")

    def _producers(self) -> list[Producer]:
        assert self._producer is not None
        return [self._producer] if self._bulk is None or self._bulk is self._producer else [self._producer, self._bulk]

    def _flush(self, timeout: float) -> int:
        """Wait for every record produced so far to be acknowledged (and every refusal answered);
        returns how many are still not."""
        while True:
            left = sum(producer.flush(timeout) for producer in self._producers())
            if left or not self._refusals:
                return left
            self._answer_refusals()

    def _write_states_if_acknowledged(self) -> None:
        if self._dirty and not self._refusals and sum(len(producer) for producer in self._producers()) == 0:
            self._write_states()  # every output so far is acknowledged: the state may say so

    def _write_states(self) -> None:
        """Write the changed keys' state; only call when every output so far is acknowledged."""
        self._check_deliveries()
        encode = self.handler.encode_state
        dirty, self._dirty = self._dirty, {}
        if self.state_topic is None:
            return
        for raw_key, partition in dirty.items():
            state = self._states.get(partition, {}).get(raw_key)
            value = encode(state) if state is not None else None
            self._send((self.state_topic, KafkaRecord(key=raw_key, value=value, headers=()), None), partition,
                       bulk=True)

    def _commit(self) -> None:
        """Flush the outputs, write the state they allow, flush that too, then commit the positions."""
        assert self._consumer is not None and self._producer is not None
        changed = [TopicPartition(topic, partition, offset)
                   for (topic, partition), offset in self._positions.items()
                   if self._committed.get((topic, partition)) != offset]
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
                self._committed[(tp.topic, tp.partition)] = tp.offset

    # ------------------------------------------------------------------ timers

    def _rescan(self) -> None:
        states: list[Any] = []
        for partition_states in self._states.values():
            for raw_key, state in partition_states.items():
                states.append(state)
                deadline = self.handler.next_deadline(state)
                if deadline is not None:
                    self._deadlines[raw_key] = deadline
        self.handler.scanned(states)

    def _send_ticks(self) -> None:
        now = datetime.now(UTC)
        for raw_key, deadline in list(self._deadlines.items()):
            if deadline > now or self._sent_ticks.get(raw_key) == deadline:
                continue
            out = self.handler.tick(raw_key, deadline)
            if out is not None:
                self._send(out)
            self._sent_ticks[raw_key] = deadline

    # ------------------------------------------------------------------ for tests and metrics

    def _measure_lag(self) -> None:
        assert self._consumer is not None
        rows: list[tuple[str, str, int, int]] = []
        for topic, partition in list(self._positions.keys() | self._committed.keys()):
            position = self._positions.get((topic, partition)) or self._committed.get((topic, partition))
            if position is None:
                continue  # nothing read yet: unknown, left out (as for Faust's consumers)
            # The high watermark the last fetch brought along; no request to the broker.
            _low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            if high >= 0:
                rows.append((self.group, topic, partition, max(high - position, 0)))
        self._lags = rows

    def lags(self) -> list[tuple[str, str, int, int]]:
        """(group, topic, partition, records not yet handled) as of the last tick, for the metrics."""
        return list(self._lags)

    def state_of(self, raw_key: bytes) -> Any:
        for states in self._states.values():
            if raw_key in states:
                return states[raw_key]
        return None


def run_in_thread(loop: StreamLoop, name: str) -> threading.Thread:
    thread = threading.Thread(target=loop.run, name=f"tidegate-{name}", daemon=True)
    thread.start()
    return thread
