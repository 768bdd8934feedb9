"""The sequencer's state record (`STATE_CODEC`): compact JSON, and every record written when the state
was a pydantic model still reads as the same state.

The old records below were written by that code (`KeyState(...).model_dump_json()`, pydantic 2.14): every
field present, datetimes with `Z`, `recent` in base64url; and the earlier form with `seen` (full input ids),
which is migrated to the digest window as the pydantic model's validator did.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import msgspec
import pytest

from tests.unit.test_sequencer_helpers import config_for, load_shipyard, reply, trigger
from tidegate.agents.dedupe import REMEMBERED_INPUTS, input_digest
from tidegate.agents.kernel import Position
from tidegate.agents.sequencer import (
    STATE_CODEC,
    CurrentTask,
    IgnoreReason,
    KeyState,
    SequenceRun,
    SequenceState,
    TaskSnapshot,
    decide,
)
from tidegate.agents.sequencer.shell import AGENT
from tidegate.schemas.events import KeptnEvent, task_type

T0 = datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=UTC)

# `KeyState(...).model_dump_json()` of the pydantic state (its `recent` holds `-`: not standard base64).
OLD_RECORD = (
    b'{"project":"sockshop","stage":"dev","service":"carts","sequences":[{"triggered_id":"t-1","keptn_cont'
    b'ext":"ctx-1","name":"delivery","order":3,"triggered_at":"2026-12-06T10:00:00.123456Z","gitcommitid":'
    b'"abc123","tasks":[{"name":"deployment","triggeredAfter":null,"properties":{"deploymentstrategy":"dir'
    b'ect"}},{"name":"test","triggeredAfter":"10s","properties":{"teststrategy":"functional","timeout":"30'
    b'm"}},{"name":"evaluation","triggeredAfter":null,"properties":null}],"state":"started","state_before_'
    b'pause":null,"payload":{"project":"sockshop","stage":"dev","service":"carts","labels":{"a":"b"},"conf'
    b'igurationChange":{"values":{"image":"carts:0.13.1"}}},"next_index":1,"last_task":"deployment","last_'
    b'result":"pass","last_status":"succeeded","last_message":null,"current":{"index":1,"name":"test","due'
    b'_at":null,"triggered_id":"task-2","dispatched_at":"2026-12-06T10:00:00.123456Z","started":2,"finishe'
    b'd":1,"results":["pass"],"statuses":["succeeded"],"properties":{"test":{"x":1}},"message":"half","sta'
    b'rted_deadline":null,"timeout_deadline":"2026-12-06T10:00:00.123456Z"}},{"triggered_id":"t-2","keptn_'
    b'context":"ctx-2","name":"delivery","order":4,"triggered_at":"2026-12-06T10:00:00.123456Z","gitcommit'
    b'id":null,"tasks":[{"name":"deployment","triggeredAfter":null,"properties":null}],"state":"paused","s'
    b'tate_before_pause":"triggered","payload":{},"next_index":0,"last_task":null,"last_result":null,"last'
    b'_status":null,"last_message":null,"current":null}],"lock":"t-1","next_order":5,"applied":{"tidegate.'
    b'events:0":41},"recent":"0L7inCfJAVw6N457aC6CAaw9fJySS4rAD2LGIyoqK9CKEhyZ-W75bg==","paused_contexts":'
    b'["ctx-2"],"aborted_contexts":["ctx-0"]}'
)
# A record from before `applied`/`recent`: 70 input ids in `seen`.
OLD_SEEN_RECORD = (
    b'{"project": "sockshop", "stage": "dev", "service": "carts", "sequences": [], "lock": null, "next_ord'
    b'er": 2, "seen": ["id-0", "id-1", "id-2", "id-3", "id-4", "id-5", "id-6", "id-7", "id-8", "id-9", "id'
    b'-10", "id-11", "id-12", "id-13", "id-14", "id-15", "id-16", "id-17", "id-18", "id-19", "id-20", "id-'
    b'21", "id-22", "id-23", "id-24", "id-25", "id-26", "id-27", "id-28", "id-29", "id-30", "id-31", "id-3'
    b'2", "id-33", "id-34", "id-35", "id-36", "id-37", "id-38", "id-39", "id-40", "id-41", "id-42", "id-43'
    b'", "id-44", "id-45", "id-46", "id-47", "id-48", "id-49", "id-50", "id-51", "id-52", "id-53", "id-54"'
    b', "id-55", "id-56", "id-57", "id-58", "id-59", "id-60", "id-61", "id-62", "id-63", "id-64", "id-65",'
    b' "id-66", "id-67", "id-68", "id-69"], "paused_contexts": [], "aborted_contexts": []}'
)
# What the pydantic state wrote after reading OLD_SEEN_RECORD (the migrated form).
OLD_SEEN_MIGRATED = (
    b'{"project":"sockshop","stage":"dev","service":"carts","sequences":[],"lock":null,"next_order":2,"app'
    b'lied":{},"recent":"HyffYQ-tZvgJWYeugykYTSEKLENc6wM5rHId6Xeu4HVHL1Kqt7fMIE1poM47uagmX6Zqno2sJNkU-xy_I'
    b'X8p93bc1mZW94RjLIXrEE9Ll8l6Y4ZX1enzPOLfhlTeZeBpo9-JjnSkGLeaIvG0zn9ZnkCF8gqeXyOQ_mqL9nCUBJhwL7Ux8eCWS'
    b'Mk2MjiAoTKHDehXF_rNqWlAR3cjkddsRYwN3avnfeKucQgdjzx-Qu8nb_ltMGdOL8lYJ84yJKseszpcBMsd674RamtmQHc__CB-9'
    b'40bxPbJXRu0gtDDiLUAlGRvhNWOTvABlV9XwBGptpun7xs49tibLAhEtFcVM7SLPFNRefZG8ejbbZmj1nEszkE0a8AHvv9Fpb-VZ'
    b'zeRgslvoBI0COpO65YvPeSyUQe3USTFcuidIvPM9bZaVPM7Fa_-0gnYyTFaH27530iYlwTqfZo1bxDoVAnelpvcmZC5W_OeR64UQ'
    b'mGv9aF9WLWftqwwIWmSRcDTB4WYNmOQRePFkWmH8SEYyB-O8ozAWrgYgUlpKm0iBP1IgQtsKGMVc4RB1fyIXT5zGswrKT4Rud0R1'
    b'jzO4vq3g74jKhMIltI0Da7Jvi1JKv2ElOZiXYDfze8ndNRWyIh_IYmo29Qzao-IsUMDtrPOxskKg45je6m6EJN0gaXWnHFHB5Ncy'
    b'X8=","paused_contexts":[],"aborted_contexts":[]}'
)

EXPECTED = KeyState(
    project="sockshop", stage="dev", service="carts",
    sequences=[
        SequenceRun(
            triggered_id="t-1", keptn_context="ctx-1", name="delivery", order=3, triggered_at=T0, gitcommitid="abc123",
            tasks=[TaskSnapshot("deployment", None, {"deploymentstrategy": "direct"}),
                   TaskSnapshot("test", "10s", {"teststrategy": "functional", "timeout": "30m"}),
                   TaskSnapshot("evaluation")],
            state=SequenceState.STARTED,
            payload={"project": "sockshop", "stage": "dev", "service": "carts", "labels": {"a": "b"},
                     "configurationChange": {"values": {"image": "carts:0.13.1"}}},
            next_index=1, last_task="deployment", last_result="pass", last_status="succeeded",
            current=CurrentTask(index=1, name="test", triggered_id="task-2", dispatched_at=T0, started=2, finished=1,
                                results=["pass"], statuses=["succeeded"], properties={"test": {"x": 1}},
                                message="half", timeout_deadline=T0),
        ),
        SequenceRun(triggered_id="t-2", keptn_context="ctx-2", name="delivery", order=4, triggered_at=T0,
                    tasks=[TaskSnapshot("deployment")], state=SequenceState.PAUSED,
                    state_before_pause=SequenceState.TRIGGERED),
    ],
    lock="t-1", next_order=5, applied={"tidegate.events:0": 41},
    recent=b"".join(input_digest(f"in-{number}") for number in range(5)),
    paused_contexts=["ctx-2"], aborted_contexts=["ctx-0"],
)


def test_a_record_of_the_pydantic_state_decodes_to_the_same_state() -> None:
    state = STATE_CODEC.decode(OLD_RECORD)
    assert state == EXPECTED
    assert state.sequences[0].state is SequenceState.STARTED  # enum members, as the core compares them
    assert state.sequences[0].current is not None and state.sequences[0].current.dispatched
    assert AGENT.state is STATE_CODEC  # what the hosts read the state topic with


def test_a_record_with_seen_is_migrated_as_the_pydantic_state_migrated_it() -> None:
    state = STATE_CODEC.decode(OLD_SEEN_RECORD)
    assert state == STATE_CODEC.decode(OLD_SEEN_MIGRATED)
    assert state.recent == b"".join(input_digest(f"id-{number}") for number in range(70 - REMEMBERED_INPUTS, 70))
    assert (state.project, state.stage, state.service, state.next_order) == ("sockshop", "dev", "carts", 2)


def test_a_restored_old_record_still_recognises_its_inputs_and_goes_on() -> None:
    config = config_for(load_shipyard("""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: old}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: test}, {name: evaluation}]
"""))
    state = STATE_CODEC.decode(OLD_RECORD)
    again = trigger("dev", "delivery", event_id="in-3")  # an input the old record remembers
    assert [i.reason for i in decide(state, again, config, T0).ignored] == [IgnoreReason.DUPLICATE]
    replayed = decide(state, trigger("dev", "delivery", event_id="later"), config, T0, Position("tidegate.events", 0, 41))
    assert [i.reason for i in replayed.ignored] == [IgnoreReason.DUPLICATE]  # at or below its offset
    task = KeptnEvent(id="task-2", type=task_type("test", "triggered"), shkeptncontext="ctx-1",
                      data={"project": "sockshop", "stage": "dev", "service": "carts"})
    finished = decide(state, reply(task, "finished"), config, T0)  # the second responder of `test`
    assert finished.state is not None and finished.state.sequences[0].next_index == 2
    assert [e.event.type for e in finished.emitted] == [task_type("evaluation", "triggered")]
    assert STATE_CODEC.decode(OLD_RECORD) == EXPECTED  # the decision did not change the state it was given


def test_records_written_now_are_compact_and_read_back_the_same() -> None:
    record = STATE_CODEC.encode(EXPECTED)
    assert STATE_CODEC.decode(record) == EXPECTED
    assert STATE_CODEC.size(EXPECTED) == len(record) < len(OLD_RECORD)
    assert b":null" not in record and b'"next_index":0' not in record  # fields at their default are left out
    empty = KeyState(project="p", stage="s", service="c")
    assert STATE_CODEC.encode(empty) == b'{"project":"p","stage":"s","service":"c"}'
    assert STATE_CODEC.decode(STATE_CODEC.encode(empty)) == empty


@pytest.mark.parametrize("recent", [bytes([0xFB, 0xFF, 0xBF] * 8), EXPECTED.recent, b""])
def test_a_record_that_names_seen_in_its_data_takes_the_slower_way_to_the_same_state(recent: bytes) -> None:
    # "seen" in a payload sends a record written now the dict's way, which reads `recent` in either alphabet
    # (`+/+/`: the standard one's own characters).
    run = msgspec.structs.replace(EXPECTED.sequences[1], payload={"seen": ["a"], "note": "seen"})
    state = msgspec.structs.replace(EXPECTED, sequences=[run], recent=recent)
    record = STATE_CODEC.encode(state)
    assert b'"seen"' in record and base64.b64encode(recent) in record
    assert STATE_CODEC.decode(record) == state


def test_a_record_that_is_not_a_state_is_refused() -> None:
    with pytest.raises(msgspec.DecodeError):
        STATE_CODEC.decode(b"{not json")
    with pytest.raises(msgspec.ValidationError):
        STATE_CODEC.decode(b'{"project":"p","stage":"s"}')  # no service
    with pytest.raises(msgspec.ValidationError):
        STATE_CODEC.decode(b'{"project":"p","stage":"s","service":"c","recent":"!!"}')
