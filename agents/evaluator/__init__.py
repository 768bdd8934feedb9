"""The evaluator: Keptn-compatible quality gates (lighthouse) as a pure engine.

from agents.evaluator import QualityGate, explain
verdict = QualityGate(slo).evaluate(values, previous)
verdict.to_event_data()   # evaluation.finished data
explain(verdict)          # why, as text lines
"""

from agents.evaluator.baseline import Baseline, aggregate, select_previous
from agents.evaluator.criteria import CriteriaError, Criterion, CriterionKind, parse_criteria
from agents.evaluator.engine import QualityGate, evaluate
from agents.evaluator.explain import explain
from agents.evaluator.inputs import (
    InputError,
    PreviousEvaluation,
    PreviousIndicator,
    SLIValue,
    previous_from_json,
    sli_values_from_json,
)
from agents.evaluator.results import EvaluationResult, IndicatorResult, IndicatorStatus, Reason, Target

__all__ = [
    "Baseline",
    "CriteriaError",
    "Criterion",
    "CriterionKind",
    "EvaluationResult",
    "IndicatorResult",
    "IndicatorStatus",
    "InputError",
    "PreviousEvaluation",
    "PreviousIndicator",
    "QualityGate",
    "Reason",
    "SLIValue",
    "Target",
    "aggregate",
    "evaluate",
    "explain",
    "parse_criteria",
    "previous_from_json",
    "select_previous",
    "sli_values_from_json",
]
