"""The CloudEvents codec (binary, structured, plain JSON) and the DLQ record format."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.streams.codec import (
    DecodeError,
    KafkaRecord,
    decode,
    decode_record,
    encode,
    encode_structured,
)
from tidegate.streams.dlq import (
    AGENT_HEADER,
    REASON_CODE_HEADER,
    REASON_HEADER,
    SOURCE_TOPIC_HEADER,
    DeadLetter,
    DeadLetterCounter,
    DeadLetterReason,
    dead_letter_record,
    read_dead_letter,
)

# Keptn writes event times with millisecond precision; a time that already has it survives every mode.
EVENT_TIME = datetime(2024, 5, 17, 9, 30, 12, 345000, tzinfo=UTC)


def keptn_event(**extra: object) -> KeptnEvent:
    return KeptnEvent(
        id="6de83495-4f83-481c-8dbe-fcceb2e0243b",
        source="shipyard-controller",
        type="sh.keptn.event.deployment.triggered",
        time=EVENT_TIME,
        shkeptncontext="08735340-6f9e-4b32-97ff-3b6c292bc509",
        triggeredid="f2b878d3-03c0-4e8f-bc3f-454bc1b3d79d",
        gitcommitid="8fe4a1b",
        data={
            "project": "sockshop",
            "stage": "dev",
            "service": "carts",
            "deployment": {"deploymentstrategy": "direct"},
            "labels": {"buildId": "1.2.3"},
        },
        **extra,
    )


def headers_of(record: KafkaRecord) -> dict[str, bytes]:
    return dict(record.headers)


class TestBinaryMode:
    def test_headers_carry_every_attribute_and_the_keptn_extensions(self) -> None:
        record = encode(keptn_event())
        headers = headers_of(record)
        assert headers["ce_specversion"] == b"1.0"
        assert headers["ce_id"] == b"6de83495-4f83-481c-8dbe-fcceb2e0243b"
        assert headers["ce_source"] == b"shipyard-controller"
        assert headers["ce_type"] == b"sh.keptn.event.deployment.triggered"
        assert headers["ce_time"] == b"2024-05-17T09:30:12.345Z"
        assert headers["ce_shkeptncontext"] == b"08735340-6f9e-4b32-97ff-3b6c292bc509"
        assert headers["ce_triggeredid"] == b"f2b878d3-03c0-4e8f-bc3f-454bc1b3d79d"
        assert headers["ce_gitcommitid"] == b"8fe4a1b"
        assert headers["ce_shkeptnspecversion"] == b"0.2.4"
        assert headers["content-type"] == b"application/json"
        assert "ce_datacontenttype" not in headers  # it travels as content-type

    def test_value_is_the_data_object_and_key_is_project_stage_service(self) -> None:
        event = keptn_event()
        record = encode(event)
        assert record.key == b"sockshop/dev/carts"
        assert record.value is not None
        assert json.loads(record.value) == event.data

    def test_explicit_key_wins(self) -> None:
        assert encode(keptn_event(), Key("sockshop", "", "")).key == b"sockshop//"

    def test_round_trip(self) -> None:
        event = keptn_event()
        record = encode(event)
        assert decode(record.value, record.headers) == event

    def test_unknown_extensions_are_preserved_as_text(self) -> None:
        event = keptn_event(myextension="blue", retries=3, canary=True)
        record = encode(event)
        headers = headers_of(record)
        assert headers["ce_myextension"] == b"blue"
        assert headers["ce_retries"] == b"3"
        assert headers["ce_canary"] == b"true"
        decoded = decode(record.value, record.headers)
        # Binary mode has no types for extensions: they come back as the strings on the wire.
        assert decoded.model_extra == {"myextension": "blue", "retries": "3", "canary": "true"}

    def test_headers_in_any_client_shape(self) -> None:
        record = encode(keptn_event())
        as_dict = dict(record.headers)
        as_list = [(name, value) for name, value in record.headers]
        as_text = [(name, value.decode()) for name, value in record.headers]
        upper = [(name.upper(), value) for name, value in record.headers]
        expected = decode(record.value, record.headers)
        for shape in (as_dict, as_list, as_text, upper):
            assert decode(record.value, shape) == expected

    def test_missing_required_header_is_named(self) -> None:
        record = encode(keptn_event())
        headers = [(name, value) for name, value in record.headers if name != "ce_type"]
        with pytest.raises(DecodeError) as caught:
            decode(record.value, headers)
        assert "ce_type" in caught.value.reason

    def test_wrong_spec_version(self) -> None:
        record = encode(keptn_event())
        headers = {**dict(record.headers), "ce_specversion": b"0.3"}
        with pytest.raises(DecodeError, match=r"CloudEvents 1\.0"):
            decode(record.value, headers)

    def test_body_that_is_not_json(self) -> None:
        record = encode(keptn_event())
        with pytest.raises(DecodeError) as caught:
            decode(b"{not json", record.headers)
        assert "invalid JSON" in caught.value.reason

    def test_body_that_is_json_but_not_an_object(self) -> None:
        record = encode(keptn_event())
        with pytest.raises(DecodeError, match="object"):
            decode(b"[1, 2]", record.headers)

    def test_unreadable_time(self) -> None:
        record = encode(keptn_event())
        headers = {**dict(record.headers), "ce_time": b"yesterday"}
        with pytest.raises(DecodeError, match="ce_time"):
            decode(record.value, headers)

    def test_empty_value_is_empty_data(self) -> None:
        record = encode(keptn_event())
        assert decode(b"", record.headers).data == {}


class TestStructuredMode:
    def test_round_trip_keeps_extension_types(self) -> None:
        event = keptn_event(myextension="blue", retries=3)
        record = encode_structured(event)
        assert headers_of(record) == {"content-type": b"application/cloudevents+json"}
        assert record.key == b"sockshop/dev/carts"
        decoded = decode_record(record)
        assert decoded == event
        assert decoded.model_extra == {"myextension": "blue", "retries": 3}

    def test_content_type_with_charset(self) -> None:
        record = encode_structured(keptn_event())
        assert decode(record.value, {"Content-Type": "application/cloudevents+json; charset=utf-8"}) == keptn_event()

    def test_missing_id_is_an_error(self) -> None:
        body = keptn_event().to_json_dict()
        del body["id"]
        with pytest.raises(DecodeError) as caught:
            decode(json.dumps(body).encode(), {"content-type": b"application/cloudevents+json"})
        assert "id" in caught.value.reason

    def test_data_base64_is_refused(self) -> None:
        body = keptn_event().to_json_dict()
        del body["data"]
        body["data_base64"] = "e30="
        with pytest.raises(DecodeError, match="data_base64"):
            decode(json.dumps(body).encode(), {"content-type": b"application/cloudevents+json"})


class TestPlainJson:
    def test_a_full_event_without_headers(self) -> None:
        event = keptn_event()
        assert decode(json.dumps(event.to_json_dict()).encode()) == event

    def test_a_naive_event_gets_a_stable_id_and_the_record_time(self) -> None:
        body = json.dumps(
            {"type": "sh.keptn.event.dev.delivery.triggered", "data": {"project": "sockshop"}}
        ).encode()
        stamp = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
        first = decode(body, None, timestamp=stamp)
        again = decode(body, None, timestamp=stamp)
        assert first.id == again.id  # replaying the record yields the same id
        assert first.time == stamp
        assert first.type == "sh.keptn.event.dev.delivery.triggered"
        assert first.data == {"project": "sockshop"}
        other = decode(body.replace(b"sockshop", b"podtato"), None, timestamp=stamp)
        assert other.id != first.id

    def test_missing_type(self) -> None:
        with pytest.raises(DecodeError) as caught:
            decode(b'{"data": {"project": "sockshop"}}')
        assert "type" in caught.value.reason

    def test_bad_json(self) -> None:
        with pytest.raises(DecodeError) as caught:
            decode(b"sh.keptn.event.dev.delivery.triggered")
        assert "not valid JSON" in caught.value.reason
        assert "ce_*" in caught.value.reason  # tells the sender how to fix it

    def test_not_utf8(self) -> None:
        with pytest.raises(DecodeError, match="UTF-8"):
            decode(b"\xff\xfe{}")

    def test_data_that_is_not_an_object(self) -> None:
        with pytest.raises(DecodeError, match="`data`"):
            decode(b'{"type": "sh.keptn.event.test.triggered", "data": "hello"}')

    def test_invalid_field_is_named(self) -> None:
        with pytest.raises(DecodeError) as caught:
            decode(b'{"type": "sh.keptn.event.test.triggered", "time": "not a time"}')
        assert "time" in caught.value.reason

    def test_tombstone(self) -> None:
        with pytest.raises(DecodeError, match="no value"):
            decode(None)


class TestDeadLetters:
    LETTER = DeadLetter(
        reason="plain JSON event has no `type`",
        source_topic="tidegate.events",
        source_partition=7,
        source_offset=42,
        agent="sequencer",
    )

    def test_original_key_value_and_headers_are_kept(self) -> None:
        original = KafkaRecord(key=b"sockshop/dev/carts", value=b"{}", headers=(("traceparent", b"00-abc"),))
        dead = dead_letter_record(original, self.LETTER)
        assert dead.key == original.key
        assert dead.value == original.value
        assert dead.headers[0] == ("traceparent", b"00-abc")
        assert dead.header(REASON_HEADER) == b"plain JSON event has no `type`"
        assert dead.header(SOURCE_TOPIC_HEADER) == b"tidegate.events"
        assert dead.header(AGENT_HEADER) == b"sequencer"
        assert read_dead_letter(dead) == self.LETTER

    def test_a_second_rejection_replaces_the_first_headers(self) -> None:
        original = KafkaRecord(key=None, value=b"x")
        once = dead_letter_record(original, self.LETTER)
        later = DeadLetter("still broken", "tidegate.dlq-replay", 0, 1, "remediator")
        twice = dead_letter_record(once, later)
        assert [name for name, _ in twice.headers].count(REASON_HEADER) == 1
        assert read_dead_letter(twice) == later

    def test_read_dead_letter_of_an_ordinary_record(self) -> None:
        assert read_dead_letter(KafkaRecord(key=None, value=b"{}")) is None

    def test_the_reason_code_travels_in_its_own_header_beside_the_words(self) -> None:
        letter = DeadLetter("record key 'a' is not the event's project/stage/service 'b'", "tidegate.events", 0, 3,
                            "sequencer", code=DeadLetterReason.WRONG_KEY)
        dead = dead_letter_record(KafkaRecord(key=b"a", value=b"{}"), letter)
        assert dead.header(REASON_CODE_HEADER) == b"wrong_key"
        assert dead.header(REASON_HEADER) == letter.reason.encode()
        assert read_dead_letter(dead) == letter

    def test_a_letter_written_before_the_code_header_reads_as_rejected(self) -> None:
        old = KafkaRecord(key=None, value=b"x", headers=((REASON_HEADER, b"sequencer error: KeyError"),
                                                         (SOURCE_TOPIC_HEADER, b"tidegate.events"),
                                                         (AGENT_HEADER, b"sequencer")))
        letter = read_dead_letter(old)
        assert letter is not None
        assert (letter.reason, letter.code) == ("sequencer error: KeyError", DeadLetterReason.REJECTED)

    def test_counter(self) -> None:
        counter = DeadLetterCounter()
        assert counter.add(self.LETTER) == 1
        assert counter.add(self.LETTER) == 2
        counter.add(DeadLetter("bad", "tidegate.tasks.test", 0, 0, "sequencer"))
        counter.add(DeadLetter("bad", "tidegate.events", 0, 0, "evaluator"))
        assert counter.total() == 4
        assert counter.total(agent="sequencer") == 3
        assert counter.total(source_topic="tidegate.events") == 3
        assert counter.total(agent="evaluator", source_topic="tidegate.tasks.test") == 0
