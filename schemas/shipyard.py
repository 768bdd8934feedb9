"""The shipyard (`spec.keptn.sh/0.2.x`): stages, their sequences and the tasks in each.

Public names (other modules rely on these; extend, do not rename):
    Shipyard, Stage, Sequence, Task, Trigger, Selector,
    Shipyard.stage(name), Stage.sequence(name), BUILTIN_EVALUATION
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Keptn's ValidateKeptnEntityName: lower case letters, digits and dashes, starting with a letter.
NAME_PATTERN = re.compile(r"(^[a-z][a-z0-9-]*[a-z0-9]$)|(^[a-z][a-z0-9]*$)")


class Selector(BaseModel):
    model_config = ConfigDict(extra="allow")

    match: dict[str, str] = Field(default_factory=dict)


class Trigger(BaseModel):
    """`triggeredOn` entry: fire when `<stage>.<sequence>.finished` matches the selector."""

    model_config = ConfigDict(extra="allow")

    event: str
    selector: Selector | None = None


class Task(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    triggeredAfter: str | None = None
    properties: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _no_dots(cls, value: str) -> str:
        if "." in value:
            raise ValueError(f"task '{value}': dots are not allowed in task names")
        if not value:
            raise ValueError("a task needs a name")
        return value


class Sequence(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    triggeredOn: list[Trigger] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if "." in value:
            raise ValueError(f"sequence '{value}': dots are not allowed in sequence names")
        if not value:
            raise ValueError("a sequence needs a name")
        return value

    @field_validator("triggeredOn", "tasks", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class Stage(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    sequences: list[Sequence] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if "." in value:
            raise ValueError(f"stage '{value}': dots are not allowed in stage names")
        if not NAME_PATTERN.match(value):
            raise ValueError(
                f"stage '{value}': names must start with a lower-case letter and contain only "
                "lower-case letters, digits and dashes"
            )
        return value

    @field_validator("sequences", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    def sequence(self, name: str) -> Sequence | None:
        """The sequence of that name; `evaluation` falls back to the built-in one."""
        for seq in self.sequences:
            if seq.name == name:
                return seq
        if name == BUILTIN_EVALUATION.name:
            return BUILTIN_EVALUATION
        return None


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = None


class ShipyardSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    stages: list[Stage]


class Shipyard(BaseModel):
    model_config = ConfigDict(extra="allow")

    apiVersion: str = "spec.keptn.sh/0.2.2"
    kind: str = "Shipyard"
    metadata: Metadata = Field(default_factory=Metadata)
    spec: ShipyardSpec

    def stage(self, name: str) -> Stage | None:
        for stage in self.spec.stages:
            if stage.name == name:
                return stage
        return None

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.spec.stages]


BUILTIN_EVALUATION = Sequence(name="evaluation", tasks=[Task(name="evaluation")])
