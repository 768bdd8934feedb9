"""The sequencer in a real Faust worker on the real broker, next to raw aiokafka on the same broker.

    python -m benchmarks.bench_sequencer [--services 1500] [--hop-sequences 40] [--partitions 12] [--hop-only]

Two pairs of figures, measured in one run (the broker of `deploy/local/kafka.py` is started if it is
not running, or `TIDEGATE_KAFKA_BOOTSTRAP` names one; topics live under a fresh prefix, deleted at
the end):

1. **Hop latency**: from a task's `.finished` being produced (a connector answers) to the next task's
   `.triggered` being consumed by the connector, p50/p99, one sequence at a time. The worker consumes
   the reply, decides, keeps its state and produces the next task. Baseline: the raw aiokafka
   produce-to-consume round trip of one record, with the same client settings, measured in small
   rounds between the sequences (so both figures see the same moments of a noisy machine). A hop
   holds two such trips (connector to worker, worker to connector) plus the decision. The stand-in
   connectors are one consumer per task topic, as Tidegate's connectors read their tasks' topics
   and as the round trip's consumer reads one topic: one consumer of all six task topics adds
   0.5-1 ms per record by itself (`python -m benchmarks.bench_consumer_fanin`).
2. **Throughput**: sequence events per second one worker sustains with many services in flight: a
   backlog of triggers and connector replies for `--services` services is on `events` before the
   worker starts, and the worker drains it (rate taken from the first and last transition it
   audits). The replies are computed beforehand by the in-memory driver, which uses the same core and
   so the same deterministic task ids the worker will produce. Baseline: a raw aiokafka loop that
   consumes the same records one by one and produces one record for each, run before and after the
   worker (the mean is the baseline).

Targets (issue 20): hop p50 within 2x the raw round trip and hop p99 within 3x the raw round trip's
p99; throughput at least 35% of the raw loop. `--no-forwarder` and `--no-idle` leave out the Faust
forwarder and the idle-key phase (quicker runs while working on the hot path).
For context the run also prints three references that show where the worker's time goes:
- the raw loop producing as many records per input as the sequencer does (its audit records, task
  events and state: FANOUT): the ceiling of a Python loop with the sequencer's output;
- the processor's Kafka work alone: its confluent-kafka clients and producer settings, consuming in
  batches and producing FANOUT records per input, with no decisions: the ceiling of the processor;
- a Faust agent that only forwards FANOUT records per input (`benchmarks/_forwarder.py`, the worker's
  Faust settings): why the sequencer has its own loop instead of a Faust agent
  (streams/kafka/loop.py);
- the decision path alone, in this process without Kafka (decode the input, read the key's state,
  decide, encode every output, store the state): the ceiling if Faust and the broker cost nothing.

3. **Idle keys** (issue 20, targets 2 and 5; alone: `--idle-only`, no throughput or hop phase):
   - the bytes of a key's state record (what the state topic and the loop hold) after `--idle-sequences`
     sequences on that one key, decided by the core with the input positions the loop host gives (and,
     for comparison, without positions as `tidegate simulate` runs it, and the same state in the form
     the code before `KeyState.applied`/`recent` wrote: every record carried `seen`, 500 full ids);
     target <= 2 KB;
   - the resident size (VmRSS, /proc/<pid>/status) of a worker process (the sequencer on the loop
     host) that has read back `--idle-keys` such idle keys from its state topic, next to the same
     worker with no keys; both read a few seconds after the worker logged its read-back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import re
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer, TopicPartition

from tidegate.agents.kernel import Position
from tidegate.agents.sequencer.core import decide
from tidegate.agents.sequencer.driver import SIMULATED_CONNECTOR, Driver
from tidegate.agents.sequencer.model import KeyState, SequencerConfig
from tidegate.agents.sequencer.outputs import AuditRecord, Emit
from tidegate.agents.sequencer.shell import AGENT
from tidegate.schemas.events import EventType, KeptnEvent, Status, sequence_type, task_type
from tidegate.schemas.files import FileKind, load_text
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key
from tidegate.schemas.shipyard import Shipyard
from tidegate.streams.app import worker_command
from tidegate.streams.codec import DecodeError, KafkaRecord, decode, encode
from tidegate.streams.kafka import aiokafka_config, confluent_config, delete_topics, provision_topics
from tidegate.streams.kafka.loop import batch_without_collection, producer_config
from tidegate.streams.resources import SHIPYARD, Resource
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry, TopicSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
STAGE = "bench"
SEQUENCE = "pipeline"
TASKS = ("deployment", "test", "evaluation", "release", "rollback", "action")  # standard topics, no approval
THROUGHPUT_PROJECT = "throughput"
HOPS_PROJECT = "hops"
TRIGGER_SOURCE = "bench"
RESPONDER_SOURCE = "bench-connector"
AUDIT_TRANSITION = "sh.tidegate.audit.sequencer."
RAW_ROUND_TRIPS = 200
WARM_UP = 20
WAIT = 120.0  # seconds any one phase may take before the run is declared stuck
FANOUT = 5  # records the sequencer produces per input in this workload (4.6 on average), rounded up
HOP_TARGET = 2.0  # p50 hop / p50 raw round trip (issue 20)
HOP_P99_TARGET = 3.0  # p99 hop / p99 raw round trip (issue 20)
THROUGHPUT_TARGET = 0.35  # worker / raw 1:1 loop (issue 20)
IDLE_PROJECT = "idle"
STATE_TARGET = 2048  # bytes of an idle key's state (issue 20)
OLD_SEEN = 500  # input ids every state record carried before `KeyState.applied`/`recent`
SETTLE = 5.0  # seconds a worker runs after its read-back before its resident size is read
READ_BACK = re.compile(r"sequencer: assigned events partitions \[([^\]]*)\]; read back (\d+) keys")


class BenchError(RuntimeError):
    """The run could not produce a figure; the message says which phase and why."""


# --- pure helpers ---------------------------------------------------------------------------------------


def shipyard_text(tasks: Sequence[str]) -> str:
    listed = ", ".join(f"{{name: {task}}}" for task in tasks)
    return (
        "apiVersion: spec.keptn.sh/0.2.2\nkind: Shipyard\nmetadata: {name: bench}\nspec:\n  stages:\n"
        f"    - name: {STAGE}\n      sequences:\n        - name: {SEQUENCE}\n          tasks: [{listed}]\n"
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a latency that was measured)."""
    if not values:
        raise ValueError("no values to take a percentile of")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def trigger(project: str, service: str) -> KeptnEvent:
    return KeptnEvent(
        type=sequence_type(STAGE, SEQUENCE, "triggered"),
        source=TRIGGER_SOURCE,
        shkeptncontext=str(uuid.uuid4()),
        data={"project": project, "stage": STAGE, "service": service,
              "configurationChange": {"values": {"image": f"{service}:1.0.0"}}},
    )


def backlog(shipyard: Shipyard, services: int) -> list[KeptnEvent]:
    """Every trigger and connector reply of `services` sequences, in the order the driver saw them.

    The driver runs the same core, so the replies answer the task ids the worker will produce.
    """
    driver = Driver(SequencerConfig(shipyard_for=lambda _project: shipyard), max_events=10**7)
    for number in range(services):
        driver.publish(trigger(THROUGHPUT_PROJECT, f"svc-{number:04d}"))
    driver.run()
    finished = sum(1 for p in driver.published if p.event.type == sequence_type(STAGE, SEQUENCE, "finished"))
    if finished != services:
        raise BenchError(f"the in-memory run finished {finished} of {services} sequences; the backlog is unusable")
    return [p.event for p in driver.published
            if p.destination == "events" and p.event.source in (TRIGGER_SOURCE, SIMULATED_CONNECTOR)]


def reply(triggered: KeptnEvent, kind: str) -> KeptnEvent:
    """A connector's `.started` / `.finished` (pass) for a task `.triggered`."""
    task = EventType.parse(triggered.type).task or ""
    data: dict[str, object] = {name: triggered.data[name] for name in ("project", "stage", "service")
                               if name in triggered.data}
    data["status"] = Status.SUCCEEDED.value
    if kind == "finished":
        data["result"] = "pass"
    return KeptnEvent(
        id=derived_id(triggered.id, f"{RESPONDER_SOURCE}:{kind}"),
        type=task_type(task, kind),
        source=RESPONDER_SOURCE,
        shkeptncontext=triggered.shkeptncontext,
        triggeredid=triggered.id,
        data=data,
    )


def decision_path_rate(shipyard: Shipyard, records: Sequence[KafkaRecord], batch: int = 500) -> float:
    """Events per second through the processor's per-event work in one process, with no Kafka at all:
    decode, decide on the in-memory state, encode every output (the input's own audit copy is
    forwarded as it came), and serialise each changed key's state once per batch, as the processor does
    (no garbage collection while a batch is decided, as on the loop)."""
    config = SequencerConfig(shipyard_for=lambda _project: shipyard)
    codec = AGENT.state
    assert codec is not None
    states: dict[Key, KeyState] = {}
    written: dict[Key, bytes] = {}
    index = 0
    started = time.perf_counter()
    for first in range(0, len(records), batch):
        dirty: set[Key] = set()
        with batch_without_collection():
            for record in records[first:first + batch]:
                event = decode(record.value, record.headers)
                key = Key.of_data(event.data)
                state = states.get(key)
                # The position the loop host gives (one partition here: offsets only grow, as in one).
                decision = decide(state, event, config, datetime.now(UTC), Position("events", 0, index))
                index += 1
                for output in decision.outputs:
                    if isinstance(output, Emit):
                        encode(output.event, output.key)
                    elif isinstance(output, AuditRecord):
                        output.to_record()
                if decision.state is not state:
                    if decision.state is None:
                        states.pop(key, None)
                    else:
                        states[key] = decision.state
                    dirty.add(key)
        for key in dirty:
            state = states.get(key)
            written[key] = codec.encode(state) if state is not None else b""
    return len(records) / (time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class HopFigures:
    """Hop latencies and the raw round trips measured between them (seconds)."""

    round_trips: Sequence[float]
    hops: Sequence[float]

    @property
    def ratio(self) -> float:
        return percentile(self.hops, 0.5) / percentile(self.round_trips, 0.5)

    @property
    def p99_ratio(self) -> float:
        return percentile(self.hops, 0.99) / percentile(self.round_trips, 0.99)

    def lines(self) -> list[str]:
        def p(values: Sequence[float], fraction: float) -> str:
            return f"{percentile(values, fraction) * 1000:8.2f} ms"

        verdict = "meets" if self.ratio <= HOP_TARGET else "MISSES"
        p99_verdict = "meets" if self.p99_ratio <= HOP_P99_TARGET else "MISSES"
        return [
            f"   raw aiokafka round trip      p50 {p(self.round_trips, 0.5)}   p99 {p(self.round_trips, 0.99)}"
            f"   ({len(self.round_trips)} records, between the hops)",
            f"   sequencer hop                p50 {p(self.hops, 0.5)}   p99 {p(self.hops, 0.99)}"
            f"   ({len(self.hops)} hops)",
            f"   ratio p50 hop / round trip   {self.ratio:.2f}x   (target <= {HOP_TARGET:.1f}x: {verdict})",
            f"   ratio p99 hop / round trip   {self.p99_ratio:.2f}x   (target <= {HOP_P99_TARGET:.1f}x: {p99_verdict})",
        ]


@dataclass(frozen=True, slots=True)
class Figures:
    hop: HopFigures
    raw_loop_rate: float
    raw_loop_rates: tuple[float, ...]
    raw_fanout_rate: float
    processor_io_rate: float
    worker_rate: float
    worker_events: int
    services: int
    decision_path_rate: float
    forwarder_rate: float | None  # None: not measured (--no-forwarder)

    @property
    def throughput_ratio(self) -> float:
        return self.worker_rate / self.raw_loop_rate

    def report(self) -> str:
        rate_ok = "meets" if self.throughput_ratio >= THROUGHPUT_TARGET else "MISSES"
        return "\n".join([
            "1. hop latency (task .finished produced -> next .triggered consumed)",
            *self.hop.lines(),
            "2. throughput (backlog drained by one worker)",
            f"   raw consume-and-produce loop {self.raw_loop_rate:10,.0f} records/s   (mean of "
            + " and ".join(f"{rate:,.0f}" for rate in self.raw_loop_rates) + ": before and after the worker)",
            f"   sequencer worker             {self.worker_rate:10,.0f} events/s   ({self.worker_events} events, "
            f"{self.services} services in flight)",
            f"   ratio worker / raw loop      {self.throughput_ratio:.2f}   "
            f"(target >= {THROUGHPUT_TARGET:.2f}: {rate_ok})",
            "   for context:",
            f"   raw loop producing {FANOUT} records per input {self.raw_fanout_rate:8,.0f} inputs/s   "
            f"(the sequencer's output per event; worker / this loop {self.worker_rate / self.raw_fanout_rate:.2f})",
            f"   processor's Kafka I/O alone ({FANOUT} out per input) {self.processor_io_rate:8,.0f} inputs/s   "
            f"(confluent-kafka, the processor's settings, no decisions; / raw loop "
            f"{self.processor_io_rate / self.raw_loop_rate:.2f}, worker / this {self.worker_rate / self.processor_io_rate:.2f})",
            *([f"   Faust agent forwarding {FANOUT} records per input {self.forwarder_rate:8,.0f} inputs/s   "
               f"(sequencer / forwarder {self.worker_rate / self.forwarder_rate:.2f}, "
               f"forwarder / raw loop {self.forwarder_rate / self.raw_loop_rate:.2f})"]
              if self.forwarder_rate is not None else []),
            f"   decision path alone, no Kafka {self.decision_path_rate:10,.0f} events/s   "
            f"(decode, decide, encode, state: the processor's work in one process; / raw loop "
            f"{self.decision_path_rate / self.raw_loop_rate:.2f})",
        ])


# --- idle keys: the state a key keeps, a worker's resident size -----------------------------------------


def idle_key_state(shipyard: Shipyard, sequences: int, *, positions: bool) -> tuple[KeyState, list[str]]:
    """One key's state after `sequences` whole sequences on it, and the ids of the inputs that changed it.

    The core decides every trigger and connector reply in turn, with the position the loop host would
    give (`positions`) or none (as `tidegate simulate` runs it)."""
    config = SequencerConfig(shipyard_for=lambda _project: shipyard)
    now = datetime.now(UTC)
    state: KeyState | None = None
    applied: list[str] = []
    offset = 0

    def feed(event: KeptnEvent) -> list[KeptnEvent]:
        nonlocal state, offset
        decision = decide(state, event, config, now, Position("events", 0, offset) if positions else None)
        offset += 1
        if decision.state is not state:
            applied.append(event.id)
        if decision.state is not None:
            state = decision.state
        return [e.event for e in decision.emitted if e.task is not None and e.event.type.endswith(".triggered")]

    for _ in range(sequences):
        tasks = feed(trigger(IDLE_PROJECT, "idle"))
        while tasks:
            feed(reply(tasks[0], "started"))
            tasks = feed(reply(tasks[0], "finished"))
    if state is None or state.sequences:
        raise BenchError(f"the idle key still has {len(state.sequences) if state else 0} active sequences")
    return state, applied


def state_bytes(state: KeyState) -> int:
    """The bytes of the key's state record value, as the host writes it (the agent's codec)."""
    assert AGENT.state is not None
    return len(AGENT.state.encode(state))


def old_form_bytes(state: KeyState, applied: Sequence[str]) -> int:
    """The same state as the code before `applied`/`recent` wrote it: the last 500 input ids in `seen`."""
    data = msgspec.to_builtins(msgspec.structs.asdict(state))  # every field, as pydantic wrote them
    del data["applied"], data["recent"]
    data["seen"] = list(applied[-OLD_SEEN:])
    return len(json.dumps(data, separators=(",", ":")).encode())


@dataclass(frozen=True, slots=True)
class IdleFigures:
    sequences: int
    with_positions: int  # state bytes
    without_positions: int
    old_form: int
    keys: int
    rss_empty: int | None = None  # bytes; None: not measured (no broker phase)
    rss_full: int | None = None

    def lines(self) -> list[str]:
        verdict = "meets" if self.with_positions <= STATE_TARGET else "MISSES"
        lines = [
            f"3. idle keys: state after {self.sequences} sequences on one key, then a worker holding {self.keys} keys",
            f"   state per idle key (loop host)  {self.with_positions:6,d} bytes   (target <= {STATE_TARGET:,d}: "
            f"{verdict}; offsets per input partition + id digests)",
            f"   without positions (simulate)    {self.without_positions:6,d} bytes   (id digests only)",
            f"   the old form (`seen`, 500 ids)  {self.old_form:6,d} bytes   (before; "
            f"{self.old_form / self.with_positions:.1f}x the new)",
        ]
        if self.rss_empty is not None and self.rss_full is not None:
            mib = 1024 * 1024
            lines += [
                f"   worker RSS with {self.keys:,d} idle keys {self.rss_full / mib:8.1f} MiB   "
                f"(with none: {self.rss_empty / mib:.1f} MiB; "
                f"{(self.rss_full - self.rss_empty) / self.keys:,.0f} bytes per key)",
            ]
        return lines


def idle_state_figures(shipyard: Shipyard, sequences: int, keys: int) -> tuple[IdleFigures, KeyState]:
    with_positions, applied = idle_key_state(shipyard, sequences, positions=True)
    without_positions, _ = idle_key_state(shipyard, sequences, positions=False)
    figures = IdleFigures(sequences, state_bytes(with_positions), state_bytes(without_positions),
                          old_form_bytes(with_positions, applied), keys)
    return figures, with_positions


def fill_idle_keys(settings: Settings, registry: TopicRegistry, template: KeyState, keys: int) -> None:
    """`keys` copies of `template` (another service each) in the sequencer's state topic, partitioned
    by key as the loop writes them (murmur2, the partition of the key's inputs)."""
    from tidegate.streams.topics import SEQUENCER_STATE

    assert AGENT.state is not None
    producer = Producer(producer_config(settings, linger_ms=20))
    topic = registry.changelog(*SEQUENCER_STATE)
    for number in range(keys):
        service = f"idle-{number:05d}"
        state = msgspec.structs.replace(template, project=IDLE_PROJECT, service=service)
        value = AGENT.state.encode(state)
        while True:
            try:
                producer.produce(topic, value, key=Key(IDLE_PROJECT, STAGE, service).encode())
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(120):
        raise BenchError("the idle keys' state records were not acknowledged within 120 s")


def resident_bytes(pid: int) -> int:
    """VmRSS of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"/proc/{pid}/status has no VmRSS")


def settled_rss(settings: Settings, log_file: Path, keys: int) -> int:
    """A fresh worker's resident size once it has read back every partition's state (`keys` keys)."""
    worker = start_worker(settings, log_file)
    try:
        deadline = time.monotonic() + WAIT
        while True:
            if worker.poll() is not None:
                raise BenchError(f"the worker exited with {worker.returncode}; its log is {log_file}")
            text = log_file.read_text(errors="replace") if log_file.exists() else ""
            found = READ_BACK.findall(text)
            partitions = {int(n) for numbers, _ in found for n in numbers.split(",") if n.strip()}
            if len(partitions) >= settings.partitions:
                read_back = sum(int(count) for _, count in found)
                if read_back != keys:
                    raise BenchError(f"the worker read back {read_back} keys, not {keys}; its log is {log_file}")
                break
            if time.monotonic() > deadline:
                raise BenchError(f"the worker did not read back its state within {WAIT:.0f} s; log {log_file}")
            time.sleep(0.2)
        time.sleep(SETTLE)
        return resident_bytes(worker.pid)
    finally:
        stop_worker(worker)


def measure_idle(settings: Settings, work_dir: Path, figures: IdleFigures, template: KeyState) -> IdleFigures:
    """The worker's resident size with no keys, then with `figures.keys` idle keys (topics of its own)."""
    registry = TopicRegistry.from_settings(settings)
    report = provision_topics(settings, registry.specs())
    if not report.ok:
        raise BenchError(f"could not create the topics: {report.problems}")
    print(f"worker: resident size with no keys, then with {figures.keys:,d} idle keys ...", flush=True)
    empty = settled_rss(settings, work_dir / "worker-empty.log", 0)
    fill_idle_keys(settings, registry, template, figures.keys)
    full = settled_rss(settings, work_dir / "worker-idle.log", figures.keys)
    return replace(figures, rss_empty=empty, rss_full=full)


# --- Kafka edges ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def broker() -> Iterator[str]:
    """`TIDEGATE_KAFKA_BOOTSTRAP` if set, else the local broker (started now and stopped after if needed)."""
    external = os.environ.get("TIDEGATE_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    from deploy.local.kafka import kafka_session

    with kafka_session() as bootstrap:
        yield bootstrap


def producer_for(settings: Settings, **options: object) -> AIOKafkaProducer:
    # The worker's producer settings (streams.app): acks from every in-sync replica, murmur2, no linger.
    return AIOKafkaProducer(**aiokafka_config(settings), acks="all", **options)


def consumer_for(settings: Settings, *topics: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **aiokafka_config(settings), group_id=f"bench-{uuid.uuid4().hex}",
                            auto_offset_reset="earliest")


async def send_all(settings: Settings, topic: str, records: Sequence[KafkaRecord]) -> None:
    producer = producer_for(settings, linger_ms=5)
    await producer.start()
    try:
        pending = [await producer.send(topic, record.value, key=record.key, headers=list(record.headers))
                   for record in records]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


class RoundTripper:
    """The raw aiokafka produce-to-consume round trip, measured in small rounds between the hops so both
    figures see the same moments of a noisy machine."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self.producer = producer_for(settings)
        self.consumer = consumer_for(settings, topic)
        self.latencies: list[float] = []
        self._number = 0

    async def __aenter__(self) -> RoundTripper:
        await self.producer.start()
        await self.consumer.start()
        await self.consumer.getmany(timeout_ms=1000)  # join and get assigned before the clock runs
        await self.measure(WARM_UP, keep=False)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.consumer.stop()
        await self.producer.stop()

    async def measure(self, count: int, *, keep: bool = True) -> None:
        """Produce one record, wait until the consumer has it, `count` times."""
        for _ in range(count):
            self._number += 1
            payload = f"{self._number}".encode()
            sent = time.perf_counter()
            await self.producer.send(self.topic, payload, key=f"key-{self._number % 16}".encode())
            while True:
                record = await asyncio.wait_for(self.consumer.getone(), WAIT)
                if record.value == payload:
                    break
            if keep:
                self.latencies.append(time.perf_counter() - sent)


async def raw_loop(settings: Settings, source: str, sink: str, count: int, fanout: int = 1) -> float:
    """Consume `count` records one by one and produce `fanout` records for each: input records per second."""
    producer = producer_for(settings)
    consumer = consumer_for(settings, source)
    await producer.start()
    await consumer.start()
    try:
        seen = 0
        started = 0.0
        async with asyncio.timeout(WAIT):
            async for record in consumer:
                if seen == 0:
                    started = time.perf_counter()
                for _ in range(fanout):
                    await producer.send(sink, record.value, key=record.key, headers=list(record.headers))
                seen += 1
                if seen == count:
                    break
            await producer.flush()
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()


def processor_io_rate(settings: Settings, source: str, sink: str, count: int, fanout: int) -> float:
    """The sequencer processor's Kafka work with no decisions: its clients and producer settings, consume
    `count` records in batches and produce `fanout` records for each. Input records per second."""
    consumer = Consumer({**confluent_config(settings), "group.id": f"bench-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    producer = Producer(producer_config(settings))
    consumer.subscribe([source])
    seen, started = 0, 0.0
    deadline = time.monotonic() + WAIT
    try:
        while seen < count:
            if time.monotonic() > deadline:
                raise BenchError(f"the processor I/O loop read {seen} of {count} records in {WAIT:.0f} s")
            for message in consumer.consume(500, 0.1):
                if message.error() is not None:
                    continue
                if seen == 0:
                    started = time.perf_counter()
                value, key, headers = message.value(), message.key(), message.headers() or []
                for _ in range(fanout):
                    while True:
                        try:
                            producer.produce(sink, value, key=key, headers=headers)
                            break
                        except BufferError:
                            producer.poll(0.1)
                seen += 1
            producer.poll(0)
        if producer.flush(30):
            raise BenchError("the processor I/O loop's records were not acknowledged within 30 s")
        return count / (time.perf_counter() - started)
    finally:
        consumer.close()


def drained(settings: Settings, group: str, topic: str) -> bool:
    """Whether `group` has committed every record of `topic` (the worker has nothing left to read)."""
    consumer = Consumer({**confluent_config(settings), "group.id": group, "enable.auto.commit": False})
    try:
        partitions = [TopicPartition(topic, n) for n in range(settings.partitions)]
        committed = consumer.committed(partitions, timeout=10)
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions]
        return all(end == 0 or c.offset >= end for c, end in zip(committed, ends, strict=True))
    finally:
        consumer.close()


async def transition_times(settings: Settings, audit_topic: str, project: str, sequences: int) -> list[datetime]:
    """The times of the worker's transitions for `project`, read once the worker is done."""
    consumer = consumer_for(settings, audit_topic)
    await consumer.start()
    times: list[datetime] = []
    finished = 0
    try:
        async with asyncio.timeout(WAIT):
            while finished < sequences:
                for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                    for record in records:
                        kind = dict(record.headers).get("ce_type", b"").decode()
                        if not kind.startswith(AUDIT_TRANSITION):
                            continue
                        event = decode(record.value, record.headers)
                        if event.data.get("project") != project:
                            continue
                        times.append(event.time)
                        finished += kind == AUDIT_TRANSITION + "finished"
    finally:
        await consumer.stop()
    return times


def boundary_timestamps(settings: Settings, topic: str) -> tuple[float, float]:
    """The create times (s) of the first and the last record of `topic`, read after the fact."""
    consumer = Consumer({**confluent_config(settings), "group.id": f"bench-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    first, last = math.inf, -math.inf
    try:
        for partition in range(settings.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            for offset in {low, high - 1} if high > low else ():
                consumer.assign([TopicPartition(topic, partition, offset)])
                message = consumer.poll(10)
                if message is None or message.error():
                    raise BenchError(f"could not read {topic}[{partition}]@{offset}")
                stamp = message.timestamp()[1] / 1000
                first, last = min(first, stamp), max(last, stamp)
    finally:
        consumer.close()
    return first, last


async def forwarder_rate(settings: Settings, source: str, sink: str, count: int, work_dir: Path) -> float:
    """Inputs per second of the Faust forwarder draining `count` records of `source`."""
    env = {"BENCH_SOURCE": source, "BENCH_SINK": sink, "BENCH_FANOUT": str(FANOUT)}
    log_file = work_dir / "forwarder.log"
    forwarder = start_worker(settings, log_file, "benchmarks._forwarder:app", env)
    try:
        group = TopicRegistry.from_settings(settings).app_id("forwarder")
        await wait_drained(settings, forwarder, group, source, log_file)
    finally:
        stop_worker(forwarder)
    first, last = await asyncio.to_thread(boundary_timestamps, settings, sink)
    return count / (last - first)


async def wait_drained(settings: Settings, worker: subprocess.Popen[bytes], group: str, topic: str,
                       log_file: Path) -> None:
    deadline = time.monotonic() + WAIT
    while not await asyncio.to_thread(drained, settings, group, topic):
        if worker.poll() is not None:
            raise BenchError(f"the worker exited with {worker.returncode}; its log is {log_file}")
        if time.monotonic() > deadline:
            raise BenchError(f"the worker did not drain {topic} within {WAIT:.0f} s; its log is {log_file}")
        await asyncio.sleep(1.0)


class HopResponder:
    """Answers every task at once and times each hop from its `.finished` to the next `.triggered`.

    It plays one connector per task, each with its own consumer of `tasks.<task>`, as Tidegate's
    connectors subscribe to their tasks' topics. One consumer of all six task topics (72 partitions)
    is 0.5-1 ms slower per record than a consumer of one topic, for either producer
    (`python -m benchmarks.bench_consumer_fanin`): that would be charged to the sequencer, while the raw
    round trip, with its one-topic consumer, never pays it.
    """

    def __init__(self, settings: Settings, registry: TopicRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.hops: list[float] = []
        self.finished_sent: dict[str, float] = {}  # keptnContext -> when its last .finished was produced
        self.tasks_seen: dict[str, int] = {}
        self.changed = asyncio.Event()
        self.measuring = False

    async def run(self) -> None:
        producer = producer_for(self.settings)
        consumers = [consumer_for(self.settings, self.registry.task(task)) for task in TASKS]
        await producer.start()
        try:
            for consumer in consumers:
                await consumer.start()
            async with asyncio.TaskGroup() as connectors:
                for consumer in consumers:
                    connectors.create_task(self._answer(consumer, producer))
        finally:
            for consumer in consumers:
                await consumer.stop()
            await producer.stop()

    async def _answer(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        async for record in consumer:
            arrived = time.perf_counter()
            try:
                event = decode(record.value, record.headers)
            except DecodeError:
                continue
            if not event.type.endswith(".triggered") or event.data.get("project") != HOPS_PROJECT:
                continue
            context = event.shkeptncontext or ""
            sent = self.finished_sent.pop(context, None)
            if sent is not None and self.measuring:
                self.hops.append(arrived - sent)
            key = Key.of_data(event.data)
            started = encode(reply(event, "started"), key)
            finished = encode(reply(event, "finished"), key)
            await producer.send(self.registry.events, started.value, key=started.key,
                                headers=list(started.headers))
            self.finished_sent[context] = time.perf_counter()
            await producer.send(self.registry.events, finished.value, key=finished.key,
                                headers=list(finished.headers))
            self.tasks_seen[context] = self.tasks_seen.get(context, 0) + 1
            self.changed.set()

    async def wait_tasks(self, context: str, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while self.tasks_seen.get(context, 0) < count:
                self.changed.clear()
                await self.changed.wait()


async def hop_latencies(settings: Settings, registry: TopicRegistry, sequences: int,
                        round_trips: RoundTripper) -> list[float]:
    responder = HopResponder(settings, registry)
    running = asyncio.create_task(responder.run())
    producer = producer_for(settings)
    await producer.start()
    try:
        for number in range(sequences + 2):  # two warm-up sequences: topic metadata, first sends
            responder.measuring = number >= 2
            if responder.measuring:
                await round_trips.measure(RAW_ROUND_TRIPS // sequences or 1)
            event = trigger(HOPS_PROJECT, f"hop-{number % 8}")
            record = encode(event)
            await producer.send_and_wait(registry.events, record.value, key=record.key,
                                         headers=list(record.headers))
            try:
                await responder.wait_tasks(event.shkeptncontext or "", len(TASKS))
            except TimeoutError:
                raise BenchError(f"hop phase: sequence {number} did not dispatch its {len(TASKS)} tasks within "
                                 f"{WAIT:.0f} s; see the worker log") from None
            responder.finished_sent.pop(event.shkeptncontext or "", None)  # the last task has no next hop
    finally:
        await producer.stop()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    return responder.hops


def start_worker(settings: Settings, log_file: Path, app_spec: str = "tidegate.agents.main:app",
                 extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # Log level info: at warn and above Faust's progress spinner turns every debug record on.
    env = {**os.environ, **settings.as_env(), "TIDEGATE_AGENTS": "sequencer", "PYTHONPATH": str(REPO_ROOT),
           **(extra_env or {})}
    with open(log_file, "wb") as log:
        return subprocess.Popen(worker_command(app_spec, settings, log_level="info"), cwd=REPO_ROOT,
                                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def publish_shipyard(settings: Settings, registry: TopicRegistry, projects: Sequence[str], text: str) -> None:
    from tidegate.streams.kafka import EventPublisher

    with EventPublisher(settings) as publisher:
        for project in projects:
            key, value = Resource.new(project, SHIPYARD, text.encode()).to_record()
            publisher.publish_record(registry.resources, KafkaRecord(key=key, value=value), what=SHIPYARD)


async def measure(settings: Settings, work_dir: Path, services: int, hop_sequences: int,
                  forwarder: bool = True) -> Figures:
    registry = TopicRegistry.from_settings(settings)
    text = shipyard_text(TASKS)
    shipyard = load_text(text, "bench/shipyard.yaml", FileKind.SHIPYARD).model
    assert isinstance(shipyard, Shipyard)
    raw_rtt, raw_in, raw_out, forwarded = (f"{settings.topic_prefix}raw-{name}" for name in
                                           ("rtt", "in", "out", "forwarded"))
    report = provision_topics(settings, [*registry.specs(), *(TopicSpec(name, settings.partitions)
                                                               for name in (raw_rtt, raw_in, raw_out, forwarded))])
    if not report.ok:
        raise BenchError(f"could not create the topics: {report.problems}")
    publish_shipyard(settings, registry, (THROUGHPUT_PROJECT, HOPS_PROJECT), text)
    records = [encode(event) for event in backlog(shipyard, services)]
    count = len(records)
    path_rate = decision_path_rate(shipyard, records)

    print(f"raw baselines ({len(records)} records) ...", flush=True)
    await send_all(settings, raw_in, records)
    loop_rates = [await raw_loop(settings, raw_in, raw_out, len(records))]
    fanout_rate = await raw_loop(settings, raw_in, raw_out, len(records), fanout=FANOUT)
    io_rate = await asyncio.to_thread(processor_io_rate, settings, raw_in, raw_out, len(records), FANOUT)
    forwarding_rate: float | None = None
    if forwarder:
        print(f"Faust forwarder ({FANOUT} records out per input) ...", flush=True)
        forwarding_rate = await forwarder_rate(settings, raw_in, forwarded, len(records), work_dir)

    print(f"worker: draining {len(records)} events of {services} sequences ...", flush=True)
    await send_all(settings, registry.events, records)
    log_file = work_dir / "worker.log"
    worker = start_worker(settings, log_file)
    try:
        await wait_drained(settings, worker, registry.app_id("sequencer"), registry.events, log_file)
        try:
            times = await transition_times(settings, registry.audit, THROUGHPUT_PROJECT, services)
        except TimeoutError:
            raise BenchError("not every backlog sequence finished: the worker's task ids differ from the "
                             f"driver's, or the worker failed; its log is {log_file}") from None
        worker_rate = len(records) / (max(times) - min(times)).total_seconds()

        # The raw loop again right after the worker: the baseline is the mean of before and after.
        loop_rates.append(await raw_loop(settings, raw_in, raw_out, count))
        # The backlog (hundreds of thousands of objects) would make every garbage collection in this
        # process, and so the stand-in connector's replies, slower during the hops: drop it first.
        del records
        gc.collect()
        gc.freeze()

        print(f"worker: {hop_sequences} sequences of {len(TASKS)} tasks, one at a time, "
              "raw round trips in between ...", flush=True)
        async with RoundTripper(settings, raw_rtt) as round_trips:
            hops = await hop_latencies(settings, registry, hop_sequences, round_trips)
    finally:
        stop_worker(worker)
    return Figures(
        hop=HopFigures(round_trips.latencies, hops),
        raw_loop_rate=sum(loop_rates) / len(loop_rates), raw_loop_rates=tuple(loop_rates),
        raw_fanout_rate=fanout_rate, processor_io_rate=io_rate, worker_rate=worker_rate, worker_events=count, services=services,
        decision_path_rate=path_rate, forwarder_rate=forwarding_rate,
    )


async def measure_hops_only(settings: Settings, work_dir: Path, hop_sequences: int) -> str:
    """The hop phase alone, on a fresh worker (no backlog drained before): `--hop-only`."""
    registry = TopicRegistry.from_settings(settings)
    raw_rtt = f"{settings.topic_prefix}raw-rtt"
    report = provision_topics(settings, [*registry.specs(), TopicSpec(raw_rtt, settings.partitions)])
    if not report.ok:
        raise BenchError(f"could not create the topics: {report.problems}")
    publish_shipyard(settings, registry, (HOPS_PROJECT,), shipyard_text(TASKS))
    worker = start_worker(settings, work_dir / "worker.log")
    try:
        async with RoundTripper(settings, raw_rtt) as round_trips:
            hops = await hop_latencies(settings, registry, hop_sequences, round_trips)
    finally:
        stop_worker(worker)
    return "\n".join(["hop latency on a fresh worker (the full run measures it after the throughput drain)",
                      *HopFigures(round_trips.latencies, hops).lines()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=1500, help="sequences in flight for the throughput run")
    parser.add_argument("--hop-sequences", type=int, default=40,
                        help=f"sequences timed one at a time ({len(TASKS) - 1} hops each)")
    parser.add_argument("--partitions", type=int, default=12, help="partitions of every topic (Tidegate's default)")
    parser.add_argument("--hop-only", action="store_true", help="only the hop phase, on a fresh worker")
    parser.add_argument("--idle-sequences", type=int, default=1000, help="sequences run on the one idle key")
    parser.add_argument("--idle-keys", type=int, default=10_000, help="idle keys the measured worker holds")
    parser.add_argument("--idle-only", action="store_true", help="only the idle keys' state and memory")
    parser.add_argument("--no-idle", action="store_true", help="leave out the idle keys' phase")
    parser.add_argument("--no-forwarder", action="store_true", help="leave out the Faust forwarder reference")
    options = parser.parse_args()
    shipyard = load_text(shipyard_text(TASKS), "bench/shipyard.yaml", FileKind.SHIPYARD).model
    assert isinstance(shipyard, Shipyard)
    idle, template = idle_state_figures(shipyard, options.idle_sequences, options.idle_keys)
    with broker() as bootstrap, tempfile.TemporaryDirectory(prefix="tidegate-bench-") as work:
        settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
                            partitions=options.partitions, store="memory://", data_dir=Path(work) / "faust",
                            web_enabled=False)
        started = time.monotonic()
        try:
            if options.hop_only:
                print(asyncio.run(measure_hops_only(settings, Path(work), options.hop_sequences)))
                return
            if options.idle_only:
                print("\n".join(measure_idle(settings, Path(work), idle, template).lines()))
                print(f"(run took {time.monotonic() - started:.0f} s on broker {bootstrap})")
                return
            figures = asyncio.run(measure(settings, Path(work), options.services, options.hop_sequences,
                                          forwarder=not options.no_forwarder))
            delete_topics(settings, settings.topic_prefix)
            if not options.no_idle:
                idle_settings = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}idle."})
                idle = measure_idle(idle_settings, Path(work), idle, template)
        except BenchError as error:
            log = Path(work) / "worker.log"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log.exists() else ""
            raise SystemExit(f"bench_sequencer failed: {error}\n{tail}") from None
        finally:
            delete_topics(settings, settings.topic_prefix)
        print(figures.report())
        print("\n".join(idle.lines()))
        print(f"(run took {time.monotonic() - started:.0f} s on broker {bootstrap})")


if __name__ == "__main__":
    main()
