"""Scale test: a second worker joins while sequences run, then the first leaves; nothing is lost.

Worker A starts alone and owns every partition of `events`. Forty delivery sequences (one service
each, dev then staging) are published over half a minute while a responder answers each task after a
delay, so sequences are always mid-way. Once a quarter of them have dispatched a task, worker B starts:
the sequencer group rebalances and the partitions it takes over move with their state (B reads it back
from the state topic). Once half are done, A is stopped gracefully (SIGTERM: it commits, leaves the
group and B takes the rest). Every sequence must then finish with a pass, no task may be triggered
twice under different ids (a double execution; repeats under the same id are at-least-once and are
counted), and both workers must have owned partitions of `events` at some point.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import FaustWorker, StartWorker
from tests.support.deliveries import Ledger, delivery_trigger, sequencer_only, wait_until
from tests.support.kafka import EventCollector, publish_files
from tests.support.responder import TaskResponder
from tidegate.schemas.events import sequence_type
from tidegate.streams.kafka import AsyncEventPublisher
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

PROJECT = "scaletest"
SHIPYARD = """
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: scaletest}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}, {name: release}]
    - name: staging
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
"""
SEQUENCES = 40
# (stage, task) each sequence must trigger exactly once. staging's key differs from dev's, so the
# hop between stages usually crosses partitions, and often workers.
TASKS = [("dev", "deployment"), ("dev", "test"), ("dev", "release"), ("staging", "deployment")]
TASK_TOPICS = ("deployment", "test", "release")
FINAL_TYPE = sequence_type("staging", "delivery", "finished")
PUBLISH_INTERVAL = 0.75  # seconds between triggers: sequences start throughout the test
ANSWER_DELAY = 2.0  # seconds from a task's .triggered to its .finished: work is in flight at every rebalance
PROGRESS_TIMEOUT = 150.0
FINISH_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0  # the fixture SIGKILLs a worker that has not left by then
ASSIGNED = re.compile(r"sequencer: assigned events partitions \[([^\]]*)\]; read back (\d+) keys")


def assignments(log_file: Path) -> list[tuple[list[int], int]]:
    """The processor's assignments in a worker log: (partitions, keys read back) per rebalance."""
    text = log_file.read_text(errors="replace") if log_file.exists() else ""
    return [([int(n) for n in numbers.split(",") if n.strip()], int(keys))
            for numbers, keys in ASSIGNED.findall(text)]


def owned(log_file: Path) -> set[int]:
    return {n for partitions, _keys in assignments(log_file) for n in partitions}


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    sequencer_only(monkeypatch)


async def test_a_second_worker_takes_over_partitions_and_the_first_leaves_without_losing_a_sequence(
    tidegate_settings: Settings, faust_worker: StartWorker, worker_env: None, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], record_property: Callable[[str, object], None],
) -> None:
    settings = tidegate_settings
    registry = TopicRegistry.from_settings(settings)
    publish_files(settings, PROJECT, {"shipyard.yaml": SHIPYARD})
    triggers = [delivery_trigger(PROJECT, f"svc-{n:02d}") for n in range(SEQUENCES)]
    expected = {e.shkeptncontext for e in triggers}

    first = faust_worker("tidegate.agents.main:app", settings)
    second: FaustWorker | None = None
    collectors = [EventCollector(settings, registry.task(task)) for task in TASK_TOPICS]
    async with EventCollector(settings, registry.events) as events, TaskResponder(
        settings, delay=ANSWER_DELAY
    ) as responder:
        for collector in collectors:
            await collector.__aenter__()
        try:
            async def publish() -> None:
                async with AsyncEventPublisher(settings) as publisher:
                    for event in triggers:
                        await publisher.publish(registry.events, event)
                        await asyncio.sleep(PUBLISH_INTERVAL)

            publishing = asyncio.create_task(publish())

            def dispatched() -> set[str]:
                return {e.shkeptncontext or "" for c in collectors for e in c.events
                        if e.type.endswith(".triggered")} & expected

            def done() -> set[str]:
                return {e.shkeptncontext or "" for e in events.events if e.type == FINAL_TYPE} & expected

            await wait_until(lambda: len(dispatched()) >= SEQUENCES // 4, PROGRESS_TIMEOUT,
                             "a quarter of the sequences to dispatch a task", first)
            # B gets its own data directory: two workers of one app on one host.
            second = faust_worker("tidegate.agents.main:app", settings.model_copy(update={"data_dir": tmp_path / "faust-b"}))
            # A is stopped only once B owns partitions (the handover under test) and half are done.
            await wait_until(lambda: bool(owned(second.log_file)), PROGRESS_TIMEOUT,
                             "worker B to be assigned partitions of events", first, second)
            await wait_until(lambda: len(done()) >= SEQUENCES // 2, PROGRESS_TIMEOUT,
                             "half of the sequences to finish", first, second)
            done_at_stop = len(done())
            in_flight_at_stop = len(dispatched() - done())
            # The preconditions of the test itself: A leaves while work is still running.
            assert done_at_stop < SEQUENCES, "every sequence finished before worker A was stopped"
            assert in_flight_at_stop > 0, "no sequence was in flight when worker A was stopped"
            owned_by_a_before_stop = owned(first.log_file)
            returncode = await asyncio.to_thread(first.stop, STOP_TIMEOUT)
            assert returncode != -signal.SIGKILL, (
                f"worker A did not leave within {STOP_TIMEOUT:.0f} s of SIGTERM:\n{first.log_tail()}")
            assert returncode == 0, f"worker A exited with {returncode} on SIGTERM:\n{first.log_tail()}"

            await publishing
            await wait_until(lambda: len(done()) == SEQUENCES, FINISH_TIMEOUT,
                             f"all {SEQUENCES} sequences to finish (done: {len(done())})", second)
            second.assert_running()
        finally:
            for collector in collectors:
                await collector.__aexit__(None, None, None)
        answered = len(responder.seen)

    # Both workers owned partitions of events; after A left, B owned every one.
    assert second is not None
    assert owned_by_a_before_stop, f"worker A was never assigned partitions:\n{first.log_tail()}"
    assert owned(second.log_file) == set(range(settings.partitions)), assignments(second.log_file)
    read_back_by_b = sum(keys for _partitions, keys in assignments(second.log_file))

    ledger = Ledger.read(events.events, (e for c in collectors for e in c.events), expected,
                         lambda event: event.type == FINAL_TYPE)
    # Every sequence finished with a pass, under one id; each of its tasks was triggered under one id.
    ledger.assert_finished_once(expected)
    for finals in ledger.finals.values():
        assert all((e.data["result"], e.data["status"]) == ("pass", "succeeded") for e in finals), finals
    ledger.assert_no_task_twice()
    for context in expected:
        assert ledger.tasks_of(context) == sorted(TASKS), context

    # At-least-once repeats under the same id are allowed: count and report them.
    per_task = Counter(task for _c, _s, task in ledger.triggered)
    record_property("repeated_task_triggers", ledger.repeated_tasks)
    record_property("repeated_sequence_finished", ledger.repeated_finals)
    with capsys.disabled():
        print(
            f"\n[scale test] {SEQUENCES} sequences, {len(ledger.triggered)} tasks triggered {dict(per_task)} "
            f"({ledger.task_records} task records: {ledger.repeated_tasks} repeated under the same id), "
            f"{ledger.repeated_finals} "
            f"repeated .finished under the same id; A owned {sorted(owned_by_a_before_stop)} "
            f"(assignments {assignments(first.log_file)}), B's assignments {assignments(second.log_file)} "
            f"({read_back_by_b} keys read back in all); {done_at_stop} done and {in_flight_at_stop} in flight "
            f"when A was stopped; {answered} task records answered by the responder"
        )
