"""One bad key never stops the others (issue 16): poison inputs for four keys while 20 keys run their sequences.

On the real broker, with the sequencer on the loop host:
- too big: a trigger whose data would push its key's state past TIDEGATE_MAX_STATE_BYTES;
- a task without a topic: a sequence whose task `nosuchtask` has no `tasks.nosuchtask` topic;
- undecodable bytes on `events`;
- a state that cannot be written: three executors start one task and two finish it with ~600 kB each,
  so the key's state (the open task's merged results) grows past the broker's 1 MB message limit
  while every event stays below it.
Every other key finishes its sequence; the poison keys end with a clear error or in the DLQ; the loop
never restarts (before the fix: MSG_SIZE_TOO_LARGE / UNKNOWN_TOPIC_OR_PART put it in a restart loop
and every other key's events piled up).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.support.kafka import EventCollector, publish_files
from tests.support.responder import TaskResponder
from tidegate.schemas.events import KeptnEvent, sequence_type, task_type
from tidegate.streams.codec import KafkaRecord
from tidegate.streams.dlq import DeadLetter, read_dead_letter
from tidegate.streams.kafka import EventPublisher, provision_topics, read_to_end
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

SHIPYARD = """
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: poison}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}]
        - name: broken
          tasks: [{name: nosuchtask}]
        - name: heavy
          tasks: [{name: bulk}]
"""
PROJECT = "shop"
SERVICES = [f"svc-{n}" for n in range(20)]
TIMEOUT = 180.0
BLOB = 600_000  # one fits a Kafka record; two in one state do not


def trigger(service: str, sequence: str = "delivery", **data: object) -> KeptnEvent:
    return KeptnEvent(type=sequence_type("dev", sequence, "triggered"), source="ci",
                      shkeptncontext=str(uuid.uuid4()),
                      data={"project": PROJECT, "stage": "dev", "service": service, **data})


def reply(task: KeptnEvent, kind: str, source: str, **data: object) -> KeptnEvent:
    fields = {name: task.data[name] for name in ("project", "stage", "service")}
    if kind == "finished":
        fields.update({"status": "succeeded", "result": "pass", **data})
    return KeptnEvent(type=task_type("bulk", kind), source=source, shkeptncontext=task.shkeptncontext,
                      triggeredid=task.id, data=fields)


def finished(events: list[KeptnEvent], start: KeptnEvent) -> KeptnEvent | None:
    sequence = start.parsed_type.sequence
    wanted = sequence_type("dev", str(sequence), "finished")
    return next((e for e in events if e.type == wanted and e.triggeredid == start.id), None)


async def dead_letters(settings: Settings) -> list[tuple[KafkaRecord, DeadLetter]]:
    found = []
    async for batch in read_to_end(settings, TopicRegistry.from_settings(settings).dlq):
        for consumed in batch:
            letter = read_dead_letter(consumed.record)
            if letter is not None:
                found.append((consumed.record, letter))
    return found


async def wait_for_letter(settings: Settings, matches, what: str) -> DeadLetter:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:
        for record, letter in await dead_letters(settings):
            if matches(record, letter):
                return letter
        if loop.time() > deadline:
            raise AssertionError(f"no dead letter for {what} within {TIMEOUT:.0f} s")
        await asyncio.sleep(1.0)


async def test_poison_keys_end_alone_while_twenty_keys_finish(
    tidegate_settings: Settings, faust_worker, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    settings = tidegate_settings
    registry = TopicRegistry.from_settings(settings)
    report = provision_topics(settings, [registry.spec(registry.task("bulk"))])
    assert report.ok, report.problems
    monkeypatch.setenv("TIDEGATE_AGENTS", "sequencer")
    publish_files(settings, PROJECT, {"shipyard.yaml": SHIPYARD})
    worker = faust_worker("tidegate.agents.main:app", settings)

    too_big = trigger("poison-big", blob="x" * BLOB)
    no_topic = trigger("poison-topic", "broken")
    heavy = trigger("poison-state", "heavy")
    normal = [trigger(service) for service in SERVICES]
    garbage_key = f"{PROJECT}/dev/poison-bytes".encode()

    async with EventCollector(settings, registry.events) as events, TaskResponder(settings, ["bulk=silent"]), \
            EventCollector(settings, registry.task("bulk")) as bulk:
        with EventPublisher(settings) as publisher:
            # The poison first: the 20 sequences behind it in the same partitions must not wait for it.
            publisher.publish_record(registry.events, KafkaRecord(key=garbage_key, value=b"\x00\xffnot an event"),
                                     what="garbage")
            for event in (too_big, no_topic, heavy, *normal):
                publisher.publish(registry.events, event)

        await events.wait_for(lambda evs: all(finished(evs, start) for start in [*normal, too_big, no_topic]),
                              TIMEOUT, "every sequence and the poison ones to finish")
        for start in normal:
            done = finished(events.events, start)
            assert done is not None and (done.data["result"], done.data["status"]) == ("pass", "succeeded"), done

        big_done = finished(events.events, too_big)
        assert big_done is not None and (big_done.data["status"], big_done.data["result"]) == ("errored", "fail")
        assert "TIDEGATE_MAX_STATE_BYTES" in big_done.data["message"]

        topic_done = finished(events.events, no_topic)
        assert topic_done is not None and topic_done.data["status"] == "errored"
        assert registry.task("nosuchtask") in topic_done.data["message"]

        # The heavy key: its task answered by three executors, two of them with ~600 kB each.
        await bulk.wait_for(lambda evs: any(e.shkeptncontext == heavy.shkeptncontext for e in evs), TIMEOUT,
                            "the heavy sequence's task")
        [task] = [e for e in bulk.events if e.shkeptncontext == heavy.shkeptncontext]
        replies = [reply(task, "started", f"executor-{n}") for n in range(3)]
        replies += [reply(task, "finished", "executor-0", blobA="a" * BLOB),
                    reply(task, "finished", "executor-1", blobB="b" * BLOB)]
        with EventPublisher(settings) as publisher:
            for event in replies:
                publisher.publish(registry.events, event)

        await wait_for_letter(settings, lambda record, letter: record.key == garbage_key
                              and letter.code.value == "undecodable", "the undecodable record")
        await wait_for_letter(settings, lambda record, letter: record.key == b"shop/dev/poison-state"
                              and "cannot be written" in letter.reason, "the state that cannot be written")
        await wait_for_letter(settings, lambda record, letter: registry.task("nosuchtask") in letter.reason,
                              "the task event without a topic")

    worker.assert_running()
    log = worker.log_file.read_text(errors="replace")
    assert "starting again from its last commit" not in log, log[-3000:]
