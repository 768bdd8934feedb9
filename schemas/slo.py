"""The SLO file (`slo.yaml`): objectives, their pass/warning criteria, comparison and total score.

Keptn's lighthouse applied defaults while reading the file (`parseSLO`, reference §4.2); this
model applies the same ones, so an `SLO` always says exactly what Keptn would have scored:

    comparison missing (or `comparison:` left empty)  -> single_result, all, 1, avg
    comparison present: include_result_with_score "" -> all, number_of_comparison_results 0 -> 3,
                        aggregate_function "" -> avg (compare_with is kept as written)
    objective weight 0 (or missing) -> 1;  `- ` (null) objectives are dropped
    `objectives:` / `filter:` / `pass:` / `warning:` left empty (null) -> empty

Criteria strings and total-score percentages are kept as written: Keptn only interpreted them
while evaluating, and an invalid one fails that evaluation rather than the file (the grammar is
`agents.evaluator.parse_criteria`, which a linter can call on each criterion).

Public names: SLO, Objective, CriteriaSet, Comparison, TotalScore,
    COMPARE_SINGLE, COMPARE_SEVERAL, INCLUDE_ALL, INCLUDE_PASS, INCLUDE_PASS_OR_WARN, AGGREGATE_FUNCTIONS
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tidegate.schemas.nulls import empty_list, empty_mapping

COMPARE_SINGLE = "single_result"
COMPARE_SEVERAL = "several_results"
INCLUDE_ALL = "all"
INCLUDE_PASS = "pass"
INCLUDE_PASS_OR_WARN = "pass_or_warn"
AGGREGATE_FUNCTIONS = ("avg", "p50", "p90", "p95")

# The number of previous evaluations Keptn fetched when compare_with is neither known value.
_FALLBACK_PREVIOUS_RESULTS = 3


def _text(value: Any) -> Any:
    """Numbers written unquoted in YAML (`pass: 90`, `spec_version: 1.0`) are read as their text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


class _Part(BaseModel):
    # Unknown keys are kept (Keptn ignored them); a linter can report them from `model_extra`.
    model_config = ConfigDict(defer_build=True, extra="allow", populate_by_name=True)


class CriteriaSet(_Part):
    """One `- criteria: [...]` entry. All criteria in a set must hold (AND); sets are OR-ed."""

    criteria: list[str] = Field(default_factory=empty_list)

    @field_validator("criteria", mode="before")
    @classmethod
    def _criteria_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            raise ValueError(f'criteria must be a list of strings, e.g. criteria: ["{value}"]')
        if isinstance(value, list):
            return [_text(item) for item in value]
        return value


class Objective(_Part):
    """One objective: an SLI, optional pass/warning criteria sets, weight and key-SLI flag."""

    sli: str = Field(min_length=1)
    displayName: str = ""
    pass_: list[CriteriaSet] = Field(default_factory=empty_list, alias="pass")
    warning: list[CriteriaSet] = Field(default_factory=empty_list)
    weight: int = 1
    key_sli: bool = False

    @field_validator("sli", "displayName", mode="before")
    @classmethod
    def _name_text(cls, value: Any) -> Any:
        return "" if value is None else _text(value)

    @field_validator("pass_", "warning", mode="before")
    @classmethod
    def _criteria_sets(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, list):
            # A bare `- ` entry is null; Keptn would crash on it, Tidegate skips it.
            return [item for item in value if item is not None]
        return value

    @field_validator("weight", mode="before")
    @classmethod
    def _weight_missing(cls, value: Any) -> Any:
        return 1 if value is None else value

    @field_validator("weight")
    @classmethod
    def _weight_zero(cls, value: int) -> int:
        # Keptn turns a zero weight into 1 (negative weights are kept, as Keptn kept them).
        return 1 if value == 0 else value

    @field_validator("key_sli", mode="before")
    @classmethod
    def _key_sli_default(cls, value: Any) -> Any:
        return False if value is None else value

    @property
    def name(self) -> str:
        """How Keptn names the objective in messages: the display name, else the SLI."""
        return self.displayName or self.sli

    @property
    def is_informational(self) -> bool:
        """No pass criteria: the value is reported but neither scored nor counted in the maximum."""
        return not self.pass_


class Comparison(_Part):
    """How previous evaluations are chosen and aggregated into the baseline of relative criteria."""

    compare_with: str = COMPARE_SINGLE
    include_result_with_score: str = INCLUDE_ALL
    number_of_comparison_results: int = Field(default=1, ge=0)
    aggregate_function: str = "avg"

    @field_validator("compare_with", "include_result_with_score", "aggregate_function", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        return "" if value is None else _text(value)


class TotalScore(_Part):
    """Score thresholds as written, e.g. `pass: "90%"`, `warning: "75%"` (parsed when evaluating)."""

    pass_: str = Field(default="", alias="pass")
    warning: str = ""

    @field_validator("pass_", "warning", mode="before")
    @classmethod
    def _threshold_text(cls, value: Any) -> Any:
        return "" if value is None else _text(value)


class SLO(_Part):
    """A service level objectives file as Keptn's lighthouse read it (defaults applied)."""

    spec_version: str = ""
    filter: dict[str, str] = Field(default_factory=empty_mapping)
    comparison: Comparison = Field(default_factory=Comparison)
    objectives: list[Objective] = Field(default_factory=empty_list)
    total_score: TotalScore | None = None

    @model_validator(mode="before")
    @classmethod
    def _keptn_defaults(cls, value: Any) -> Any:
        if value is None:
            # An empty file: Keptn read it as an SLO without objectives.
            return {}
        if not isinstance(value, dict):
            raise ValueError("an SLO file must be a mapping with `objectives:` (and usually `total_score:`)")
        data = dict(value)
        comparison = data.get("comparison")
        if comparison is None:
            data["comparison"] = {
                "compare_with": COMPARE_SINGLE,
                "include_result_with_score": INCLUDE_ALL,
                "number_of_comparison_results": 1,
                "aggregate_function": "avg",
            }
        elif isinstance(comparison, dict):
            present = dict(comparison)
            # Inside a comparison block, an omitted compare_with stays empty (Keptn then fetched 3 results).
            present.setdefault("compare_with", "")
            if not present.get("include_result_with_score"):
                present["include_result_with_score"] = INCLUDE_ALL
            if present.get("number_of_comparison_results") in (None, 0, "", "0"):
                present["number_of_comparison_results"] = 3
            if not present.get("aggregate_function"):
                present["aggregate_function"] = "avg"
            data["comparison"] = present
        if data.get("filter") is None:
            data["filter"] = {}
        elif isinstance(data["filter"], dict):
            data["filter"] = {str(k): "" if v is None else _text(v) for k, v in data["filter"].items()}
        objectives = data.get("objectives")
        if objectives is None:
            data["objectives"] = []
        elif isinstance(objectives, list):
            data["objectives"] = [item for item in objectives if item is not None]
        if "spec_version" in data:
            data["spec_version"] = "" if data["spec_version"] is None else _text(data["spec_version"])
        return data

    @property
    def previous_results_needed(self) -> int:
        """How many previous evaluations Keptn fetched for comparison."""
        if self.comparison.compare_with == COMPARE_SINGLE:
            return 1
        if self.comparison.compare_with == COMPARE_SEVERAL:
            return self.comparison.number_of_comparison_results
        return _FALLBACK_PREVIOUS_RESULTS

    @property
    def include_results(self) -> str:
        """The overall previous results used for comparison: `pass`, `pass_or_warn` or anything else = all."""
        return self.comparison.include_result_with_score.lower()

    @property
    def indicators(self) -> list[str]:
        """The SLI names to request from the SLI provider, in objective order (no duplicates)."""
        return list(dict.fromkeys(objective.sli for objective in self.objectives))

    @property
    def maximum_score(self) -> float:
        """The sum of the weights of the objectives that have pass criteria."""
        return float(sum(o.weight for o in self.objectives if not o.is_informational))
