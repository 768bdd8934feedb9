"""The approver core (Keptn §3.7): started at once; automatic pass/warning and fail finish; the rest waits."""

from __future__ import annotations

from typing import Any

import pytest

from tidegate.agents.approver import APPROVAL_FINISHED, APPROVAL_STARTED, decide_approval
from tidegate.schemas.events import KeptnEvent


def approval(result: str | None, settings: dict[str, Any] | None, **data: Any) -> KeptnEvent:
    fields: dict[str, Any] = {"project": "sockshop", "stage": "staging", "service": "carts", **data}
    if result is not None:
        fields["result"] = result
    if settings is not None:
        fields["approval"] = settings
    return KeptnEvent(type="sh.keptn.event.approval.triggered", shkeptncontext="ctx-1", gitcommitid="abc",
                      data=fields)


@pytest.mark.parametrize(
    ("result", "settings", "expected"),
    [
        ("pass", {"pass": "automatic", "warning": "manual"}, "pass"),
        ("warning", {"pass": "manual", "warning": "automatic"}, "pass"),
        ("fail", {"pass": "automatic", "warning": "automatic"}, "fail"),
        ("fail", {"pass": "manual", "warning": "manual"}, "fail"),
    ],
)
def test_automatic_decisions_finish_at_once(result: str, settings: dict[str, str], expected: str) -> None:
    trigger = approval(result, settings)
    started, finished = decide_approval(trigger)
    assert started.type == APPROVAL_STARTED
    assert finished.type == APPROVAL_FINISHED
    assert finished.data["result"] == expected
    assert finished.data["status"] == "succeeded"
    for answer in (started, finished):
        assert answer.triggeredid == trigger.id
        assert answer.shkeptncontext == "ctx-1"
        assert answer.gitcommitid == "abc"
        assert (answer.data["project"], answer.data["stage"], answer.data["service"]) == (
            "sockshop", "staging", "carts")


@pytest.mark.parametrize(
    ("result", "settings"),
    [
        ("pass", {"pass": "manual", "warning": "automatic"}),
        ("warning", {"pass": "automatic", "warning": "manual"}),
        # Keptn's code (not its spec) treats a missing property as manual: kept on purpose.
        ("pass", {"warning": "automatic"}),
        ("warning", {"pass": "automatic"}),
        ("pass", None),
        (None, {"pass": "automatic", "warning": "automatic"}),  # nothing to approve automatically
    ],
)
def test_manual_approvals_only_start(result: str | None, settings: dict[str, str] | None) -> None:
    answers = decide_approval(approval(result, settings))
    assert [a.type for a in answers] == [APPROVAL_STARTED]
    assert answers[0].data["status"] == "succeeded"
    assert "manual" in answers[0].data["message"]


def test_evaluation_result_is_used_when_there_is_no_previous_result() -> None:
    # Approval as the first task (keptn#4391): the result comes from the evaluation block.
    answers = decide_approval(approval(None, {"pass": "automatic"}, evaluation={"result": "pass"}))
    assert [a.type for a in answers] == [APPROVAL_STARTED, APPROVAL_FINISHED]
    assert answers[1].data["result"] == "pass"


def test_started_message_names_result_and_strategy() -> None:
    started = decide_approval(approval("warning", {"pass": "automatic", "warning": "manual"}))[0]
    assert started.data["message"] == "Approval strategy for result 'warning': manual"


def test_answers_are_deterministic_for_a_redelivered_approval() -> None:
    trigger = approval("pass", {"pass": "automatic"})
    first = decide_approval(trigger)
    again = decide_approval(trigger)
    assert [a.id for a in first] == [a.id for a in again]
    assert len({a.id for a in first}) == 2
    assert trigger.id not in {a.id for a in first}


def test_other_events_get_no_answer() -> None:
    assert decide_approval(KeptnEvent(type="sh.keptn.event.deployment.triggered", data={})) == []
    assert decide_approval(KeptnEvent(type="sh.keptn.event.approval.finished", data={"result": "pass"})) == []
