"""The sequencer core's fast paths decide exactly as the plain versions they replaced.

- `decide` copies only what it changes instead of deep-copying the state: over a long scenario (two
  responders, approval, pause/resume while a task finishes, abort, started and task timeouts, a
  `triggeredAfter` delay, follow-ups to two sequences, a redelivery) every decision equals the one a
  deep-copying core gives, and no state handed to `decide` ever changes, not even by later decisions.
- The helpers it leans on (`derived_id`, `format_time`, `copy_value`, `merge`) give the same values as
  the standard-library forms they replaced.
- The shortcuts of the rules and the core (follow-ups without building the built-in remediation, the
  aggregation on plain strings, the cached type parsing, audit ids formatted from the StrEnum) give
  the same values as the plain forms.
"""

from __future__ import annotations

import copy
import itertools
import random
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from typing import Any

import msgspec
import pytest

from tests.unit.test_sequencer_helpers import (
    T0,
    config_for,
    key,
    load_shipyard,
    reply,
    tasks_of,
    trigger,
)
from tidegate.agents.merge import copy_value, merge
from tidegate.agents.sequencer import (
    AuditKind,
    ControlState,
    Decision,
    KeyState,
    SequencerConfig,
    TaskSnapshot,
    control_event,
    core,
    next_deadline,
    rules,
    tick_event,
)
from tidegate.schemas.events import EventType, KeptnEvent, Result, Status, TaskKind, format_time, task_type
from tidegate.schemas.ids import NAMESPACE, derived_id
from tidegate.schemas.keys import Key
from tidegate.schemas.shipyard import REMEDIATION, Task, builtin_remediation

SHIPYARD = load_shipyard("""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: copies}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - {name: deployment, properties: {deploymentstrategy: direct, names: [a, b]}}
            - {name: approval, properties: {pass: manual, warning: manual}}
            - {name: test, properties: {teststrategy: functional, timeout: 5m}}
            - {name: release, triggeredAfter: 10m}
    - name: staging
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
        - name: cleanup
          triggeredOn: [{event: dev.delivery.finished, selector: {match: {result: pass}}}]
          tasks: [{name: cleanup}]
""")
DEV = key("dev")
STAGING = key("staging")


def _dump(state: KeyState | None) -> Any:
    return None if state is None else msgspec.to_builtins(state)


def _deep_snapshot(task: Task) -> TaskSnapshot:
    return TaskSnapshot(task.name, task.triggeredAfter, copy.deepcopy(task.properties))


def _deep_copy_decide(state: KeyState | None, event: KeptnEvent, config: SequencerConfig,
                      now: datetime) -> Decision:
    """The core as it was: it worked on a deep copy of the state and deep-copied task snapshots."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core, "_working_copy", copy.deepcopy)
        patch.setattr(TaskSnapshot, "of", _deep_snapshot)
        return core.decide(state, event, config, now)


class CheckedBus:
    """Feeds `decide` like the tests' Bus and checks every decision against the deep-copying core."""

    def __init__(self) -> None:
        self.config = config_for(SHIPYARD)
        self.now = T0
        self.states: dict[Key, KeyState] = {}
        self.given: list[tuple[KeyState, Any]] = []  # every state passed in, with its dump at the time
        self.kinds: list[AuditKind] = []
        self.decisions = 0

    def send(self, event: KeptnEvent, *, at: datetime | None = None) -> Decision:
        self.now = at or self.now
        target = Key.of_data(event.data)
        state = self.states.get(target)
        before = _dump(state)
        decision = core.decide(state, event, self.config, self.now)
        assert _dump(state) == before, f"decide changed its input state on {event.type}"
        expected = _deep_copy_decide(state, event, self.config, self.now)
        assert (decision.state is state) == (expected.state is state)
        assert _dump(decision.state) == _dump(expected.state)
        assert decision.outputs == expected.outputs
        if state is not None:
            self.given.append((state, before))
        if decision.state is not None:
            self.states[target] = decision.state
        self.kinds.extend(record.kind for record in decision.audit)
        self.decisions += 1
        return decision

    def answer(self, task: KeptnEvent, *, responders: int = 1, result: str = "pass", **data: Any) -> Decision:
        for _ in range(responders):
            self.send(reply(task, "started"))
        decision = None
        for number in range(responders):
            decision = self.send(reply(task, "finished", result=result, **{**data, "responder": number}))
        assert decision is not None
        return decision

    def tick(self, target: Key) -> Decision:
        deadline = next_deadline(self.states[target])
        assert deadline is not None
        return self.send(tick_event(target, deadline), at=deadline)


def _task(decision: Decision, name: str) -> KeptnEvent:
    sent = [event for event in tasks_of(decision) if event.parsed_type.task == name]
    assert len(sent) == 1, f"expected one {name}.triggered, got {[e.type for e in tasks_of(decision)]}"
    return sent[0]


def test_fast_copies_decide_like_the_deep_copying_core_and_never_touch_a_given_state() -> None:
    bus = CheckedBus()
    deploy_1 = _task(bus.send(trigger("dev", "delivery", context="ctx-1", labels={"team": "a"})), "deployment")
    queued_2 = trigger("dev", "delivery", context="ctx-2")
    bus.send(queued_2)
    bus.send(trigger("dev", "delivery", context="ctx-3"))  # queued, aborted below
    bus.send(trigger("dev", "delivery", context="ctx-4"))  # queued, times out waiting for a .started
    # Two responders; the approval gives the lock up, so ctx-2 starts its deployment in the same decision.
    decision = bus.answer(deploy_1, responders=2, deployment={"deploymentURIsLocal": ["http://dev"], "n": {"k": [1]}})
    approval_1, deploy_2 = _task(decision, "approval"), _task(decision, "deployment")
    bus.send(control_event(DEV, "ctx-1", ControlState.PAUSE))
    bus.answer(approval_1)  # completes while paused: the next task waits for resume
    bus.send(control_event(DEV, "ctx-3", ControlState.ABORT))
    bus.send(queued_2)  # a redelivered input changes nothing
    decision = bus.answer(deploy_2, deployment={"deploymentURIsLocal": ["http://dev-2"]})
    approval_2, deploy_4 = _task(decision, "approval"), _task(decision, "deployment")
    assert deploy_4.shkeptncontext == "ctx-4"
    assert tasks_of(bus.send(control_event(DEV, "ctx-1", ControlState.RESUME))) == []  # ctx-4 holds the lock
    bus.answer(approval_2)  # ctx-2 waits for the lock as well
    test_1 = _task(bus.tick(DEV), "test")  # nobody took ctx-4's deployment: the started timeout frees the lock
    bus.send(reply(test_1, "started"))
    test_2 = _task(bus.tick(DEV), "test")  # test_1's own timeout ends ctx-1
    assert tasks_of(bus.answer(test_2, test={"passed": 3})) == []  # release waits for its triggeredAfter
    release_2 = _task(bus.tick(DEV), "release")
    finished = bus.answer(release_2)
    follow_ups = [e.event for e in finished.emitted if e.key == STAGING]
    assert sorted(event.type for event in follow_ups) == [
        "sh.keptn.event.staging.cleanup.triggered", "sh.keptn.event.staging.delivery.triggered"]
    for event in follow_ups:  # the fan-out runs on in the next stage
        bus.answer(tasks_of(bus.send(event))[0])
    assert bus.states[DEV].sequences == [] and bus.states[STAGING].sequences == []

    # The scenario went through every kind of transition the copies must survive.
    assert set(AuditKind) - set(bus.kinds) == set()
    # No later decision changed any state an earlier one was given, even though they share parts.
    for given, dump in bus.given:
        assert _dump(given) == dump
    assert bus.decisions > 30


def test_the_working_copy_shares_nothing_the_core_changes_in_place() -> None:
    bus = CheckedBus()
    task = _task(bus.send(trigger("dev", "delivery")), "deployment")
    bus.send(reply(task, "started"))
    state = bus.states[DEV]
    work = core._working_copy(state)
    assert work == state
    assert work is not state and work.sequences is not state.sequences
    run, original = work.sequences[0], state.sequences[0]
    assert run is not original and run.current is not original.current
    assert run.current is not None and original.current is not None
    assert run.current.results is not original.current.results
    assert run.current.statuses is not original.current.statuses


# ---------------------------------------------------------------------------------------------- helpers


def _text(rng: random.Random) -> str:
    return "".join(rng.choice("abc-:/0123456789é€😀 ") for _ in range(rng.randint(0, 40)))


def test_derived_id_is_uuid5_of_input_and_purpose() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        input_id, purpose = _text(rng), _text(rng)
        assert derived_id(input_id, purpose) == str(uuid.uuid5(NAMESPACE, f"{input_id}:{purpose}"))


def _strftime_form(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@pytest.mark.parametrize("zone", [None, UTC, timezone(timedelta(hours=5, minutes=30)),
                                  timezone(timedelta(hours=-8)), timezone(timedelta(microseconds=1500))])
def test_format_time_matches_strftime(zone: timezone | None) -> None:
    rng = random.Random(11)
    moments = [datetime(rng.randint(2, 9998), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                        rng.randint(0, 59), rng.randint(0, 59), rng.randint(0, 999_999), tzinfo=zone)
               for _ in range(500)]
    moments += [datetime(999, 12, 31, 23, 59, 59, 999_999, tzinfo=zone), datetime(1000, 1, 2, tzinfo=zone)]
    for moment in moments:
        assert format_time(moment) == _strftime_form(moment)


def test_copy_value_equals_deepcopy_and_shares_nothing() -> None:
    value: dict[str, Any] = {"a": [1, {"b": None, "c": [True, 2.5]}], "s": "x", "o": OrderedDict(k=[1]),
                             "t": (1, [2]), "d": {3: [4]}}
    copied = copy_value(value)
    assert repr(copied) == repr(copy.deepcopy(value))
    copied["a"][1]["c"].append(0)
    copied["o"]["k"].append(0)
    copied["t"][1].append(0)
    copied["d"][3].append(0)
    assert value == {"a": [1, {"b": None, "c": [True, 2.5]}], "s": "x", "o": OrderedDict(k=[1]), "t": (1, [2]),
                     "d": {3: [4]}}


def test_merge_keeps_the_key_order_of_earlier_then_new_keys() -> None:
    merged = merge({"z": 1, "a": {"y": 1, "b": 2}, "m": [1]}, {"n": 0, "a": {"c": 3, "y": 4}, "m": [2], "b": 5})
    assert list(merged) == ["z", "a", "m", "n", "b"]
    assert list(merged["a"]) == ["y", "b", "c"]
    assert merged == {"z": 1, "a": {"y": 4, "b": 2, "c": 3}, "m": [2, 1], "n": 0, "b": 5}


class _Colour(StrEnum):
    RED = "red"


class _Level(IntEnum):
    LOW = 1


def _plain_merge(earlier: Any, later: Any) -> Any:
    """`merge` before its shortcut for scalar later values."""
    if isinstance(earlier, dict) and isinstance(later, dict):
        out: dict[Any, Any] = {name: _plain_merge(value, later[name]) if name in later else copy_value(value)
                               for name, value in earlier.items()}
        for name, value in later.items():
            if name not in earlier:
                out[name] = copy_value(value)
        return out
    if isinstance(earlier, list) and isinstance(later, list):
        return copy_value(later) + copy_value(earlier)
    return copy_value(later)


def _value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON-like value, sometimes with look-alike types the shortcut must not take for plain scalars."""
    choice = rng.randint(0, 9 if depth < 3 else 5)
    scalars: list[Any] = ["s", "", 0, 7, 1.5, True, False, None, _Colour.RED, _Level.LOW]
    if choice <= 5:
        return rng.choice(scalars)
    if choice == 6:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if choice == 7:
        return OrderedDict((rng.choice("abc"), _value(rng, depth + 1)) for _ in range(rng.randint(0, 2)))
    return {rng.choice("abcd"): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _typed(value: Any) -> Any:
    """`value` with the type of every part spelled out, so equal-but-differently-typed values differ."""
    if isinstance(value, dict):
        return (type(value).__name__, [(name, _typed(item)) for name, item in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(item) for item in value])
    return (type(value).__name__, value)


def test_merge_equals_the_merge_without_the_scalar_shortcut() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        earlier, later = _value(rng), _value(rng)
        merged = merge(earlier, later)
        assert _typed(merged) == _typed(_plain_merge(earlier, later))
    scalar_later = {"x": {"y": [1]}}
    assert merge(scalar_later, {"x": None}) == {"x": None}


_GOOD = {Result.PASS.value, Result.WARNING.value}


def _plain_aggregate(results: list[str | None], statuses: list[str | None]) -> tuple[Result, Status]:
    """`aggregate` as it was written with the enums' `.value`."""
    if any(r not in _GOOD for r in results):
        result = Result.FAIL
    elif any(r == Result.WARNING.value for r in results):
        result = Result.WARNING
    else:
        result = Result.PASS
    if any(s == Status.ERRORED.value for s in statuses):
        status, result = Status.ERRORED, Result.FAIL
    elif any(s == Status.ABORTED.value for s in statuses):
        status = Status.ABORTED
    elif all(s == Status.SUCCEEDED.value for s in statuses):
        status = Status.SUCCEEDED
    else:
        status, result = Status.UNKNOWN, Result.FAIL
    return result, status


def test_aggregate_equals_the_aggregation_on_enum_values() -> None:
    results: list[str | None] = ["pass", "warning", "fail", "failed", None, ""]
    statuses: list[str | None] = ["succeeded", "errored", "aborted", "unknown", None, "x"]
    result_lists = [list(c) for n in range(3) for c in itertools.product(results, repeat=n)]
    status_lists = [list(c) for n in range(3) for c in itertools.product(statuses, repeat=n)]
    for result_list, status_list in itertools.product(result_lists, status_lists):
        assert rules.aggregate(result_list, status_list) == _plain_aggregate(result_list, status_list)
        for result, status in zip(result_list, status_list, strict=False):
            assert rules.stops_sequence(result, status) == (result == "fail" or status == "errored")


FOLLOW_UPS = load_shipyard("""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: follow-ups}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}]
        - name: rollback
          triggeredOn: [{event: dev.remediation.finished}, {event: dev.delivery.finished, selector: {match: {result: fail}}}]
          tasks: [{name: rollback}]
    - name: prod
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}, {event: prod.remediation.finished}]
          tasks: [{name: deployment}]
        - name: remediation
          triggeredOn: [{event: prod.remediation.finished, selector: {match: {action.result: pass}}}]
          tasks: [{name: action}]
    - name: hotfix
      sequences:
        - name: evaluation
          triggeredOn: [{event: dev.evaluation.finished, selector: {match: {evaluation.result: fail}}}]
          tasks: [{name: evaluation}]
""")


def test_follow_ups_equal_the_ones_found_with_every_built_in_sequence() -> None:
    every = [(stage.name, name) for stage in FOLLOW_UPS.spec.stages
             for name in ("delivery", "rollback", "evaluation", REMEDIATION)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rules, "_candidates",
                      lambda stage, _finished, wait: stage.sequences_with_builtins(remediation_wait=wait))
        expected = {(stage, name, result, last): rules.follow_ups(FOLLOW_UPS, stage, name, result, last)
                    for stage, name in every for result in ("pass", "warning", "fail")
                    for last in (None, "evaluation", "action", "deployment")}
    # dev declares no remediation: the built-in one re-triggers itself there.
    assert any(rules.FollowUp("dev", REMEDIATION) in fired for fired in expected.values())
    for (stage, name, result, last), fired in expected.items():
        assert rules.follow_ups(FOLLOW_UPS, stage, name, result, last) == fired


def test_the_built_in_remediation_only_listens_to_remediation_finished() -> None:
    # The premise of `rules._candidates`: no other finished sequence can trigger it.
    for listened in builtin_remediation("dev", "5m").triggeredOn:
        assert listened.event.endswith(f".{REMEDIATION}.finished")


def test_type_helpers_and_audit_kind_text_equal_the_plain_forms() -> None:
    for raw in ("sh.keptn.event.dev.delivery.triggered", "sh.keptn.event.test.finished", "sh.keptn.event.a.b",
                "sh.keptn.event.x.status.changed", "sh.keptn.events.problem", "sh.tidegate.tick", ""):
        assert EventType.parse(raw) == EventType._parse(raw)
    for task in ("deployment", "approval", "get-action"):
        for kind in TaskKind:
            assert task_type(task, kind) == task_type(task, kind.value) == f"sh.keptn.event.{task}.{kind.value}"
    for kind in AuditKind:
        assert f"{kind}" == kind.value
