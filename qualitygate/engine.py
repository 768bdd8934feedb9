"""The quality-gate engine: scores SLI values against an SLO exactly as Keptn's lighthouse did.

    gate = QualityGate(slo)                      # parses every criterion once
    verdict = gate.evaluate(values, previous)    # -> EvaluationResult
    verdict.to_event_data()                      # the evaluation.finished data
    explain(verdict)                             # why, in sentences

Rules (reference §4.4-4.6; lighthouse-service evaluate_sli_handler.go):
- Per objective, the pass criteria sets are OR-ed and the criteria inside a set AND-ed. Pass gives
  the objective's weight; otherwise warning criteria that hold give half of it; otherwise 0 and
  status fail (a failing `key_sli` fails the whole gate). Warning targets are checked and reported
  even when the pass criteria hold.
- An objective without pass criteria is informational: reported, never scored, not in the maximum.
- A missing SLI value (or one with success=false, or null) violates every criterion; each valid one
  is listed with lighthouse's target value (a fixed criterion's own value, `<=15` -> 15; for a
  relative one the aggregated previous value, 0 without one); invalid ones are not listed.
- Relative criteria compare with the baseline of previous values (`baseline.py`); with none they
  hold. `comparedValue` is that baseline (0 without one), even for fixed criteria.
- Score = 100 * sum(scores) / sum(weights of objectives with pass criteria); with no such
  objective the gate passes with 100. score >= pass% and no key SLI failed: pass; else, with a
  warning% and no key SLI failed, score >= warning%: warning; otherwise fail.
- SLI values the SLO does not ask for are named in the message (Keptn only kept that sentence when
  the gate passed, because the warning and fail texts replace it).

Where lighthouse 1.x's own code was not available to read, the reference's description is
followed and the remaining details are Tidegate's choices:
- a failed key SLI: message `KEY_SLI_FAILED` (the reference gives only its start);
- an invalid criterion: the event fails with "error with <name>: <Keptn's parse error>", the
  indicators are still computed (the invalid target is violated, target 0);
- no objectives: evaluation result fail with score 0;
- an informational objective without a value stays `info` (Keptn 0.x marked it `fail`, unscored);
- precedence when several apply: no objectives, invalid criterion, total-score error (status
  errored), SLI provider failure, then the score.
Pure: no I/O; the hot loop works on plain dataclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tidegate.qualitygate.baseline import Baseline, baseline_of, select_previous, successful_values
from tidegate.qualitygate.criteria import CriteriaError, Criterion, CriterionKind, parse_criteria
from tidegate.qualitygate.gonum import format_float, parse_float
from tidegate.qualitygate.inputs import PreviousEvaluation, SLIValue
from tidegate.qualitygate.results import EvaluationResult, IndicatorResult, IndicatorStatus, Reason, Target
from tidegate.schemas.outcomes import Result, Status
from tidegate.schemas.slo import SLO, CriteriaSet, Objective

__all__ = [
    "CriteriaError",
    "Criterion",
    "CriterionKind",
    "QualityGate",
    "evaluate",
    "parse_criteria",
]

# Lighthouse's texts (evaluate_sli_handler.go), with Go's %v number formatting.
NO_VALUE = "no value received from SLI provider"
WARNING = "Evaluation returned a warning: the calculated score of {score} is close to the warning target value of {warning}"
BELOW_WARNING = (
    "Evaluation failed since the calculated score of {score} is below the warning value of {warning}"
)
BELOW_PASS = "Evaluation failed since the calculated score of {score} is below the target value of {target}"
EXTRA_SLIS = "Lighthouse received additional SLIs, which are not specified as SLO: {names} . Please consider using them as an SLO."
NO_OBJECTIVES = "lighthouse failed because no SLO objective was provided"
SLI_FAILED = "lighthouse failed because SLI failed with message {message}"
INVALID_CRITERIA = "error with {name}: {reason}"
NO_TARGET_SCORE = "no target score defined"
UNPARSABLE_PASS = "could not parse pass target percentage"
UNPARSABLE_WARNING = "could not parse warning target percentage"
# Keptn 1.x reports a failed key SLI with a message starting like this (reference §4.5); the rest
# of its wording was not available, so Tidegate names the failed objectives.
KEY_SLI_FAILED = "Evaluation failed due to key_sli objective(s) failing: {names}"

_Check = Criterion | CriteriaError
# Enum members as plain names: attribute lookups on an Enum class are slow in the hot loop.
_FIXED = CriterionKind.FIXED
_PASS, _WARNING, _FAIL = IndicatorStatus.PASS, IndicatorStatus.WARNING, IndicatorStatus.FAIL


@dataclass(frozen=True, slots=True)
class _Plan:
    """One objective with its criteria parsed once."""

    sli: str
    name: str
    display_name: str
    weight: int
    key_sli: bool
    scored: bool  # has pass criteria: counts toward the maximum score
    pass_sets: tuple[tuple[_Check, ...], ...]
    warning_sets: tuple[tuple[_Check, ...], ...]
    # Some valid criterion exists: Keptn then wrote the baseline into comparedValue.
    compares: bool


def _parse_sets(sets: Sequence[CriteriaSet]) -> tuple[tuple[_Check, ...], ...]:
    parsed: list[tuple[_Check, ...]] = []
    for criteria_set in sets:
        checks: list[_Check] = []
        for text in criteria_set.criteria:
            try:
                checks.append(parse_criteria(text))
            except CriteriaError as error:
                checks.append(error)
        parsed.append(tuple(checks))
    return tuple(parsed)


def _plan(objective: Objective) -> _Plan:
    pass_sets = _parse_sets(objective.pass_)
    warning_sets = _parse_sets(objective.warning)
    return _Plan(
        sli=objective.sli,
        name=objective.name,
        display_name=objective.displayName,
        weight=objective.weight,
        key_sli=objective.key_sli,
        scored=not objective.is_informational,
        pass_sets=pass_sets,
        warning_sets=warning_sets,
        compares=any(isinstance(check, Criterion) for checks in pass_sets + warning_sets for check in checks),
    )


def _check_sets(
    sets: tuple[tuple[_Check, ...], ...], value: SLIValue, baseline: Baseline | None
) -> tuple[bool, list[Target]]:
    """OR over the sets, AND inside each; every criterion becomes a target (Keptn lists them all)."""
    satisfied = False
    targets: list[Target] = []
    for checks in sets:
        set_holds = True
        for check in checks:
            if not value.success:
                # Keptn refused to evaluate a value the provider could not measure, but still listed
                # each valid criterion, violated, with its target (lighthouse getEmptyTargets).
                set_holds = False
                if isinstance(check, Criterion):
                    targets.append(Target(check.text, _unmeasured_target(check, baseline), True, check,
                                          value_missing=True))
            elif isinstance(check, CriteriaError):
                targets.append(Target(check.criteria, 0.0, True, None))
                set_holds = False
            elif check.kind is _FIXED:
                held = check.compare(value.value, check.value)
                targets.append(Target(check.text, check.value, not held, check))
                set_holds = set_holds and held
            elif baseline is None:
                targets.append(Target(check.text, 0.0, False, check, baseline_missing=True))
            else:
                target = check.target(baseline.value)
                held = check.compare(value.value, target)
                targets.append(Target(check.text, target, not held, check))
                set_holds = set_holds and held
        satisfied = satisfied or set_holds
    return satisfied, targets


def _unmeasured_target(check: Criterion, baseline: Baseline | None) -> float:
    """The targetValue lighthouse reported for a criterion of an SLI without a value: a fixed
    criterion's own value (`<=15` -> 15); for a relative one the aggregated previous value itself
    (not the target it would set), 0 without previous values."""
    if check.kind is _FIXED:
        return check.value
    return baseline.value if baseline is not None else 0.0


def _take(values: list[SLIValue], sli: str) -> SLIValue | None:
    """The first value for `sli`, removed Keptn's way (the last value moves into its slot)."""
    for index, value in enumerate(values):
        if value.metric == sli:
            values[index] = values[-1]
            values.pop()
            return value
    return None


class QualityGate:
    """An SLO ready to score: criteria parsed once, so repeated evaluations do no parsing."""

    __slots__ = ("_plans", "_slis", "aggregate_function", "include_results", "limit", "problems", "slo")

    def __init__(self, slo: SLO) -> None:
        self.slo = slo
        self._plans = tuple(_plan(objective) for objective in slo.objectives)
        self._slis = frozenset(plan.sli for plan in self._plans)
        self.limit = slo.previous_results_needed
        self.include_results = slo.include_results
        self.aggregate_function = slo.comparison.aggregate_function
        # (objective name, error) for each invalid criterion, pass criteria before warning criteria.
        self.problems: list[tuple[str, CriteriaError]] = [
            (plan.name, check)
            for plan in self._plans
            for sets in (plan.pass_sets, plan.warning_sets)
            for checks in sets
            for check in checks
            if isinstance(check, CriteriaError)
        ]

    def evaluate(
        self,
        values: Sequence[SLIValue],
        previous: Sequence[PreviousEvaluation] = (),
        *,
        sli_failure: str | None = None,
    ) -> EvaluationResult:
        """Score `values` (one get-sli.finished) against earlier evaluations (newest first).

        `sli_failure`: the message of a get-sli.finished whose result was fail; the gate then fails
        with Keptn's "lighthouse failed because SLI failed" text, keeping the computed score.
        """
        if not self._plans:
            return EvaluationResult(
                result=Result.FAIL,
                status=Status.SUCCEEDED,
                message=NO_OBJECTIVES,
                evaluation_result=Result.FAIL,
                score=0.0,
                indicator_results=[],
                compared_events=[],
                reason=Reason.NO_OBJECTIVES,
                aggregate_function=self.aggregate_function,
            )
        selected = select_previous(previous, self.include_results, self.limit)
        history = successful_values(selected, self._slis)
        baselines: dict[str, Baseline | None] = {}
        remaining = list(values)
        indicators: list[IndicatorResult] = []
        maximum = 0.0
        failed_keys: list[str] = []
        for plan in self._plans:
            if plan.scored:
                maximum += float(plan.weight)
            value = _take(remaining, plan.sli)
            missing = value is None
            if value is None:
                value = SLIValue(metric=plan.sli, value=0.0, success=False, message=NO_VALUE)
            if plan.sli in baselines:
                baseline = baselines[plan.sli]
            else:
                baseline = baselines[plan.sli] = baseline_of(history.get(plan.sli), self.aggregate_function)
            indicator = self._score(plan, value, baseline, missing)
            if indicator.status is _FAIL and plan.key_sli:
                failed_keys.append(plan.name)
            indicators.append(indicator)
        verdict = self._total(indicators, maximum, failed_keys)
        verdict.compared_events = [evaluation.id for evaluation in selected if evaluation.id is not None]
        verdict.compared_count = len(selected)
        verdict.extra_slis = [value.metric for value in remaining]
        if remaining and verdict.result is Result.PASS and verdict.status is Status.SUCCEEDED:
            verdict.message = EXTRA_SLIS.format(names=", ".join(verdict.extra_slis))
        self._apply_overrides(verdict, sli_failure)
        return verdict

    def _score(
        self, plan: _Plan, value: SLIValue, baseline: Baseline | None, missing: bool
    ) -> IndicatorResult:
        compared = value.compared_value
        if plan.compares and value.success:
            compared = baseline.value if baseline is not None else 0.0
        indicator = IndicatorResult(
            metric=value.metric,
            value=value.value,
            success=value.success,
            message=value.message,
            compared_value=compared,
            score=0.0,
            status=IndicatorStatus.INFO,
            display_name=plan.display_name,
            key_sli=plan.key_sli,
            weight=plan.weight,
            baseline=baseline,
            value_missing=missing,
        )
        passed = True
        if plan.pass_sets:
            passed, indicator.pass_targets = _check_sets(plan.pass_sets, value, baseline)
            if passed:
                indicator.score = float(plan.weight)
                indicator.status = _PASS
        warned = False
        if plan.warning_sets:
            warned, indicator.warning_targets = _check_sets(plan.warning_sets, value, baseline)
            if not passed and warned:
                indicator.score = 0.5 * float(plan.weight)
                indicator.status = _WARNING
        if not passed and not warned:
            indicator.score = 0.0
            indicator.status = _FAIL
        return indicator

    def _total(
        self, indicators: list[IndicatorResult], maximum: float, failed_keys: list[str]
    ) -> EvaluationResult:
        verdict = EvaluationResult(
            result=Result.PASS,
            status=Status.SUCCEEDED,
            message="",
            evaluation_result=Result.PASS,
            score=100.0,
            indicator_results=indicators,
            compared_events=[],
            reason=Reason.NOTHING_SCORED,
            maximum_score=maximum,
            failed_key_slis=failed_keys,
            aggregate_function=self.aggregate_function,
        )
        if maximum == 0:
            return verdict
        achieved = 0.0
        for indicator in indicators:
            achieved += indicator.score
        score = 100.0 * (achieved / maximum)
        verdict.achieved_score = achieved
        verdict.score = score
        total = self.slo.total_score
        if total is None or total.pass_ == "":
            return _errored(verdict, Reason.NO_TARGET_SCORE, NO_TARGET_SCORE, "")
        pass_threshold = parse_float(total.pass_.removesuffix("%"))
        if pass_threshold is None:
            return _errored(verdict, Reason.UNPARSABLE_PASS_SCORE, UNPARSABLE_PASS, total.pass_)
        verdict.pass_threshold = pass_threshold
        if score >= pass_threshold and not failed_keys:
            # Keptn never read the warning threshold here; it is parsed for the explanation only.
            verdict.warning_threshold = (
                parse_float(total.warning.removesuffix("%")) if total.warning else None
            )
            return _decide(verdict, Result.PASS, Reason.PASSED, verdict.message)
        if total.warning != "" and not failed_keys:
            warning_threshold = parse_float(total.warning.removesuffix("%"))
            if warning_threshold is None:
                return _errored(verdict, Reason.UNPARSABLE_WARNING_SCORE, UNPARSABLE_WARNING, total.warning)
            verdict.warning_threshold = warning_threshold
            numbers = {"score": format_float(score), "warning": format_float(warning_threshold)}
            if score >= warning_threshold:
                return _decide(verdict, Result.WARNING, Reason.WARNING, WARNING.format(**numbers))
            return _decide(verdict, Result.FAIL, Reason.BELOW_WARNING, BELOW_WARNING.format(**numbers))
        if failed_keys:
            return _decide(
                verdict,
                Result.FAIL,
                Reason.KEY_SLI_FAILED,
                KEY_SLI_FAILED.format(names=", ".join(failed_keys)),
            )
        message = BELOW_PASS.format(score=format_float(score), target=format_float(pass_threshold))
        return _decide(verdict, Result.FAIL, Reason.BELOW_PASS, message)

    def _apply_overrides(self, verdict: EvaluationResult, sli_failure: str | None) -> None:
        # A broken criterion makes the whole gate fail (Keptn 1.x); the indicators stay as computed.
        if self.problems:
            name, error = self.problems[0]
            verdict.result = Result.FAIL
            verdict.status = Status.SUCCEEDED
            verdict.evaluation_result = Result.FAIL
            verdict.message = INVALID_CRITERIA.format(name=name, reason=error.reason)
            verdict.reason = Reason.INVALID_CRITERIA
            verdict.problem = f"objective {name!r}: {error}"
            return
        if sli_failure is not None and verdict.status is Status.SUCCEEDED:
            # Keptn #6096: the event fails, evaluation.result and score keep the computed values.
            verdict.result = Result.FAIL
            verdict.message = SLI_FAILED.format(message=sli_failure)
            verdict.reason = Reason.SLI_FAILED
            verdict.problem = sli_failure


def _decide(verdict: EvaluationResult, result: Result, why: Reason, message: str) -> EvaluationResult:
    verdict.result = result
    verdict.evaluation_result = result
    verdict.reason = why
    verdict.message = message
    return verdict


def _errored(verdict: EvaluationResult, why: Reason, message: str, written: str) -> EvaluationResult:
    verdict.result = Result.FAIL
    verdict.evaluation_result = Result.FAIL
    verdict.status = Status.ERRORED
    verdict.reason = why
    verdict.message = message
    verdict.problem = written
    return verdict


def evaluate(
    slo: SLO,
    values: Sequence[SLIValue],
    previous: Sequence[PreviousEvaluation] = (),
    *,
    sli_failure: str | None = None,
) -> EvaluationResult:
    """One-off evaluation; use `QualityGate(slo).evaluate(...)` to score the same SLO repeatedly."""
    return QualityGate(slo).evaluate(values, previous, sli_failure=sli_failure)
