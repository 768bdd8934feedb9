"""Evaluator agent latency on the real broker, next to a raw aiokafka round trip measured in the same run.

    python -m benchmarks.bench_evaluator [--host faust|loop] [--evaluations 200] [--warmup 10] [--partitions 4]
                                         [--bootstrap HOST:PORT]

Agent path: `evaluation.triggered` produced to `tasks.evaluation` -> the evaluator agent (a worker
running only the evaluator, on the host `--host`: Faust agents and a table, or the shared
consume-decide-produce loop; default: the host `agents.worker.HOSTS` gives it) -> `get-sli.triggered` on `tasks.get-sli` -> an instant SLI
responder (a tiny aiokafka consumer/producer in this process) -> `get-sli.finished` on `events` ->
the agent scores it against the key's history -> `evaluation.finished` on `events`, consumed here.
That is four produce -> consume hops, two of them into the agent (state read, decision, table write).

Raw baseline: the same record produced to one topic, consumed and produced again by an aiokafka echo
to a second topic, consumed here: produce -> consume -> produce -> consume, two hops, no processing.

Evaluations and round trips run one at a time (latency, not throughput) and alternate, so both see
the same broker and machine load.

Target (issue 20.3): one agent pass, the input produced -> the agent's next event consumed (the same
shape as the raw round trip: two hops, with the agent in the middle instead of the echo), within 2x
the raw round trip at p50. The summary prints each pass's ratio against it, the machine's load, and
the evaluator's state per key after this many evaluations (computed with the core, no broker). The broker: `--bootstrap`, else `TIDEGATE_KAFKA_BOOTSTRAP`, else
the local broker of deploy/local/kafka.py (started if needed and stopped afterwards if this run
started it). Every topic is created under a fresh prefix and deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tidegate.agents.evaluator.flow import EvaluatorConfig, SLOFile
from tidegate.agents.evaluator.shell import AGENT
from tidegate.agents.kernel import Position, Rejected
from tidegate.agents.worker import HOST_MODULES, HOSTS, HOSTS_ENV
from tidegate.schemas.events import KeptnEvent, task_type
from tidegate.streams.app import worker_command
from tidegate.streams.codec import KafkaRecord, decode, encode
from tidegate.streams.kafka import (
    EventPublisher,
    aiokafka_config,
    confluent_config,
    delete_topics,
    provision_topics,
)
from tidegate.streams.resources import Resource
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry, TopicSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT, STAGE, SERVICE = "bench", "staging", "carts"
INDICATORS = ("response_time_p95", "response_time_p50", "error_rate", "throughput", "cpu_usage")
# Relative criteria against the last 3 passed results, so every evaluation reads and scores history.
SLO = """
spec_version: "1.0"
comparison: {compare_with: several_results, number_of_comparison_results: 3, include_result_with_score: pass}
objectives:
  - {sli: response_time_p95, weight: 2, pass: [{criteria: ["<=+10%", "<600"]}], warning: [{criteria: ["<=800"]}]}
  - {sli: response_time_p50, pass: [{criteria: ["<=+10%"]}]}
  - {sli: error_rate, key_sli: true, pass: [{criteria: ["<=0.01"]}]}
  - {sli: throughput, pass: [{criteria: [">=-20%"]}]}
  - {sli: cpu_usage}
total_score: {pass: "90%", warning: "75%"}
"""
SLI_PROVIDER = "bench"  # any name: the responder answers whatever it is asked
FINISHED = task_type("evaluation", "finished").encode()
PASS_TARGET = 2.0  # one agent pass / the raw round trip, p50 (issue 20.3)
START_TIMEOUT = 180.0
STEP_TIMEOUT = 30.0


class BenchError(RuntimeError):
    pass


def _not_a_transient_leader_error(record: logging.LogRecord) -> bool:
    # A partition of a topic created a moment ago can still answer NotLeaderForPartition on the
    # broker itself; aiokafka logs that as an error and retries. Everything else is shown.
    return not (record.getMessage().startswith("Failed fetch offsets") and "NotLeaderForPartition" in record.getMessage())


# --- measuring ----------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` percentile, interpolated between the closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Latencies:
    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return percentile(self.seconds, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.seconds, 0.99)

    def line(self) -> str:
        ms = [s * 1000 for s in self.seconds]
        return (f"p50 {self.p50 * 1000:7.2f} ms   p99 {self.p99 * 1000:7.2f} ms   "
                f"mean {statistics.fmean(ms):7.2f} ms   min {min(ms):6.2f} ms   n={len(ms)}")


class Waiter:
    """Consumes topics from their current end; `expect(tag)` returns a future resolved with the
    arrival time (perf_counter) of the first record whose tag (from `tag_of`) matches."""

    def __init__(self, settings: Settings, topics: list[str], tag_of: TagOf) -> None:
        self.consumer = AIOKafkaConsumer(**aiokafka_config(settings), enable_auto_commit=False)
        self.partitions = settings.partitions
        self.topics = topics
        self.tag_of = tag_of
        self.pending: dict[bytes, asyncio.Future[tuple[float, KafkaRecord]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await assign_at_end(self.consumer, self.topics, self.partitions)
        self._task = asyncio.create_task(self._run())

    def expect(self, tag: bytes) -> asyncio.Future[tuple[float, KafkaRecord]]:
        future: asyncio.Future[tuple[float, KafkaRecord]] = asyncio.get_running_loop().create_future()
        self.pending[tag] = future
        return future

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=1000)
            arrived = time.perf_counter()
            for records in batch.values():
                for record in records:
                    headers = tuple(record.headers or ())
                    tag = self.tag_of(headers)
                    future = self.pending.pop(tag, None) if tag is not None else None
                    if future is not None and not future.done():
                        future.set_result((arrived, KafkaRecord(record.key, record.value, headers)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


class TagOf:
    """Which record a waiter is waiting for, read from headers only (no decoding on the clock)."""

    def __init__(self, header: str, only_type: bytes | None = None) -> None:
        self.header = header
        self.only_type = only_type

    def __call__(self, headers: tuple[tuple[str, bytes], ...]) -> bytes | None:
        values = dict(headers)
        if self.only_type is not None and values.get("ce_type") != self.only_type:
            return None
        return values.get(self.header)


async def assign_at_end(consumer: AIOKafkaConsumer, topics: list[str], partitions: int) -> None:
    """Read every partition of `topics` (created by this run with `partitions` each) from their current end."""
    await consumer.start()
    assigned = [TopicPartition(topic, p) for topic in topics for p in range(partitions)]
    consumer.assign(assigned)
    await consumer.seek_to_end(*assigned)
    for tp in assigned:  # resolve the positions now, before anything is produced
        await consumer.position(tp)


def wait_for_leaders(settings: Settings, topics: list[str], timeout: float = 60.0) -> None:
    """Block until every partition of `topics` has a leader: a new topic is visible in the metadata a
    moment before its leaders are elected, and clients started in between log errors and retry."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(confluent_config(settings))
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=10).topics
        waiting = [name for name in topics
                   if name not in metadata or any(p.leader < 0 for p in metadata[name].partitions.values())]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"topics {', '.join(waiting)} have partitions without a leader after {timeout:.0f} s")
        time.sleep(0.1)


# --- the agent's surroundings -----------------------------------------------------------------------


class SliResponder:
    """Answers every `get-sli.triggered` at once with a value for each requested indicator."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer) -> None:
        self.registry = TopicRegistry.from_settings(settings)
        self.consumer = AIOKafkaConsumer(**aiokafka_config(settings), enable_auto_commit=False)
        self.partitions = settings.partitions
        self.producer = producer
        self.answered = 0
        # keptnContext -> (request consumed, answer being produced), perf_counter seconds
        self.times: dict[str, tuple[float, float]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await assign_at_end(self.consumer, [self.registry.task("get-sli")], self.partitions)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=1000)
            arrived = time.perf_counter()
            for records in batch.values():
                for record in records:
                    await self._answer(decode(record.value, record.headers), arrived)

    @staticmethod
    def answer_to(request: KeptnEvent, number: int) -> KeptnEvent:
        """The `number`th answer: healthy values that vary a little, so the gate passes on its relative
        criteria too."""
        block = request.data.get("get-sli") or {}
        values = [{"metric": name, "value": 0.0 if name == "error_rate" else 100.0 + number % 7, "success": True}
                  for name in block.get("indicators", [])]
        return KeptnEvent(
            type=task_type("get-sli", "finished"),
            source="bench-sli-responder",
            shkeptncontext=request.shkeptncontext,
            triggeredid=request.id,
            data={**{k: request.data[k] for k in ("project", "stage", "service")},
                  "status": "succeeded", "result": "pass", "message": "",
                  "get-sli": {"start": block.get("start"), "end": block.get("end"), "indicatorValues": values}},
        )

    async def _answer(self, request: KeptnEvent, arrived: float) -> None:
        record = encode(self.answer_to(request, self.answered))
        self.times[request.shkeptncontext or ""] = (arrived, time.perf_counter())
        await self.producer.send_and_wait(self.registry.events, value=record.value, key=record.key,
                                          headers=list(record.headers))
        self.answered += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


class Echo:
    """The raw baseline's middle: every record of topic A is produced again, unchanged, to topic B."""

    def __init__(self, settings: Settings, producer: AIOKafkaProducer, source: str, target: str) -> None:
        self.consumer = AIOKafkaConsumer(**aiokafka_config(settings), enable_auto_commit=False)
        self.partitions = settings.partitions
        self.producer = producer
        self.source, self.target = source, target
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await assign_at_end(self.consumer, [self.source], self.partitions)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    await self.producer.send_and_wait(self.target, value=record.value, key=record.key,
                                                      headers=list(record.headers or ()))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


def trigger() -> KeptnEvent:
    return KeptnEvent(
        type=task_type("evaluation", "triggered"),
        source="bench",
        shkeptncontext=str(uuid.uuid4()),
        data={"project": PROJECT, "stage": STAGE, "service": SERVICE, "evaluation": {"timeframe": "5m"}},
    )


def publish_files(settings: Settings) -> None:
    registry = TopicRegistry.from_settings(settings)
    with EventPublisher(settings, log_level=4) as publisher:  # librdkafka: warnings and worse only
        for path, content in (("slo.yaml", SLO), (".tidegate/sli-provider", SLI_PROVIDER)):
            key, value = Resource.new(PROJECT, path, content.encode()).to_record()
            publisher.publish_record(registry.resources, KafkaRecord(key=key, value=value), what=path)


@contextlib.contextmanager
def evaluator_worker(settings: Settings, log_file: Path, host: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, **settings.as_env(), "TIDEGATE_AGENTS": "evaluator", "PYTHONPATH": str(REPO_ROOT),
           HOSTS_ENV: f"evaluator={host}"}
    with open(log_file, "wb") as log:
        process = subprocess.Popen(worker_command("tidegate.agents.main:app", settings, log_level="warn"), cwd=REPO_ROOT,
                                   env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[tuple[str, str]]:
    """(bootstrap, how it was found)."""
    given = bootstrap or os.environ.get("TIDEGATE_KAFKA_BOOTSTRAP")
    if given:
        yield given, "given"
        return
    from deploy.local.kafka import kafka_session

    with kafka_session() as local:
        yield local, "local broker (deploy/local/kafka.py)"


# --- the run ------------------------------------------------------------------------------------------


@dataclass
class Run:
    settings: Settings
    worker: subprocess.Popen[bytes]
    log_file: Path
    producer: AIOKafkaProducer
    finished: Waiter
    raw_back: Waiter
    raw_out: str
    responder: SliResponder
    agent: Latencies = field(default_factory=lambda: Latencies("agent"))
    first_pass: Latencies = field(default_factory=lambda: Latencies("trigger -> get-sli"))
    second_pass: Latencies = field(default_factory=lambda: Latencies("get-sli.finished -> evaluation.finished"))
    raw: Latencies = field(default_factory=lambda: Latencies("raw"))
    verdicts: dict[str, int] = field(default_factory=dict)

    def _worker_alive(self) -> None:
        if self.worker.poll() is not None:
            tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-30:])
            raise BenchError(f"the evaluator worker exited with {self.worker.returncode}:\n{tail}")

    async def evaluation(self, timeout: float) -> tuple[float, float, float]:
        """(whole, first agent pass, second agent pass) in seconds."""
        event = trigger()
        record = encode(event)
        arrival = self.finished.expect(event.id.encode())
        started = time.perf_counter()
        await self.producer.send_and_wait(TopicRegistry.from_settings(self.settings).task("evaluation"),
                                          value=record.value, key=record.key, headers=list(record.headers))
        deadline = time.monotonic() + timeout
        while not arrival.done():
            self._worker_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"no evaluation.finished within {timeout:.0f} s; worker log: {self.log_file}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(arrival), 1.0)
        arrived, answer = arrival.result()
        finished = decode(answer.value, answer.headers)  # checked after the clock stopped
        if finished.data.get("status") != "succeeded":
            raise BenchError(f"the evaluation did not succeed: {finished.data.get('message')}")
        verdict = str(finished.data.get("result"))
        self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1
        request_consumed, answer_produced = self.responder.times.pop(event.shkeptncontext or "")
        return arrived - started, request_consumed - started, arrived - answer_produced

    async def round_trip(self) -> float:
        record = encode(trigger())
        tag = str(uuid.uuid4()).encode()
        headers = [*record.headers, ("bench_id", tag)]
        arrival = self.raw_back.expect(tag)
        started = time.perf_counter()
        await self.producer.send_and_wait(self.raw_out, value=record.value, key=record.key, headers=headers)
        arrived, _ = await asyncio.wait_for(arrival, STEP_TIMEOUT)
        return arrived - started


@contextlib.asynccontextmanager
async def started(*parts: SliResponder | Echo | Waiter) -> AsyncIterator[None]:
    running: list[SliResponder | Echo | Waiter] = []
    try:
        for part in parts:
            await part.start()
            running.append(part)
        yield
    finally:
        for part in reversed(running):
            await part.stop()


async def measure(settings: Settings, worker: subprocess.Popen[bytes], log_file: Path, evaluations: int,
                  warmup: int) -> Run:
    registry = TopicRegistry.from_settings(settings)
    raw_out, raw_back = f"{settings.topic_prefix}raw.out", f"{settings.topic_prefix}raw.back"
    producer = AIOKafkaProducer(**aiokafka_config(settings), enable_idempotence=True)
    await producer.start()
    try:
        run = Run(settings, worker, log_file, producer,
                  finished=Waiter(settings, [registry.events], TagOf("ce_triggeredid", FINISHED)),
                  raw_back=Waiter(settings, [raw_back], TagOf("bench_id")), raw_out=raw_out,
                  responder=SliResponder(settings, producer))
        async with started(run.responder, Echo(settings, producer, raw_out, raw_back),
                           run.finished, run.raw_back):
            print(f"waiting for the evaluator worker (log: {log_file}) ...", flush=True)
            await run.evaluation(START_TIMEOUT)
            for _ in range(warmup):
                await run.evaluation(STEP_TIMEOUT)
                await run.round_trip()
            run.verdicts.clear()
            for _ in range(evaluations):
                whole, first, second = await run.evaluation(STEP_TIMEOUT)
                run.agent.seconds.append(whole)
                run.first_pass.seconds.append(first)
                run.second_pass.seconds.append(second)
                run.raw.seconds.append(await run.round_trip())
        return run
    finally:
        await producer.stop()


@dataclass
class Offline:
    """The agent's own work per pass, without a broker: as the loop host runs it (`kernel.Runner`), timed
    with this thread's CPU clock (medians, microseconds), and the key's state record at the end."""

    first: dict[str, float]
    second: dict[str, float]
    state_bytes: int

    @staticmethod
    def line(parts: dict[str, float]) -> str:
        return f"{sum(parts.values()):6.0f} us  (" + ", ".join(f"{name} {value:.0f}" for name, value in parts.items()) + ")"


def offline(evaluations: int) -> Offline:
    """Run `evaluations` evaluations of this benchmark through the evaluator's runner, answering as the
    responder does, with positions as the loop host gives them."""
    from tidegate.agents.kernel import Hosted, Runner

    registry = TopicRegistry.from_settings(Settings(topic_prefix="offline."))
    slo = SLOFile(SLO, "1", f"{PROJECT}/slo.yaml")
    runner = Runner(Hosted(AGENT, EvaluatorConfig(slo_for=lambda key: slo, sli_provider_for=lambda key: SLI_PROVIDER)),
                    registry)
    codec = AGENT.state
    assert codec is not None
    tasks, events = registry.task("evaluation"), registry.events
    timings: tuple[dict[str, list[float]], dict[str, list[float]]] = ({}, {})
    clock = time.thread_time

    def one_pass(timed: dict[str, list[float]], state: Any, topic: str, record: KafkaRecord, offset: int) -> Any:
        marks = [clock()]
        read = runner.read(topic, record, None, Position(topic, 0, offset))
        marks.append(clock())
        assert read is not None and not isinstance(read, Rejected)
        step = runner.step(state, read, read.event.time, record)
        marks.append(clock())
        codec.encode(step.state)
        marks.append(clock())
        own = [out for out in step.hop if out[0] == events]  # its own events come back on `events`
        for out in own:
            assert runner.read(events, out[1], None) is None  # let pass
        marks.append(clock())
        for name, begin, end in zip(("read", "decide+records", "state record", "own events let pass"), marks, marks[1:],
                                    strict=False):
            timed.setdefault(name, []).append((end - begin) * 1e6)
        return step

    state = None
    for number in range(evaluations):
        step = one_pass(timings[0], state, tasks, encode(trigger()), number)
        state = step.state
        request = next(out[2] for out in step.hop if out[2] is not None and out[2].type == task_type("get-sli", "triggered"))
        state = one_pass(timings[1], state, events, encode(SliResponder.answer_to(request, number)), number).state
    assert state is not None
    return Offline(*({name: statistics.median(values) for name, values in timed.items()} for timed in timings),
                   state_bytes=len(codec.encode(state)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--evaluations", type=int, default=200, help="measured evaluations and round trips (200)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured ones first (10)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of events and task topics (4)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default TIDEGATE_KAFKA_BOOTSTRAP or the local broker)")
    parser.add_argument("--host", choices=sorted(HOST_MODULES), default=HOSTS["evaluator"],
                        help=f"the host that runs the evaluator (default {HOSTS['evaluator']}, as agents.worker.HOSTS)")
    args = parser.parse_args()
    logging.getLogger("aiokafka.consumer.fetcher").addFilter(_not_a_transient_leader_error)
    if args.evaluations < 1 or args.warmup < 0 or args.partitions < 1:
        parser.error("--evaluations and --partitions must be at least 1, --warmup at least 0")

    with broker(args.bootstrap) as (bootstrap, origin), tempfile.TemporaryDirectory(prefix="bench-evaluator-") as tmp:
        settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
                            partitions=args.partitions, store="memory://", data_dir=Path(tmp) / "faust",
                            web_enabled=False)
        registry = TopicRegistry.from_settings(settings)
        specs = [*registry.specs(), TopicSpec(f"{settings.topic_prefix}raw.out", args.partitions),
                 TopicSpec(f"{settings.topic_prefix}raw.back", args.partitions)]
        try:
            report = provision_topics(settings, specs)
            if not report.ok:
                raise BenchError("; ".join(str(p) for p in report.problems))
            wait_for_leaders(settings, [spec.name for spec in specs])
            publish_files(settings)
            log_file = Path(tmp) / "worker.log"
            with evaluator_worker(settings, log_file, args.host) as worker:
                run = asyncio.run(measure(settings, worker, log_file, args.evaluations, args.warmup))
        except BenchError as error:
            sys.exit(f"benchmark failed: {error}")
        finally:
            delete_topics(settings, settings.topic_prefix)

    print(f"broker: {bootstrap} ({origin}); {args.partitions} partitions; {args.warmup} warm-up rounds")
    print(f"evaluator agent on the {args.host} host: evaluation.triggered produced -> evaluation.finished consumed")
    print("  (4 hops: trigger -> agent -> get-sli -> SLI responder -> answer -> agent -> finished;")
    print(f"   {len(INDICATORS)} objectives scored against the last 3 results; verdicts {run.verdicts})")
    print(f"  {run.agent.line()}")
    print("  of which, each the same shape as the raw round trip (produce -> agent -> produce -> consume):")
    print(f"    trigger produced -> get-sli.triggered consumed:             {run.first_pass.line()}")
    print(f"    get-sli.finished produced -> evaluation.finished consumed:  {run.second_pass.line()}")
    print("raw aiokafka: produce -> consume -> produce -> consume (2 hops, same record, no processing)")
    print(f"  {run.raw.line()}")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} (1/5/15 min) at the end of the run")
    print(f"one agent pass / raw round trip (target: p50 <= {PASS_TARGET:.0f}x):")
    for label, measured in (("first pass: evaluation.triggered in -> get-sli.triggered out", run.first_pass),
                            ("second pass: get-sli.finished in -> evaluation.finished out", run.second_pass)):
        ratio = measured.p50 / run.raw.p50
        verdict = "met" if ratio <= PASS_TARGET else "NOT met"
        print(f"  {label:<62} p50 {ratio:5.2f}x   p99 {measured.p99 / run.raw.p99:5.2f}x   {verdict}")
    whole = run.agent.p50 / run.raw.p50
    print(f"whole evaluation (4 hops) / raw round trip (2 hops):   p50 {whole:5.2f}x   "
          f"p99 {run.agent.p99 / run.raw.p99:5.2f}x   (per two hops: p50 {whole / 2:4.2f}x)")
    alone = offline(args.evaluations + args.warmup + 1)
    print("the agent's own work per pass (no broker: kernel.Runner as the loop host runs it; CPU, median):")
    print(f"  first pass   {Offline.line(alone.first)}")
    print(f"  second pass  {Offline.line(alone.second)}")
    print(f"evaluator state per key after {args.evaluations + args.warmup + 1} evaluations "
          f"(history of 50): {alone.state_bytes:,} bytes")


if __name__ == "__main__":
    main()
