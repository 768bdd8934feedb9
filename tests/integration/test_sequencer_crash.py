"""Crash test: `kill -9` the worker while 50 sequences are in flight, restart it, and check that nothing
was lost and nothing was done twice under different ids.

The worker is killed without warning (SIGKILL: no flush, no commit, no leaving the group) while the
sequences are between tasks, some replies are still on their way (the responder answers after a
delay, independently of the worker) and five `triggeredAfter` timers are pending. A new worker with
the same settings (same prefix, same groups) reads the sequencer's state back from its state topic and
re-reads every uncommitted input. At-least-once delivery may then re-send outputs, but only under
the ids they had the first time (ids derive from the input): such repeats are counted and reported,
never hidden; a task triggered twice under *different* ids would be a real double execution.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Awaitable
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.support.deliveries import Ledger, delivery_trigger, sequencer_only
from tests.support.kafka import EventCollector, publish_files
from tests.support.responder import TaskResponder
from tidegate.schemas.events import KeptnEvent, sequence_type
from tidegate.streams.kafka import AsyncEventPublisher, confluent_config
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PROJECT = "crashtest"
SHIPYARD = """
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: crashtest}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}, {name: release}]
        - name: delayed
          tasks:
            - {name: deployment, triggeredAfter: "15s"}
            - {name: release}
    - name: staging
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}, {name: release}]
"""
DELIVERIES = 45  # dev then staging: 5 tasks each
DELAYED = 5  # a deployment 15 s after the trigger, then a release: pending at kill time
# (stage, task) each sequence must trigger exactly once, in this order.
DELIVERY_TASKS = [("dev", "deployment"), ("dev", "test"), ("dev", "release"), ("staging", "deployment"),
                  ("staging", "release")]
DELAYED_TASKS = [("dev", "deployment"), ("dev", "release")]
TASK_TOPICS = ("deployment", "test", "release")
ANSWER_DELAY = 1.0  # seconds from a task's .triggered to its .finished: keeps every sequence mid-way
PROGRESS_TIMEOUT = 90.0
FINISH_TIMEOUT = 150.0


def audits(events: list[KeptnEvent], kind: str) -> list[KeptnEvent]:
    return [e for e in events if e.type == f"sh.tidegate.audit.sequencer.{kind}"]


async def explained(waiting: Awaitable[object], audit: EventCollector, responder: TaskResponder,
                    settings: Settings, worker) -> None:  # type: ignore[no-untyped-def]
    """Wait; on a timeout, say how far the sequencer, the responder and the worker's offsets got."""
    try:
        await waiting
    except AssertionError as error:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGUSR1)  # Faust (mode) writes every task's stack to its log
        kinds = Counter(e.type.rsplit(".", 1)[-1] for e in audit.events if e.type.startswith("sh.tidegate.audit."))
        answered = Counter(e.type.split(".")[3] for e in responder.seen)
        offsets = await asyncio.to_thread(committed_and_end_offsets, settings)
        raise AssertionError(
            f"{error}\nsequencer transitions so far: {dict(kinds)}\ntasks the responder received: {dict(answered)}"
            f"\nworker's committed / end offsets of events per partition: {offsets}"
        ) from None


def committed_and_end_offsets(settings: Settings) -> list[tuple[int, int]]:
    """The worker group's committed offset (negative: none) and the end offset of each partition of events."""
    registry = TopicRegistry.from_settings(settings)
    consumer = Consumer({**confluent_config(settings), "group.id": registry.app_id("sequencer"),
                         "enable.auto.commit": False})
    try:
        partitions = [TopicPartition(registry.events, n) for n in range(settings.partitions)]
        committed = consumer.committed(partitions, timeout=10)
        return [(tp.offset, consumer.get_watermark_offsets(tp, timeout=10)[1]) for tp in committed]
    finally:
        consumer.close()


async def wait_for_a_commit(settings: Settings, worker) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + PROGRESS_TIMEOUT
    while not any(committed > 0 for committed, _end in await asyncio.to_thread(committed_and_end_offsets, settings)):
        worker.assert_running()
        if time.monotonic() > deadline:
            raise AssertionError(f"the worker committed no offset of events within {PROGRESS_TIMEOUT:.0f} s")
        await asyncio.sleep(0.5)


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    sequencer_only(monkeypatch)


# The sequencer's state lives in memory and in its compacted state topic (streams.kafka.loop);
# a restarted worker reads it back. early: killed as soon as the run is mid-way (the processor may or
# may not have committed yet: it commits every second); late: killed only once the sequencer group has
# committed offsets, so the new worker resumes from them and from the state written before them.
@pytest.mark.parametrize("kill", ["early", "late"])
async def test_a_killed_worker_loses_no_sequence_and_triggers_no_task_twice(
    kill: str, tidegate_settings: Settings, faust_worker, worker_env: None,
    capsys: pytest.CaptureFixture[str], record_property,
) -> None:  # type: ignore[no-untyped-def]
    settings = tidegate_settings
    registry = TopicRegistry.from_settings(settings)
    publish_files(settings, PROJECT, {"shipyard.yaml": SHIPYARD})
    delayed = [delivery_trigger(PROJECT, f"timer-{n:02d}", sequence="delayed") for n in range(DELAYED)]
    deliveries = [delivery_trigger(PROJECT, f"svc-{n:02d}") for n in range(DELIVERIES)]
    expected = {e.shkeptncontext: (DELAYED_TASKS, "dev", "delayed") for e in delayed}
    expected |= {e.shkeptncontext: (DELIVERY_TASKS, "staging", "delivery") for e in deliveries}

    first = faust_worker("tidegate.agents.main:app", settings)
    collectors = [EventCollector(settings, registry.task(task)) for task in TASK_TOPICS]
    async with EventCollector(settings, registry.events) as events, EventCollector(
        settings, registry.audit
    ) as audit, TaskResponder(settings, delay=ANSWER_DELAY) as responder:
        for collector in collectors:
            await collector.__aenter__()
        try:
            async with AsyncEventPublisher(settings) as publisher:
                for event in [*delayed, *deliveries]:
                    await publisher.publish(registry.events, event)

            # Kill once every timer is pending and the deliveries are spread over their tasks.
            def mid_way(_: list[KeptnEvent]) -> bool:
                first.assert_running()
                if len(audits(audit.events, "task_delayed")) < DELAYED:
                    return False
                return len({e.shkeptncontext for e in collectors[1].events}) >= DELIVERIES // 2

            await explained(audit.wait_for(mid_way, PROGRESS_TIMEOUT, "the timers and half of the test tasks"),
                            audit, responder, settings, first)
            if kill == "late":
                await wait_for_a_commit(settings, first)
            first.process.send_signal(signal.SIGKILL)
            returncode = await asyncio.to_thread(first.process.wait, 30)
            killed_at = datetime.now(UTC)
            assert returncode == -signal.SIGKILL, f"the worker was to be killed, it exited with {returncode}"
            finished_before_kill = {e.shkeptncontext for e in events.events if e.type.endswith(".finished")
                                    and e.type.startswith("sh.keptn.event.staging.")}
            pending_timers = [e for e in audits(audit.events, "task_delayed")
                              if datetime.fromisoformat(e.data["detail"]["due_at"]) > killed_at]
            # The preconditions of the test itself: it must kill mid-way, with timers still to fire.
            assert len(finished_before_kill) < DELIVERIES // 2, "the kill came too late to interrupt anything"
            assert pending_timers, "no triggeredAfter timer was pending when the worker was killed"

            second = faust_worker("tidegate.agents.main:app", settings)

            def all_finished(evs: list[KeptnEvent]) -> bool:
                second.assert_running()
                done = {e.shkeptncontext for e in evs
                        if e.shkeptncontext in expected
                        and e.type == sequence_type(expected[e.shkeptncontext][1], expected[e.shkeptncontext][2],
                                                    "finished")}
                return len(done) == len(expected)

            await explained(events.wait_for(all_finished, FINISH_TIMEOUT, f"all {len(expected)} sequences to finish"),
                            audit, responder, settings, second)
        finally:
            for collector in collectors:
                await collector.__aexit__(None, None, None)
        answered = len(responder.seen)

    def is_final(event: KeptnEvent) -> bool:
        _tasks, stage, sequence = expected[event.shkeptncontext or ""]
        return event.type == sequence_type(stage, sequence, "finished")

    ledger = Ledger.read(events.events, (e for c in collectors for e in c.events), expected, is_final)
    # Every sequence finished once, with a pass: nothing was lost or failed by the crash.
    ledger.assert_finished_once(expected)
    for finals in ledger.finals.values():
        assert all((e.data["result"], e.data["status"]) == ("pass", "succeeded") for e in finals), finals
    # Each task of each sequence was triggered under one id, in the shipyard's order.
    ledger.assert_no_task_twice()
    for context, (tasks, _stage, _sequence) in expected.items():
        assert ledger.tasks_of(context) == sorted(tasks), (context, ledger.order[context])
    triggered, by_id = ledger.triggered, ledger.by_id
    # Within a stage the tasks ran in the shipyard's order (one topic per task, so compare times).
    for (context, stage, task), ids in triggered.items():
        (task_id,) = ids
        later = [t for s, t in expected[context][0] if s == stage]
        index = later.index(task)
        if index:
            previous = by_id[next(iter(triggered[(context, stage, later[index - 1])]))]
            assert previous.time <= by_id[task_id].time, (context, stage, later[index - 1], task)

    # No delayed task was sent before its time, restart or not.
    due = {e.shkeptncontext: datetime.fromisoformat(e.data["detail"]["due_at"])
           for e in audits(audit.events, "task_delayed")}
    for event in collectors[0].events:
        if event.shkeptncontext in due and event.type.endswith(".triggered"):
            assert event.time >= due[event.shkeptncontext], (event.time, due[event.shkeptncontext])

    # At-least-once repeats (same id) are expected after a crash: count and report them. The sequencer
    # copies every input it consumes to the audit topic before deciding, so repeated copies there are
    # the inputs the restarted worker read again.
    repeated_tasks, repeated_finals = ledger.repeated_tasks, ledger.repeated_finals
    copies = [e.id for e in audit.events if not e.type.startswith("sh.tidegate.audit.")]
    replayed_inputs = len(copies) - len(set(copies))
    record_property("repeated_task_triggers", repeated_tasks)
    record_property("repeated_sequence_finished", repeated_finals)
    record_property("replayed_inputs", replayed_inputs)
    with capsys.disabled():
        print(
            f"\n[crash test, killed {kill}] {len(expected)} sequences, {len(triggered)} tasks triggered "
            f"({ledger.task_records} task records: {repeated_tasks} repeated under the same id), "
            f"{repeated_finals} repeated .finished under the same id, {replayed_inputs} inputs read again "
            f"after the restart, {len(finished_before_kill)} of "
            f"{DELIVERIES} deliveries done and {len(pending_timers)} timers pending at the kill, "
            f"{answered} task records answered by the responder"
        )
