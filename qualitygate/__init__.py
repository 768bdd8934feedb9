"""The quality-gate engine: Keptn-compatible scoring of SLI values against an SLO (lighthouse), pure.

from tidegate.qualitygate import QualityGate, explain
verdict = QualityGate(slo).evaluate(values, previous)
verdict.to_event_data()   # evaluation.finished data
explain(verdict)          # why, as text lines
"""

from tidegate.qualitygate.baseline import Baseline, aggregate, select_previous
from tidegate.qualitygate.criteria import CriteriaError, Criterion, CriterionKind, parse_criteria
from tidegate.qualitygate.engine import QualityGate, evaluate
from tidegate.qualitygate.explain import explain
from tidegate.qualitygate.inputs import (
    InputError,
    PreviousEvaluation,
    PreviousIndicator,
    SLIValue,
    previous_from_json,
    sli_values_from_json,
)
from tidegate.qualitygate.results import EvaluationResult, IndicatorResult, IndicatorStatus, Reason, Target

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
