"""Repeated kill -9s during a run: workers, a connector and the broker; nothing lost, stuck or doubled.

The test starts a broker of its own (deploy/local/kafka.py `kafka_cluster(1)`, so killing it touches
no other test), two workers sharing the group (the sequencer on the loop host, the approver on the
Faust host), the real command connector for `deployment` (a program that records its run and takes
a moment, so kills find programs running and tasks queued) and a responder playing the connectors of
`test` and `release` (as test_sequencer_crash.py does). While deliveries are triggered one after the
other, it kills in turn (SIGKILL each time): a worker, the connector, the broker, the other worker,
the connector, the broker; each process is started again at once (the broker through the launcher),
and each fault waits until more deliveries have finished since the last one. A worker that exits on its
own after a broker kill is started again (as its Deployment would) and reported; any other exit fails.

Invariants, as in the external fault-injection run of issue 17:
- nothing lost: every delivery finishes (once, under one id), with a pass unless its deployment was
  reported lost by the killed connector;
- nothing stuck: all of them finish while the processes keep running;
- nothing doubled: no task is triggered twice under different ids, and no deployment program runs
  twice; a task whose program was running at the connector's kill is reported lost (its program ran
  once, before the kill), never run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from deploy.local.kafka import KafkaCluster, kafka_cluster
from tests.conftest import StartWorker
from tests.integration.test_connector_runtime import read_runs, start_connector
from tests.support.deliveries import Ledger, delivery_trigger, sequencer_only, wait_until
from tests.support.kafka import EventCollector, publish_files
from tests.support.responder import TaskResponder
from tidegate.schemas.events import KeptnEvent, sequence_type
from tidegate.streams.kafka import AsyncEventPublisher, provision_topics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PROJECT = "faulttest"
SHIPYARD = """
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: faulttest}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}, {name: release}]
"""
DELIVERIES = 30
TASKS = [("dev", "deployment"), ("dev", "test"), ("dev", "release")]
TASK_TOPICS = ("deployment", "test", "release")
FINAL_TYPE = sequence_type("dev", "delivery", "finished")
PUBLISH_INTERVAL = 1.0  # seconds between triggers: deliveries start throughout the faults
PROGRAM_SECONDS = 1.5  # how long a deployment program runs: a connector kill finds some running
ANSWER_DELAY = 0.5  # seconds from a test/release .triggered to its .finished
FAULTS = ("worker", "connector", "broker", "worker", "connector", "broker")
PROGRESS = 2  # deliveries that must finish between two faults (the run recovered from the last one)
PROGRESS_TIMEOUT = 150.0
FINISH_TIMEOUT = 240.0
LOST = "task lost: the command connector stopped while running it; it may have partly run"

# Records its run (pid and the task's triggered id), then works for a moment.
PROGRAM = """
import os, sys, time
with open(sys.argv[1], "a") as runs:
    runs.write(f"{os.getpid()} {os.environ['TIDEGATE_TRIGGERED_ID']}\\n")
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KafkaCluster]:
    with kafka_cluster(1, home=tmp_path / "kafka") as started:
        yield started


@pytest.fixture
def fault_settings(broker: KafkaCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    sequencer_only(monkeypatch)
    settings = Settings(kafka_bootstrap=broker.bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}.", partitions=4,
                        store="memory://", data_dir=tmp_path / "faust", web_enabled=False)
    report = provision_topics(settings, TopicRegistry.from_settings(settings).specs())
    assert report.ok, report.problems
    return settings


class Processes:
    """The workers and the connector of the run; each can be killed -9 and replaced."""

    def __init__(self, settings: Settings, start_worker: StartWorker, tmp_path: Path) -> None:
        self.settings = settings
        self._start_worker = start_worker
        self.connector_log = tmp_path / "connector.log"
        self.workers = [start_worker("tidegate.agents.main:app", settings) for _ in range(2)]
        self.connector = self._start_connector()
        self.next_worker = 0
        self.broker_killed = False
        self.exits: list[str] = []  # workers that exited on their own after a broker kill (their last lines)

    def _start_connector(self) -> subprocess.Popen[bytes]:
        return start_connector(self.settings, self.connector_log, "--concurrency", "2")

    def kill_worker(self) -> None:
        index, self.next_worker = self.next_worker, 1 - self.next_worker
        victim = self.workers[index]
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(30)
        self.workers[index] = self._start_worker("tidegate.agents.main:app", self.settings)

    def kill_connector(self) -> None:
        self.connector.send_signal(signal.SIGKILL)
        self.connector.wait(30)
        self.connector = self._start_connector()

    def assert_running(self) -> None:
        for index, worker in enumerate(self.workers):
            if worker.process.poll() is not None and self.broker_killed:
                # A worker that exits after the broker came back is started again, as its Deployment would
                # (found by this test: faust-streaming can end the worker when the broker is gone while it
                # creates a topic during a rebalance, NodeNotReadyError); each exit is counted and reported.
                errors = [line for line in worker.log_tail(400).splitlines() if "Error" in line]
                self.exits.append(errors[-1].strip() if errors else f"exit status {worker.process.returncode}")
                self.workers[index] = self._start_worker("tidegate.agents.main:app", self.settings)
                continue
            worker.assert_running()
        if self.connector.poll() is not None:
            tail = "\n".join(self.connector_log.read_text(errors="replace").splitlines()[-40:])
            raise AssertionError(f"the command connector exited with {self.connector.returncode}:\n{tail}")

    def stop(self) -> None:
        self.connector.kill()
        self.connector.wait(30)


async def test_workers_a_connector_and_the_broker_killed_repeatedly_lose_stick_and_double_nothing(
    broker: KafkaCluster, fault_settings: Settings, faust_worker: StartWorker, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], record_property: Callable[[str, object], None],
) -> None:
    settings = fault_settings
    began = time.monotonic()
    registry = TopicRegistry.from_settings(settings)
    marker, program = tmp_path / "runs", tmp_path / "deploy.py"
    program.write_text(PROGRAM)
    config = yaml.safe_dump({"actions": [{
        "name": "deployment",
        "events": [{"name": "sh.keptn.event.deployment.triggered"}],
        "tasks": [{"name": "deploy", "cmd": [sys.executable, str(program), str(marker), str(PROGRAM_SECONDS)]}],
    }]})
    publish_files(settings, PROJECT, {"shipyard.yaml": SHIPYARD, "command/config.yaml": config})
    triggers = [delivery_trigger(PROJECT, f"svc-{n:03d}") for n in range(DELIVERIES)]
    expected = {e.shkeptncontext for e in triggers}
    node = broker.layouts[0].node_id
    faults: list[str] = []

    processes = Processes(settings, faust_worker, tmp_path)
    collectors = [EventCollector(settings, registry.task(task)) for task in TASK_TOPICS]
    try:
        async with EventCollector(settings, registry.events) as events, TaskResponder(
            settings, ["deployment=silent"], delay=ANSWER_DELAY
        ) as responder:
            for collector in collectors:
                await collector.__aenter__()
            try:
                async def publish() -> None:
                    async with AsyncEventPublisher(settings) as publisher:
                        for event in triggers:
                            await publisher.publish(registry.events, event)
                            await asyncio.sleep(PUBLISH_INTERVAL)

                def done() -> set[str]:
                    return {e.shkeptncontext or "" for e in events.events if e.type == FINAL_TYPE} & expected

                publishing = asyncio.create_task(publish())
                for fault in FAULTS:
                    before = len(done())
                    await wait_until(lambda before=before: len(done()) >= min(DELIVERIES, before + PROGRESS),
                                     PROGRESS_TIMEOUT, f"{PROGRESS} more deliveries to finish before the {fault} kill",
                                     processes)
                    faults.append(f"{fault} with {len(done())} done")
                    if fault == "worker":
                        processes.kill_worker()
                    elif fault == "connector":
                        processes.kill_connector()
                    else:
                        await publishing  # every trigger is out before the broker dies: the CI is not under test
                        processes.broker_killed = True
                        await asyncio.to_thread(broker.kill, node)
                        await asyncio.to_thread(broker.start, node)
                await publishing
                await wait_until(lambda: len(done()) == DELIVERIES, FINISH_TIMEOUT,
                                 f"all {DELIVERIES} deliveries to finish", processes)
                processes.assert_running()
            finally:
                for collector in collectors:
                    await collector.__aexit__(None, None, None)
            answered = len(responder.seen)
    finally:
        processes.stop()
        for pid, _ in read_runs(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    # Deployment replies: which tasks the killed connector reported lost. The first reply of a task is
    # the one the sequencer acts on: a connector killed after sending a task's `.finished` but before
    # recording it reports the task lost after its restart, under the same id, and that repeat is dropped.
    first_reply: dict[str, KeptnEvent] = {}
    for event in events.events:
        if event.type.endswith(".deployment.finished"):
            first_reply.setdefault(event.triggeredid or "", event)
    lost = {task_id for task_id, reply in first_reply.items() if reply.data.get("message") == LOST}

    ledger = Ledger.read(events.events, (e for c in collectors for e in c.events), expected,
                         lambda event: event.type == FINAL_TYPE)
    # Each task of each delivery was triggered under exactly one id (tasks after a lost deployment: none).
    ledger.assert_no_task_twice()
    deployment_of = {context: next(iter(ids)) for (context, _stage, task), ids in ledger.triggered.items()
                     if task == "deployment"}
    lost_contexts = {context for context, task_id in deployment_of.items() if task_id in lost}
    for context in expected:
        assert ledger.tasks_of(context) == sorted(TASKS[:1] if context in lost_contexts else TASKS), context

    # Every delivery finished under one id: a pass, or an error where its deployment was lost.
    ledger.assert_finished_once(expected)
    for context, finals in ledger.finals.items():
        for event in finals:
            if context in lost_contexts:
                assert event.data["result"] != "pass", event.data
            else:
                assert (event.data["result"], event.data["status"]) == ("pass", "succeeded"), event.data

    # No deployment program ran twice; every deployment ran (a lost one before the kill that lost it).
    runs: dict[str, int] = defaultdict(int)
    for _, triggered_id in read_runs(marker):
        runs[triggered_id] += 1
    assert {task_id for task_id, count in runs.items() if count > 1} == set(), f"programs run twice: {dict(runs)}"
    assert set(runs) == set(deployment_of.values()), "a deployment whose program never ran"

    record_property("repeated_task_triggers", ledger.repeated_tasks)
    record_property("lost_tasks", len(lost))
    record_property("worker_exits", len(processes.exits))
    with capsys.disabled():
        print(
            f"\n[fault test] {DELIVERIES} deliveries, kill -9 of: {'; '.join(faults)}; {len(lost)} deployments "
            f"reported lost by the killed connector; {len(ledger.triggered)} tasks triggered ({ledger.repeated_tasks} "
            f"repeated under the same id), {ledger.repeated_finals} repeated .finished; {answered} task records "
            f"answered by the responder; {len(processes.exits)} worker exits after a broker kill, started again; "
            f"{time.monotonic() - began:.0f} s in the test body, the broker started before"
        )
        for exit_lines in processes.exits:
            print(f"[fault test] a worker exited: {exit_lines}")
