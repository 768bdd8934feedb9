"""Crash test of the approver and the remediator: `kill -9` a worker before its first commit, restart it,
nothing is skipped.

The worker runs the approver (stateless) and the remediator (its state in the worker's state topic), on
their hosts (`agents.worker.HOSTS`). The first worker never commits (`tests.support.uncommitted_worker`:
the loop's commit interval and Faust's `BROKER_COMMIT_INTERVAL` are an hour): it answers a first batch of
approvals and get-actions on every partition of `tasks.approval` and `tasks.get-action` (the get-actions
leave remediator state behind) and is killed without warning (SIGKILL) while none of its groups has a
committed offset. A second batch is published while no worker runs; then a second worker with the same
settings (same groups) starts and must read every input partition from its first record: every input of
both batches is answered, and every approval of the first batch a second time (at-least-once, under the
same ids; the remediator remembers the get-actions it answered).

Run with `TIDEGATE_AGENT_HOSTS=approver=faust,remediator=faust`, it shows faust-streaming 0.15.3's
data loss (agents.hosts.faust): the restarted worker skips records; that is why both agents run on the
loop host.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.support.kafka import EventCollector
from tidegate.schemas.events import KeptnEvent, TaskKind, task_type
from tidegate.streams.kafka import AsyncEventPublisher, confluent_config
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SERVICES = 16  # per batch and task: enough keys for every partition of both input topics
ANSWER_TIMEOUT = 120.0
APP = "tests.support.uncommitted_worker:app"
AGENTS = ("approver", "remediator")
TASKS = ("approval", "get-action")


def trigger(task: str, service: str) -> KeptnEvent:
    """An approval the approver approves automatically, or a problem the remediator has no file for
    (it answers, escalates and remembers the problem in its table)."""
    data: dict[str, object] = {"project": "crashtest", "stage": "production", "service": service}
    if task == "approval":
        data |= {"result": "pass", "approval": {"pass": "automatic", "warning": "automatic"}}
    else:
        data |= {"problem": {"problemTitle": "response_time_p95", "rootCause": "response_time_p95"}}
    return KeptnEvent(type=task_type(task, TaskKind.TRIGGERED), source="crash-test",
                      shkeptncontext=str(uuid.uuid4()), data=data)


def batch(number: int) -> list[KeptnEvent]:
    return [trigger(task, f"svc-{number}-{n:02d}") for task in TASKS for n in range(SERVICES)]


def answers(events: list[KeptnEvent]) -> Counter[str]:
    """How often each trigger was answered with its `.finished` (by triggered id)."""
    finished = {task_type(task, TaskKind.FINISHED) for task in TASKS}
    return Counter(e.triggeredid or "" for e in events if e.type in finished)


def committed_offsets(settings: Settings) -> dict[str, list[int]]:
    """Per group the worker may read with (the loop host's per agent, Faust's `worker`), the committed offsets
    of the input topics' partitions that it has (a negative offset: none)."""
    registry = TopicRegistry.from_settings(settings)
    partitions = [TopicPartition(registry.task(task), n) for task in TASKS for n in range(settings.partitions)]
    found: dict[str, list[int]] = {}
    for name in (*AGENTS, "worker"):
        consumer = Consumer({**confluent_config(settings), "group.id": registry.app_id(name),
                             "enable.auto.commit": False})
        try:
            found[name] = [tp.offset for tp in consumer.committed(partitions, timeout=10)]
        finally:
            consumer.close()
    return found


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEGATE_AGENTS", ",".join(AGENTS))
    # Faust's group, when an agent runs on the Faust host: a short session, should a killed member have to
    # expire before the restarted worker takes over (a static member, it normally takes over at once).
    monkeypatch.setenv("BROKER_SESSION_TIMEOUT", "8")
    monkeypatch.setenv("BROKER_HEARTBEAT_INTERVAL", "1")


async def test_a_worker_killed_before_its_first_commit_skips_no_input_after_a_restart(
    tidegate_settings: Settings, faust_worker, worker_env: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # type: ignore[no-untyped-def]
    settings = tidegate_settings
    registry = TopicRegistry.from_settings(settings)
    first_batch, second_batch = batch(1), batch(2)
    approvals = [e for e in first_batch if e.type == task_type("approval", TaskKind.TRIGGERED)]

    async with EventCollector(settings, registry.events) as replies, AsyncEventPublisher(settings) as publisher:
        landed = {(d.topic, d.partition) for d in
                  [await publisher.publish(registry.task(e.type.split(".")[3]), e) for e in first_batch]}
        assert len(landed) == len(TASKS) * settings.partitions, f"the first batch left partitions out: {landed}"

        monkeypatch.setenv("BROKER_COMMIT_INTERVAL", "3600")  # the first worker never commits (nor its loops)
        first = faust_worker(APP, settings)
        monkeypatch.delenv("BROKER_COMMIT_INTERVAL")

        def first_answered(events: list[KeptnEvent]) -> bool:
            first.assert_running()
            answered = answers(events)
            return all(answered[e.id] for e in first_batch)

        await replies.wait_for(first_answered, ANSWER_TIMEOUT, "the first worker to answer the first batch")
        # The precondition of the test: the kill comes before any of the worker's groups committed.
        committed = await asyncio.to_thread(committed_offsets, settings)
        assert all(o < 0 for offsets in committed.values() for o in offsets), f"committed already: {committed}"
        first.process.send_signal(signal.SIGKILL)
        returncode = await asyncio.to_thread(first.process.wait, 30)
        assert returncode == -signal.SIGKILL, f"the worker was to be killed, it exited with {returncode}"

        for event in second_batch:
            await publisher.publish(registry.task(event.type.split(".")[3]), event)
        second = faust_worker("tidegate.agents.main:app", settings)  # the worker as deployed: it commits

        def missing(events: list[KeptnEvent]) -> list[str]:
            answered = answers(events)
            return [f"{e.type.split('.')[3]} {e.data['service']}" for e in [*first_batch, *second_batch]
                    if answered[e.id] < (2 if e in approvals else 1)]

        def everything_read(events: list[KeptnEvent]) -> bool:
            second.assert_running()
            return not missing(events)

        try:
            await replies.wait_for(everything_read, ANSWER_TIMEOUT, "the restarted worker to answer every input")
        except AssertionError as error:
            raise AssertionError(f"{error}\nnot answered (approvals of batch 1: again) after the restart: "
                                 f"{missing(replies.events)}\nthe restarted worker's log:\n{second.log_tail(60)}"
                                 ) from None

    reply_ids: dict[str | None, set[str]] = {}
    for event in replies.events:
        if event.type.endswith(".finished"):
            reply_ids.setdefault(event.triggeredid, set()).add(event.id)
    assert all(len(ids) == 1 for ids in reply_ids.values()), "an input was answered under two different ids"
    answered = answers(replies.events)
    with capsys.disabled():
        print(f"\n[worker crash before its first commit] {2 * len(first_batch)} inputs on {settings.partitions} "
              f"partitions of {len(TASKS)} topics; after the kill {sum(answered[e.id] - 1 for e in first_batch)} of the first "
              f"batch answered again")
