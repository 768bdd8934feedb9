"""The explanation names each objective, its value, baseline and targets, and says why the gate decided."""

from __future__ import annotations

import yaml

from tidegate.qualitygate import PreviousEvaluation, PreviousIndicator, SLIValue, evaluate, explain
from tidegate.qualitygate.explanation import show
from tidegate.qualitygate.gonum import format_float, parse_float
from tidegate.schemas.slo import SLO

SLO_TEXT = """
comparison: {compare_with: single_result, include_result_with_score: pass}
objectives:
  - sli: response_time_p95
    displayName: Response Time P95
    pass: [{criteria: ["<=+10%", "<600"]}]
    warning: [{criteria: ["<=800"]}]
  - sli: error_rate
    key_sli: true
    pass: [{criteria: ["<1"]}]
  - sli: throughput
total_score: {pass: "90%", warning: "75%"}
"""
HISTORY = [PreviousEvaluation("e-17", "pass", (PreviousIndicator("response_time_p95", 500.0, True),))]


def _explain(
    values: list[SLIValue], history: list[PreviousEvaluation] = HISTORY, slo_text: str = SLO_TEXT
) -> str:
    return "\n".join(explain(evaluate(SLO.model_validate(yaml.safe_load(slo_text)), values, history)))


def test_violated_relative_target_is_shown_with_its_baseline() -> None:
    text = _explain(
        [SLIValue("response_time_p95", 580), SLIValue("error_rate", 0), SLIValue("throughput", 90)]
    )
    assert "Quality gate: WARNING" in text
    assert "500 (avg of 1)" in text
    assert "<=+10%" in text
    assert "VIOLATED  target 550 = baseline 500 +10%: 580 is not <= 550" in text
    assert "held      target 600: 580 is < 600" in text
    assert "Compared with: 1 previous evaluation (avg): e-17" in text
    assert text.splitlines()[-1].startswith("Why: the score 75 ")
    assert "reached the warning threshold 75" in text


def test_key_sli_failure_is_the_reason_given() -> None:
    text = _explain([SLIValue("response_time_p95", 500), SLIValue("error_rate", 3)])
    assert "error_rate [key SLI]" in text
    assert "Why: key SLI error_rate failed" in text


def test_missing_value_and_first_evaluation_are_explained() -> None:
    text = _explain([SLIValue("error_rate", 0)], history=[])
    assert "no value: no value received from SLI provider" in text
    assert "no previous evaluation" in text


def test_relative_criterion_without_history_is_explained_as_held() -> None:
    text = _explain([SLIValue("response_time_p95", 580), SLIValue("error_rate", 0)], history=[])
    assert "no previous value to compare with" in text
    assert "Why: the score 100 " in text


def test_configuration_problems_say_what_to_fix() -> None:
    broken = SLO_TEXT.replace('"<600"', '"< six hundred"')
    text = _explain([SLIValue("response_time_p95", 500), SLIValue("error_rate", 0)], slo_text=broken)
    assert "invalid criterion" in text
    assert "'<six hundred'" not in text and "'< six hundred'" in text
    no_total = "objectives: [{sli: a, pass: [{criteria: ['<1']}]}]"
    assert 'add e.g. total_score: {pass: "90%"' in _explain([SLIValue("a", 0)], slo_text=no_total)
    assert "add objectives" in _explain([], slo_text="objectives: []")


def test_extra_slis_are_listed() -> None:
    text = _explain([SLIValue("response_time_p95", 500), SLIValue("error_rate", 0), SLIValue("cpu", 3)])
    assert "Not in the SLO (reported, not scored): cpu" in text


def test_numbers_for_people() -> None:
    assert [show(100.0), show(83.33333333333334), show(0.40115315), show(-2.5)] == [
        "100",
        "83.33",
        "0.4012",
        "-2.5",
    ]


def test_go_number_formatting_and_parsing() -> None:
    # What Go's fmt %v prints for a float64, and what strconv.ParseFloat accepts.
    assert [format_float(v) for v in (100.0, 83.33333333333334, 1e6, 123456.7, 0.0001, 1e-5, -0.5)] == [
        "100",
        "83.33333333333334",
        "1e+06",
        "123456.7",
        "0.0001",
        "1e-05",
        "-0.5",
    ]
    assert [parse_float(t) for t in ("90", "90.5", ".5", "+5", "1e2", "0x1p-2")] == [
        90.0,
        90.5,
        0.5,
        5.0,
        100.0,
        0.25,
    ]
    assert [parse_float(t) for t in ("", " 90", "90 ", "1_0", "ninety", "1e400", "+nan")] == [None] * 7
