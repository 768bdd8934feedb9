"""The shipyard (`spec.keptn.sh/0.2.x`): stages, their sequences and the tasks in each.

Public names (other modules rely on these; extend, do not rename):
    Shipyard, Stage, Sequence, Task, Trigger, Selector,
    Shipyard.stage(name), Stage.sequence(name), BUILTIN_EVALUATION
    LegacyShipyard, convert_legacy_shipyard(raw) -> Shipyard     (Keptn 0.7 files)

Validation follows Keptn's shipyard-controller (reference §1.1): `apiVersion` is
`spec.keptn.sh/<semver>` with a version of at least 0.2; at least one stage; stage names follow
Keptn's entity-name rule; no dots in stage, sequence or task names (event types are parsed by
counting dots); `triggeredAfter` is a Go duration; a trigger event reads `<stage>.<sequence>.finished`.
Two older forms are read and converted: the 0.2.0-alpha `triggers: ["dev.delivery.finished"]` list
(becomes `triggeredOn`) and the Keptn 0.7 shipyard (`LegacyShipyard`, §1.4).
Findings that do not stop a shipyard from working are returned by `Shipyard.warnings()`.

The Keptn 0.7 models live in `schemas.shipyard_legacy` and are imported from there when a 0.7 file is
met (or one of their names is looked up here): reading a current shipyard does not build them.
"""

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import FieldWarning, Location, invalid_fields
from tidegate.schemas.lazy import lazy_surface
from tidegate.schemas.nulls import (
    empty_list,
    empty_mapping,
    null_is_empty_list,
    null_is_empty_mapping,
)

# Keptn's ValidateKeptnEntityName: lower case letters, digits and dashes, starting with a letter.
# Always used with fullmatch: `$` in a pattern also matches before a final newline ("evil\n").
NAME_PATTERN = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")
REMEDIATION = "remediation"
DEFAULT_REMEDIATION_WAIT = "10m"  # wait before the built-in remediation re-evaluates
API_VERSION_PATTERN = re.compile(
    r"^spec\.keptn\.sh/v?(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?"
    r"(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)
MIN_API_VERSION = (0, 2, 0)
API_VERSION = "spec.keptn.sh/0.2.2"
TRIGGER_EVENT_PATTERN = re.compile(r"^(?P<stage>[^.\s]+)\.(?P<sequence>[^.\s]+)\.finished$")

# Unknown keys are kept (a newer Keptn field must not be lost) and reported by the loader as warnings;
# numbers written where text is expected (`value: 1`, `spec_version: 1.0`) are read as their text.
_CONFIG = ConfigDict(defer_build=True, extra="allow", coerce_numbers_to_str=True)


def _bad_trigger(event: object) -> str:
    return f"trigger event '{event}' must look like <stage>.<sequence>.finished, e.g. dev.delivery.finished"


def _check_stage_name(value: str) -> str:
    _check_name("stage", value)
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"stage '{value}': names must start with a lower-case letter and contain only "
            "lower-case letters, digits and dashes"
        )
    return value


def _check_name(what: str, value: str) -> str:
    if not value:
        raise ValueError(f"a {what} needs a name")
    if "." in value:
        raise ValueError(f"{what} '{value}': dots are not allowed in {what} names")
    return value


class Selector(BaseModel):
    """Which results of the finished sequence fire the trigger (`result`, `<task>.result` keys)."""

    model_config = _CONFIG

    match: dict[str, str] = Field(default_factory=empty_mapping)

    _null_is_empty = field_validator("match", mode="before")(null_is_empty_mapping)


class Trigger(BaseModel):
    """`triggeredOn` entry: fire when `<stage>.<sequence>.finished` matches the selector."""

    model_config = _CONFIG

    event: str
    selector: Selector | None = None

    @field_validator("event")
    @classmethod
    def _finished_event(cls, value: str) -> str:
        if not TRIGGER_EVENT_PATTERN.match(value):
            raise ValueError(_bad_trigger(value))
        return value

    @property
    def stage(self) -> str:
        """The stage whose sequence must finish (`dev` in `dev.delivery.finished`)."""
        return self.event.split(".")[0]

    @property
    def sequence(self) -> str:
        """The sequence that must finish (`delivery` in `dev.delivery.finished`)."""
        return self.event.split(".")[1]


class Task(BaseModel):
    model_config = _CONFIG

    name: str
    triggeredAfter: str | None = None
    properties: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name("task", value)

    @field_validator("triggeredAfter")
    @classmethod
    def _go_duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) < timedelta(0):
            raise ValueError(f"triggeredAfter '{value}' is negative; a task can only wait forward in time")
        return value

    @property
    def delay(self) -> timedelta | None:
        """How long to wait before triggering this task (`triggeredAfter`), or None."""
        return None if self.triggeredAfter is None else parse_duration(self.triggeredAfter)


class Sequence(BaseModel):
    model_config = _CONFIG

    name: str
    triggeredOn: list[Trigger] = Field(default_factory=empty_list)
    tasks: list[Task] = Field(default_factory=empty_list)

    @model_validator(mode="before")
    @classmethod
    def _alpha_triggers(cls, data: Any) -> Any:
        # Before February 2021 the spec (0.2.0-alpha) chained sequences with a list of event names.
        if not isinstance(data, Mapping) or "triggers" not in data:
            return data
        data = dict(data)
        triggers = data.pop("triggers")
        if triggers is None:
            return data
        if not isinstance(triggers, list):
            raise invalid_fields("Sequence", [(("triggers",), "expected a list of <stage>.<sequence>.finished events")])
        bad = [(("triggers", i), _bad_trigger(item)) for i, item in enumerate(triggers)
               if not isinstance(item, str) or not TRIGGER_EVENT_PATTERN.match(item)]
        if bad:
            raise invalid_fields("Sequence", bad)
        existing = data.get("triggeredOn") or []
        data["triggeredOn"] = [*existing, *({"event": item} for item in triggers)]
        return data

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name("sequence", value)

    _null_is_empty = field_validator("triggeredOn", "tasks", mode="before")(null_is_empty_list)


class Stage(BaseModel):
    model_config = _CONFIG

    name: str
    sequences: list[Sequence] = Field(default_factory=empty_list)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_stage_name(value)

    _null_is_empty = field_validator("sequences", mode="before")(null_is_empty_list)

    @model_validator(mode="after")
    def _unique_sequences(self) -> "Stage":
        duplicates = _duplicates([seq.name for seq in self.sequences])
        if duplicates:
            raise invalid_fields(
                "Stage",
                [(("sequences", i, "name"), f"sequence '{name}' is already defined in stage '{self.name}'")
                 for i, name in duplicates],
            )
        return self

    def sequence(self, name: str, *, remediation_wait: str = DEFAULT_REMEDIATION_WAIT) -> Sequence | None:
        """The sequence of that name; `evaluation` and `remediation` fall back to built-in ones."""
        for seq in self.sequences:
            if seq.name == name:
                return seq
        if name == BUILTIN_EVALUATION.name:
            return BUILTIN_EVALUATION
        if name == REMEDIATION:
            return builtin_remediation(self.name, remediation_wait)
        return None

    def sequences_with_builtins(self, *, remediation_wait: str = DEFAULT_REMEDIATION_WAIT) -> list[Sequence]:
        """Declared sequences plus the built-in remediation when the stage declares none (it re-triggers itself)."""
        if any(seq.name == REMEDIATION for seq in self.sequences):
            return list(self.sequences)
        return [*self.sequences, builtin_remediation(self.name, remediation_wait)]


class Metadata(BaseModel):
    model_config = _CONFIG

    name: str | None = None


class ShipyardSpec(BaseModel):
    model_config = _CONFIG

    stages: list[Stage]

    @field_validator("stages")
    @classmethod
    def _at_least_one(cls, value: list[Stage]) -> list[Stage]:
        if not value:
            raise ValueError("a shipyard needs at least one stage")
        return value

    @model_validator(mode="after")
    def _unique_stages(self) -> "ShipyardSpec":
        duplicates = _duplicates([stage.name for stage in self.stages])
        if duplicates:
            raise invalid_fields(
                "ShipyardSpec",
                [(("stages", i, "name"), f"stage '{name}' is already defined") for i, name in duplicates],
            )
        return self


class Shipyard(BaseModel):
    model_config = _CONFIG

    apiVersion: str = API_VERSION
    kind: Literal["Shipyard"] = "Shipyard"
    metadata: Metadata = Field(default_factory=Metadata)
    spec: ShipyardSpec

    @field_validator("apiVersion")
    @classmethod
    def _supported_version(cls, value: str) -> str:
        match = API_VERSION_PATTERN.match(value)
        if not match:
            raise ValueError(f"apiVersion '{value}' must look like spec.keptn.sh/0.2.2")
        version = tuple(int(match.group(part) or 0) for part in ("major", "minor", "patch"))
        if version < MIN_API_VERSION:
            raise ValueError(
                f"apiVersion '{value}' is older than spec.keptn.sh/0.2.0; a shipyard of Keptn 0.7 or older "
                "has no apiVersion and a top-level `stages:` list instead"
            )
        return value

    _null_is_empty = field_validator("metadata", mode="before")(null_is_empty_mapping)

    def stage(self, name: str) -> Stage | None:
        for stage in self.spec.stages:
            if stage.name == name:
                return stage
        return None

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.spec.stages]

    def warnings(self) -> list[FieldWarning]:
        """Findings that do not stop the shipyard from working but are most likely mistakes."""
        found: list[FieldWarning] = []
        for s, stage in enumerate(self.spec.stages):
            for q, seq in enumerate(stage.sequences):
                here: Location = ("spec", "stages", s, "sequences", q)
                if not seq.tasks:
                    found.append(FieldWarning(
                        (*here, "name"),
                        f"sequence '{seq.name}' has no tasks; Keptn refuses to trigger a sequence without tasks",
                    ))
                for t, trigger in enumerate(seq.triggeredOn):
                    problem = self._unresolved(trigger)
                    if problem:
                        found.append(FieldWarning((*here, "triggeredOn", t, "event"), problem))
        return found

    def _unresolved(self, trigger: Trigger) -> str | None:
        stage = self.stage(trigger.stage)
        if stage is None:
            return (f"trigger '{trigger.event}' waits for stage '{trigger.stage}', which this shipyard does "
                    "not define, so it never fires")
        if stage.sequence(trigger.sequence) is None:
            return (f"trigger '{trigger.event}' waits for sequence '{trigger.sequence}', which stage "
                    f"'{trigger.stage}' does not define, so it never fires")
        return None


BUILTIN_EVALUATION = Sequence(name="evaluation", tasks=[Task(name="evaluation")])


def builtin_remediation(stage: str, wait: str = DEFAULT_REMEDIATION_WAIT) -> Sequence:
    """Keptn >= 0.8.3's recommended remediation loop, used when a stage declares no `remediation` sequence:
    ask for an action, run it, wait, re-evaluate; run again while the evaluation fails."""
    return Sequence(
        name=REMEDIATION,
        triggeredOn=[
            Trigger(event=f"{stage}.{REMEDIATION}.finished", selector=Selector(match={"evaluation.result": "fail"}))
        ],
        tasks=[
            Task(name="get-action"),
            Task(name="action"),
            Task(name="evaluation", triggeredAfter=wait, properties={"timeframe": wait}),
        ],
    )
"""The implicit sequence used for `<stage>.evaluation.triggered` when a stage defines none (§1.3)."""


def _duplicates(names: list[str]) -> list[tuple[int, str]]:
    """(index, name) of every name that already appeared earlier in the list."""
    seen: set[str] = set()
    found: list[tuple[int, str]] = []
    for i, name in enumerate(names):
        if name in seen:
            found.append((i, name))
        seen.add(name)
    return found


# -- Keptn 0.7: the models live in schemas.shipyard_legacy, imported when a 0.7 file is met -----------


def is_legacy_shipyard(raw: Mapping[str, Any]) -> bool:
    """A Keptn 0.7 shipyard has a top-level `stages:` and neither `kind` nor `spec`."""
    return "stages" in raw and "spec" not in raw and "kind" not in raw


# The Keptn 0.7 names, importable from here as before; their module loads on first use.
_LEGACY: dict[str, str] = dict.fromkeys(
    ("ApprovalMode", "LegacyApprovalStrategy", "LegacyStage", "LegacyShipyard", "convert_legacy_shipyard"),
    "shipyard_legacy",
)
if TYPE_CHECKING:  # `X as X`: re-exported, for type checkers
    from tidegate.schemas.shipyard_legacy import ApprovalMode as ApprovalMode
    from tidegate.schemas.shipyard_legacy import LegacyApprovalStrategy as LegacyApprovalStrategy
    from tidegate.schemas.shipyard_legacy import LegacyShipyard as LegacyShipyard
    from tidegate.schemas.shipyard_legacy import LegacyStage as LegacyStage
    from tidegate.schemas.shipyard_legacy import convert_legacy_shipyard as convert_legacy_shipyard
else:
    __getattr__, __dir__ = lazy_surface(__name__, _LEGACY, base="tidegate.schemas")
