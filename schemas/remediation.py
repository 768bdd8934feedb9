"""remediation.yaml (`spec.keptn.sh/0.1.4`): which actions answer which problem (reference §5.1).

    remediation = Remediation.model_validate(raw)
    remediation.actions_for(root_cause="", problem_title="Response time degradation")

Three forms are read:
- `apiVersion: spec.keptn.sh/0.1.4`, the current one. Any other apiVersion is an error, as it was in
  Keptn's remediation-service.
- `version:` instead of `apiVersion:` (two of Keptn's own test files, and its 0.7 spec, which called
  the same structure `version: 0.2.0`; go-utils once even read the apiVersion from a `version` key).
  The structure is identical, so such a file is read as 0.1.4; `warnings()` asks to rename the key.
- The pre-0.7 list form `remediations: [{name, actions: [{action, value}]}]`, converted by
  `convert_legacy_remediation`. Those models live in `schemas.remediation_legacy`, imported when such
  a file is met (or one of their names is looked up here): reading a current file does not build them.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tidegate.schemas.errors import FieldWarning, invalid_fields
from tidegate.schemas.lazy import lazy_surface
from tidegate.schemas.nulls import empty_list, null_is_empty_list, null_is_empty_mapping, null_is_empty_str

API_VERSION = "spec.keptn.sh/0.1.4"
DEFAULT_PROBLEM_TYPE = "default"
# `version:` values of the same structure: Keptn 0.7's spec name for it, and the apiVersion itself.
_VERSION_KEY_VALUES = {"0.2.0", API_VERSION}

_CONFIG = ConfigDict(defer_build=True, extra="allow", coerce_numbers_to_str=True)


class Action(BaseModel):
    """One remediation step; the action provider whose name equals `action` carries it out."""

    model_config = _CONFIG

    action: str
    name: str = ""
    description: str = ""
    value: Any = None
    """Free-form: "1" for helm scaling, {EnablePromotion: "off"} for toggle-feature, ..."""

    _null_is_empty = field_validator("name", "description", mode="before")(null_is_empty_str)


class ProblemRemediation(BaseModel):
    """The actions for one problem type, tried in order until the problem is gone."""

    model_config = _CONFIG

    problemType: str
    actionsOnOpen: list[Action] = Field(default_factory=empty_list)

    _null_is_empty = field_validator("actionsOnOpen", mode="before")(null_is_empty_list)


class RemediationSpec(BaseModel):
    model_config = _CONFIG

    remediations: list[ProblemRemediation]


class Metadata(BaseModel):
    model_config = _CONFIG

    name: str | None = None


class Remediation(BaseModel):
    model_config = _CONFIG

    apiVersion: str
    kind: Literal["Remediation"] = "Remediation"
    metadata: Metadata = Field(default_factory=Metadata)
    spec: RemediationSpec
    version: str | None = Field(default=None, exclude=True)
    """The `version:` key some files carry instead of apiVersion; kept only to warn about it."""

    @model_validator(mode="before")
    @classmethod
    def _version_key(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "apiVersion" not in data and "version" in data:
            version = str(data["version"])
            if version not in _VERSION_KEY_VALUES:
                raise invalid_fields("Remediation", [(
                    ("version",),
                    f"'{version}' is not a remediation version; write `apiVersion: {API_VERSION}`",
                )])
            return {**data, "apiVersion": API_VERSION}
        return data

    @field_validator("apiVersion")
    @classmethod
    def _supported_version(cls, value: str) -> str:
        if value != API_VERSION:
            raise ValueError(
                f"apiVersion '{value}' is not supported: remediation files must use {API_VERSION} "
                "(Keptn's remediation-service rejected every other version too)"
            )
        return value

    _null_is_empty = field_validator("metadata", mode="before")(null_is_empty_mapping)

    def actions_for(self, root_cause: str | None, problem_title: str | None) -> list[Action]:
        """The actions for a problem: by root cause, else by problem title, else the `default` entry.

        Keptn's remediation-service looked them up in this order; empty when nothing matches.
        """
        for wanted in (root_cause, problem_title, DEFAULT_PROBLEM_TYPE):
            if not wanted:
                continue
            for entry in self.spec.remediations:
                if entry.problemType == wanted:
                    return list(entry.actionsOnOpen)
        return []

    def warnings(self) -> list[FieldWarning]:
        if self.version is None:
            return []
        return [FieldWarning(
            ("version",),
            f"`version: {self.version}` is an old spelling; this file is read as `apiVersion: {API_VERSION}`, "
            "write that instead",
        )]


# -- before Keptn 0.7: the models live in schemas.remediation_legacy, imported when such a file is met --


def is_legacy_remediation(raw: Mapping[str, Any]) -> bool:
    """The pre-0.7 form has a top-level `remediations:` list and no `spec`."""
    return "remediations" in raw and "spec" not in raw and "kind" not in raw


# The pre-0.7 names, importable from here as before; their module loads on first use.
_LEGACY: dict[str, str] = dict.fromkeys(
    ("LegacyAction", "LegacyProblemRemediation", "LegacyRemediation", "convert_legacy_remediation"),
    "remediation_legacy",
)
if TYPE_CHECKING:  # `X as X`: re-exported, for type checkers
    from tidegate.schemas.remediation_legacy import LegacyAction as LegacyAction
    from tidegate.schemas.remediation_legacy import LegacyProblemRemediation as LegacyProblemRemediation
    from tidegate.schemas.remediation_legacy import LegacyRemediation as LegacyRemediation
    from tidegate.schemas.remediation_legacy import convert_legacy_remediation as convert_legacy_remediation
else:
    __getattr__, __dir__ = lazy_surface(__name__, _LEGACY, base="tidegate.schemas")
