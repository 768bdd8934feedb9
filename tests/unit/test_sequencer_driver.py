"""The in-memory driver: played connectors, approval policies, virtual time, loop protection."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_sequencer_helpers import MINUTE, T0, config_for, key, load_shipyard, trigger
from tidegate.agents.sequencer import (
    ApprovalPolicy,
    ControlState,
    Driver,
    Reply,
    Responders,
    RespondRule,
    RuleError,
    SimulationLimitError,
    control_event,
)

SHIPYARD = load_shipyard("""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: driver}
spec:
  stages:
    - name: staging
      sequences:
        - name: delivery
          tasks:
            - {name: evaluation}
            - {name: approval, properties: {pass: manual, warning: manual}}
            - {name: release}
        - name: slow
          tasks: [{name: deployment, triggeredAfter: 1h, properties: {timeout: 2h}}]
        - name: loop
          triggeredOn: [{event: staging.loop.finished}]
          tasks: [{name: action}]
""")


def driver(*, approval: ApprovalPolicy = ApprovalPolicy.AUTO, responders: Responders | None = None,
           max_events: int = 10_000) -> Driver:
    return Driver(config_for(SHIPYARD), start=T0, approval=approval, responders=responders, max_events=max_events)


def summary_of(run: Driver) -> dict[str, dict[str, Any]]:
    return {s.sequence: s.to_json_dict() for s in run.summary()}


@pytest.mark.parametrize(
    ("policy", "evaluation", "state", "result", "tasks"),
    [
        (ApprovalPolicy.AUTO, Reply.PASS, "finished", "pass", ["evaluation", "approval", "release"]),
        (ApprovalPolicy.AUTO, Reply.WARNING, "finished", "pass", ["evaluation", "approval", "release"]),
        (ApprovalPolicy.APPROVE, Reply.PASS, "finished", "pass", ["evaluation", "approval", "release"]),
        (ApprovalPolicy.DECLINE, Reply.PASS, "finished", "fail", ["evaluation", "approval"]),
        (ApprovalPolicy.HOLD, Reply.PASS, "waitingForApproval", "pass", ["evaluation", "approval"]),
        # A failed evaluation is declined by the approver itself, whatever the human would do.
        (ApprovalPolicy.APPROVE, Reply.FAIL, "finished", "fail", ["evaluation"]),
    ],
)
def test_approval_policies(policy: ApprovalPolicy, evaluation: Reply, state: str, result: str,
                           tasks: list[str]) -> None:
    run = driver(approval=policy, responders=Responders((RespondRule("evaluation", evaluation),)))
    run.publish(trigger("staging", "delivery"))
    run.run()
    delivery = summary_of(run)["delivery"]
    assert delivery["state"] == state
    assert delivery["result"] == result
    assert [t["name"] for t in delivery["tasks"]] == tasks
    started = [p.event for p in run.published if p.event.type == "sh.keptn.event.approval.started"]
    assert len(started) == (0 if evaluation is Reply.FAIL and tasks == ["evaluation"] else 1)


def test_hold_leaves_the_approval_open_and_no_timer_runs() -> None:
    run = driver(approval=ApprovalPolicy.HOLD)
    run.publish(trigger("staging", "delivery"))
    run.run()
    assert run.now == T0  # nothing to wait for: the clock never moved
    open_task = summary_of(run)["delivery"]["tasks"][-1]
    assert open_task == {"name": "approval", "state": "started"}


def test_virtual_time_jumps_to_delays_and_timeouts() -> None:
    run = driver(responders=Responders((RespondRule("deployment", Reply.HANG),)))
    run.publish(trigger("staging", "slow"))
    run.run()
    triggered = next(p.event for p in run.published if p.event.type == "sh.keptn.event.deployment.triggered")
    assert triggered.time == T0 + 60 * MINUTE
    slow = summary_of(run)["slow"]
    assert slow["state"] == "timedOut"
    assert run.now == T0 + 180 * MINUTE
    assert "within its timeout of 2h" in str(slow["message"])


def test_scheduled_inputs_arrive_at_their_time() -> None:
    run = driver(responders=Responders((RespondRule("deployment", Reply.HANG),)))
    context = "run-1"
    run.publish(trigger("staging", "slow", context=context))
    run.publish(control_event(key("staging"), context, ControlState.ABORT), at=T0 + 90 * MINUTE)
    run.run()
    slow = summary_of(run)["slow"]
    assert slow["state"] == "aborted"
    finished = next(p.event for p in run.published if p.event.type == "sh.keptn.event.staging.slow.finished")
    assert finished.time == T0 + 90 * MINUTE
    assert any(p.event.type == "sh.tidegate.task.cancelled" and p.destination == "tasks.deployment"
               for p in run.published)


def test_a_sequence_that_triggers_itself_forever_is_stopped() -> None:
    run = driver(max_events=200)
    run.publish(trigger("staging", "loop"))
    with pytest.raises(SimulationLimitError, match="triggeredOn"):
        run.run()


def test_run_until_stops_the_clock_there() -> None:
    run = driver()
    run.publish(trigger("staging", "slow"))
    run.run(until=T0 + 30 * MINUTE)
    assert run.now == T0 + 30 * MINUTE
    assert summary_of(run)["slow"]["tasks"] == [{"name": "deployment", "state": "delayed"}]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("test=fail", RespondRule("test", Reply.FAIL)),
        ("test=FAIL@staging", RespondRule("test", Reply.FAIL, "staging")),
        ("deployment=silent", RespondRule("deployment", Reply.SILENT)),
        ("deployment=hang@prod", RespondRule("deployment", Reply.HANG, "prod")),
    ],
)
def test_respond_rules_parse(text: str, rule: RespondRule) -> None:
    assert RespondRule.parse(text) == rule


@pytest.mark.parametrize(
    ("text", "words"),
    [("test", "TASK=RESULT"), ("=pass", "TASK=RESULT"), ("test=maybe", "not one of"),
     ("approval=pass", "--approve")],
)
def test_bad_respond_rules_say_what_to_write(text: str, words: str) -> None:
    with pytest.raises(RuleError, match=words):
        RespondRule.parse(text)


def test_a_stage_specific_rule_beats_a_general_one() -> None:
    responders = Responders((RespondRule("test", Reply.FAIL, "staging"), RespondRule("test", Reply.WARNING)))
    assert responders.reply_for("test", "staging") is Reply.FAIL
    assert responders.reply_for("test", "dev") is Reply.WARNING
    assert responders.reply_for("deployment", "dev") is Reply.PASS
