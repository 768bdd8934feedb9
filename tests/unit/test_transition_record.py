"""Audit transitions written straight to a Kafka record must be the records of their audit events, byte
for byte.

`AuditRecord.to_record()` (and `streams.audit.transition_record` under it) never builds the KeptnEvent; the
reference is what the agents sent before: `encode(record.to_event(), record.key)` for the sequencer,
`encode(record.to_event(), record.key)` for the remediator. KafkaRecord equality compares the key, the
value and the headers with their order; a failure to encode must be the same failure.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_codec_fastpath import CASES, json_values, outcome, texts, times
from tidegate.agents.remediator import outputs as remediator
from tidegate.agents.sequencer.outputs import AuditKind, AuditRecord
from tidegate.schemas.keys import Key
from tidegate.streams import codec
from tidegate.streams.audit import transition_record
from tidegate.streams.codec import KafkaRecord, decode, encode

odd_texts = st.one_of(texts, st.sampled_from(["a/b", "", " ", "\x00", "\u00fc\u00df", "\U0001f680/\u65e5"]))
optional_texts = st.one_of(st.none(), odd_texts)
keys = st.builds(Key, odd_texts, odd_texts, odd_texts)
# Detail as the core writes it (str keys), with nested values of every JSON kind, datetimes and non-ASCII.
details = st.one_of(
    st.just({}),
    st.dictionaries(odd_texts, st.one_of(json_values, times()), max_size=4),
)


@st.composite
def sequencer_records(draw: st.DrawFn) -> AuditRecord:
    return AuditRecord(
        id=draw(st.one_of(st.uuids().map(str), odd_texts)),
        kind=draw(st.sampled_from(list(AuditKind))),
        time=draw(times()),
        keptn_context=draw(st.one_of(st.uuids().map(str), odd_texts)),
        key=draw(keys),
        sequence=draw(odd_texts),
        sequence_triggered_id=draw(st.one_of(st.uuids().map(str), odd_texts)),
        task=draw(optional_texts),
        task_triggered_id=draw(optional_texts),
        result=draw(st.one_of(st.none(), st.sampled_from(["pass", "warning", "fail"]), odd_texts)),
        status=draw(st.one_of(st.none(), st.sampled_from(["succeeded", "errored"]), odd_texts)),
        message=draw(optional_texts),
        detail=draw(details),
    )


@st.composite
def remediator_records(draw: st.DrawFn) -> remediator.AuditRecord:
    return remediator.AuditRecord(
        id=draw(st.one_of(st.uuids().map(str), odd_texts)),
        kind=draw(st.sampled_from(list(remediator.AuditKind))),
        time=draw(times()),
        keptn_context=draw(st.one_of(st.none(), st.uuids().map(str), odd_texts)),
        key=draw(keys),
        task=draw(optional_texts),
        task_triggered_id=draw(optional_texts),
        result=draw(optional_texts),
        status=draw(optional_texts),
        message=draw(optional_texts),
        problem=draw(optional_texts),
        action=draw(optional_texts),
        detail=draw(details),
    )


def assert_same(new: tuple[str, Any], old: tuple[str, Any]) -> None:
    assert new == old
    if new[0] == "ok":
        assert isinstance(new[1], KafkaRecord)
        assert new[1].key == old[1].key
        assert new[1].value == old[1].value
        assert list(new[1].headers) == list(old[1].headers)  # names, values and order


@CASES
@given(sequencer_records())
def test_a_sequencer_transition_record_is_the_encoded_event(record: AuditRecord) -> None:
    assert_same(outcome(record.to_record), outcome(lambda: encode(record.to_event(), record.key)))


@CASES
@given(remediator_records())
def test_a_remediator_transition_record_is_the_encoded_event(record: remediator.AuditRecord) -> None:
    new = outcome(
        lambda: transition_record(
            agent=remediator.AGENT,
            kind=record.kind.value,
            id=record.id,
            time=record.time,
            keptn_context=record.keptn_context,
            data=record.to_json_dict(),
            key=record.key,
        )
    )
    assert_same(new, outcome(lambda: encode(record.to_event(), record.key)))
    assert_same(outcome(record.to_record), outcome(lambda: encode(record.to_event(), record.key)))


SEQUENCE: dict[str, Any] = {
    "keptn_context": "ctx-1",
    "key": Key("shop", "dev", "cart"),
    "sequence": "delivery",
    "sequence_triggered_id": "seq-1",
}


@pytest.mark.parametrize("kind", list(AuditKind))
@pytest.mark.parametrize(
    "time",
    [
        datetime(2024, 5, 17, 9, 30, 12, 345678, tzinfo=UTC),
        datetime(2024, 5, 17, 9, 30, 12, 345678),  # naive: UTC
        datetime(2024, 5, 17, 9, 30, 12, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(999, 1, 1, tzinfo=timezone(timedelta(microseconds=1))),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-1))),  # beyond year 9999 in UTC
    ],
)
def test_every_kind_at_odd_times_is_the_encoded_event(kind: AuditKind, time: datetime) -> None:
    record = AuditRecord(
        id=f"{kind}-1",
        kind=kind,
        time=time,
        task="deployment",
        task_triggered_id="t-1",
        result="pass",
        status="succeeded",
        message="m\u00e9",
        detail={"n": {"l": [1, None]}},
        **SEQUENCE,
    )
    assert_same(outcome(record.to_record), outcome(lambda: encode(record.to_event(), record.key)))


def test_a_plain_transition_is_written_without_building_an_event(monkeypatch: pytest.MonkeyPatch) -> None:
    record = AuditRecord(
        id="a-1",
        kind=AuditKind.TASK_TRIGGERED,
        time=datetime(2024, 5, 17, tzinfo=UTC),
        task="deployment",
        detail={"retry": 2},
        **SEQUENCE,
    )
    expected = encode(record.to_event(), record.key)

    def no_event(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the transition's KeptnEvent was built")

    monkeypatch.setattr(codec, "KeptnEvent", no_event)
    assert record.to_record() == expected


def test_a_transition_record_reads_back_as_its_event() -> None:
    record = AuditRecord(
        id="a-2",
        kind=AuditKind.FINISHED,
        time=datetime(2024, 5, 17, 1, 2, 3, 4000, tzinfo=UTC),
        result="pass",
        status="succeeded",
        **SEQUENCE,
    )
    written = record.to_record()
    assert written.key == b"shop/dev/cart"
    event = decode(written.value, written.headers)
    assert event.type == "sh.tidegate.audit.sequencer.finished"
    assert event.source == "tidegate/sequencer"
    assert (event.id, event.shkeptncontext, event.time) == ("a-2", "ctx-1", record.time)
    assert event.data == {
        "key": "shop/dev/cart",
        "sequence": "delivery",
        "sequence_triggered_id": "seq-1",
        "result": "pass",
        "status": "succeeded",
        "project": "shop",
        "stage": "dev",
        "service": "cart",
    }
