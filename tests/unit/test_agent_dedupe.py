"""One bounded deduplication for every agent (`agents.dedupe`): the evaluator and the remediator on replay.

A host that reads Kafka gives each input's position: after a crash the inputs since the last commit
are read again at the offsets they had, and each key knows the offset it last applied per input
partition. The same event sent again under a new offset is recognised by the window of recent id
digests. State records of the earlier form (`seen`: up to 500 full ids) still load, as the window.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from tests.unit.test_evaluator_flow import NOW, Lighthouse, only, sli_finished, triggered
from tests.unit.test_remediator_core import FREE, REMEDIATION, T0, get_action
from tidegate.agents.dedupe import (
    DIGEST_SIZE,
    REMEMBERED_INPUTS,
    REMEMBERED_PARTITIONS,
    handled_before,
    input_digest,
    migrate_seen,
    remember,
    remembers,
)
from tidegate.agents.evaluator.flow import EvaluatorState, decide
from tidegate.agents.evaluator.shell import AGENT as EVALUATOR
from tidegate.agents.kernel import Position
from tidegate.agents.remediator import IgnoreReason, RemediationState
from tidegate.agents.remediator import decide as remediate
from tidegate.agents.remediator.shell import AGENT as REMEDIATOR

TASKS, EVENTS = "t.tasks.evaluation", "t.events"


# --- the mechanism --------------------------------------------------------------------------------


def test_an_input_at_or_below_the_applied_offset_of_its_partition_was_handled_before() -> None:
    applied, recent = remember({}, b"", "a", Position(EVENTS, 2, 10))
    assert applied == {f"{EVENTS}:2": 10} and recent == input_digest("a")
    assert handled_before(applied, b"", "other", Position(EVENTS, 2, 10)) is not None
    assert "offset 9" in (handled_before(applied, b"", "other", Position(EVENTS, 2, 9)) or "")
    assert handled_before(applied, b"", "other", Position(EVENTS, 2, 11)) is None
    assert handled_before(applied, b"", "other", Position(EVENTS, 1, 3)) is None  # another partition
    assert handled_before(applied, recent, "a", Position(EVENTS, 2, 11)) is not None  # its id, a new offset
    assert handled_before(applied, recent, "a", None) is not None


def test_the_window_and_the_offsets_stay_bounded_and_the_arguments_unchanged() -> None:
    applied: dict[str, int] = {}
    recent = b""
    for number in range(3 * REMEMBERED_INPUTS):
        before = dict(applied)
        new_applied, recent = remember(applied, recent, f"id-{number}", Position(EVENTS, number % 20, number))
        assert applied == before
        applied = new_applied
    assert len(recent) == REMEMBERED_INPUTS * DIGEST_SIZE
    assert len(applied) == REMEMBERED_PARTITIONS
    assert handled_before({}, recent, f"id-{3 * REMEMBERED_INPUTS - 1}", None) is not None
    assert handled_before({}, recent, "id-0", None) is None  # forgotten by the window
    _, small = remember({}, b"", "x", None, limit=1)
    _, small = remember({}, small, "y", None, limit=1)
    assert small == input_digest("y")


def test_a_digest_counts_only_at_a_digest_boundary() -> None:
    first, second = input_digest("a"), input_digest("b")
    window = first + second
    straddling = window[4:12]  # the end of one digest and the start of the next
    assert handled_before({}, window, "a", None) is not None
    assert not remembers(window, straddling)


def test_an_old_seen_list_becomes_the_window_of_its_last_ids() -> None:
    seen = [f"old-{n}" for n in range(500)]
    migrated = migrate_seen({"seen": seen, "other": 1})
    assert "seen" not in migrated and migrated["other"] == 1
    state = EvaluatorState.model_validate(migrated)
    assert len(state.recent) == REMEMBERED_INPUTS * DIGEST_SIZE
    assert state.handled_before("old-499", None) is not None
    assert state.handled_before(f"old-{500 - REMEMBERED_INPUTS}", None) is not None
    assert state.handled_before(f"old-{499 - REMEMBERED_INPUTS}", None) is None


# --- the evaluator ----------------------------------------------------------------------------------


class FedEvaluator(Lighthouse):
    """The evaluator's key, fed with positions as the loop host gives them."""

    def at(self, event, topic: str, offset: int | None, partition: int = 1):  # type: ignore[no-untyped-def]
        position = Position(topic, partition, offset) if offset is not None else None
        decision = decide(self.state, event, self.config(), NOW, position)
        self.state = decision.state
        return decision


def test_an_evaluation_replayed_after_a_crash_sends_nothing_and_scores_nothing_twice() -> None:
    lighthouse = FedEvaluator()
    trigger = triggered(evaluation={"timeframe": "5m"})
    request = only(lighthouse.at(trigger, TASKS, 7), "tasks.get-sli")
    answer = sli_finished(request, {"response_time_p95": 500, "throughput": 9})
    assert lighthouse.at(answer, EVENTS, 40).emitted
    state = lighthouse.state
    assert state is not None and len(state.history) == 1 and not state.pending
    assert state.applied == {f"{TASKS}:1": 7, f"{EVENTS}:1": 40}

    # The worker crashed before committing: both inputs are read again at their offsets.
    for event, topic, offset in ((trigger, TASKS, 7), (answer, EVENTS, 40)):
        replay = decide(state, event, lighthouse.config(), NOW, Position(topic, 1, offset))
        assert replay.state is state and replay.outputs == ()
    # A trigger sent again (a new id, a new offset) is a new evaluation.
    again = triggered(evaluation={"timeframe": "5m"})
    assert only(lighthouse.at(again, TASKS, 8), "tasks.get-sli")
    assert lighthouse.state is not None and lighthouse.state.applied[f"{TASKS}:1"] == 8


def test_the_offset_recognises_a_replay_the_id_window_has_forgotten() -> None:
    lighthouse = FedEvaluator()
    first = triggered(evaluation={"timeframe": "5m"})
    lighthouse.at(first, TASKS, 0)
    for offset in range(1, REMEMBERED_INPUTS + 5):  # more triggers than the window holds
        lighthouse.at(triggered(evaluation={"timeframe": "5m"}), TASKS, offset)
    state = lighthouse.state
    assert state is not None and state.handled_before(first.id, None) is None  # forgotten by id
    assert decide(state, first, lighthouse.config(), NOW, Position(TASKS, 1, 0)).outputs == ()
    assert decide(state, first, lighthouse.config(), NOW).emitted  # by id alone it would run again


def test_an_sli_answer_sent_again_under_a_new_offset_scores_once() -> None:
    lighthouse = FedEvaluator()
    request = only(lighthouse.at(triggered(evaluation={"timeframe": "5m"}), TASKS, 3), "tasks.get-sli")
    answer = sli_finished(request, {"response_time_p95": 500, "throughput": 9})
    lighthouse.at(answer, EVENTS, 10)
    before = lighthouse.state
    again = lighthouse.at(answer, EVENTS, 11)  # re-sent by the provider: its id is remembered
    assert again.outputs == () and lighthouse.state is before
    assert before is not None and len(before.history) == 1


def test_an_evaluator_state_of_the_old_form_loads_and_recognises_its_last_inputs() -> None:
    lighthouse = Lighthouse()
    trigger = triggered(evaluation={"timeframe": "5m"})
    request = only(lighthouse.handle(trigger), "tasks.get-sli")
    assert lighthouse.state is not None
    old = lighthouse.state.model_dump(mode="json")
    del old["applied"], old["recent"]
    old["seen"] = [str(uuid.uuid4()) for _ in range(499)] + [trigger.id]  # as the code before wrote it
    assert EVALUATOR.state is not None
    loaded = EVALUATOR.state.decode(json.dumps(old).encode())  # as a host reads its state topic
    assert "seen" not in loaded.model_dump() and len(loaded.recent) == REMEMBERED_INPUTS * DIGEST_SIZE
    assert decide(loaded, trigger, lighthouse.config(), NOW, Position(TASKS, 0, 5)).outputs == ()
    # The pending request survived the migration and is answered.
    answer = sli_finished(request, {"response_time_p95": 500, "throughput": 9})
    scored = decide(loaded, answer, lighthouse.config(), NOW, Position(EVENTS, 0, 9))
    assert scored.emitted and scored.state is not None and scored.state.applied == {f"{EVENTS}:0": 9}
    assert len(EVALUATOR.state.encode(scored.state)) < len(json.dumps(old))


def test_an_evaluator_keys_state_stays_small_however_many_inputs_it_handled() -> None:
    lighthouse = FedEvaluator(history_size=1)
    for offset in range(300):
        request = only(lighthouse.at(triggered(evaluation={"timeframe": "5m"}), TASKS, offset), "tasks.get-sli")
        lighthouse.at(sli_finished(request, {"response_time_p95": 500, "throughput": 9}), EVENTS, offset)
    assert lighthouse.state is not None and EVALUATOR.state is not None
    # One stored result, two offsets, 64 digests: about 1.5 KB (500 full ids alone were ~19 KB).
    assert len(EVALUATOR.state.encode(lighthouse.state)) < 2048


# --- the remediator ---------------------------------------------------------------------------------


def test_a_get_action_replayed_after_a_crash_is_ignored_even_once_its_id_is_forgotten() -> None:
    settings = FREE.model_copy(update={"remembered_inputs": 10})
    first = get_action(event_id="first")
    decision = remediate(None, first, REMEDIATION, settings, T0, Position(TASKS, 2, 5))
    state = decision.state
    assert state is not None and decision.events and state.applied == {f"{TASKS}:2": 5}
    for offset in range(6, 20):  # other runs push the first id out of the window
        later = get_action(context=str(uuid.uuid4()), title=f"other-{offset}", event_id=f"later-{offset}")
        state = remediate(state, later, REMEDIATION, settings, T0, Position(TASKS, 2, offset)).state
        assert state is not None
    assert state.handled_before("first", None) is None
    replay = remediate(state, first, REMEDIATION, settings, T0 + timedelta(seconds=1), Position(TASKS, 2, 5))
    assert replay.state is state and replay.events == []
    assert [i.reason for i in replay.ignored] == [IgnoreReason.DUPLICATE]
    assert "offset 5" in replay.ignored[0].detail


def test_a_get_action_sent_again_under_a_new_offset_is_recognised_by_its_id() -> None:
    event = get_action()
    first = remediate(None, event, REMEDIATION, FREE, T0, Position(TASKS, 0, 1))
    again = remediate(first.state, event, REMEDIATION, FREE, T0, Position(TASKS, 0, 2))
    assert again.state is first.state and again.events == []
    assert [i.reason for i in again.ignored] == [IgnoreReason.DUPLICATE]


def test_a_remediator_state_of_the_old_form_loads_and_recognises_its_last_inputs() -> None:
    event = get_action()
    first = remediate(None, event, REMEDIATION, FREE, T0)
    assert first.state is not None
    old = first.state.model_dump(mode="json")
    del old["applied"], old["recent"]
    old["seen"] = [f"earlier-{n}" for n in range(499)] + [event.id]
    assert REMEDIATOR.state is not None
    loaded = REMEDIATOR.state.decode(json.dumps(old).encode())
    assert isinstance(loaded, RemediationState) and "seen" not in loaded.model_dump()
    assert len(loaded.recent) == REMEMBERED_INPUTS * DIGEST_SIZE
    again = remediate(loaded, event, REMEDIATION, FREE, T0, Position(TASKS, 0, 3))
    assert again.events == [] and [i.reason for i in again.ignored] == [IgnoreReason.DUPLICATE]
    assert loaded.problems == first.state.problems
