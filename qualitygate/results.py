"""What an evaluation decided, shaped like Keptn's `evaluation.finished` data (reference §4.7).

`EvaluationResult.to_event_data()` gives the camelCase JSON lighthouse emitted:

    {"result", "status", "message",
     "evaluation": {"result", "score", "comparedEvents",
                    "indicatorResults": [{"value": {"metric", "value", "comparedValue", "success", "message"?},
                                          "score", "status", "keySli", "displayName",
                                          "passTargets": [{"criteria", "targetValue", "violated"}],
                                          "warningTargets": [...]}]}}

Lists are always lists (Go wrote `null` for empty ones, a quirk of its JSON encoder that Tidegate
does not copy), whole numbers are written without a fraction (`100`, not `100.0`), and a value's
`message` is left out when empty, as Keptn did. The other fields (baselines, weights, the reason
for the verdict) are Tidegate's explanation, used by `explain()`. Pure: no I/O.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tidegate.qualitygate.baseline import Baseline
from tidegate.qualitygate.criteria import Criterion
from tidegate.schemas.outcomes import Result, Status


class IndicatorStatus(StrEnum):
    PASS = "pass"
    WARNING = "warning"
    FAIL = "fail"
    INFO = "info"


class Reason(StrEnum):
    """Why the gate ended as it did; `explain()` turns it into a sentence."""

    PASSED = "passed"  # score reached the pass threshold, no key SLI failed
    NOTHING_SCORED = "nothing_scored"  # no objective has pass criteria: Keptn scores 100
    WARNING = "warning"  # below pass, at or above warning
    BELOW_WARNING = "below_warning"
    BELOW_PASS = "below_pass"  # below pass and no warning threshold
    KEY_SLI_FAILED = "key_sli_failed"
    NO_OBJECTIVES = "no_objectives"
    INVALID_CRITERIA = "invalid_criteria"
    NO_TARGET_SCORE = "no_target_score"  # total_score.pass missing
    UNPARSABLE_PASS_SCORE = "unparsable_pass_score"
    UNPARSABLE_WARNING_SCORE = "unparsable_warning_score"
    SLI_FAILED = "sli_failed"  # the SLI provider reported result fail


def json_number(value: float) -> float | int | None:
    """A float as Keptn's JSON wrote it: whole numbers without a fraction; NaN/infinity as null."""
    try:
        whole = int(value)
    except (OverflowError, ValueError):  # infinity, NaN
        return None
    if whole == value and -_EXACT < whole < _EXACT:
        return whole
    return float(value)


_EXACT = 2**53


@dataclass(slots=True)
class Target:
    """One criterion checked against the value (`passTargets` / `warningTargets` entry)."""

    criteria: str
    target_value: float
    violated: bool
    criterion: Criterion | None = None  # None: the criterion text is invalid
    baseline_missing: bool = False  # relative criterion met automatically: nothing to compare with
    value_missing: bool = False  # not checked: the SLI has no (successful) value

    def to_json(self) -> dict[str, Any]:
        return {
            "criteria": self.criteria,
            "targetValue": json_number(self.target_value),
            "violated": self.violated,
        }


@dataclass(slots=True)
class IndicatorResult:
    """The verdict on one objective (`indicatorResults` entry)."""

    metric: str
    value: float
    success: bool
    message: str
    compared_value: float
    score: float
    status: IndicatorStatus
    display_name: str
    key_sli: bool
    weight: int
    pass_targets: list[Target] = field(default_factory=list)
    warning_targets: list[Target] = field(default_factory=list)
    baseline: Baseline | None = None
    value_missing: bool = False  # the SLI provider sent no value for this SLI

    @property
    def name(self) -> str:
        return self.display_name or self.metric

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "metric": self.metric,
            "value": json_number(self.value),
            "comparedValue": json_number(self.compared_value),
            "success": self.success,
        }
        if self.message:
            value["message"] = self.message
        return {
            "value": value,
            "score": json_number(self.score),
            "status": self.status.value,
            "keySli": self.key_sli,
            "displayName": self.display_name,
            "passTargets": [target.to_json() for target in self.pass_targets],
            "warningTargets": [target.to_json() for target in self.warning_targets],
        }


@dataclass(slots=True)
class EvaluationResult:
    """The whole verdict: the event's result/status/message and the evaluation details."""

    result: Result
    status: Status
    message: str
    evaluation_result: Result
    score: float
    indicator_results: list[IndicatorResult]
    compared_events: list[str]
    reason: Reason
    maximum_score: float = 0.0
    achieved_score: float = 0.0
    pass_threshold: float | None = None
    warning_threshold: float | None = None
    failed_key_slis: list[str] = field(default_factory=list)
    extra_slis: list[str] = field(default_factory=list)
    compared_count: int = 0
    aggregate_function: str = "avg"
    problem: str = ""  # the configuration or provider problem behind an error verdict, for people

    @property
    def passed_gate(self) -> bool:
        """pass or warning: the result a CI gate lets through."""
        return self.result in (Result.PASS, Result.WARNING)

    def to_event_data(
        self,
        *,
        time_start: str | None = None,
        time_end: str | None = None,
        slo_file_content: bytes | None = None,
    ) -> dict[str, Any]:
        """The `data` of the `evaluation.finished` event (without project/stage/service/labels)."""
        evaluation: dict[str, Any] = {}
        if time_start is not None:
            evaluation["timeStart"] = time_start
        if time_end is not None:
            evaluation["timeEnd"] = time_end
        evaluation["result"] = self.evaluation_result.value
        evaluation["score"] = json_number(self.score)
        if slo_file_content is not None:
            evaluation["sloFileContent"] = base64.b64encode(slo_file_content).decode("ascii")
        evaluation["indicatorResults"] = [indicator.to_json() for indicator in self.indicator_results]
        evaluation["comparedEvents"] = list(self.compared_events)
        return {
            "result": self.result.value,
            "status": self.status.value,
            "message": self.message,
            "evaluation": evaluation,
        }
