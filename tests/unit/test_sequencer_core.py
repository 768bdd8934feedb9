"""Sequencer core: lifecycle, task counting, aggregation, payloads, invalid input, idempotence, state."""

from __future__ import annotations

import msgspec
import pytest

from tests.unit.test_sequencer_helpers import (
    MINUTE,
    T0,
    Bus,
    config_for,
    events_of_type,
    key,
    kinds,
    load_shipyard,
    only_task,
    reply,
    tasks_of,
    trigger,
)
from tidegate.agents.dedupe import DIGEST_SIZE
from tidegate.agents.sequencer import (
    STATE_CODEC,
    AuditKind,
    IgnoreReason,
    SequenceState,
    decide,
)
from tidegate.agents.sequencer.rules import aggregate
from tidegate.schemas.events import KeptnEvent

SHIPYARD = load_shipyard("""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: core}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - {name: deployment, properties: {deploymentstrategy: direct}}
            - {name: test, properties: {teststrategy: functional}}
            - {name: release}
        - name: empty
          tasks: []
    - name: staging
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
""")
CONFIG = config_for(SHIPYARD)
DEV = key("dev")


def test_tasks_run_one_after_another_and_the_sequence_finishes() -> None:
    bus = Bus(CONFIG)
    start = trigger("dev", "delivery", context="run-7")
    first = bus.send(start)
    deployment = only_task(first)
    assert deployment.type == "sh.keptn.event.deployment.triggered"
    assert deployment.shkeptncontext == "run-7"
    assert deployment.triggeredid is None  # Keptn's task .triggered events carry no triggeredid
    assert first.emitted[0].destination == "tasks.deployment"
    assert first.emitted[0].key == DEV
    assert bus.state(DEV).sequences[0].state is SequenceState.STARTED

    test = only_task(bus.respond(deployment))
    assert test.type == "sh.keptn.event.test.triggered"
    release = only_task(bus.respond(test))
    assert release.type == "sh.keptn.event.release.triggered"
    done = bus.respond(release)

    finished = events_of_type(done, "sh.keptn.event.dev.delivery.finished")
    assert len(finished) == 1
    assert finished[0].triggeredid == start.id
    assert finished[0].shkeptncontext == "run-7"
    assert (finished[0].data["result"], finished[0].data["status"]) == ("pass", "succeeded")
    assert bus.state(DEV).sequences == []
    assert bus.state(DEV).lock is None


def test_every_output_id_is_unique_and_differs_from_the_input() -> None:
    bus = Bus(CONFIG)
    start = trigger("dev", "delivery")
    decisions = [bus.send(start)]
    task = only_task(decisions[0])
    for _ in range(3):
        decisions.append(bus.send(reply(task, "started")))
        decisions.append(bus.send(reply(task, "finished")))
        sent = tasks_of(decisions[-1])
        task = sent[0] if sent else task
    ids = [e.event.id for d in decisions for e in d.emitted] + [r.id for d in decisions for r in d.audit]
    assert len(ids) == len(set(ids))
    assert start.id not in ids


def test_task_payload_merges_previous_results_and_puts_properties_under_the_task_name() -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger(
        "dev", "delivery", labels={"buildId": "17"}, message="please deploy",
        configurationChange={"values": {"image": "carts:0.13.1"}},
    )))
    assert deployment.data == {
        "project": "sockshop", "stage": "dev", "service": "carts", "labels": {"buildId": "17"},
        "message": "",
        "configurationChange": {"values": {"image": "carts:0.13.1"}},
        "deployment": {"deploymentstrategy": "direct"},
    }
    bus.send(reply(deployment, "started"))
    test = only_task(bus.send(reply(
        deployment, "finished", message="deployed",
        deployment={"deploymentstrategy": "direct", "deploymentNames": ["direct"],
                    "deploymentURIsLocal": ["http://carts.sockshop-dev:80"]},
    )))
    assert test.data == {
        "project": "sockshop", "stage": "dev", "service": "carts", "labels": {"buildId": "17"},
        "configurationChange": {"values": {"image": "carts:0.13.1"}},
        "deployment": {"deploymentstrategy": "direct", "deploymentNames": ["direct"],
                       "deploymentURIsLocal": ["http://carts.sockshop-dev:80"]},
        "test": {"teststrategy": "functional"},
        "result": "pass", "status": "succeeded",
        "message": "",  # the deployment's message does not leak into the next task
    }


@pytest.mark.parametrize(
    ("result", "status", "continues"),
    [
        ("pass", "succeeded", True),
        ("warning", "succeeded", True),
        ("fail", "succeeded", False),
        ("warning", "errored", False),
    ],
)
def test_fail_or_errored_stops_the_sequence_and_warning_continues(result: str, status: str, continues: bool) -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery")))
    decision = bus.respond(deployment, result=result, status=status)
    finished = events_of_type(decision, "sh.keptn.event.dev.delivery.finished")
    if continues:
        assert [t.type for t in tasks_of(decision)] == ["sh.keptn.event.test.triggered"]
        assert finished == []
    else:
        assert tasks_of(decision) == []
        # An errored task fails whatever result it reported (a result means something only on success).
        assert (finished[0].data["result"], finished[0].data["status"]) == ("fail", status)
        # A failed sequence does not fire a follow-up without a selector.
        assert events_of_type(decision, "sh.keptn.event.staging.delivery.triggered") == []


def test_sequence_result_is_the_last_tasks_not_the_worst() -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery")))
    test = only_task(bus.respond(deployment, result="warning"))
    release = only_task(bus.respond(test))
    assert release.data["result"] == "pass"
    finished = events_of_type(bus.respond(release), "sh.keptn.event.dev.delivery.finished")[0]
    assert finished.data["result"] == "pass"


def test_two_responders_complete_the_task_when_both_finished_and_results_aggregate() -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery")))
    bus.send(reply(deployment, "started"))
    bus.send(reply(deployment, "started"))
    first = bus.send(reply(deployment, "finished", result="warning"))
    assert tasks_of(first) == []  # 2 started, 1 finished: still running
    second = bus.send(reply(deployment, "finished", result="pass"))
    test = only_task(second)
    assert test.data["result"] == "warning"
    current = bus.state(DEV).sequences[0].current
    assert current is not None
    assert current.name == "test"


def test_a_finished_before_the_second_started_completes_the_task_early() -> None:
    # Keptn's counting rule (keptn#7172): finished == started > 0 completes the task. Per-key order
    # on Kafka keeps this from happening by accident; the late replies are then ignored.
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery")))
    bus.send(reply(deployment, "started"))
    early = bus.send(reply(deployment, "finished"))
    assert [t.type for t in tasks_of(early)] == ["sh.keptn.event.test.triggered"]
    late_started = bus.send(reply(deployment, "started"))
    late_finished = bus.send(reply(deployment, "finished", result="fail"))
    for late in (late_started, late_finished):
        assert [i.reason for i in late.ignored] == [IgnoreReason.UNKNOWN_TRIGGEREDID]
        assert late.emitted == []


def test_a_lone_finished_never_completes_a_task() -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery")))
    decision = bus.send(reply(deployment, "finished"))
    assert tasks_of(decision) == []
    current = bus.state(DEV).sequences[0].current
    assert current is not None
    assert (current.name, current.started, current.finished) == ("deployment", 0, 1)


@pytest.mark.parametrize(
    ("results", "statuses", "expected"),
    [
        (["pass", "pass"], ["succeeded", "succeeded"], ("pass", "succeeded")),
        (["pass", "warning"], ["succeeded", "succeeded"], ("warning", "succeeded")),
        (["warning", "fail"], ["succeeded", "succeeded"], ("fail", "succeeded")),
        (["pass", None], ["succeeded", "succeeded"], ("fail", "succeeded")),  # a missing result is fail
        (["pass", "pass"], ["succeeded", "errored"], ("fail", "errored")),  # Tidegate: errored is never pass
        (["pass", "pass"], ["aborted", "errored"], ("fail", "errored")),
        (["pass", "pass"], ["aborted", "succeeded"], ("pass", "aborted")),
        (["pass"], [None], ("fail", "unknown")),  # not all succeeded: unknown, and the result is forced to fail
    ],
)
def test_aggregation_of_finished_replies(results: list[str | None], statuses: list[str | None],
                                         expected: tuple[str, str]) -> None:
    result, status = aggregate(results, statuses)
    assert (result.value, status.value) == expected


@pytest.mark.parametrize(
    ("stage", "sequence", "shipyard_known", "words"),
    [
        ("qa", "delivery", True, ["no stage 'qa'", "dev, staging"]),
        ("dev", "canary", True, ["no sequence 'canary'", "delivery", "evaluation"]),
        ("dev", "empty", True, ["'empty' has no tasks"]),
        ("dev", "delivery", False, ["no shipyard"]),
    ],
)
def test_a_sequence_that_cannot_start_finishes_errored_saying_what_is_missing(
    stage: str, sequence: str, shipyard_known: bool, words: list[str]
) -> None:
    bus = Bus(config_for(SHIPYARD if shipyard_known else None))
    start = trigger(stage, sequence)
    decision = bus.send(start)
    assert tasks_of(decision) == []
    [finished] = events_of_type(decision, f"sh.keptn.event.{stage}.{sequence}.finished")
    assert finished.triggeredid == start.id
    assert (finished.data["status"], finished.data["result"]) == ("errored", "fail")
    assert finished.data["message"].startswith(f"Unable to start sequence '{sequence}' in stage '{stage}'")
    for word in words:
        assert word in finished.data["message"]
    assert [r.kind for r in decision.audit] == [AuditKind.FINISHED]
    assert decision.audit[0].status == "errored"
    # ... and a redelivery of the same trigger is recognised.
    assert [i.reason for i in bus.send(start).ignored] == [IgnoreReason.DUPLICATE]


def test_every_stage_has_the_built_in_evaluation_sequence() -> None:
    bus = Bus(CONFIG)
    decision = bus.send(trigger("staging", "evaluation", evaluation={"timeframe": "5m"}))
    evaluation = only_task(decision)
    assert evaluation.type == "sh.keptn.event.evaluation.triggered"
    assert evaluation.data["evaluation"] == {"timeframe": "5m"}
    done = bus.respond(evaluation, result="warning")
    [finished] = events_of_type(done, "sh.keptn.event.staging.evaluation.finished")
    assert finished.data["result"] == "warning"


@pytest.mark.parametrize("missing", ["project", "stage", "service"])
def test_a_trigger_without_project_stage_or_service_goes_to_the_dlq(missing: str) -> None:
    event = trigger("dev", "delivery")
    event.data.pop(missing)
    decision = decide(None, event, CONFIG, T0)
    assert decision.state is None
    assert decision.emitted == []
    [ignored] = decision.ignored
    assert ignored.dead_letter
    assert missing in ignored.detail


def test_a_trigger_whose_type_and_data_disagree_on_the_stage_goes_to_the_dlq() -> None:
    event = trigger("dev", "delivery").model_copy(update={"type": "sh.keptn.event.staging.delivery.triggered"})
    [ignored] = decide(None, event, CONFIG, T0).ignored
    assert ignored.dead_letter
    assert "'staging'" in ignored.detail and "'dev'" in ignored.detail


def test_a_trigger_without_keptn_context_goes_to_the_dlq() -> None:
    event = trigger("dev", "delivery").model_copy(update={"shkeptncontext": None})
    [ignored] = decide(None, event, CONFIG, T0).ignored
    assert ignored.dead_letter and "shkeptncontext" in ignored.detail


def test_replies_to_unknown_tasks_are_ignored_and_change_nothing() -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery")))
    before = bus.state(DEV)
    stranger = KeptnEvent(type="sh.keptn.event.deployment.finished", shkeptncontext="ctx-1",
                          triggeredid="not-a-task-of-ours",
                          data={"project": "sockshop", "stage": "dev", "service": "carts", "result": "pass"})
    wrong_task = reply(deployment, "finished").model_copy(update={"type": "sh.keptn.event.test.finished"})
    no_triggered_id = reply(deployment, "started").model_copy(update={"triggeredid": None})
    for event in (stranger, wrong_task, no_triggered_id):
        decision = decide(before, event, CONFIG, T0)
        assert decision.state is before
        assert decision.emitted == [] and decision.audit == []
        assert [i.reason for i in decision.ignored] == [IgnoreReason.UNKNOWN_TRIGGEREDID]
        assert not decision.ignored[0].dead_letter
    assert decide(None, stranger, CONFIG, T0).state is None


@pytest.mark.parametrize("event_type", [
    "sh.keptn.event.dev.delivery.finished",
    "sh.keptn.event.deployment.status.changed",
    "sh.keptn.events.problem",
    "sh.keptn.event.evaluation.invalidated",
])
def test_events_the_sequencer_does_not_act_on_are_ignored(event_type: str) -> None:
    event = KeptnEvent(type=event_type, data={"project": "sockshop", "stage": "dev", "service": "carts"})
    decision = decide(None, event, CONFIG, T0)
    assert decision.state is None
    assert [i.reason for i in decision.ignored] == [IgnoreReason.UNHANDLED_TYPE]


def test_a_redelivered_input_changes_nothing_and_emits_nothing() -> None:
    bus = Bus(CONFIG)
    start = trigger("dev", "delivery")
    bus.send(start)
    deployment = tasks_of(bus.send(start))
    assert deployment == []
    state = bus.state(DEV)
    assert len(state.sequences) == 1

    task = bus.emitted[0].event
    started = reply(task, "started")
    bus.send(started)
    after_started = bus.state(DEV)
    again = decide(after_started, started, CONFIG, T0)
    assert again.state is after_started
    assert again.emitted == [] and again.audit == []
    assert [i.reason for i in again.ignored] == [IgnoreReason.DUPLICATE]
    assert after_started.sequences[0].current is not None
    assert after_started.sequences[0].current.started == 1


def test_reprocessing_after_a_crash_re_emits_identical_ids() -> None:
    # The state write was lost: the same input meets the old state again (later), and must produce
    # the same outputs with the same ids so downstream consumers can drop them.
    bus = Bus(CONFIG)
    task = only_task(bus.send(trigger("dev", "delivery")))
    bus.send(reply(task, "started"))
    old_state = bus.state(DEV)
    finished = reply(task, "finished")
    first = decide(old_state, finished, CONFIG, T0)
    replay = decide(old_state, finished, CONFIG, T0 + MINUTE)
    assert [e.event.id for e in first.emitted] == [e.event.id for e in replay.emitted]
    assert [r.id for r in first.audit] == [r.id for r in replay.audit]
    assert [e.event.data for e in first.emitted] == [e.event.data for e in replay.emitted]


def test_decide_never_modifies_the_state_it_is_given() -> None:
    bus = Bus(CONFIG)
    task = only_task(bus.send(trigger("dev", "delivery")))
    state = bus.state(DEV)
    snapshot = msgspec.to_builtins(state)
    decide(state, reply(task, "started"), CONFIG, T0)
    decide(state, trigger("dev", "delivery", context="other"), CONFIG, T0)
    assert msgspec.to_builtins(state) == snapshot


def test_remembered_input_ids_are_bounded() -> None:
    config = config_for(SHIPYARD, remembered_inputs=3)
    bus = Bus(config)
    task = only_task(bus.send(trigger("dev", "delivery")))
    for _ in range(5):
        bus.send(reply(task, "started"))
    assert len(bus.state(DEV).recent) == 3 * DIGEST_SIZE  # three 8-byte digests


def test_state_survives_a_json_round_trip_and_decides_the_same_afterwards() -> None:
    bus = Bus(CONFIG)
    first = only_task(bus.send(trigger("dev", "delivery", context="a", labels={"x": "1"})))
    bus.send(trigger("dev", "delivery", context="b"))  # queued behind a
    bus.send(reply(first, "started"))
    state = bus.state(DEV)
    restored = STATE_CODEC.decode(STATE_CODEC.encode(state))
    assert restored == state
    finished = reply(first, "finished")
    from_original = decide(state, finished, CONFIG, T0)
    from_restored = decide(restored, finished, CONFIG, T0)
    assert from_original.outputs == from_restored.outputs
    assert from_original.state == from_restored.state


def test_every_transition_is_audited_with_the_keptn_context() -> None:
    bus = Bus(CONFIG)
    start = trigger("dev", "delivery", context="run-9")
    decisions = [bus.send(start)]
    task = only_task(decisions[0])
    while True:
        decisions.append(bus.send(reply(task, "started")))
        decisions.append(bus.send(reply(task, "finished")))
        sent = tasks_of(decisions[-1])
        if not sent:
            break
        task = sent[0]
    flow = [kind for d in decisions for kind in kinds(d)]
    assert flow == [
        AuditKind.QUEUED, AuditKind.STARTED,
        AuditKind.TASK_TRIGGERED, AuditKind.TASK_STARTED, AuditKind.TASK_FINISHED,
        AuditKind.TASK_TRIGGERED, AuditKind.TASK_STARTED, AuditKind.TASK_FINISHED,
        AuditKind.TASK_TRIGGERED, AuditKind.TASK_STARTED, AuditKind.TASK_FINISHED,
        AuditKind.FINISHED,
    ]
    records = [r for d in decisions for r in d.audit]
    assert {r.keptn_context for r in records} == {"run-9"}
    assert {r.sequence_triggered_id for r in records} == {start.id}
    assert {str(r.key) for r in records} == {"sockshop/dev/carts"}
    audit_event = records[-1].to_event()
    assert audit_event.type == "sh.tidegate.audit.sequencer.finished"
    assert audit_event.id == records[-1].id
    assert audit_event.shkeptncontext == "run-9"
    assert audit_event.data["result"] == "pass"
    assert (audit_event.data["project"], audit_event.data["stage"]) == ("sockshop", "dev")


@pytest.mark.parametrize("data", [
    {"project": 7, "stage": "dev", "service": "carts"},
    {"project": "sockshop", "stage": ["dev"], "service": "carts"},
    {"project": "sockshop", "stage": "dev", "service": "carts", "labels": "not-a-map"},
    {},
])
@pytest.mark.parametrize("event_type", [
    "sh.keptn.event.dev.delivery.triggered",
    "sh.keptn.event.deployment.finished",
    "sh.keptn.event.deployment.started",
    "sh.tidegate.tick",
    "sh.tidegate.sequence.control",
    "sh.keptn.event..triggered",
    "sh.keptn.event.dev.delivery.finished.extra",
])
def test_malformed_events_never_raise(event_type: str, data: dict[str, object]) -> None:
    bus = Bus(CONFIG)
    task = only_task(bus.send(trigger("dev", "delivery")))
    state = bus.state(DEV)
    event = KeptnEvent(type=event_type, shkeptncontext="ctx-1", triggeredid=task.id, data=data)
    for current in (None, state):
        decision = decide(current, event, CONFIG, T0)
        assert decision.emitted == [] or all(e.key.project == "sockshop" for e in decision.emitted)


def test_a_finished_with_odd_result_types_counts_as_fail() -> None:
    bus = Bus(CONFIG)
    deployment = only_task(bus.send(trigger("dev", "delivery")))
    bus.send(reply(deployment, "started"))
    decision = bus.send(reply(deployment, "finished", result=None, status=None, message=5))
    [finished] = events_of_type(decision, "sh.keptn.event.dev.delivery.finished")
    assert (finished.data["result"], finished.data["status"]) == ("fail", "unknown")
