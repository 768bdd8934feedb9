"""Explain a verdict in plain sentences: each objective, its value and baseline, each target and
whether it held, and one line saying why the gate passed, warned or failed. Pure: no I/O.
"""

from __future__ import annotations

from tidegate.qualitygate.baseline import Baseline
from tidegate.qualitygate.criteria import CriterionKind
from tidegate.qualitygate.results import EvaluationResult, IndicatorResult, Reason, Target
from tidegate.schemas.outcomes import Status
from tidegate.schemas.slo import AGGREGATE_FUNCTIONS

_HEADER = ("Objective", "Value", "Baseline", "Status", "Score")
_INFINITY = float("inf")


def show(value: float) -> str:
    """A number for people: whole numbers plain, others to two decimals (small ones to 4 digits)."""
    value = float(value)
    if value.is_integer():  # the usual case first (never true for NaN or an infinity)
        return str(int(value))
    if value != value:  # NaN
        return "NaN"
    if value == _INFINITY or value == -_INFINITY:
        return "infinity" if value > 0 else "-infinity"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"


def explain(verdict: EvaluationResult) -> list[str]:
    """The verdict as text lines (the `tidegate evaluate --output text` report)."""
    lines = [_headline(verdict)]
    if verdict.indicator_results:
        lines.append(_comparison_line(verdict))
        lines.append("")
        lines.extend(_table(verdict.indicator_results))
    if verdict.extra_slis:
        lines.append("")
        lines.append("Not in the SLO (reported, not scored): " + ", ".join(verdict.extra_slis))
    if verdict.aggregate_function not in AGGREGATE_FUNCTIONS and verdict.indicator_results:
        lines.append(
            f"Note: aggregate_function {verdict.aggregate_function!r} is not one of {', '.join(AGGREGATE_FUNCTIONS)}; "
            "Keptn then compared relative criteria with 0."
        )
    lines.append("")
    lines.append("Why: " + _why(verdict))
    return lines


def _headline(verdict: EvaluationResult) -> str:
    outcome = verdict.result.value.upper()
    if verdict.status is Status.ERRORED:
        return f"Quality gate: {outcome} (errored: {verdict.message})"
    if verdict.reason is Reason.NO_OBJECTIVES:
        return f"Quality gate: {outcome}"
    thresholds = []
    if verdict.pass_threshold is not None:
        thresholds.append(f"pass at {show(verdict.pass_threshold)}")
    if verdict.warning_threshold is not None:
        thresholds.append(f"warning at {show(verdict.warning_threshold)}")
    detail = f"score {show(verdict.score)} of 100"
    if thresholds:
        detail += "; " + ", ".join(thresholds)
    return f"Quality gate: {outcome} ({detail})"


def _comparison_line(verdict: EvaluationResult) -> str:
    if not verdict.compared_count:
        return "Compared with: no previous evaluation (relative criteria hold automatically)"
    ids = f": {', '.join(verdict.compared_events)}" if verdict.compared_events else ""
    plural = "s" if verdict.compared_count != 1 else ""
    return f"Compared with: {verdict.compared_count} previous evaluation{plural} ({verdict.aggregate_function}){ids}"


def _table(indicators: list[IndicatorResult]) -> list[str]:
    rows = [_HEADER]
    for indicator in indicators:
        name = indicator.name + (" [key SLI]" if indicator.key_sli else "")
        value = show(indicator.value) if indicator.success else "no value"
        score = f"{show(indicator.score)} of {indicator.weight}" if indicator.status.value != "info" else "-"
        rows.append((name, value, _baseline_cell(indicator.baseline), indicator.status.value, score))
    # Each column as wide as its widest cell (one format for every row).
    row_format = "  ".join(f"{{:<{max(map(len, column))}}}" for column in zip(*rows, strict=True))
    lines: list[str] = []
    for position, row in enumerate(rows):
        lines.append(row_format.format(*row).rstrip())
        if position == 0:
            continue
        indicator = indicators[position - 1]
        if not indicator.success and indicator.message:
            lines.append(f"    no value: {indicator.message}")
        if indicator.pass_targets or indicator.warning_targets:
            value = show(indicator.value)
            for label, targets in (("pass", indicator.pass_targets), ("warning", indicator.warning_targets)):
                for target in targets:
                    lines.append(f"    {label:<8} {target.criteria:<10} {_target_text(target, indicator, value)}")
    return lines


def _baseline_cell(baseline: Baseline | None) -> str:
    if baseline is None:
        return "-"
    count = len(baseline.values)
    return f"{show(baseline.value)} ({baseline.function} of {count})"


def _target_text(target: Target, indicator: IndicatorResult, value: str) -> str:
    """`value`: the indicator's value as `show` writes it."""
    criterion = target.criterion
    if target.value_missing:
        return "VIOLATED  (no value to check)"
    if criterion is None:
        return "VIOLATED  (invalid criterion: see below)"
    if target.baseline_missing:
        return "held      (no previous value to compare with: a relative criterion then holds)"
    origin = ""
    if criterion.kind is not CriterionKind.FIXED and indicator.baseline is not None:
        sign = "+" if criterion.value >= 0 else "-"
        amount = show(abs(criterion.value)) + ("%" if criterion.kind is CriterionKind.RELATIVE_PCT else "")
        origin = f" = baseline {show(indicator.baseline.value)} {sign}{amount}"
    state = "VIOLATED" if target.violated else "held    "
    target_value = show(target.target_value)
    relation = f"{value} {'is not' if target.violated else 'is'} {criterion.operator} {target_value}"
    return f"{state}  target {target_value}{origin}: {relation}"


def _failed_names(verdict: EvaluationResult) -> str:
    failed = [i.name for i in verdict.indicator_results if i.status.value == "fail"]
    return f" Failed: {', '.join(failed)}." if failed else ""


def _why(verdict: EvaluationResult) -> str:
    score = show(verdict.score)
    pass_at = show(verdict.pass_threshold) if verdict.pass_threshold is not None else "?"
    warning_at = show(verdict.warning_threshold) if verdict.warning_threshold is not None else "?"
    points = f"{show(verdict.achieved_score)} of {show(verdict.maximum_score)} points"
    match verdict.reason:
        case Reason.PASSED:
            return f"the score {score} ({points}) reached the pass threshold {pass_at}."
        case Reason.NOTHING_SCORED:
            return "no objective has pass criteria, so nothing is scored and the gate passes with 100."
        case Reason.WARNING:
            return (
                f"the score {score} ({points}) is below the pass threshold {pass_at} "
                f"but reached the warning threshold {warning_at}.{_failed_names(verdict)}"
            )
        case Reason.BELOW_WARNING:
            return (
                f"the score {score} ({points}) is below the warning threshold {warning_at} "
                f"(pass needs {pass_at}).{_failed_names(verdict)}"
            )
        case Reason.BELOW_PASS:
            return (
                f"the score {score} ({points}) is below the pass threshold {pass_at} and the SLO sets "
                f"no warning threshold.{_failed_names(verdict)}"
            )
        case Reason.KEY_SLI_FAILED:
            return (
                f"key SLI {', '.join(verdict.failed_key_slis)} failed, which fails the gate whatever the "
                f"score (score {score})."
            )
        case Reason.NO_OBJECTIVES:
            return "the SLO has no objectives; add objectives with pass criteria to slo.yaml."
        case Reason.INVALID_CRITERIA:
            return f"the SLO has an invalid criterion, so the gate fails until slo.yaml is fixed: {verdict.problem}."
        case Reason.NO_TARGET_SCORE:
            return 'the SLO has no total_score.pass; add e.g. total_score: {pass: "90%", warning: "75%"}.'
        case Reason.UNPARSABLE_PASS_SCORE:
            return f'total_score.pass {verdict.problem!r} is not a number; write it like "90%".'
        case Reason.UNPARSABLE_WARNING_SCORE:
            return f'total_score.warning {verdict.problem!r} is not a number; write it like "75%".'
        case Reason.SLI_FAILED:
            return (
                f"the SLI provider reported a failure ({verdict.problem}), which fails the gate "
                f"whatever the score (score {score})."
            )
    raise AssertionError(f"unexplained reason {verdict.reason}")
