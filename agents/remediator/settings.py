"""The remediator's safety limits, read from `TIDEGATE_REMEDIATION_*` environment variables.

| variable | default | meaning |
|---|---|---|
| TIDEGATE_REMEDIATION_COOLDOWN | 1m | least time between two actions on one service; a later action waits |
| TIDEGATE_REMEDIATION_MAX_ACTIONS_PER_HOUR | 10 | actions per project in any hour; 0 = no cap. Past it: escalate |
| TIDEGATE_REMEDIATION_PROBLEM_TTL | 24h | an open problem not heard of for this long is forgotten |

Durations are written as Go durations ("90s", "2m", "1h30m") or as seconds ("120").
Keptn had none of these: a flapping alert could scale a service without limit.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tidegate.agents.dedupe import REMEMBERED_INPUTS
from tidegate.schemas.durations import parse_duration


class RemediatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDEGATE_REMEDIATION_", frozen=True, extra="ignore")

    cooldown: timedelta = timedelta(minutes=1)
    max_actions_per_hour: int = Field(default=10, ge=0)
    problem_ttl: timedelta = timedelta(hours=24)
    remembered_inputs: int = Field(default=REMEMBERED_INPUTS, ge=10)  # ids a key remembers (agents.dedupe)
    remembered_problems: int = Field(default=100, ge=1)
    source: str = "tidegate-remediator"

    @field_validator("cooldown", "problem_ttl", mode="before")
    @classmethod
    def _go_duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.replace(".", "", 1).isdigit():
                return timedelta(seconds=float(text))
            return parse_duration(text)
        return value

    @field_validator("cooldown", "problem_ttl")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError(f"a duration must not be negative, got {value}")
        return value

    @property
    def capped(self) -> bool:
        """Whether actions need a grant from the project's quota (see `agents.remediator.core`)."""
        return self.max_actions_per_hour > 0
