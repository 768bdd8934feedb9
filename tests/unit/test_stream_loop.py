"""The consume-decide-produce loop's ordering rules (`streams.kafka.loop`, the sequencer on the loop host),
with the Kafka clients replaced by recorders.

What the crash test proves end to end is pinned here step by step: task events leave before the
audit records of the batch; the audit topic gets the input's copy and then the transitions in the
order decided; a key's state is written only when nothing produced before it is unacknowledged; a
commit flushes outputs, then writes state, flushes again, then commits; a failed delivery that is not
the record's own stops the loop from counting anything after it as handled. And one key never stops
the others: a record refused for good (no such topic, too large) goes to the DLQ, an undeliverable task
trigger is answered with that task's errored `.finished`, a state record refused drops that key's state.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import REGISTRY

from tidegate.agents.hosts.loop import loop_for
from tidegate.agents.kernel import Hosted
from tidegate.agents.sequencer.model import SequencerConfig
from tidegate.agents.sequencer.shell import AGENT
from tidegate.schemas.events import KeptnEvent, sequence_type, task_type
from tidegate.schemas.files import FileKind, load_text
from tidegate.schemas.keys import Key
from tidegate.schemas.shipyard import Shipyard
from tidegate.streams.codec import KafkaRecord, decode, encode
from tidegate.streams.dlq import read_dead_letter
from tidegate.streams.kafka.loop import StreamLoop
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

    @property
    def letter(self) -> Any:
        return read_dead_letter(KafkaRecord(self.key, self.value, tuple(self.headers)))


@dataclass
class TopicMetadata:
    error: Any = None


@dataclass
class ClusterMetadata:
    topics: dict[str, TopicMetadata]


@dataclass
class RecordingProducer:
    """Records produce/flush calls; `in_flight` plays librdkafka's count of unacknowledged records."""

    log: list[Any] = field(default_factory=list)
    in_flight: int = 0
    on_delivery: Any = None
    missing: set[str] = field(default_factory=set)  # topics the broker does not have
    too_large: int | None = None  # records with a longer value are refused before sending, as librdkafka does

    def produce(self, topic: str, value: bytes | None, *, key: bytes | None = None, headers: Any = None,
                partition: int = -1) -> None:
        if self.too_large is not None and value is not None and len(value) > self.too_large:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        self.log.append(Produced(topic, value, key, partition, list(headers or [])))
        self.in_flight += 1

    def list_topics(self, topic: str, timeout: float = 0) -> ClusterMetadata:
        error = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART) if topic in self.missing else None
        return ClusterMetadata({topic: TopicMetadata(error)})

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
        record = encode(event, Key.of_data(event.data))
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
def processor() -> StreamLoop:
    default_metrics()  # the process's collectors are registered before the first count
    shipyard = load_text(SHIPYARD, "shop/shipyard.yaml", FileKind.SHIPYARD).model
    assert isinstance(shipyard, Shipyard)
    processor = loop_for(Settings(topic_prefix="t."), Hosted(AGENT, SequencerConfig(shipyard_for=lambda _p: shipyard)))
    producer = RecordingProducer()
    processor._producer = producer  # type: ignore[assignment]
    processor._consumer = RecordingConsumer(producer.log)  # type: ignore[assignment]
    processor._states[4] = {}  # partition 4 of events is assigned (and was read back empty)
    return processor


def log_of(processor: StreamLoop) -> list[Any]:
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
    processor: StreamLoop,
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
    assert processor._positions == {(registry.events, 4): 11}


def test_state_is_written_only_once_nothing_before_it_is_unacknowledged(processor: StreamLoop) -> None:
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


def test_a_commit_flushes_outputs_then_writes_state_then_flushes_then_commits(processor: StreamLoop) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    start = trigger()
    processor._process([Message(registry.events, 4, 10, start)])  # type: ignore[list-item]
    log = log_of(processor)
    del log[:]
    processor._commit()
    shape = [entry if isinstance(entry, str | tuple) else entry.topic for entry in log]
    assert shape == ["flush", processor.state_topic, "flush", ("commit", [(4, 11)])]


def test_a_refused_record_stops_state_and_commits(processor: StreamLoop) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    processor._process([Message(registry.events, 4, 10, trigger())])  # type: ignore[list-item]
    processor._delivery_failed(KafkaError(KafkaError._MSG_TIMED_OUT), Message(registry.audit, 0, 0, trigger()))  # type: ignore[arg-type]
    log = log_of(processor)
    with pytest.raises(RuntimeError, match="failed a record"):
        processor._commit()
    assert not [e for e in log if isinstance(e, tuple) and e[0] == "commit"]
    assert not [e for e in log if isinstance(e, Produced) and e.topic == processor.state_topic]


def test_records_of_a_partition_revoked_mid_batch_are_left_to_the_new_owner(processor: StreamLoop) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    processor._process([Message(registry.events, 7, 3, trigger())])  # type: ignore[list-item]
    assert not [e for e in log_of(processor) if isinstance(e, Produced)]
    assert not processor._positions and 7 not in processor._states


def test_a_whole_sequence_in_one_batch_dispatches_each_task_once(processor: StreamLoop) -> None:
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
        assert processor.handler.ignored["duplicate"] >= 2  # type: ignore[attr-defined]
    finished = [e.event for e in log_of(processor) if isinstance(e, Produced) and e.topic == registry.events]
    assert [e.type for e in finished] == [sequence_type("dev", "delivery", "finished")]
    assert finished[0].data["result"] == "pass"
    state = processor.state_of(KEY.encode())
    assert state is not None and not state.sequences
    # the loop host gave the core each input's position: the key remembers the last offset it applied
    assert state.applied == {f"{registry.events}:4": offset - 1}


def test_with_two_producers_hops_leave_at_once_and_the_rest_waits_for_both(processor: StreamLoop) -> None:
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

    processor._positions[(registry.events, 4)] = 11
    processor._commit()
    flushes = [i for i, e in enumerate(fast.log) if e == "flush"]
    commit = next(i for i, e in enumerate(fast.log) if isinstance(e, tuple) and e[0] == "commit")
    assert len([i for i in flushes if i < commit]) >= 4  # both producers flushed, twice (outputs, then state)


def produced(processor: StreamLoop, topic: str) -> list[Produced]:
    return [e for e in log_of(processor) if isinstance(e, Produced) and e.topic == topic]


def test_a_task_topic_that_does_not_exist_ends_the_sequence_with_the_error_not_the_loop(
    processor: StreamLoop,
) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    producer = processor._producer
    assert isinstance(producer, RecordingProducer)
    producer.missing = {registry.task("deployment")}
    start = trigger()
    processor._process([Message(registry.events, 4, 10, start)])  # type: ignore[list-item]
    processor._answer_refusals()
    assert not produced(processor, registry.task("deployment"))
    [letter] = produced(processor, registry.dlq)
    assert registry.task("deployment") in letter.letter.reason and "does not exist" in letter.letter.reason
    answers = [e.event for e in produced(processor, registry.events)]
    assert [a.type for a in answers] == [task_type("deployment", "started"), task_type("deployment", "finished")]
    assert answers[1].data["status"] == "errored" and "tidegate topics create --task deployment" in \
        answers[1].data["message"]

    # The answers come back on `events`: the sequence ends with the error; the loop goes on committing.
    processor._process([Message(registry.events, 4, 11 + i, answer) for i, answer in enumerate(answers)])  # type: ignore[misc]
    [finished] = [e.event for e in produced(processor, registry.events)
                  if e.event.type == sequence_type("dev", "delivery", "finished")]
    assert (finished.data["status"], finished.data["result"]) == ("errored", "fail")
    assert registry.task("deployment") in finished.data["message"]
    processor._commit()
    assert ("commit", [(4, 13)]) in log_of(processor)


def test_a_record_refused_before_sending_goes_to_the_dlq_and_the_others_go_on(processor: StreamLoop) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    producer = processor._producer
    assert isinstance(producer, RecordingProducer)
    producer.too_large = 80_000
    big = trigger()
    big.data["blob"] = "x" * 100_000  # its task event carries the data: refused as too large
    processor._process([Message(registry.events, 4, 10, big)])  # type: ignore[list-item]
    processor._commit()  # answers the refusal, writes state, commits: no failure
    letters = [e.letter for e in produced(processor, registry.dlq)]
    assert any("MSG_SIZE_TOO_LARGE" in letter.reason or "too large" in letter.reason.lower() for letter in letters)
    assert ("commit", [(4, 11)]) in log_of(processor)


def test_a_state_record_the_broker_refuses_drops_that_keys_state_only(processor: StreamLoop) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    other = Key("shop", "dev", "orders")
    second = trigger()
    second.data["service"] = "orders"
    processor._process([Message(registry.events, 4, 10, trigger()), Message(registry.events, 4, 11, second)])  # type: ignore[list-item]
    processor._flush(1)
    processor._write_states()
    [refused] = [e for e in produced(processor, processor.state_topic) if e.key == KEY.encode()]
    processor._delivery_failed(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), Message(  # type: ignore[arg-type]
        processor.state_topic, 4, 0, trigger()))
    processor._refusals[-1] = ((processor.state_topic, KafkaRecord(refused.key, refused.value, ()), None),
                               "Broker: Message size too large")
    processor._commit()
    assert processor.state_of(KEY.encode()) is None  # dropped: the key starts afresh
    assert processor.state_of(other.encode()) is not None
    tombstones = [e for e in produced(processor, processor.state_topic) if e.key == KEY.encode() and e.value is None]
    assert tombstones and tombstones[-1].partition == 4
    assert any("cannot be written" in e.letter.reason for e in produced(processor, registry.dlq))
    assert ("commit", [(4, 12)]) in log_of(processor)


def trigger_for(service: str) -> KeptnEvent:
    return KeptnEvent(type=sequence_type("dev", "delivery", "triggered"), source="ci",
                      shkeptncontext=str(uuid.uuid4()), data={"project": "shop", "stage": "dev", "service": service})


def decisions_logged(processor: StreamLoop) -> list[Any]:
    """The shared log, with a ("decided", service) entry where each input was decided."""
    log = log_of(processor)
    handle = processor.handler.handle

    def logged(read: Any, state_of: Any) -> Any:
        handled = handle(read, state_of)
        log.append(("decided", decode(read.record.value, read.record.headers).data["service"]))
        return handled

    processor.handler.handle = logged  # type: ignore[method-assign]
    return log


def test_a_batchs_hop_records_leave_together_in_the_decided_order_before_its_audit_records(
    processor: StreamLoop,
) -> None:
    registry = TopicRegistry.from_settings(processor.settings)
    log = decisions_logged(processor)
    services = ["carts", "orders", "payment"]
    processor._process([Message(registry.events, 4, offset, trigger_for(service))  # type: ignore[misc]
                        for offset, service in enumerate(services)])
    shown = [entry if isinstance(entry, tuple) else (entry.topic, Key.parse(entry.key or b"").service)
             for entry in log if not (isinstance(entry, Produced) and entry.topic == registry.audit)]
    # Every input decided first, then the three task events in the order decided (one burst), then the audit.
    assert shown == [*(("decided", s) for s in services), *((registry.task("deployment"), s) for s in services)]
    first_audit = next(i for i, e in enumerate(log) if isinstance(e, Produced) and e.topic == registry.audit)
    assert all(isinstance(e, Produced) and e.topic == registry.audit for e in log[first_audit:])


def test_a_hop_record_waits_no_longer_than_hop_wait_for_the_rest_of_its_batch(
    processor: StreamLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tidegate.streams.kafka import loop as loop_module

    monkeypatch.setattr(loop_module, "HOP_WAIT", 0.0)  # every decision is already HOP_WAIT old when checked
    registry = TopicRegistry.from_settings(processor.settings)
    log = decisions_logged(processor)
    services = ["carts", "orders"]
    processor._process([Message(registry.events, 4, offset, trigger_for(service))  # type: ignore[misc]
                        for offset, service in enumerate(services)])
    shown = [entry if isinstance(entry, tuple) else (entry.topic, Key.parse(entry.key or b"").service)
             for entry in log if not (isinstance(entry, Produced) and entry.topic == registry.audit)]
    # Each input's task event left before the next input was decided.
    assert shown == [("decided", "carts"), (registry.task("deployment"), "carts"),
                     ("decided", "orders"), (registry.task("deployment"), "orders")]


def test_no_garbage_collection_runs_while_a_batch_is_handled_and_it_runs_again_after(processor: StreamLoop) -> None:
    import gc

    registry = TopicRegistry.from_settings(processor.settings)
    seen: list[bool] = []
    handle = processor.handler.handle

    def watched(read: Any, state_of: Any) -> Any:
        seen.append(gc.isenabled())
        return handle(read, state_of)

    processor.handler.handle = watched  # type: ignore[method-assign]
    assert gc.isenabled()
    processor._process([Message(registry.events, 4, 0, trigger_for("carts")),  # type: ignore[list-item]
                        Message(registry.events, 4, 1, trigger_for("orders"))])
    assert seen == [False, False] and gc.isenabled()

    def failing(read: Any, state_of: Any) -> Any:
        raise RuntimeError("a bug in the handler")

    processor.handler.handle = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        processor._process([Message(registry.events, 4, 2, trigger_for("carts"))])  # type: ignore[list-item]
    assert gc.isenabled()  # on again after a failed batch

    gc.disable()  # someone else turned it off: a batch leaves it off
    try:
        processor.handler.handle = watched  # type: ignore[method-assign]
        processor._process([Message(registry.events, 4, 3, trigger_for("carts"))])  # type: ignore[list-item]
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_failed_state_topic_provisioning_is_retried_and_does_not_end_the_loop(
    processor: StreamLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers starting together race to create the state topic; the loser's first attempt can
    # fail (UNKNOWN_TOPIC_OR_PART). Found by bench_scaleout: the thread ended, the worker idled.
    from tidegate.streams.kafka import _admin
    from tidegate.streams.kafka import loop as loop_module

    attempts: list[str] = []
    sessions: list[int] = []

    def provision(_settings: Settings, specs: list[Any]) -> _admin.ProvisionReport:
        attempts.append(specs[0].name)
        if len(attempts) == 1:
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
        return _admin.ProvisionReport(existing=[specs[0].name])

    def session() -> None:
        sessions.append(len(attempts))
        processor.stop()

    monkeypatch.setattr(_admin, "provision_topics", provision)
    monkeypatch.setattr(loop_module, "RESTART_DELAY", 0.0)
    monkeypatch.setattr(processor, "_session", session)
    assert processor.state_topic is not None
    processor.run()  # returns once stopped: a provisioning error did not end it early
    assert attempts == [processor.state_topic, processor.state_topic]
    assert sessions == [2]  # the session started only after the state topic was there


def test_the_produced_events_metric_is_told_each_round_what_the_round_sent(processor: StreamLoop) -> None:
    # Told once per batch and once per round of the loop (each label set's count added once), not per record:
    # the same counts.
    registry = TopicRegistry.from_settings(processor.settings)

    def totals() -> Counter[tuple[str, str]]:
        return Counter({(sample.labels["topic"], sample.labels["type"]): sample.value
                        for family in REGISTRY.collect() if family.name == "tidegate_events_produced"
                        for sample in family.samples if sample.name == "tidegate_events_produced_total"})

    before = totals()
    processor._process([Message(registry.events, 4, 0, trigger_for("carts")),  # type: ignore[list-item]
                        Message(registry.events, 4, 1, trigger_for("orders"))])  # type: ignore[list-item]
    sent = Counter((record.topic, record.event.type) for record in log_of(processor)
                   if isinstance(record, Produced) and not record.event.type.startswith("sh.tidegate.audit."))
    assert sent  # task triggers and the inputs' audit copies (audit transitions are not events: not counted)
    assert totals() - before == sent  # counted when the batch is done

    tick = trigger_for("payments")  # sent outside a batch (a timer's tick): counted at the end of the round
    processor._send((registry.events, encode(tick), tick))
    assert totals() - before == sent
    processor._count_produced()
    assert totals() - before == sent + Counter({(registry.events, tick.type): 1})
    processor._count_produced()  # nothing sent since: nothing more
    assert totals() - before == sent + Counter({(registry.events, tick.type): 1})
