"""The quality-gate engine: Keptn-compatible scoring of SLI values against an SLO (lighthouse), pure.

from tidegate.qualitygate import QualityGate, explain
verdict = QualityGate(slo).evaluate(values, previous)
verdict.to_event_data()   # evaluation.finished data
explain(verdict)          # why, as text lines

The names are imported from their modules on first use (`tidegate.schemas.lazy`), so `tidegate lint`,
which checks criteria only, does not load the engine; `tests/unit/test_schemas_surface.py` holds
`__all__`, `_PUBLIC` and the `TYPE_CHECKING` imports to one another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tidegate.schemas.lazy import lazy_surface

if TYPE_CHECKING:
    from tidegate.qualitygate.baseline import Baseline, aggregate, select_previous
    from tidegate.qualitygate.criteria import CriteriaError, Criterion, CriterionKind, parse_criteria
    from tidegate.qualitygate.engine import QualityGate, evaluate
    from tidegate.qualitygate.explanation import explain
    from tidegate.qualitygate.inputs import (
        InputError,
        PreviousEvaluation,
        PreviousIndicator,
        SLIValue,
        previous_from_json,
        sli_values_from_json,
    )
    from tidegate.qualitygate.results import (
        EvaluationResult,
        IndicatorResult,
        IndicatorStatus,
        Reason,
        Target,
    )

# Public name -> the module it is imported from on first use (schemas.lazy).
_PUBLIC: dict[str, str] = {
    **dict.fromkeys(("Baseline", "aggregate", "select_previous"), "baseline"),
    **dict.fromkeys(("CriteriaError", "Criterion", "CriterionKind", "parse_criteria"), "criteria"),
    **dict.fromkeys(("QualityGate", "evaluate"), "engine"),
    "explain": "explanation",
    **dict.fromkeys(("InputError", "PreviousEvaluation", "PreviousIndicator", "SLIValue", "previous_from_json",
                     "sli_values_from_json"), "inputs"),
    **dict.fromkeys(("EvaluationResult", "IndicatorResult", "IndicatorStatus", "Reason", "Target"), "results"),
}

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


if not TYPE_CHECKING:  # type checkers read the imports above, and still report a name that is not there
    __getattr__, __dir__ = lazy_surface(__name__, _PUBLIC)
