"""`triggeredOn`: chaining across and within stages, selectors, the `failed` synonym, fan-out."""

from __future__ import annotations

import pytest

from tests.unit.test_sequencer_helpers import (
    Bus,
    config_for,
    events_of_type,
    key,
    load_shipyard,
    only_task,
    reply,
    trigger,
)
from tidegate.agents.sequencer.rules import FollowUp, follow_ups

SHIPYARD = load_shipyard("""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: triggers}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: evaluation}]
    - name: prod-a
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
    - name: prod-b
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment}]
    - name: hotfix
      sequences:
        - name: on-fail
          triggeredOn: [{event: dev.delivery.finished, selector: {match: {result: fail}}}]
          tasks: [{name: notify}]
        - name: on-failed
          triggeredOn: [{event: dev.delivery.finished, selector: {match: {result: failed}}}]
          tasks: [{name: notify}]
        - name: on-evaluation-warning
          triggeredOn: [{event: dev.delivery.finished, selector: {match: {evaluation.result: warning}}}]
          tasks: [{name: notify}]
        - name: on-deployment-fail
          triggeredOn: [{event: dev.delivery.finished, selector: {match: {deployment.result: fail}}}]
          tasks: [{name: notify}]
        - name: on-other-key
          triggeredOn: [{event: dev.delivery.finished, selector: {match: {owner: team-a}}}]
          tasks: [{name: notify}]
    - name: dev2
      sequences:
        - name: rollback
          triggeredOn: [{event: dev2.delivery.finished, selector: {match: {result: fail}}}]
          tasks: [{name: rollback}]
        - name: delivery
          tasks: [{name: deployment}]
""")


def fired(result: str, last_task: str | None) -> set[str]:
    return {f"{f.stage}.{f.sequence}" for f in follow_ups(SHIPYARD, "dev", "delivery", result, last_task)}


@pytest.mark.parametrize("result", ["pass", "warning"])
def test_no_selector_fires_on_pass_and_warning(result: str) -> None:
    assert {"prod-a.delivery", "prod-b.delivery"} <= fired(result, "evaluation")


def test_no_selector_does_not_fire_on_fail() -> None:
    assert fired("fail", "evaluation").isdisjoint({"prod-a.delivery", "prod-b.delivery"})


def test_result_selector_and_its_failed_synonym_fire_on_fail() -> None:
    assert fired("fail", "evaluation") == {"hotfix.on-fail", "hotfix.on-failed"}


def test_task_result_selector_looks_at_the_last_executed_task() -> None:
    assert fired("warning", "evaluation") == {"prod-a.delivery", "prod-b.delivery", "hotfix.on-evaluation-warning"}
    # The deployment failed, so the sequence stopped there: deployment is the last executed task.
    assert fired("fail", "deployment") == {"hotfix.on-fail", "hotfix.on-failed", "hotfix.on-deployment-fail"}


def test_selectors_on_other_keys_never_fire() -> None:
    for result in ("pass", "warning", "fail"):
        assert "hotfix.on-other-key" not in fired(result, "evaluation")


def test_same_stage_trigger() -> None:
    assert follow_ups(SHIPYARD, "dev2", "delivery", "fail", "deployment") == [FollowUp("dev2", "rollback")]
    assert follow_ups(SHIPYARD, "dev2", "delivery", "pass", "deployment") == []


def test_a_finished_sequence_fans_out_with_context_and_merged_payload() -> None:
    bus = Bus(config_for(SHIPYARD))
    start = trigger("dev", "delivery", context="run-3", labels={"buildId": "17"},
                    configurationChange={"values": {"image": "carts:2"}})
    deployment = only_task(bus.send(start))
    bus.send(reply(deployment, "started"))
    evaluation = only_task(bus.send(reply(
        deployment, "finished", message="deployed",
        deployment={"deploymentURIsLocal": ["http://carts.sockshop-dev:80"]})))
    bus.send(reply(evaluation, "started"))
    done = bus.send(reply(evaluation, "finished", evaluation={"score": 100}))

    triggered = [e for e in done.emitted if e.event.type.endswith(".delivery.triggered")]
    assert sorted(str(e.key) for e in triggered) == ["sockshop/prod-a/carts", "sockshop/prod-b/carts"]
    for emit in triggered:
        event = emit.event
        assert emit.destination == "events"
        assert event.shkeptncontext == "run-3"
        assert event.triggeredid is None
        assert event.data == {
            "project": "sockshop", "stage": emit.key.stage, "service": "carts", "labels": {"buildId": "17"},
            "configurationChange": {"values": {"image": "carts:2"}},
            "deployment": {"deploymentURIsLocal": ["http://carts.sockshop-dev:80"]},
            "evaluation": {"score": 100},
            "result": "pass", "status": "succeeded", "message": "",
        }
    assert triggered[0].event.id != triggered[1].event.id

    # The fanned-out sequences then run in parallel, each in its own key.
    for emit in triggered:
        assert only_task(bus.send(emit.event)).type == "sh.keptn.event.deployment.triggered"
    assert bus.state(key("prod-a")).sequences and bus.state(key("prod-b")).sequences


def test_a_failed_sequence_triggers_its_same_stage_rollback() -> None:
    bus = Bus(config_for(SHIPYARD))
    deployment = only_task(bus.send(trigger("dev2", "delivery")))
    done = bus.respond(deployment, result="fail")
    [rollback] = events_of_type(done, "sh.keptn.event.dev2.rollback.triggered")
    assert only_task(bus.send(rollback)).type == "sh.keptn.event.rollback.triggered"
