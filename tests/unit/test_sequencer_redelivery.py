"""Sequencer redelivery: the offset applied per input partition, a small window of id digests, old records.

A host that reads Kafka gives each input's position; an input at or below the offset a key last applied
from that partition is a replay. The same event sent again under a new offset (a producer's retry, the
CLI resending), or any input when the host has no offsets (`tidegate simulate`), is recognised by the
window of recent id digests. A state record of the old form (`seen`: up to 500 full ids) still loads.
"""

from __future__ import annotations

import json

import msgspec

from tests.unit.test_sequencer_helpers import (
    T0,
    Bus,
    config_for,
    key,
    load_shipyard,
    only_task,
    reply,
    trigger,
)
from tidegate.agents.dedupe import (
    DIGEST_SIZE,
    REMEMBERED_INPUTS,
    REMEMBERED_PARTITIONS,
    input_digest,
)
from tidegate.agents.kernel import Decision, Hosted, Position, Read, Runner
from tidegate.agents.sequencer import IgnoreReason, KeyState, decide
from tidegate.agents.sequencer.shell import AGENT
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.codec import encode
from tidegate.streams.topics import TopicRegistry

SHIPYARD = load_shipyard("""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: redelivery}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}]
""")
DEV = key("dev")
EVENTS = "t.events"


class Fed:
    """One key's state, fed through `decide` with positions as the loop host gives them."""

    def __init__(self, remembered_inputs: int = 64) -> None:
        self.config = config_for(SHIPYARD, remembered_inputs=remembered_inputs)
        self.state: KeyState | None = None

    def send(self, event: KeptnEvent, offset: int | None, partition: int = 3) -> Decision[KeyState]:
        position = Position(EVENTS, partition, offset) if offset is not None else None
        decision = decide(self.state, event, self.config, T0, position)
        if decision.state is not None:
            self.state = decision.state
        return decision


def run_one_sequence(fed: Fed, first_offset: int, context: str) -> KeptnEvent:
    """Trigger, `.started`, `.finished` at three offsets from `first_offset`; returns the trigger."""
    start = trigger("dev", "delivery", context=context)
    task = only_task(fed.send(start, first_offset))
    fed.send(reply(task, "started"), first_offset + 1)
    fed.send(reply(task, "finished"), first_offset + 2)
    assert fed.state is not None and not fed.state.sequences
    return start


def test_a_replay_at_or_below_the_applied_offset_changes_nothing_even_once_its_id_is_forgotten() -> None:
    fed = Fed(remembered_inputs=2)  # the id window forgets the first sequence's inputs at once
    first = run_one_sequence(fed, 10, "run-a")
    second = trigger("dev", "delivery", context="run-b")
    fed.send(second, 13)
    state = fed.state
    assert state is not None and state.applied == {f"{EVENTS}:3": 13}

    replay = decide(state, first, fed.config, T0, Position(EVENTS, 3, 10))  # a crash replays from offset 10
    assert replay.state is state and replay.emitted == [] and replay.audit == []
    assert [i.reason for i in replay.ignored] == [IgnoreReason.DUPLICATE]
    assert "offset 10" in replay.ignored[0].detail

    # The offset is what recognised it: by its id alone (forgotten), the finished sequence would run again.
    by_id_only = decide(state, first, fed.config, T0)
    assert not by_id_only.ignored and by_id_only.audit


def test_the_same_event_sent_again_under_a_new_offset_is_recognised_by_its_id() -> None:
    fed = Fed()
    task = only_task(fed.send(trigger("dev", "delivery"), 0))
    started = reply(task, "started")
    fed.send(started, 1)
    before = fed.state
    again = fed.send(started, 2)  # re-sent by its producer: a new offset, the same id
    assert again.state is before and again.emitted == [] and again.audit == []
    assert [i.reason for i in again.ignored] == [IgnoreReason.DUPLICATE]
    assert before is not None and before.sequences[0].current is not None
    assert before.sequences[0].current.started == 1


def test_offsets_are_remembered_per_input_partition_and_bounded() -> None:
    fed = Fed()
    fed.send(trigger("dev", "delivery", context="run-a"), 10, partition=3)
    # After repartitioning the key reads from another partition, whose offsets start lower: applied.
    moved = fed.send(trigger("dev", "delivery", context="run-b"), 1, partition=5)
    assert not moved.ignored
    assert fed.state is not None and fed.state.applied == {f"{EVENTS}:3": 10, f"{EVENTS}:5": 1}
    for partition in range(6, 6 + REMEMBERED_PARTITIONS):
        fed.send(trigger("dev", "delivery", context=f"run-{partition}"), 0, partition=partition)
    assert len(fed.state.applied) == REMEMBERED_PARTITIONS
    assert f"{EVENTS}:3" not in fed.state.applied  # the oldest is forgotten first


def test_without_positions_the_id_window_alone_recognises_a_redelivery_and_stays_bounded() -> None:
    bus = Bus(config_for(SHIPYARD, remembered_inputs=4))
    start = trigger("dev", "delivery")
    task = only_task(bus.send(start))
    started = reply(task, "started")
    bus.send(started)
    assert [i.reason for i in bus.send(started).ignored] == [IgnoreReason.DUPLICATE]
    assert [i.reason for i in bus.send(start).ignored] == [IgnoreReason.DUPLICATE]
    for number in range(10):
        bus.send(trigger("dev", "delivery", context=f"later-{number}"))
    state = bus.state(DEV)
    assert state.applied == {}
    assert len(state.recent) == 4 * DIGEST_SIZE


def test_a_state_record_of_the_old_form_loads_and_still_recognises_its_inputs() -> None:
    bus = Bus(config_for(SHIPYARD))
    task = only_task(bus.send(trigger("dev", "delivery")))
    started = reply(task, "started")
    bus.send(started)
    # The record as the code before `applied`/`recent` wrote it: every handled id in `seen` (at most 500).
    old = msgspec.to_builtins(msgspec.structs.asdict(bus.state(DEV)))  # every field, as pydantic wrote
    del old["applied"], old["recent"]
    old["seen"] = [f"earlier-{number}" for number in range(498)] + [task.id, started.id]
    assert AGENT.state is not None
    loaded = AGENT.state.decode(json.dumps(old).encode())  # as the host reads its state topic
    assert loaded.recent == b"".join(input_digest(i) for i in old["seen"][-REMEMBERED_INPUTS:])
    assert b'"seen"' not in AGENT.state.encode(loaded)
    assert len(loaded.recent) == REMEMBERED_INPUTS * DIGEST_SIZE  # its last ids, as digests
    again = decide(loaded, started, bus.config, T0, Position(EVENTS, 3, 7))  # no offset applied yet
    assert [i.reason for i in again.ignored] == [IgnoreReason.DUPLICATE]
    assert loaded.sequences[0].current is not None and loaded.sequences[0].current.started == 1
    # The next input it applies is remembered in the new form: its digest last, its offset.
    finished_event = reply(task, "finished")
    finished = decide(loaded, finished_event, bus.config, T0, Position(EVENTS, 3, 8))
    assert finished.state is not None and finished.audit
    assert finished.state.recent[-DIGEST_SIZE:] == input_digest(finished_event.id)
    assert len(finished.state.recent) == REMEMBERED_INPUTS * DIGEST_SIZE
    assert finished.state.applied == {f"{EVENTS}:3": 8}


def test_an_idle_key_keeps_a_small_state_after_many_sequences() -> None:
    fed = Fed()
    for number in range(300):
        run_one_sequence(fed, 3 * number, f"run-{number}")
    assert fed.state is not None
    assert AGENT.state is not None
    assert len(AGENT.state.encode(fed.state)) <= 2048


def test_the_runner_gives_decide_the_position_the_host_read_the_input_at() -> None:
    registry = TopicRegistry()
    runner = Runner(Hosted(AGENT, config_for(SHIPYARD)), registry)
    start = trigger("dev", "delivery")
    read = runner.read(registry.events, encode(start, DEV), None, Position(registry.events, 2, 41))
    assert isinstance(read, Read)
    step = runner.step(None, runner.prepared(read), T0)
    assert step.state is not None and step.state.applied == {f"{registry.events}:2": 41}
