"""Recovery time after a kill -9: a worker with 10,000 keys of state on each host, killed and replaced.

    python -m benchmarks.bench_recovery [--keys 10000] [--partitions 12] [--bootstrap HOST:PORT]

State: `--keys` keys of sequencer state (each with a delivery waiting for its deployment, as the
sequencer's core leaves it after a trigger: `agents.sequencer.core.decide`) in the sequencer's state
topic, which the loop host reads back on assignment, and as many keys of remediator state (each with an
open problem) in the `remediations` table's changelog, which Faust restores. Both are produced straight
into those compacted topics, encoded by the agents' own codecs (`AGENT.state`) and partitioned by key as
the hosts write them (murmur2), so the benchmark does not wait for 20,000 real events first.

Run: a worker with the sequencer (loop host) and the remediator (Faust host) starts and reads it all
back; it is killed with SIGKILL and a new worker is started at once. Measured from the new worker's
start (its process launch): when it had read back all of the sequencer's partitions (its log lines)
and Faust had restored its tables ("Recovery complete"), and when each host handled its first new
event (a delivery trigger of a new service -> `deployment.triggered`; a `get-action.triggered` ->
the remediator's answer), and the new worker's timeline from its log lines (imports, joining the groups,
reading back, first events). The new worker runs on the same host with the same data directory, so it
claims the killed one's static-membership id (`agents.worker.claim_instance_id`) and gets its partitions
back at once, instead of after the dead member's group session (10 s, which the figures included before).

The broker: `--bootstrap`, else `TIDEGATE_KAFKA_BOOTSTRAP`, else the local broker of deploy/local/kafka.py.
Every topic is created under a fresh prefix and deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

from benchmarks.bench_evaluator import broker, wait_for_leaders
from tidegate.agents.remediator.model import ProblemRecord, RemediationState
from tidegate.agents.remediator.shell import AGENT as REMEDIATOR
from tidegate.agents.sequencer.core import decide
from tidegate.agents.sequencer.model import SequencerConfig
from tidegate.agents.sequencer.shell import AGENT as SEQUENCER
from tidegate.agents.worker import HOSTS_ENV
from tidegate.schemas.events import KeptnEvent, sequence_type, task_type
from tidegate.schemas.files import FileKind, load_text
from tidegate.schemas.keys import Key
from tidegate.streams.app import worker_command
from tidegate.streams.codec import DecodeError, KafkaRecord, decode_record
from tidegate.streams.kafka import (
    EventPublisher,
    confluent_config,
    delete_topics,
    from_confluent,
    provision_topics,
)
from tidegate.streams.kafka.loop import producer_config
from tidegate.streams.resources import Resource
from tidegate.streams.settings import Settings
from tidegate.streams.topics import SEQUENCER_STATE, TopicRegistry

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT, STAGE, SEQUENCE = "recovery", "prod", "delivery"
SHIPYARD = f"""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {{name: {PROJECT}}}
spec:
  stages:
    - name: {STAGE}
      sequences:
        - name: {SEQUENCE}
          tasks: [{{name: deployment}}, {{name: test}}, {{name: release}}]
"""
AGENTS = "sequencer,remediator"
REMEDIATIONS = ("worker", "remediations")  # the remediator's table (its AGENT.state_topic)
WAIT = 300.0  # seconds any phase may take before the run is declared failed
# The loop host's line per assignment (streams.kafka.loop `_on_assign`), and Faust's end of table recovery.
READ_BACK = re.compile(r"sequencer: assigned events partitions \[([^\]]*)\]; read back (\d+) keys in ([\d.]+) s")
FAUST_RECOVERED = "Recovery complete"
FAUST_RESTORING = "Restoring state from changelog topics"
GET_ACTION_REPLY = "sh.keptn.event.get-action."  # .started or .finished


class BenchError(RuntimeError):
    pass


def sequence_trigger(service: str) -> KeptnEvent:
    return KeptnEvent(type=sequence_type(STAGE, SEQUENCE, "triggered"), source="bench", shkeptncontext=str(uuid.uuid4()),
                      data={"project": PROJECT, "stage": STAGE, "service": service,
                            "configurationChange": {"values": {"image": f"{service}:1.0.0"}}})


def get_action_trigger(service: str) -> KeptnEvent:
    return KeptnEvent(type=task_type("get-action", "triggered"), source="bench", shkeptncontext=str(uuid.uuid4()),
                      data={"project": PROJECT, "stage": STAGE, "service": service,
                            "problem": {"problemTitle": "bench", "rootCause": "bench"}})


def fill_state(settings: Settings, keys: int) -> None:
    """`keys` keys of sequencer state and of remediator state, in the topics their hosts read back."""
    registry = TopicRegistry.from_settings(settings)
    shipyard = load_text(SHIPYARD, f"{PROJECT}/shipyard.yaml", FileKind.SHIPYARD).model
    config = SequencerConfig(shipyard_for=lambda _project: shipyard)
    now = datetime.now(UTC)
    assert SEQUENCER.state is not None and REMEDIATOR.state is not None
    failures: list[str] = []
    producer = Producer({**producer_config(settings, linger_ms=20),
                         "on_delivery": lambda error, _message: failures.append(str(error)) if error else None})
    sequencer_topic = registry.changelog(*SEQUENCER_STATE)
    remediator_topic = registry.changelog(*REMEDIATIONS)
    for number in range(keys):
        service = f"svc-{number:05d}"
        key = Key(PROJECT, STAGE, service).encode()
        state = decide(None, sequence_trigger(service), config, now).state
        assert state is not None
        _produce(producer, sequencer_topic, key, SEQUENCER.state.encode(state))
        context = str(uuid.uuid4())
        problem = ProblemRecord(keptn_context=context, identity=f"bench {service}", title="bench", opened_at=now,
                                updated_at=now, problem={"problemTitle": "bench", "rootCause": "bench"})
        remediation = RemediationState(project=PROJECT, stage=STAGE, service=service, problems=[problem],
                                       seen=[str(uuid.uuid4())])
        _produce(producer, remediator_topic, key, REMEDIATOR.state.encode(remediation))
    if producer.flush(120) or failures:
        raise BenchError(f"the state records were not all acknowledged within 120 s: {failures[:3]}")


def _produce(producer: Producer, topic: str, key: bytes, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value, key=key)
            return
        except BufferError:
            producer.poll(0.1)


def publish_shipyard(settings: Settings) -> None:
    registry = TopicRegistry.from_settings(settings)
    with EventPublisher(settings, log_level=4) as publisher:
        key, value = Resource.new(PROJECT, "shipyard.yaml", SHIPYARD.encode()).to_record()
        publisher.publish_record(registry.resources, KafkaRecord(key=key, value=value), what="shipyard.yaml")


@dataclass
class Worker:
    """A worker process whose output lines are timestamped (monotonic) as they arrive."""

    process: subprocess.Popen[bytes]
    started: float
    lines: list[tuple[float, str]] = field(default_factory=list)

    def read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip()))

    def restored_keys(self) -> tuple[float | None, int, float]:
        """(when the sequencer's read-back reached every partition, keys read back, seconds spent reading)."""
        keys, reading, seen = 0, 0.0, set()
        for at, line in list(self.lines):
            found = READ_BACK.search(line)
            if found:
                seen |= {int(n) for n in found.group(1).split(",") if n.strip()}
                keys += int(found.group(2))
                reading += float(found.group(3))
                if len(seen) >= self.partitions:
                    return at, keys, reading
        return None, keys, reading

    def faust_recovered(self) -> float | None:
        return next((at for at, line in list(self.lines) if FAUST_RECOVERED in line), None)

    def faust_reading(self) -> float:
        """Seconds from Faust's start of table recovery to its end (the reading itself, once it has joined)."""
        began = next((at for at, line in list(self.lines) if FAUST_RESTORING in line), None)
        ended = self.faust_recovered()
        return ended - began if began is not None and ended is not None else float("nan")

    def first(self, needle: str | re.Pattern[str]) -> float | None:
        """Seconds from the process launch to the first line containing `needle` (a string or a pattern)."""
        for at, line in list(self.lines):
            if (needle.search(line) if isinstance(needle, re.Pattern) else needle in line):
                return at - self.started
        return None

    def tail(self, count: int = 30) -> str:
        return "\n".join(line for _, line in self.lines[-count:])

    partitions: int = 0


@contextlib.contextmanager
def worker(settings: Settings) -> Iterator[Worker]:
    env = {**os.environ, **settings.as_env(), "TIDEGATE_AGENTS": AGENTS, HOSTS_ENV: "remediator=faust",  # each host
           "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    process = subprocess.Popen(worker_command("tidegate.agents.main:app", settings, log_level="info"), cwd=REPO_ROOT,
                               env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    running = Worker(process, started, partitions=settings.partitions)
    reader = threading.Thread(target=running.read, daemon=True)
    reader.start()
    try:
        yield running
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        reader.join(10)


class Answers:
    """Watches `events` and `tasks.deployment` from their end: when the probes' answers arrive."""

    def __init__(self, settings: Settings) -> None:
        registry = TopicRegistry.from_settings(settings)
        self.consumer = Consumer(confluent_config(settings, **{"group.id": f"bench-{uuid.uuid4().hex}",
                                                               "enable.auto.commit": False}))
        self.consumer.assign([TopicPartition(topic, n, OFFSET_END) for topic in (registry.events,
                              registry.task("deployment")) for n in range(settings.partitions)])
        self.arrived: dict[str, float] = {}  # the probe's id (context or triggered id) -> when answered
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.consumer.poll(0.1)
            if message is None or message.error() is not None:
                continue
            try:
                event = decode_record(from_confluent(message).record)
            except DecodeError:  # not a probe's answer
                continue
            now = time.monotonic()
            if event.type == task_type("deployment", "triggered") and event.shkeptncontext:
                self.arrived.setdefault(event.shkeptncontext, now)
            if event.type.startswith(GET_ACTION_REPLY) and event.triggeredid:
                self.arrived.setdefault(event.triggeredid, now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()


def wait_for(condition: object, what: str, running: Worker) -> float:
    deadline = time.monotonic() + WAIT
    while True:
        value = condition() if callable(condition) else None
        if value is not None and value is not False:
            return value if isinstance(value, float) else time.monotonic()
        if running.process.poll() is not None:
            raise BenchError(f"the worker exited with {running.process.returncode}:\n{running.tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {WAIT:.0f} s waiting for {what}:\n{running.tail()}")
        time.sleep(0.05)


@dataclass
class Figures:
    sequencer_restored: float
    sequencer_reading: float
    sequencer_keys: int
    sequencer_first: float
    faust_restored: float
    faust_reading: float
    remediator_first: float
    timeline: list[tuple[float, str]]


def probe(settings: Settings, answers: Answers, running: Worker, name: str) -> tuple[float, float]:
    """Send one event to each host; (seconds from the worker's start until the sequencer answered, ... the
    remediator answered)."""
    registry = TopicRegistry.from_settings(settings)
    trigger, action = sequence_trigger(f"new-{name}"), get_action_trigger(f"new-{name}")
    with EventPublisher(settings, log_level=4) as publisher:
        publisher.publish(registry.events, trigger)
        publisher.publish(registry.task("get-action"), action)
    assert trigger.shkeptncontext is not None
    sequencer = wait_for(lambda: answers.arrived.get(trigger.shkeptncontext or ""), "the sequencer's answer", running)
    remediator = wait_for(lambda: answers.arrived.get(action.id), "the remediator's answer", running)
    return sequencer - running.started, remediator - running.started


def timeline(settings: Settings, running: Worker, firsts: tuple[float, float]) -> list[tuple[float, str]]:
    """Where the new worker's seconds went: (seconds from its launch, what), in order; from its log lines
    (Faust's services, aiokafka's group coordinator, the loop host) and the probes' answers."""
    group = TopicRegistry.from_settings(settings).app_id("worker")
    marks: list[tuple[float | None, str]] = [
        (running.lines[0][0] - running.started if running.lines else None, "first output: Python, the imports and the app are loaded"),
        (running.first("[^Worker]: Starting..."), "Faust's worker starts its services"),
        (running.first("sequencer: joining group"), "loop (sequencer): Kafka answered, configuration read, consumer joins its group"),
        (running.first(f"Discovered coordinator 1 for group {group}"), "Faust: Kafka answered, group coordinator found"),
        (running.first(f"Joined group '{group}'"), "Faust: group joined, partitions assigned"),
        (running.first(FAUST_RESTORING), "Faust: table restore begins"),
        (running.first(FAUST_RECOVERED), "Faust: table recovery complete"),
        (running.first("[^Worker]: Ready"), "Faust: worker ready"),
        (firsts[0], "loop (sequencer): first new event handled"),
        (firsts[1], "Faust (remediator): first new event handled"),
    ]
    read_back, _keys, reading = running.restored_keys()
    if read_back is not None:
        marks += [(read_back - running.started - reading, "loop (sequencer): partitions assigned, read-back begins"),
                  (read_back - running.started, "loop (sequencer): all partitions read back")]
    return sorted((at, what) for at, what in marks if at is not None)


def measure(settings: Settings, keys: int) -> tuple[Figures, float]:
    answers = Answers(settings)
    try:
        with worker(settings) as first:
            wait_for(lambda: first.restored_keys()[0], "the first worker's read-back", first)
            wait_for(first.faust_recovered, "the first worker's table recovery", first)
            probe(settings, answers, first, "first")  # it works: now kill it
            first.process.kill()
            first.process.wait()
            killed = time.monotonic()
        with worker(settings) as second:
            # The probes go out at once: each is handled when its host has its partitions back.
            sequencer_first, remediator_first = probe(settings, answers, second, "second")
            restored_at = wait_for(lambda: second.restored_keys()[0], "the sequencer's read-back", second)
            faust_at = wait_for(second.faust_recovered, "Faust's table recovery", second)
            wait_for(lambda: second.first("[^Worker]: Ready"), "Faust's worker ready", second)  # for the timeline
            _, read_keys, reading = second.restored_keys()
            steps = timeline(settings, second, (sequencer_first, remediator_first))
            return Figures(restored_at - second.started, reading, read_keys, sequencer_first,
                           faust_at - second.started, second.faust_reading(), remediator_first,
                           steps), second.started - killed
    finally:
        answers.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=10_000, help="keys of state per agent (10000)")
    parser.add_argument("--partitions", type=int, default=12, help="partitions of events and the state topics (12)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default TIDEGATE_KAFKA_BOOTSTRAP or the local broker)")
    args = parser.parse_args()
    if args.keys < 1 or args.partitions < 1:
        parser.error("--keys and --partitions must be at least 1")

    with broker(args.bootstrap) as (bootstrap, origin), tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp:
        settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
                            partitions=args.partitions, store="memory://", data_dir=Path(tmp) / "faust",
                            web_enabled=False)
        registry = TopicRegistry.from_settings(settings)
        specs = registry.specs(tables=[SEQUENCER_STATE, REMEDIATIONS])  # the state topics too: filled first
        try:
            report = provision_topics(settings, specs)
            if not report.ok:
                raise BenchError("; ".join(str(p) for p in report.problems))
            wait_for_leaders(settings, [spec.name for spec in specs])
            publish_shipyard(settings)
            began = time.monotonic()
            fill_state(settings, args.keys)
            filled = time.monotonic() - began
            figures, gap = measure(settings, args.keys)
        except BenchError as error:
            sys.exit(f"benchmark failed: {error}")
        finally:
            delete_topics(settings, settings.topic_prefix)

    print(f"broker: {bootstrap} ({origin}); {args.partitions} partitions; {args.keys} keys of sequencer state and "
          f"{args.keys} of remediator state written in {filled:.1f} s")
    print(f"worker killed -9, the new one (the same static group member) started {gap:.2f} s later; "
          "seconds from its start:")
    print(f"  loop host (sequencer): all {args.partitions} partitions read back   {figures.sequencer_restored:6.2f} s "
          f"({figures.sequencer_keys} keys; {figures.sequencer_reading:.2f} s of it reading the state topic)")
    print(f"  loop host (sequencer): first new event handled      {figures.sequencer_first:6.2f} s")
    print(f"  Faust host (remediator table): recovery complete   {figures.faust_restored:6.2f} s "
          f"({args.keys} keys; {figures.faust_reading:.2f} s of it restoring the table)")
    print(f"  Faust host (remediator): first new event handled    {figures.remediator_first:6.2f} s")
    print("the new worker's timeline (seconds from its launch; from its log lines):")
    for at, what in figures.timeline:
        print(f"  {at:6.2f}  {what}")


if __name__ == "__main__":
    main()
