"""Job-executor configuration, `job/config.yaml` (keptn-contrib/job-executor-service, reference §6.4).

    apiVersion: v2                      # v1, v2 or none (the earliest files)
    actions:
      - name: Run locust
        events:
          - name: sh.keptn.event.test.triggered          # a regular expression in the job executor
            jsonpath: {property: $.data.test.teststrategy, match: locust}
        tasks:
          - name: Run locust smoke tests
            image: locustio/locust
            files: [locust/basic.py]
            cmd: [locust]
            args: [-f, /keptn/locust/basic.py]
            env:
              - {name: HOST, value: "$.data.deployment.deploymentURIsLocal[0]", valueFrom: event}

Two early forms are converted: an action with one `event:` and its own `jsonpath:` (becomes one
entry of `events`), and a task `cmd` written as one command line (becomes `sh -c <line>`, since
those files used shell pipes in it).

An action's `events` (`JobEvent`, `JsonPathMatch`) live in `schemas.jobevents`, shared with the command
connector's file (`schemas.commandconfig`), which thus does not create the job-executor models.
"""

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from tidegate.schemas.errors import FieldWarning
from tidegate.schemas.jobevents import _CONFIG
from tidegate.schemas.jobevents import JobEvent as JobEvent  # `as`: re-exported (defined here before)
from tidegate.schemas.jobevents import JsonPathMatch as JsonPathMatch
from tidegate.schemas.nulls import empty_list, null_is_empty_list


class JobEnv(BaseModel):
    """An environment variable of the job: from the event (JSONPath), a secret, or a literal."""

    model_config = _CONFIG

    name: str
    valueFrom: Literal["event", "secret", "string"]
    value: str = ""
    as_: Literal["string", "json", "yaml"] | None = Field(default=None, alias="as")


class JobTask(BaseModel):
    model_config = _CONFIG

    name: str
    image: str
    cmd: list[str] = Field(default_factory=empty_list)
    args: list[str] = Field(default_factory=empty_list)
    files: list[str] = Field(default_factory=empty_list)
    env: list[JobEnv] = Field(default_factory=empty_list)
    workingDir: str | None = None
    maxPollDuration: int | None = Field(default=None, ge=1)
    """Seconds to wait for the job before giving up (the job executor's default is 300)."""
    ttlSecondsAfterFinished: int | None = Field(default=None, ge=0)
    namespace: str | None = None
    serviceAccount: str | None = None
    imagePullPolicy: str | None = None
    securityContext: dict[str, Any] | None = None
    resources: dict[str, Any] | None = None
    annotations: Any = None

    @field_validator("cmd", mode="before")
    @classmethod
    def _command_line(cls, value: Any) -> Any:
        if isinstance(value, str):
            return ["sh", "-c", value]
        return null_is_empty_list(value)

    _null_is_empty = field_validator("args", "files", "env", mode="before")(null_is_empty_list)


class JobAction(BaseModel):
    model_config = _CONFIG

    name: str
    events: list[JobEvent] = Field(default_factory=empty_list)
    tasks: list[JobTask] = Field(default_factory=empty_list)
    silent: bool = False
    """Send no .started/.finished events (for actions that react to .finished events)."""

    @model_validator(mode="before")
    @classmethod
    def _single_event(cls, data: Any) -> Any:
        # The first job-executor releases had one `event:` per action, with its `jsonpath:` beside it.
        if not isinstance(data, Mapping) or "event" not in data:
            return data
        data = dict(data)
        event: dict[str, Any] = {"name": data.pop("event")}
        if data.get("jsonpath") is not None:
            event["jsonpath"] = data.pop("jsonpath")
        data["events"] = [*(data.get("events") or []), event]
        return data

    _null_is_empty = field_validator("events", "tasks", mode="before")(null_is_empty_list)


class JobConfig(BaseModel):
    model_config = _CONFIG

    apiVersion: Literal["v1", "v2"] | None = None
    actions: list[JobAction]

    def warnings(self) -> list[FieldWarning]:
        found: list[FieldWarning] = []
        for i, action in enumerate(self.actions):
            if not action.events:
                found.append(FieldWarning(("actions", i, "name"),
                                          f"action '{action.name}' lists no events, so it never runs"))
            if not action.tasks:
                found.append(FieldWarning(("actions", i, "name"),
                                          f"action '{action.name}' has no tasks, so it does nothing"))
        return found
