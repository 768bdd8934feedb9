"""The task data blocks of Keptn's events (reference §2.4), as typed views over an event's `data`.

An event's data is a dict: the common block (`schemas.events.EventData`) plus one block per task
under the task's name. These models read those blocks; unknown keys are kept so nothing a
producer sent is lost when an event passes through Tidegate.

    data = DeploymentTriggered.model_validate(event.data)
    data.configurationChange.values["image"]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidegate.schemas.events import EventData


def fold_keys(value: Any, names: Iterable[str]) -> Any:
    """Rename keys that match one of `names` case-insensitively to that spelling (Go's JSON decoding did this)."""
    if not isinstance(value, dict):
        return value
    canonical = {name.lower(): name for name in names}
    out: dict[str, Any] = {}
    for key, item in value.items():
        name: str = canonical.get(str(key).lower(), str(key))
        # The canonical spelling wins over a differently cased duplicate.
        if name in out and key != name:
            continue
        out[name] = item
    return out


class _Block(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# -- deployment -------------------------------------------------------------------------------


class ConfigurationChange(_Block):
    values: dict[str, Any] = Field(default_factory=dict)


class Deployment(_Block):
    deploymentstrategy: str | None = None
    deploymentURIsLocal: list[str] = Field(default_factory=list)
    deploymentURIsPublic: list[str] = Field(default_factory=list)
    deploymentNames: list[str] = Field(default_factory=list)
    gitCommit: str | None = None


class DeploymentTriggered(EventData):
    configurationChange: ConfigurationChange = Field(default_factory=ConfigurationChange)
    deployment: Deployment = Field(default_factory=Deployment)


class DeploymentFinished(EventData):
    deployment: Deployment = Field(default_factory=Deployment)


# -- test -------------------------------------------------------------------------------------


class Test(_Block):
    teststrategy: str | None = None
    start: str | None = None
    end: str | None = None
    gitCommit: str | None = None


class TestTriggered(EventData):
    test: Test = Field(default_factory=Test)
    deployment: Deployment = Field(default_factory=Deployment)


class TestFinished(EventData):
    test: Test = Field(default_factory=Test)


# -- evaluation and SLIs ------------------------------------------------------------------------


class EvaluationWindow(_Block):
    start: str | None = None
    end: str | None = None
    timeframe: str | None = None


class EvaluationTriggered(EventData):
    evaluation: EvaluationWindow = Field(default_factory=EvaluationWindow)
    test: Test = Field(default_factory=Test)
    deployment: Deployment = Field(default_factory=Deployment)


class EvaluationInvalidated(EventData):
    evaluation: dict[str, Any] = Field(default_factory=dict)


class CustomFilter(_Block):
    key: str
    value: str


class GetSLIRequest(_Block):
    sliProvider: str = ""
    start: str | None = None
    end: str | None = None
    indicators: list[str] = Field(default_factory=list)
    customFilters: list[CustomFilter] = Field(default_factory=list)


class GetSLITriggered(EventData):
    get_sli: GetSLIRequest = Field(default_factory=GetSLIRequest, alias="get-sli")
    # Keptn sends the first deployment name here, as a plain string.
    deployment: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _deployment_as_string(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("deployment"), dict):
            names = value["deployment"].get("deploymentNames") or []
            value = {**value, "deployment": names[0] if names else None}
        return value


class IndicatorValue(_Block):
    metric: str
    value: float | None = None
    comparedValue: float | None = None
    success: bool = False
    message: str = ""


class GetSLIResult(_Block):
    start: str | None = None
    end: str | None = None
    indicatorValues: list[IndicatorValue] = Field(default_factory=list)


class GetSLIFinished(EventData):
    get_sli: GetSLIResult = Field(default_factory=GetSLIResult, alias="get-sli")


# -- approval ---------------------------------------------------------------------------------


class ApprovalStrategy(_Block):
    pass_: str | None = Field(default=None, alias="pass")
    warning: str | None = None


class ApprovalTriggered(EventData):
    approval: ApprovalStrategy = Field(default_factory=ApprovalStrategy)
    evaluation: dict[str, Any] = Field(default_factory=dict)


# -- remediation --------------------------------------------------------------------------------


class Problem(_Block):
    """A problem block. Keys are matched case-insensitively (Keptn QUIRK: prometheus sends `ProblemTitle`)."""

    State: str | None = None
    ProblemID: str | None = None
    problemTitle: str | None = None
    rootCause: str | None = None
    ProblemDetails: Any = None
    PID: str | None = None
    ProblemURL: str | None = None
    ImpactedEntity: str | None = None
    Tags: str | None = None
    labels: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _case_insensitive_keys(cls, value: Any) -> Any:
        return fold_keys(value, cls.model_fields)


class ActionIndex(_Block):
    actionIndex: int = 0


class Action(_Block):
    name: str = ""
    action: str = ""
    description: str | None = None
    value: Any = None


class GetActionTriggered(EventData):
    problem: Problem = Field(default_factory=Problem)
    get_action: ActionIndex = Field(default_factory=ActionIndex, alias="get-action")


class GetActionFinished(EventData):
    action: Action = Field(default_factory=Action)
    get_action: ActionIndex = Field(default_factory=ActionIndex, alias="get-action")


def action_name(action: Any) -> str:
    """Which action an `action` task's raw `action` block names: `action`, else `name`, else "unknown"
    (Keptn filled either; metrics and analytics label actions by it)."""
    if isinstance(action, Mapping):
        for field in ("action", "name"):
            value = action.get(field)
            if isinstance(value, str) and value:
                return value
    return "unknown"


class ActionTriggered(EventData):
    action: Action = Field(default_factory=Action)
    problem: Problem = Field(default_factory=Problem)


class ProblemEvent(EventData):
    """`sh.keptn.events.problem` data (flat, capitalised keys)."""

    State: str | None = None
    ProblemID: str | None = None
    ProblemTitle: str | None = None
    ProblemURL: str | None = None
    ImpactedEntity: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _case_insensitive_keys(cls, value: Any) -> Any:
        return fold_keys(value, ("State", "ProblemID", "ProblemTitle", "ProblemURL", "ImpactedEntity"))
