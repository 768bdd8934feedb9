"""The sequencer processor's ordering rules, with the Kafka clients replaced by recorders.

What the crash test proves end to end is pinned here step by step: task events leave before the
audit records of the batch; the audit topic gets the input's copy and then the transitions in the
order decided; a key's state is written only when nothing produced before it is unacknowledged; a
commit flushes outputs, then writes state, flushes again, then commits; a refused record stops the
processor from counting anything after it as handled.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tidegate.agents.sequencer.model import SequencerConfig
from tidegate.agents.sequencer.processor import SequencerProcessor
from tidegate.schemas.events import KeptnEvent, sequence_type, task_type
from tidegate.schemas.files import FileKind, load_text
from tidegate.schemas.keys import Key
from tidegate.schemas.shipyard import Shipyard
from tidegate.streams.codec import decode, encode
from tidegate.streams.metrics import default_metrics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

SHIPYARD = """
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: shop}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}]
"""
KEY = Key("shop", "dev", "carts")


@dataclass
class Produced:
    topic: str
    value: bytes | None
    key: bytes | None
    partition: int | None
    headers: list[tuple[str, bytes]]

    @property
    def event(self) -> KeptnEvent:
        assert self.value is not None
        return decode(self.value, self.headers)


@dataclass
class RecordingProducer:
    """Records produce/flush calls; `in_flight` plays librdkafka's count of unacknowledged records."""

    log: list[Any] = field(default_factory=list)
    in_flight: int = 0
    on_delivery: Any = None

    def produce(self, topic: str, value: bytes | None, *, key: bytes | None = None, headers: Any = None,
                partition: int = -1) -> None:
        self.log.append(Produced(topic, value, key, partition, list(headers or [])))
        self.in_flight += 1

    def poll(self, _timeout: float = 0) -> int:
        return 0

    def flush(self, _timeout: float = 0) -> int:
        self.log.append("flush")
        self.in_flight = 0
        return 0

    def __len__(self) -> int:
        return self.in_flight


@dataclass
class RecordingConsumer:
    log: list[Any]

    def commit(self, *, offsets: Any, asynchronous: bool) -> None:
        self.log.append(("commit", sorted((tp.partition, tp.offset) for tp in offsets)))


class Message:
    """What confluent-kafka's consumer hands out, for one record of `events`."""

    def __init__(self, topic: str, partition: int, offset: int, event: KeptnEvent) -> None:
        record = encode(event, KEY)
        self._topic, self._partition, self._offset = topic, partition, offset
        self._key, self._value, self._headers = record.key, record.value, list(record.headers)

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_800_000_000_000)

    def error(self) -> None:
        return None


@pytest.fixture
def processor() -> SequencerProcessor:
    default_metrics()  # the process's collectors are registered before the first count
    shipyard = load_text(SHIPYARD, "shop/shipyard.yaml", FileKind.SHIPYARD).model
    assert isinstance(shipyard, Shipyard)
    processor = SequencerProcessor(Settings(topic_prefix="t."), SequencerConfig(shipyard_for=lambda _p: shipyard))
    producer = RecordingProducer()
    processor._producer = producer  # type: ignore[assignment]
    processor._consumer = RecordingConsumer(producer.log)  # type: ignore[assignment]
    processor._states[4] = {}  # partition 4 of events is assigned (and was read back empty)
    return processor


def log_of(processor: SequencerProcessor) -> list[Any]:
    producer = processor._producer
    assert isinstance(producer, RecordingProducer)
    return producer.log


def ignored_count(reason: str) -> float:
    value = REGISTRY.get_sample_value("tidegate_ignored_events_total", {"agent": "sequencer", "reason": reason})
    return value or 0.0


def trigger() -> KeptnEvent:
    return KeptnEvent(type=sequence_type("dev", "delivery", "triggered"), source="ci",
                      shkeptncontext=str(uuid.uuid4()),
                      data={"project": "shop", "stage": "dev", "service": "carts"})


def reply(triggered: KeptnEvent, kind: str) -> KeptnEvent:
    data: dict[str, Any] = {"project": "shop", "stage": "dev", "service": "carts", "status": "succeeded"}
    if kind == "finished":
        data["result"] = "pass"
    task = triggered.type.split(".")[3]
    return KeptnEvent(type=task_type(task, kind), source="connector", shkeptncontext=triggered.shkeptncontext,
                      triggeredid=triggered.id, data=data)


def test_task_events_leave_before_the_batch_audit_records_which_keep_the_decided_order(
    processor: SequencerProcessor,
) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    start = trigger()
    processor._process([Message(registry.events, 4, 10, start)])  # type: ignore[list-item]
    produced = [entry for entry in log_of(processor) if isinstance(entry, Produced)]
    topics = [entry.topic for entry in produced]
    assert topics[0] == registry.task("deployment"), topics
    assert set(topics[1:]) == {registry.audit}, topics
    audit = [entry.event for entry in produced[1:]]
    assert audit[0].id == start.id  # the input's own copy first
    kinds = [event.type.rsplit(".", 1)[-1] if event.type.startswith("sh.tidegate.audit.") else "copy"
             for event in audit[1:]]
    assert "task_triggered" in kinds and "copy" in kinds
    # The copy of the task event sits where the core emitted it, among the transitions.
    copy = next(event for event in audit[1:] if not event.type.startswith("sh.tidegate.audit."))
    assert copy.id == produced[0].event.id
    assert processor._positions == {4: 11}


def test_state_is_written_only_once_nothing_before_it_is_unacknowledged(processor: SequencerProcessor) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    producer = processor._producer
    assert isinstance(producer, RecordingProducer)
    processor._process([Message(registry.events, 4, 10, trigger())])
    assert producer.in_flight > 0
    processor._write_states_if_acknowledged()
    assert not [e for e in producer.log if isinstance(e, Produced) and e.topic == processor.state_topic]
    assert processor._dirty == {KEY.encode(): 4}

    producer.in_flight = 0  # every output acknowledged
    processor._write_states_if_acknowledged()
    [state] = [e for e in producer.log if isinstance(e, Produced) and e.topic == processor.state_topic]
    assert state.key == KEY.encode() and state.partition == 4  # the partition of the key's events
    assert state.value is not None and b'"lock"' in state.value
    assert not processor._dirty


def test_a_commit_flushes_outputs_then_writes_state_then_flushes_then_commits(processor: SequencerProcessor) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    start = trigger()
    processor._process([Message(registry.events, 4, 10, start)])  # type: ignore[list-item]
    log = log_of(processor)
    del log[:]
    processor._commit()
    shape = [entry if isinstance(entry, str | tuple) else entry.topic for entry in log]
    assert shape == ["flush", processor.state_topic, "flush", ("commit", [(4, 11)])]


def test_a_refused_record_stops_state_and_commits(processor: SequencerProcessor) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    processor._process([Message(registry.events, 4, 10, trigger())])  # type: ignore[list-item]
    processor._delivery_failed(RuntimeError("broker said no"), Message(registry.audit, 0, 0, trigger()))  # type: ignore[arg-type]
    log = log_of(processor)
    with pytest.raises(RuntimeError, match="refused a record"):
        processor._commit()
    assert not [e for e in log if isinstance(e, tuple) and e[0] == "commit"]
    assert not [e for e in log if isinstance(e, Produced) and e.topic == processor.state_topic]


def test_records_of_a_partition_revoked_mid_batch_are_left_to_the_new_owner(processor: SequencerProcessor) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    processor._process([Message(registry.events, 7, 3, trigger())])  # type: ignore[list-item]
    assert not [e for e in log_of(processor) if isinstance(e, Produced)]
    assert 7 not in processor._positions and 7 not in processor._states


def test_a_whole_sequence_in_one_batch_dispatches_each_task_once(processor: SequencerProcessor) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    start = trigger()
    processor._process([Message(registry.events, 4, 0, start)])  # type: ignore[list-item]
    offset = 1
    for task in ("deployment", "test"):
        [triggered] = [e.event for e in log_of(processor) if isinstance(e, Produced) and e.topic == registry.task(task)]
        batch = [Message(registry.events, 4, offset, reply(triggered, "started")),
                 Message(registry.events, 4, offset + 1, reply(triggered, "finished"))]
        offset += 2
        processor._process(batch)  # type: ignore[arg-type]
        # a redelivered batch (after a crash) changes nothing and dispatches nothing new, and says so
        before = len([e for e in log_of(processor) if isinstance(e, Produced) and e.topic.startswith("t.tasks.")])
        duplicates = ignored_count("duplicate")
        processor._process(batch)  # type: ignore[arg-type]
        after = len([e for e in log_of(processor) if isinstance(e, Produced) and e.topic.startswith("t.tasks.")])
        assert after == before
        assert ignored_count("duplicate") == duplicates + 2
        assert processor.ignored["duplicate"] >= 2
    finished = [e.event for e in log_of(processor) if isinstance(e, Produced) and e.topic == registry.events]
    assert [e.type for e in finished] == [sequence_type("dev", "delivery", "finished")]
    assert finished[0].data["result"] == "pass"
    assert processor.state_of(KEY) is None or not processor.state_of(KEY).sequences  # type: ignore[union-attr]


def test_with_two_producers_hops_leave_at_once_and_the_rest_waits_for_both(processor: SequencerProcessor) -> None:
    # The processor's session uses a producer without linger for what a hop waits on and a lingering one
    # for audit, state and dead letters; state and commits must wait for both.
    registry = TopicRegistry.from_settings(processor.settings)
    fast = processor._producer
    assert isinstance(fast, RecordingProducer)
    bulk = RecordingProducer(log=fast.log)  # one log: the order across both producers shows
    processor._bulk = bulk
    processor._process([Message(registry.events, 4, 10, trigger())])
    assert fast.in_flight == 1 and bulk.in_flight > 1  # the task event; the audit records
    produced = [entry for entry in fast.log if isinstance(entry, Produced)]
    assert produced[0].topic == registry.task("deployment")
    assert {entry.topic for entry in produced[1:]} == {registry.audit}

    fast.in_flight = 0  # the task event is acknowledged, the audit records are not
    processor._write_states_if_acknowledged()
    assert not [e for e in fast.log if isinstance(e, Produced) and e.topic == processor.state_topic]
    bulk.in_flight = 0
    processor._write_states_if_acknowledged()
    assert [e.topic for e in fast.log if isinstance(e, Produced)][-1] == processor.state_topic
    assert bulk.in_flight == 1 and fast.in_flight == 0  # the state record went through the bulk producer

    processor._positions[4] = 11
    processor._commit()
    flushes = [i for i, e in enumerate(fast.log) if e == "flush"]
    commit = next(i for i, e in enumerate(fast.log) if isinstance(e, tuple) and e[0] == "commit")
    assert len([i for i in flushes if i < commit]) >= 4  # both producers flushed, twice (outputs, then state)
