"""`command/config.yaml`: which programs to run for which events (close to Keptn's job executor).

    apiVersion: tidegate.sh/v1          # optional
    actions:
      - name: Deploy the demo service
        events:
          - name: sh.keptn.event.deployment.triggered      # a regular expression, matched whole
            jsonpath: {property: $.data.deployment.deploymentstrategy, match: direct}   # optional
        tasks:
          - name: start
            cmd: [python3, command/deploy.py]              # argument list: never a shell string
            args: [--port, "8080"]
            files: [command/deploy.py]                     # resources copied into the working dir
            workingDir: .                                  # relative to the task's temporary dir
            timeout: 5m                                    # Go duration or seconds
            env:
              - {name: MODE, value: fast}                              # a literal
              - {name: IMAGE, valueFrom: {event: $.data.configurationChange.values.image}}
              - {name: TOKEN, valueFrom: {secretEnv: DEMO_TOKEN}}      # from the connector's environment

Job-executor files (`job/config.yaml`, schemas.jobconfig) are read too when a service has no
command/config.yaml: `image` is ignored and `cmd`/`args` run locally; env `valueFrom: event` and
`string` are supported, `valueFrom: secret` is not (it names a Kubernetes secret: use `secretEnv`);
`maxPollDuration` becomes the timeout; `files` are copied as above and, since job-executor programs
find them under `/keptn/`, a `/keptn/` prefix in cmd and args points at the task's directory.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tidegate.schemas.jobconfig import JobConfig, JobEvent, JobTask

CONFIG_PATH = "command/config.yaml"
JOB_EXECUTOR_PATH = "job/config.yaml"

_CONFIG = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class EventSource(BaseModel):
    model_config = _CONFIG

    event: str = Field(min_length=1)
    """A JSONPath into the whole event, e.g. `$.data.deployment.deploymentURIsLocal[0]`."""


class SecretSource(BaseModel):
    model_config = _CONFIG

    secretEnv: str = Field(min_length=1)
    """The name of an environment variable of the connector that holds the secret."""


class EnvVar(BaseModel):
    model_config = _CONFIG

    name: str = Field(min_length=1)
    value: str | None = None
    valueFrom: EventSource | SecretSource | None = None
    unsupported: str | None = Field(default=None, exclude=True)
    """Set for converted job-executor entries Tidegate cannot honour; reported when the task runs."""

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if self.unsupported is None and (self.value is None) == (self.valueFrom is None):
            raise ValueError(f"env {self.name}: give either `value` or `valueFrom` (event or secretEnv), not both or neither")
        return self


class CommandTask(BaseModel):
    model_config = _CONFIG

    name: str = Field(min_length=1)
    cmd: list[str] = Field(min_length=1)
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    workingDir: str | None = None
    timeout: str | None = None
    keptn_paths: bool = Field(default=False, exclude=True)
    """Converted from job-executor: rewrite a `/keptn/` prefix in cmd and args to the task's directory."""

    @field_validator("args", "env", "files", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class CommandAction(BaseModel):
    model_config = _CONFIG

    name: str = Field(min_length=1)
    events: list[JobEvent] = Field(min_length=1)
    tasks: list[CommandTask] = Field(min_length=1)


class CommandConfig(BaseModel):
    model_config = _CONFIG

    apiVersion: str | None = None
    actions: list[CommandAction] = Field(default_factory=list)


def _converted_task(task: JobTask) -> CommandTask:
    env: list[EnvVar] = []
    for item in task.env:
        if item.valueFrom == "event":
            env.append(EnvVar(name=item.name, valueFrom=EventSource(event=item.value)))
        elif item.valueFrom == "string":
            env.append(EnvVar(name=item.name, value=item.value))
        else:
            env.append(EnvVar(
                name=item.name,
                unsupported=(f"env {item.name} takes a Kubernetes secret (valueFrom: secret), which the command "
                             "connector cannot read; write command/config.yaml with valueFrom: {secretEnv: VAR}"),
            ))
    cmd = list(task.cmd)
    if not cmd:
        # The job executor then ran the image's entrypoint; there is no image here.
        cmd = [f"<no cmd: task {task.name!r} relied on the entrypoint of image {task.image}>"]
    return CommandTask(
        name=task.name,
        cmd=cmd,
        args=list(task.args),
        env=env,
        files=list(task.files),
        workingDir=task.workingDir,
        timeout=str(task.maxPollDuration) if task.maxPollDuration else None,
        keptn_paths=True,
    )


def from_job_config(job: JobConfig) -> CommandConfig:
    """A job-executor configuration as a command configuration (see the module docstring)."""
    actions = [
        CommandAction(name=action.name, events=action.events, tasks=[_converted_task(t) for t in action.tasks])
        for action in job.actions
        if action.events and action.tasks and not action.silent
    ]
    return CommandConfig(apiVersion="job-executor/" + (job.apiVersion or "v1"), actions=actions)
