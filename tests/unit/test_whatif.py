"""What-if: a stored history of staging/carts evaluations re-scored with SLOs that flip known verdicts.

Stored (scored at the time with response_time_p95 pass <=600, warning <=800, total 90 % / 75 %):
  e1 day 1  540 -> pass;  e2 day 2  580 -> pass;  e3 day 3  700 -> warning objective, 50 % -> fail
  e4 day 4  450 (and error_rate 0.02, returned by the provider but not in the old SLO) -> pass
  e5 day 5  900 -> fail, later invalidated;  e6 day 6: the SLI provider errored -> errored/fail
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from tidegate.cli.analytics_text import render_whatif
from tidegate.qualitygate import QualityGate
from tidegate.readside.analytics.whatif import WhatIfReport, replay, stored_evaluations
from tidegate.schemas.events import KeptnEvent, task_type
from tidegate.schemas.slo import SLO

COMMON = {"project": "shop", "stage": "staging", "service": "carts"}


def day(number: int) -> datetime:
    return datetime(2026, 1, number, 12, tzinfo=UTC)


def slo(text: str) -> QualityGate:
    return QualityGate(SLO.model_validate(yaml.safe_load(text)))


OLD_STATUS = {540: "pass", 580: "pass", 700: "warning", 450: "pass", 900: "fail"}


def history() -> list[KeptnEvent]:
    events: list[KeptnEvent] = []

    def evaluation(name: str, when: datetime, values: list[dict[str, Any]] | None, result: str, score: float,
                   sli_status: str = "succeeded", sli_result: str = "pass") -> None:
        context = f"ctx-{name}"
        if values is not None or sli_status != "succeeded":
            events.append(KeptnEvent(
                id=f"{name}-sli", type=task_type("get-sli", "finished"), time=when.replace(minute=1),
                shkeptncontext=context, triggeredid=f"{name}-sli-request",
                data={**COMMON, "status": sli_status, "result": sli_result, "message": "provider said so",
                      "get-sli": {"indicatorValues": values or []}},
            ))
        rt = next((v["value"] for v in values or [] if v["metric"] == "response_time_p95"), None)
        indicators = [] if rt is None else [
            {"value": {"metric": "response_time_p95", "value": rt, "success": True}, "status": OLD_STATUS[rt]}
        ]
        events.append(KeptnEvent(
            id=name, type=task_type("evaluation", "finished"), time=when.replace(minute=2), shkeptncontext=context,
            triggeredid=f"{name}-triggered",
            data={**COMMON, "result": result, "status": "succeeded" if rt is not None else "errored",
                  "evaluation": {"result": result, "score": score, "indicatorResults": indicators}},
        ))

    def rt(value: float) -> list[dict[str, Any]]:
        return [{"metric": "response_time_p95", "value": value, "success": True}]

    evaluation("e1", day(1), rt(540), "pass", 100)
    evaluation("e2", day(2), rt(580), "pass", 100)
    evaluation("e3", day(3), rt(700), "fail", 50)
    evaluation("e4", day(4), [*rt(450), {"metric": "error_rate", "value": 0.02, "success": True}], "pass", 100)
    evaluation("e5", day(5), rt(900), "fail", 0)
    events.append(KeptnEvent(id="e5-invalidated", type=task_type("evaluation", "invalidated"), time=day(5),
                             shkeptncontext="ctx-e5", triggeredid="e5-triggered", data=COMMON))
    evaluation("e6", day(6), None, "fail", 0, sli_status="errored")
    return events


def run(gate: QualityGate, since_day: int = 1) -> WhatIfReport:
    return replay(stored_evaluations(history()), gate, project="shop", stage="staging", service="carts",
                  since=day(since_day).replace(hour=0), until=day(28))


LOOSER = """
objectives:
  - sli: response_time_p95
    pass: [{criteria: ["<=560"]}]
    warning: [{criteria: ["<=800"]}]
total_score: {pass: "90%", warning: "50%"}
"""

ERROR_RATE_KEY_SLI = """
objectives:
  - sli: response_time_p95
    pass: [{criteria: ["<=600"]}]
  - sli: error_rate
    key_sli: true
    pass: [{criteria: ["<0.01"]}]
total_score: {pass: "90%", warning: "75%"}
"""


def test_a_lower_warning_threshold_turns_a_pass_and_a_fail_into_warnings() -> None:
    # 580 misses <=560 but meets <=800: warning, 50 %, which now reaches the 50 % warning target.
    report = run(slo(LOOSER))
    assert (report.evaluations, report.rescored, report.unchanged) == (5, 4, 2)
    assert [(c.id, c.was_result, c.now_result, c.now_score) for c in report.changed] == [
        ("e2", "pass", "warning", 50.0), ("e3", "fail", "warning", 50.0)
    ]
    assert report.transitions == {"fail->warning": 1, "pass->warning": 1}
    e2 = report.changed[0]
    assert [(i.sli, i.value, i.was, i.now, i.violated) for i in e2.indicators] == [
        ("response_time_p95", 580.0, "pass", "warning", ["<=560"])
    ]
    assert "close to the warning target value of 50" in e2.message


def test_the_errored_evaluation_is_skipped_with_its_reason_and_the_invalidated_one_left_out() -> None:
    report = run(slo(LOOSER))
    assert [(s.id, s.reason) for s in report.skipped] == [
        ("e6", "its SLI provider failed then (errored: provider said so)")
    ]
    assert all(c.id != "e5" for c in report.changed)


def test_a_new_key_sli_fails_what_was_not_measured_and_uses_values_the_old_slo_ignored() -> None:
    report = run(slo(ERROR_RATE_KEY_SLI))
    assert [(c.id, c.was_result, c.now_result) for c in report.changed] == [
        ("e1", "pass", "fail"), ("e2", "pass", "fail"), ("e4", "pass", "fail")
    ]
    e1, _, e4 = report.changed
    assert e1.unmeasured == ["error_rate"]
    assert [(i.sli, i.value, i.was, i.now) for i in e1.indicators] == [("error_rate", None, None, "fail")]
    # e4's provider did return error_rate 0.02 (the old SLO did not score it): it misses <0.01.
    assert e4.unmeasured == [] and e4.values_from == "get-sli.finished"
    assert [(i.sli, i.value, i.was, i.violated) for i in e4.indicators] == [("error_rate", 0.02, None, ["<0.01"])]
    assert e4.message.startswith("Evaluation failed due to key_sli")


def test_relative_criteria_compare_with_the_replayed_history() -> None:
    # <=+5% of the previous value: e1 has nothing to compare with (holds), e2 580 > 540 * 1.05 = 567.
    relative = """
comparison: {compare_with: single_result, include_result_with_score: all, number_of_comparison_results: 1}
objectives:
  - sli: response_time_p95
    pass: [{criteria: ["<=+5%"]}]
total_score: {pass: "90%"}
"""
    report = run(slo(relative))
    assert [(c.id, c.now_result) for c in report.changed] == [("e2", "fail")]
    assert report.changed[0].indicators[0].violated == ["<=+5%"]


def test_evaluations_before_the_window_are_baselines_but_not_reported() -> None:
    report = run(slo(LOOSER), since_day=3)
    assert report.evaluations == 3  # e3, e4, e6 (e5 is invalidated)
    assert [c.id for c in report.changed] == ["e3"]


def test_the_same_slo_changes_nothing() -> None:
    same = """
objectives:
  - sli: response_time_p95
    pass: [{criteria: ["<=600"]}]
    warning: [{criteria: ["<=800"]}]
total_score: {pass: "90%", warning: "75%"}
"""
    report = run(slo(same))
    assert report.changed == [] and report.unchanged == 4


def test_without_a_get_sli_answer_the_recorded_values_are_used() -> None:
    events = [e for e in history() if e.id == "e2"]  # only the verdict, its get-sli.finished is not stored
    stored = stored_evaluations(events)
    assert stored[0].values_from == "indicatorResults"
    report = replay(stored, slo(LOOSER), project="shop", stage="staging", service="carts",
                    since=day(1), until=day(28))
    assert [(c.id, c.now_result) for c in report.changed] == [("e2", "warning")]


def test_the_changes_are_explained_in_sentences() -> None:
    lines = render_whatif(run(slo(LOOSER)).to_json_dict())
    assert lines[:2] == [
        "shop/staging/carts: 4 of 5 evaluations re-scored; 2 would change, 2 would not",
        "  fail -> warning: 1, pass -> warning: 1",
    ]
    e2 = lines.index("2026-01-02 12:02 ctx-e2: was pass (100), would be warning (50)")
    assert lines[e2 + 1] == "  response_time_p95 = 580: pass -> warning, misses <=560"
    assert lines[e2 + 2].startswith("  why: Evaluation returned a warning")
    assert lines[-2:] == ["Not re-scored:", "  2026-01-06 12:02 e6: its SLI provider failed then (errored: provider said so)"]


@pytest.mark.parametrize("repeat", [1, 2])
def test_repeated_events_are_read_once(repeat: int) -> None:
    assert len(stored_evaluations(history() * repeat)) == 6
