"""The Keptn 0.7 shipyard (reference §1.4): a top-level `stages:` list with `*_strategy` keys, read and
converted to the current form (`schemas.shipyard`) the way Keptn's upgrade command did.

Its own module so that reading a current shipyard does not create these models; every name here is
also importable from `tidegate.schemas.shipyard` (looked up on first use), and `is_legacy_shipyard`
(which tells the two forms apart) stays there.
"""

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tidegate.schemas.errors import FieldWarning, invalid_fields
from tidegate.schemas.nulls import null_is_empty_str
from tidegate.schemas.shipyard import (
    Selector,
    Sequence,
    Shipyard,
    ShipyardSpec,
    Stage,
    Task,
    Trigger,
    _check_stage_name,
    _duplicates,
)

ApprovalMode = Literal["automatic", "manual"]

_LEGACY_CONFIG = ConfigDict(defer_build=True, extra="allow", coerce_numbers_to_str=True, populate_by_name=True)


class LegacyApprovalStrategy(BaseModel):
    model_config = _LEGACY_CONFIG

    pass_: ApprovalMode = Field(default="automatic", alias="pass")
    warning: ApprovalMode = "automatic"

    @field_validator("pass_", "warning", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        # Keptn 0.7 compared these case-insensitively.
        return value.lower() if isinstance(value, str) else value


class LegacyStage(BaseModel):
    model_config = _LEGACY_CONFIG

    name: str
    deployment_strategy: str = ""
    test_strategy: str = ""
    remediation_strategy: str = ""
    approval_strategy: LegacyApprovalStrategy | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_stage_name(value)

    _null_is_empty = field_validator("deployment_strategy", "test_strategy", "remediation_strategy", mode="before")(null_is_empty_str)


class LegacyShipyard(BaseModel):
    """A Keptn 0.7 shipyard: a top-level `stages:` list with `*_strategy` keys (reference §1.4)."""

    model_config = _LEGACY_CONFIG

    stages: list[LegacyStage]

    @field_validator("stages")
    @classmethod
    def _at_least_one(cls, value: list[LegacyStage]) -> list[LegacyStage]:
        if not value:
            raise ValueError("a shipyard needs at least one stage")
        return value

    @model_validator(mode="after")
    def _unique_stages(self) -> "LegacyShipyard":
        duplicates = _duplicates([stage.name for stage in self.stages])
        if duplicates:
            raise invalid_fields(
                "LegacyShipyard",
                [(("stages", i, "name"), f"stage '{name}' is already defined") for i, name in duplicates],
            )
        return self

    def to_shipyard(self) -> Shipyard:
        """Keptn's own 0.7 -> 0.2 conversion (cli `keptn upgrade project --shipyard`, `transformShipyard`).

        Every stage gets `delivery` (deployment with the stage's strategy, test, evaluation, approval,
        release), a `rollback` when the stage deploys blue/green, and `delivery-direct` (the same with
        a direct deployment); stage i > 0 is triggered by stage i-1 finishing the same sequence.
        `remediation_strategy` is not converted (Keptn did not either; see `warnings()`).
        """
        stages: list[Stage] = []
        for i, legacy in enumerate(self.stages):
            previous = self.stages[i - 1].name if i > 0 else None
            approval = legacy.approval_strategy or LegacyApprovalStrategy()
            sequences = [self._delivery(legacy, "delivery", legacy.deployment_strategy, previous, approval)]
            if legacy.deployment_strategy == "blue_green_service":
                sequences.append(Sequence(
                    name="rollback",
                    triggeredOn=[Trigger(event=f"{legacy.name}.delivery.finished",
                                         selector=Selector(match={"result": "fail"}))],
                    tasks=[Task(name="rollback")],
                ))
            sequences.append(self._delivery(legacy, "delivery-direct", "direct", previous, approval))
            stages.append(Stage(name=legacy.name, sequences=sequences))
        return Shipyard(apiVersion="spec.keptn.sh/0.2.0", spec=ShipyardSpec(stages=stages))

    @staticmethod
    def _delivery(legacy: LegacyStage, name: str, deployment_strategy: str, previous: str | None,
                  approval: LegacyApprovalStrategy) -> Sequence:
        return Sequence(
            name=name,
            triggeredOn=[Trigger(event=f"{previous}.{name}.finished")] if previous else [],
            tasks=[
                Task(name="deployment", properties={"deploymentstrategy": deployment_strategy}),
                Task(name="test", properties={"teststrategy": legacy.test_strategy}),
                Task(name="evaluation"),
                Task(name="approval", properties={"pass": approval.pass_, "warning": approval.warning}),
                Task(name="release"),
            ],
        )

    def warnings(self) -> list[FieldWarning]:
        return [
            FieldWarning(
                ("stages", i, "remediation_strategy"),
                f"remediation_strategy '{stage.remediation_strategy}' is not converted (Keptn's upgrade did "
                "not either): add a `remediation` sequence with get-action, action and evaluation tasks "
                "to run remediations",
            )
            for i, stage in enumerate(self.stages)
            if stage.remediation_strategy
        ]


def convert_legacy_shipyard(raw: Mapping[str, Any]) -> Shipyard:
    """Read a Keptn 0.7 shipyard (as parsed YAML) and convert it the way Keptn's upgrade command did."""
    return LegacyShipyard.model_validate(raw).to_shipyard()
