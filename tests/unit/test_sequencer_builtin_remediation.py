"""The built-in remediation sequence: used when a stage declares none, re-triggered while the evaluation fails."""

from __future__ import annotations

import pytest

from tests.unit.test_sequencer_helpers import PROJECT, SERVICE, config_for, load_shipyard
from tidegate.agents.sequencer import Driver, Reply, Responders, RespondRule, SimulationLimitError
from tidegate.schemas.events import KeptnEvent, sequence_type

SHIPYARD = """
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: s}
spec:
  stages:
    - name: production
      sequences:
        - name: delivery
          tasks: [{name: deployment}]
"""


def _trigger() -> KeptnEvent:
    return KeptnEvent(
        type=sequence_type("production", "remediation", "triggered"),
        shkeptncontext="problem-1",
        data={"project": PROJECT, "stage": "production", "service": SERVICE,
              "problem": {"problemTitle": "Response time degradation"}},
    )


def _tasks(driver: Driver) -> list[str]:
    return [p.event.type.split(".")[3] for p in driver.published if p.destination.startswith("tasks.")]


def _driver(rules: list[str], **settings: object) -> Driver:
    config = config_for(load_shipyard(SHIPYARD), **settings)
    return Driver(config, responders=Responders(tuple(RespondRule.parse(r) for r in rules)), max_events=200)


def test_builtin_remediation_runs_get_action_action_then_a_delayed_evaluation() -> None:
    driver = _driver([], remediation_wait="2m")
    driver.publish(_trigger())
    driver.run()
    assert _tasks(driver) == ["get-action", "action", "evaluation"]
    evaluation = next(p.event for p in driver.published if p.event.type == "sh.keptn.event.evaluation.triggered")
    assert evaluation.data["evaluation"]["timeframe"] == "2m"
    finished = [p.event for p in driver.published if p.event.type == sequence_type("production", "remediation", "finished")]
    assert [f.data["result"] for f in finished] == ["pass"]


def test_no_more_actions_ends_the_loop_without_a_retrigger() -> None:
    driver = _driver(["get-action=fail"])
    driver.publish(_trigger())
    driver.run()
    assert _tasks(driver) == ["get-action"]
    triggered = [p for p in driver.published if p.event.type == sequence_type("production", "remediation", "triggered")]
    assert len(triggered) == 1  # only the outside trigger: the selector `evaluation.result: fail` did not match


def test_a_failing_evaluation_retriggers_the_builtin_remediation() -> None:
    driver = _driver(["evaluation=fail"])
    driver.publish(_trigger())
    with pytest.raises(SimulationLimitError):
        driver.run()  # nothing ever heals: the loop only stops at the driver's event limit
    triggered = [p for p in driver.published if p.event.type == sequence_type("production", "remediation", "triggered")]
    assert len(triggered) >= 3
    assert {p.event.shkeptncontext for p in triggered} == {"problem-1"}


def test_a_declared_remediation_sequence_wins_over_the_builtin() -> None:
    shipyard = SHIPYARD + """        - name: remediation
          tasks: [{name: get-action}, {name: action}]
"""
    driver = Driver(config_for(load_shipyard(shipyard)), responders=Responders((RespondRule("evaluation", Reply.FAIL),)))
    driver.publish(_trigger())
    driver.run()
    assert _tasks(driver) == ["get-action", "action"]
