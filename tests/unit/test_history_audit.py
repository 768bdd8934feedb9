"""Reading audit records: Keptn events as they are, transitions by their type, in every record form."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tidegate.agents.sequencer.outputs import AuditKind, AuditRecord
from tidegate.readside.history.audit import AuditFormatError, SeenEvent, Transition, entry_of_record
from tidegate.readside.history.sequences import apply
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.streams.codec import KafkaRecord, encode, encode_structured

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
KEY = Key("sockshop", "dev", "carts")


def test_a_sequencer_transition_is_read_with_all_its_fields() -> None:
    record = AuditRecord(id="a1", kind=AuditKind.FINISHED, time=NOW, keptn_context="ctx", key=KEY,
                         sequence="delivery", sequence_triggered_id="seq-1", task="release",
                         task_triggered_id="task-9", result="pass", status="succeeded", message="done")
    entry = entry_of_record(encode(record.to_event(), KEY))
    assert isinstance(entry, Transition)
    assert (entry.id, entry.agent, entry.kind, entry.keptn_context) == ("a1", "sequencer", "finished", "ctx")
    assert entry.key == KEY
    assert (entry.sequence, entry.sequence_triggered_id, entry.task, entry.task_triggered_id) == (
        "delivery", "seq-1", "release", "task-9")
    assert (entry.result, entry.status, entry.message) == ("pass", "succeeded", "done")
    assert entry.time == NOW


@pytest.mark.parametrize("encoder", [encode, encode_structured])
def test_keptn_events_are_read_as_they_are(encoder) -> None:  # type: ignore[no-untyped-def]
    event = KeptnEvent(type="sh.keptn.event.deployment.finished", shkeptncontext="ctx", triggeredid="t",
                       data={"project": "sockshop", "stage": "dev", "service": "carts",
                             "result": "pass"})
    entry = entry_of_record(encoder(event))
    assert isinstance(entry, SeenEvent)
    assert entry.event.id == event.id and entry.event.data["result"] == "pass"


def test_the_record_key_stands_in_for_a_transition_without_fields() -> None:
    event = KeptnEvent(id=str(uuid.uuid4()), type="sh.tidegate.audit.remediator.step", shkeptncontext="ctx", data={})
    entry = entry_of_record(encode(event, KEY))
    assert isinstance(entry, Transition) and entry.key == KEY and entry.agent == "remediator"


def test_unreadable_records_are_refused_with_the_reason() -> None:
    with pytest.raises(AuditFormatError, match="not UTF-8 text"):
        entry_of_record(KafkaRecord(key=b"k", value=b"\xff\x00"))


def test_the_sequence_view_ignores_entries_outside_a_sequence() -> None:
    orphan = SeenEvent(KeptnEvent(type="sh.keptn.event.deployment.finished", shkeptncontext="ctx",
                                  data={"project": "sockshop", "stage": "dev", "service": "carts"}))
    assert apply(None, orphan) is None
    no_context = SeenEvent(KeptnEvent(type="sh.keptn.event.dev.delivery.triggered",
                                      data={"project": "sockshop", "stage": "dev", "service": "carts"}))
    assert apply(None, no_context) is None
