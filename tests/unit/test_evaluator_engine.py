"""The engine scores like Keptn's lighthouse: reference §4.4-4.6, worked examples A-D with exact numbers.

Expected numbers are worked out by hand from Keptn's rules (or, for Go's number formatting in
messages, written as Go prints them); none is produced by the code under test.
"""

from __future__ import annotations

import pytest
import yaml

from tidegate.qualitygate import (
    EvaluationResult,
    IndicatorResult,
    IndicatorStatus,
    PreviousEvaluation,
    PreviousIndicator,
    QualityGate,
    Reason,
    SLIValue,
    evaluate,
)
from tidegate.schemas.events import Result, Status
from tidegate.schemas.slo import SLO

EXAMPLE_A = """
comparison: {compare_with: single_result, include_result_with_score: pass}
objectives:
  - sli: response_time_p95
    displayName: Response Time P95
    weight: 1
    pass: [{criteria: ["<=+10%", "<600"]}]
    warning: [{criteria: ["<=800"]}]
total_score: {pass: "90%", warning: "75%"}
"""


def _slo(text: str) -> SLO:
    return SLO.model_validate(yaml.safe_load(text))


def _value(metric: str, value: float, success: bool = True, message: str = "") -> SLIValue:
    return SLIValue(metric=metric, value=value, success=success, message=message)


def _previous(
    values: dict[str, float], result: str = "pass", ident: str | None = None, invalidated: bool = False
) -> PreviousEvaluation:
    indicators = tuple(PreviousIndicator(metric, value, True) for metric, value in values.items())
    return PreviousEvaluation(id=ident, result=result, indicators=indicators, invalidated=invalidated)


def _targets(indicator: IndicatorResult, kind: str = "pass") -> list[tuple[str, float, bool]]:
    targets = indicator.pass_targets if kind == "pass" else indicator.warning_targets
    return [(t.criteria, t.target_value, t.violated) for t in targets]


def _example_a(value: SLIValue | None, previous: list[PreviousEvaluation]) -> EvaluationResult:
    return evaluate(_slo(EXAMPLE_A), [value] if value is not None else [], previous)


# -- worked example A ----------------------------------------------------------------------------


def test_example_a_540_passes_with_both_targets_held() -> None:
    verdict = _example_a(
        _value("response_time_p95", 540), [_previous({"response_time_p95": 500}, ident="e1")]
    )
    indicator = verdict.indicator_results[0]
    assert (verdict.result, verdict.status, verdict.evaluation_result) == (
        Result.PASS,
        Status.SUCCEEDED,
        Result.PASS,
    )
    assert verdict.score == 100.0
    assert verdict.message == ""
    assert (indicator.status, indicator.score, indicator.compared_value) == (IndicatorStatus.PASS, 1.0, 500.0)
    assert _targets(indicator) == [("<=+10%", 550.0, False), ("<600", 600.0, False)]
    # Keptn 1.x checks and reports the warning targets even when the pass criteria hold.
    assert _targets(indicator, "warning") == [("<=800", 800.0, False)]
    assert verdict.compared_events == ["e1"]


def test_example_a_580_is_a_warning_objective_and_fails_the_gate() -> None:
    verdict = _example_a(
        _value("response_time_p95", 580), [_previous({"response_time_p95": 500}, ident="e1")]
    )
    indicator = verdict.indicator_results[0]
    assert (indicator.status, indicator.score) == (IndicatorStatus.WARNING, 0.5)
    assert _targets(indicator) == [("<=+10%", 550.0, True), ("<600", 600.0, False)]
    assert verdict.score == 50.0
    assert (verdict.result, verdict.reason) == (Result.FAIL, Reason.BELOW_WARNING)
    assert (
        verdict.message
        == "Evaluation failed since the calculated score of 50 is below the warning value of 75"
    )


def test_example_a_first_evaluation_relative_criterion_holds_without_history() -> None:
    verdict = _example_a(_value("response_time_p95", 580), [])
    indicator = verdict.indicator_results[0]
    assert verdict.result is Result.PASS
    assert _targets(indicator) == [("<=+10%", 0.0, False), ("<600", 600.0, False)]
    assert indicator.pass_targets[0].baseline_missing
    assert indicator.compared_value == 0.0
    assert verdict.compared_events == []


def test_example_a_value_not_measured_fails_every_target() -> None:
    failed = _value("response_time_p95", 0, success=False, message="query timed out")
    verdict = _example_a(failed, [_previous({"response_time_p95": 500})])
    indicator = verdict.indicator_results[0]
    assert (indicator.status, indicator.score, indicator.success) == (IndicatorStatus.FAIL, 0.0, False)
    assert indicator.message == "query timed out"
    # Lighthouse's targets for an unmeasured value: a fixed criterion's own value, the aggregated
    # previous value for a relative one (not the 550 it would set), every one violated.
    assert _targets(indicator) == [("<=+10%", 500.0, True), ("<600", 600.0, True)]
    assert _targets(indicator, "warning") == [("<=800", 800.0, True)]
    assert verdict.score == 0.0
    assert verdict.result is Result.FAIL
    assert (
        verdict.message
        == "Evaluation failed since the calculated score of 0 is below the warning value of 75"
    )


def test_an_sli_without_a_value_reports_each_target_like_lighthouse() -> None:
    """`<=15` is reported with targetValue 15 (violated), not 0, whether the SLI is missing from
    the results or came back with success false; an invalid criterion is not listed; a relative
    criterion without previous values has target 0."""
    slo = _slo("""
objectives:
  - sli: error_rate
    pass: [{criteria: ["<=15", ">=2"]}]
    warning: [{criteria: ["<=20", "<=+5%", "<<nonsense"]}]
total_score: {pass: "90%", warning: "75%"}
""")
    for values in ([], [_value("error_rate", 0, success=False, message="no data")]):
        [indicator] = evaluate(slo, values, []).indicator_results
        assert indicator.status is IndicatorStatus.FAIL
        assert _targets(indicator) == [("<=15", 15.0, True), (">=2", 2.0, True)]
        assert _targets(indicator, "warning") == [("<=20", 20.0, True), ("<=+5%", 0.0, True)]


def test_value_missing_from_the_provider_is_reported_as_not_received() -> None:
    verdict = _example_a(None, [])
    indicator = verdict.indicator_results[0]
    assert (indicator.metric, indicator.value, indicator.success) == ("response_time_p95", 0.0, False)
    assert indicator.message == "no value received from SLI provider"
    assert indicator.value_missing
    assert indicator.display_name == "Response Time P95"
    assert indicator.status is IndicatorStatus.FAIL
    assert verdict.result is Result.FAIL


# -- worked example B: OR across criteria sets ----------------------------------------------------


def test_example_b_one_criteria_set_is_enough() -> None:
    slo = _slo(
        """
objectives:
  - sli: rt
    pass: [{criteria: ["<=+10%"]}, {criteria: ["<600"]}]
total_score: {pass: "90%"}
"""
    )
    verdict = evaluate(slo, [_value("rt", 590)], [_previous({"rt": 500})])
    indicator = verdict.indicator_results[0]
    assert _targets(indicator) == [("<=+10%", 550.0, True), ("<600", 600.0, False)]
    assert indicator.status is IndicatorStatus.PASS
    assert verdict.result is Result.PASS


def test_and_inside_a_criteria_set() -> None:
    slo = _slo("objectives: [{sli: rt, pass: [{criteria: ['<600', '>100']}]}]\ntotal_score: {pass: '90%'}")
    assert evaluate(slo, [_value("rt", 50)]).indicator_results[0].status is IndicatorStatus.FAIL
    assert evaluate(slo, [_value("rt", 150)]).indicator_results[0].status is IndicatorStatus.PASS


def test_an_empty_criteria_set_holds_like_keptns_empty_and() -> None:
    slo = _slo("objectives: [{sli: rt, pass: [{criteria: []}]}]\ntotal_score: {pass: '90%'}")
    verdict = evaluate(slo, [_value("rt", 12345)])
    assert verdict.indicator_results[0].status is IndicatorStatus.PASS
    assert verdict.score == 100.0


# -- worked example C: weights, warnings, info, key SLIs ------------------------------------------

EXAMPLE_C = """
objectives:
  - sli: response_time
    weight: 2
    pass: [{criteria: ["<600"]}]
  - sli: error_rate
    key_sli: {key}
    pass: [{criteria: ["<1"]}]
    warning: [{criteria: ["<2"]}]
  - sli: throughput
total_score: {pass: "90%", warning: "75%"}
"""


def test_example_c_warning_with_weights_and_an_info_objective() -> None:
    slo = _slo(EXAMPLE_C.replace("{key}", "false"))
    verdict = evaluate(
        slo, [_value("response_time", 400), _value("error_rate", 1.5), _value("throughput", 900)]
    )
    statuses = [(i.metric, i.status, i.score) for i in verdict.indicator_results]
    assert statuses == [
        ("response_time", IndicatorStatus.PASS, 2.0),
        ("error_rate", IndicatorStatus.WARNING, 0.5),
        ("throughput", IndicatorStatus.INFO, 0.0),
    ]
    assert verdict.maximum_score == 3.0
    assert verdict.score == 100 * (2.5 / 3)
    assert (verdict.result, verdict.reason) == (Result.WARNING, Reason.WARNING)
    # Keptn formats the float with Go's %v: no rounding in the message.
    assert verdict.message == (
        "Evaluation returned a warning: the calculated score of 83.33333333333334 is close to the warning target value of 75"
    )


def test_example_c_failed_key_sli_fails_the_gate() -> None:
    slo = _slo(EXAMPLE_C.replace("{key}", "true"))
    verdict = evaluate(
        slo, [_value("response_time", 400), _value("error_rate", 3), _value("throughput", 900)]
    )
    assert verdict.indicator_results[1].status is IndicatorStatus.FAIL
    assert verdict.score == 100 * (2 / 3)
    assert (verdict.result, verdict.reason) == (Result.FAIL, Reason.KEY_SLI_FAILED)
    assert verdict.failed_key_slis == ["error_rate"]
    assert verdict.message.startswith("Evaluation failed due to key_sli objective")
    assert "error_rate" in verdict.message


def test_failed_key_sli_fails_even_above_the_pass_threshold() -> None:
    slo = _slo(
        """
objectives:
  - {sli: a, weight: 9, pass: [{criteria: ["<1"]}]}
  - {sli: b, key_sli: true, pass: [{criteria: ["<1"]}]}
total_score: {pass: "90%", warning: "75%"}
"""
    )
    verdict = evaluate(slo, [_value("a", 0), _value("b", 5)])
    assert verdict.score == 90.0
    assert verdict.result is Result.FAIL
    assert verdict.reason is Reason.KEY_SLI_FAILED


def test_key_sli_in_warning_does_not_fail_the_gate() -> None:
    slo = _slo(EXAMPLE_C.replace("{key}", "true"))
    verdict = evaluate(slo, [_value("response_time", 400), _value("error_rate", 1.5)])
    assert verdict.failed_key_slis == []
    assert verdict.result is Result.WARNING


def test_key_sli_without_a_value_fails_the_gate() -> None:
    slo = _slo(EXAMPLE_C.replace("{key}", "true"))
    verdict = evaluate(slo, [_value("response_time", 400), _value("throughput", 1)])
    assert verdict.failed_key_slis == ["error_rate"]
    assert verdict.result is Result.FAIL


def test_weights_count_in_score_and_maximum() -> None:
    slo = _slo(
        """
objectives:
  - {sli: a, weight: 3, pass: [{criteria: ["<1"]}]}
  - {sli: b, pass: [{criteria: ["<1"]}]}
total_score: {pass: "90%", warning: "75%"}
"""
    )
    verdict = evaluate(slo, [_value("a", 0), _value("b", 2)])
    assert (verdict.achieved_score, verdict.maximum_score, verdict.score) == (3.0, 4.0, 75.0)
    assert verdict.result is Result.WARNING
    assert verdict.message == (
        "Evaluation returned a warning: the calculated score of 75 is close to the warning target value of 75"
    )


def test_score_is_not_rounded() -> None:
    slo = _slo(
        """
objectives:
  - {sli: a, pass: [{criteria: ["<1"]}]}
  - {sli: b, pass: [{criteria: ["<1"]}]}
  - {sli: c, pass: [{criteria: ["<1"]}]}
total_score: {pass: "90%"}
"""
    )
    verdict = evaluate(slo, [_value("a", 0), _value("b", 5), _value("c", 5)])
    assert verdict.score == 100 * (1 / 3)
    assert verdict.to_event_data()["evaluation"]["score"] == 100 * (1 / 3)
    assert (
        verdict.message
        == "Evaluation failed since the calculated score of 33.33333333333333 is below the target value of 90"
    )
    assert verdict.reason is Reason.BELOW_PASS


def test_only_informational_objectives_pass_with_100_even_without_total_score() -> None:
    slo = _slo("objectives: [{sli: throughput}, {sli: cpu, warning: [{criteria: ['<1']}]}]")
    verdict = evaluate(slo, [_value("throughput", 5), _value("cpu", 5)])
    assert (verdict.result, verdict.score, verdict.reason) == (Result.PASS, 100.0, Reason.NOTHING_SCORED)
    assert [i.status for i in verdict.indicator_results] == [IndicatorStatus.INFO, IndicatorStatus.INFO]
    # Warning criteria of an informational objective are still checked and listed.
    assert _targets(verdict.indicator_results[1], "warning") == [("<1", 1.0, True)]


def test_informational_objective_without_value_stays_informational() -> None:
    slo = _slo(
        "objectives: [{sli: rt, pass: [{criteria: ['<1']}]}, {sli: throughput}]\ntotal_score: {pass: '90%'}"
    )
    verdict = evaluate(slo, [_value("rt", 0)])
    assert verdict.indicator_results[1].status is IndicatorStatus.INFO
    assert verdict.indicator_results[1].message == "no value received from SLI provider"
    assert verdict.result is Result.PASS


# -- worked example D: several results and aggregate functions ------------------------------------


def _several(function: str, criteria: str, count: int = 4) -> SLO:
    return _slo(
        f"""
comparison: {{compare_with: several_results, number_of_comparison_results: {count}, aggregate_function: {function}}}
objectives: [{{sli: rt, pass: [{{criteria: ["{criteria}"]}}]}}]
total_score: {{pass: "90%"}}
"""
    )


HISTORY_D = [_previous({"rt": v}, ident=f"e{i}") for i, v in enumerate([100.0, 120.0, 140.0, 200.0])]


@pytest.mark.parametrize(
    ("function", "criteria", "baseline", "target"),
    [
        ("avg", "<=+10%", 140.0, 154.0),
        ("avg", "<=-5%", 140.0, 133.0),
        ("avg", "<=+50", 140.0, 190.0),
        ("p50", "<=+10%", 130.0, 143.0),
        ("p90", "<=+10%", 200.0, 220.0),
        ("p95", "<=+0%", 200.0, 200.0),
    ],
)
def test_example_d_targets_from_several_results(
    function: str, criteria: str, baseline: float, target: float
) -> None:
    verdict = evaluate(_several(function, criteria), [_value("rt", 150)], HISTORY_D)
    indicator = verdict.indicator_results[0]
    assert indicator.compared_value == baseline
    assert indicator.pass_targets[0].target_value == target
    assert indicator.pass_targets[0].violated is not (target >= 150)
    assert verdict.compared_events == ["e0", "e1", "e2", "e3"]


def test_several_results_uses_the_n_newest() -> None:
    verdict = evaluate(_several("avg", "<=+10%", count=2), [_value("rt", 150)], HISTORY_D)
    assert verdict.compared_events == ["e0", "e1"]
    assert verdict.indicator_results[0].compared_value == 110.0  # avg(100, 120)
    assert verdict.indicator_results[0].pass_targets[0].target_value == 121.0


def test_p90_baseline_interpolates() -> None:
    history = [_previous({"rt": float(v)}) for v in range(11)]
    verdict = evaluate(_several("p90", "<=+0%", count=11), [_value("rt", 9.9)], history)
    assert verdict.indicator_results[0].compared_value == 9.8
    assert verdict.indicator_results[0].pass_targets[0].violated


def test_unknown_aggregate_function_compares_with_zero_like_keptn() -> None:
    verdict = evaluate(_several("p99", "<=+10%"), [_value("rt", 150)], HISTORY_D)
    indicator = verdict.indicator_results[0]
    assert (indicator.compared_value, indicator.pass_targets[0].target_value) == (0.0, 0.0)
    assert indicator.pass_targets[0].violated


def test_negative_values_and_baselines() -> None:
    slo = _slo(
        "objectives: [{sli: d, pass: [{criteria: ['<=+10%']}, {criteria: ['<0']}]}]\ntotal_score: {pass: '90%'}"
    )
    verdict = evaluate(slo, [_value("d", -210)], [_previous({"d": -200})])
    indicator = verdict.indicator_results[0]
    # +10 % of a negative baseline is a lower number: -210 is not <= -220.
    assert _targets(indicator) == [("<=+10%", -220.0, True), ("<0", 0.0, False)]
    assert indicator.status is IndicatorStatus.PASS


def test_compared_value_is_the_baseline_even_for_fixed_criteria() -> None:
    slo = _slo("objectives: [{sli: rt, pass: [{criteria: ['<600']}]}]\ntotal_score: {pass: '90%'}")
    verdict = evaluate(slo, [_value("rt", 300)], [_previous({"rt": 500})])
    assert verdict.indicator_results[0].compared_value == 500.0


# -- previous results: include_result_with_score and invalidation ---------------------------------

HISTORY_MIXED = [
    _previous({"rt": 1000.0}, result="fail", ident="fail-1"),
    _previous({"rt": 800.0}, result="warning", ident="warn-1"),
    _previous({"rt": 500.0}, result="pass", ident="pass-1"),
]


@pytest.mark.parametrize(
    ("include", "baseline", "compared"),
    [("pass", 500.0, ["pass-1"]), ("pass_or_warn", 800.0, ["warn-1"]), ("all", 1000.0, ["fail-1"])],
)
def test_include_result_with_score_filters_on_the_previous_overall_result(
    include: str, baseline: float, compared: list[str]
) -> None:
    slo = _slo(
        f"comparison: {{compare_with: single_result, include_result_with_score: {include}}}\n"
        "objectives: [{sli: rt, pass: [{criteria: ['<=+10%']}]}]\ntotal_score: {pass: '90%'}"
    )
    verdict = evaluate(slo, [_value("rt", 900)], HISTORY_MIXED)
    assert verdict.indicator_results[0].compared_value == baseline
    assert verdict.compared_events == compared


def test_invalidated_evaluations_are_not_compared_with() -> None:
    slo = _slo(EXAMPLE_A)
    history = [
        _previous({"response_time_p95": 100.0}, ident="bad", invalidated=True),
        _previous({"response_time_p95": 500.0}, ident="good"),
    ]
    verdict = evaluate(slo, [_value("response_time_p95", 540)], history)
    assert verdict.compared_events == ["good"]
    assert verdict.indicator_results[0].compared_value == 500.0


def test_unsuccessful_previous_values_are_not_aggregated_but_the_event_is_compared() -> None:
    slo = _slo(EXAMPLE_A)
    failed = PreviousEvaluation("e1", "pass", (PreviousIndicator("response_time_p95", 99999.0, False),))
    verdict = evaluate(slo, [_value("response_time_p95", 580)], [failed])
    indicator = verdict.indicator_results[0]
    assert verdict.compared_events == ["e1"]
    assert indicator.compared_value == 0.0
    assert indicator.pass_targets[0].baseline_missing
    assert verdict.result is Result.PASS


# -- configuration problems -----------------------------------------------------------------------


def test_invalid_criterion_fails_the_whole_evaluation() -> None:
    slo = _slo(
        """
objectives:
  - {sli: a, pass: [{criteria: ["<1"]}]}
  - {sli: b, displayName: Errors, pass: [{criteria: ["<1"]}], warning: [{criteria: ["<=ten"]}]}
total_score: {pass: "10%"}
"""
    )
    verdict = evaluate(slo, [_value("a", 0), _value("b", 5)])
    assert (verdict.result, verdict.status, verdict.evaluation_result) == (
        Result.FAIL,
        Status.SUCCEEDED,
        Result.FAIL,
    )
    assert verdict.reason is Reason.INVALID_CRITERIA
    assert verdict.message == "error with Errors: could not parse criteria target value"
    assert _targets(verdict.indicator_results[1], "warning") == [("<=ten", 0.0, True)]
    assert "<=ten" in verdict.problem


def test_gate_lists_every_invalid_criterion() -> None:
    gate = QualityGate(_slo("objectives: [{sli: a, pass: [{criteria: ['600', '<1', 'x']}]}]"))
    assert [(name, error.criteria) for name, error in gate.problems] == [("a", "600"), ("a", "x")]


@pytest.mark.parametrize(
    ("total", "message", "reason"),
    [
        ("", "no target score defined", Reason.NO_TARGET_SCORE),
        ("total_score: {warning: '75%'}", "no target score defined", Reason.NO_TARGET_SCORE),
        (
            "total_score: {pass: 'ninety%'}",
            "could not parse pass target percentage",
            Reason.UNPARSABLE_PASS_SCORE,
        ),
        (
            "total_score: {pass: '90 %'}",
            "could not parse pass target percentage",
            Reason.UNPARSABLE_PASS_SCORE,
        ),
        (
            "total_score: {pass: '90%', warning: 'most'}",
            "could not parse warning target percentage",
            Reason.UNPARSABLE_WARNING_SCORE,
        ),
    ],
)
def test_missing_or_unparsable_total_score_errors_the_evaluation(
    total: str, message: str, reason: Reason
) -> None:
    slo = _slo(f"objectives: [{{sli: a, pass: [{{criteria: ['<1']}}]}}]\n{total}")
    result = evaluate(slo, [_value("a", 5)])
    assert (result.result, result.status, result.message, result.reason) == (
        Result.FAIL,
        Status.ERRORED,
        message,
        reason,
    )


def test_unparsable_warning_score_is_not_read_when_the_gate_passes() -> None:
    slo = _slo(
        "objectives: [{sli: a, pass: [{criteria: ['<1']}]}]\ntotal_score: {pass: '90', warning: 'most'}"
    )
    assert evaluate(slo, [_value("a", 0)]).result is Result.PASS


def test_no_objectives_fails_with_keptns_message() -> None:
    verdict = evaluate(_slo("objectives:\ntotal_score: {pass: '90%'}"), [_value("a", 1)])
    assert (verdict.result, verdict.status) == (Result.FAIL, Status.SUCCEEDED)
    assert verdict.message == "lighthouse failed because no SLO objective was provided"
    assert verdict.indicator_results == []


# -- values the SLO does not ask for, duplicates, SLI provider failure -----------------------------


def test_extra_slis_are_named_in_the_message_in_keptns_order() -> None:
    slo = _slo("objectives: [{sli: rt, pass: [{criteria: ['<1']}]}]\ntotal_score: {pass: '90%'}")
    verdict = evaluate(slo, [_value("rt", 0), _value("cpu", 1), _value("mem", 2)])
    # Keptn removed each used value by moving the last one into its slot.
    assert verdict.extra_slis == ["mem", "cpu"]
    assert verdict.message == (
        "Lighthouse received additional SLIs, which are not specified as SLO: mem, cpu . Please consider using them as an SLO."
    )


def test_extra_slis_message_is_replaced_by_the_fail_text() -> None:
    slo = _slo("objectives: [{sli: rt, pass: [{criteria: ['<1']}]}]\ntotal_score: {pass: '90%'}")
    verdict = evaluate(slo, [_value("rt", 5), _value("cpu", 1)])
    assert verdict.extra_slis == ["cpu"]
    assert (
        verdict.message == "Evaluation failed since the calculated score of 0 is below the target value of 90"
    )


def test_two_objectives_on_one_sli_need_two_values() -> None:
    slo = _slo("objectives: [{sli: rt, pass: [{criteria: ['<1']}]}, {sli: rt, displayName: again}]")
    verdict = evaluate(slo, [_value("rt", 0)])
    assert verdict.indicator_results[1].message == "no value received from SLI provider"


def test_sli_provider_failure_fails_the_event_but_keeps_the_computed_evaluation() -> None:
    slo = _slo(EXAMPLE_A)
    verdict = QualityGate(slo).evaluate(
        [_value("response_time_p95", 540)], sli_failure="Prometheus unreachable"
    )
    assert (verdict.result, verdict.status) == (Result.FAIL, Status.SUCCEEDED)
    assert verdict.message == "lighthouse failed because SLI failed with message Prometheus unreachable"
    assert (verdict.evaluation_result, verdict.score) == (Result.PASS, 100.0)


def test_a_gate_can_be_reused() -> None:
    gate = QualityGate(_slo(EXAMPLE_A))
    history = [_previous({"response_time_p95": 500})]
    first = gate.evaluate([_value("response_time_p95", 540)], history)
    second = gate.evaluate([_value("response_time_p95", 580)], history)
    third = gate.evaluate([_value("response_time_p95", 540)], history)
    assert (first.result, second.result, third.result) == (Result.PASS, Result.FAIL, Result.PASS)


# -- the evaluation.finished data -----------------------------------------------------------------


def test_event_data_is_keptns_camel_case_shape() -> None:
    verdict = _example_a(
        _value("response_time_p95", 580, message="from prometheus"),
        [_previous({"response_time_p95": 500}, ident="e1")],
    )
    data = verdict.to_event_data(
        time_start="2024-01-01T00:00:00.000Z", time_end="2024-01-01T00:05:00.000Z", slo_file_content=b"x"
    )
    assert data == {
        "result": "fail",
        "status": "succeeded",
        "message": "Evaluation failed since the calculated score of 50 is below the warning value of 75",
        "evaluation": {
            "timeStart": "2024-01-01T00:00:00.000Z",
            "timeEnd": "2024-01-01T00:05:00.000Z",
            "result": "fail",
            "score": 50,
            "sloFileContent": "eA==",
            "indicatorResults": [
                {
                    "value": {
                        "metric": "response_time_p95",
                        "value": 580,
                        "comparedValue": 500,
                        "success": True,
                        "message": "from prometheus",
                    },
                    "score": 0.5,
                    "status": "warning",
                    "keySli": False,
                    "displayName": "Response Time P95",
                    "passTargets": [
                        {"criteria": "<=+10%", "targetValue": 550, "violated": True},
                        {"criteria": "<600", "targetValue": 600, "violated": False},
                    ],
                    "warningTargets": [{"criteria": "<=800", "targetValue": 800, "violated": False}],
                }
            ],
            "comparedEvents": ["e1"],
        },
    }
    assert isinstance(data["evaluation"]["score"], int)
