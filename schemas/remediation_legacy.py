"""The pre-0.7 remediation file (`remediations: [{name, actions: [{action, value}]}]`), read and
converted to the 0.1.4 form (`schemas.remediation`).

Its own module so that reading a current remediation file does not create these models; every name
here is also importable from `tidegate.schemas.remediation` (looked up on first use), and
`is_legacy_remediation` (which tells the forms apart) stays there.
"""

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, field_validator

from tidegate.schemas.nulls import empty_list, null_is_empty_list, null_is_empty_str
from tidegate.schemas.remediation import (
    _CONFIG,
    API_VERSION,
    Action,
    ProblemRemediation,
    Remediation,
    RemediationSpec,
)

_LEGACY_ACTION_NAMES = {"featuretoggle": "toggle-feature"}


class LegacyAction(BaseModel):
    model_config = _CONFIG

    action: str
    value: str = ""

    _null_is_empty = field_validator("value", mode="before")(null_is_empty_str)


class LegacyProblemRemediation(BaseModel):
    model_config = _CONFIG

    name: str
    actions: list[LegacyAction] = Field(default_factory=empty_list)

    _null_is_empty = field_validator("actions", mode="before")(null_is_empty_list)


class LegacyRemediation(BaseModel):
    """The pre-0.7 remediation file: `remediations: [{name: <problem>, actions: [{action, value}]}]`."""

    model_config = _CONFIG

    remediations: list[LegacyProblemRemediation]

    def to_remediation(self) -> Remediation:
        """The same remediations in the 0.1.4 form.

        `name` becomes `problemType`. The old `featuretoggle` action with a value like
        `EnableItemCache:on` becomes today's `toggle-feature` with `{EnableItemCache: "on"}`, which is
        what the toggle provider reads; every other action keeps its name and value (`scaling` with
        `+1`, the number 1 in YAML, becomes "1": add one replica, as before).
        """
        return Remediation(apiVersion=API_VERSION, spec=RemediationSpec(remediations=[
            ProblemRemediation(
                problemType=entry.name,
                actionsOnOpen=[_convert_action(action) for action in entry.actions],
            )
            for entry in self.remediations
        ]))


def _convert_action(legacy: LegacyAction) -> Action:
    name = _LEGACY_ACTION_NAMES.get(legacy.action, legacy.action)
    value: Any = legacy.value
    if name == "toggle-feature" and ":" in legacy.value:
        toggle, _, state = legacy.value.partition(":")
        value = {toggle.strip(): state.strip()}
    return Action(name=name, action=name, value=value)


def convert_legacy_remediation(raw: Mapping[str, Any]) -> Remediation:
    """Read a pre-0.7 remediation file (as parsed YAML) and convert it to the 0.1.4 form."""
    return LegacyRemediation.model_validate(raw).to_remediation()
