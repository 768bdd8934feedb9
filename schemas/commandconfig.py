"""`command/config.yaml`: which programs the command connector runs for which events (close to Keptn's
job executor). Validated on upload like every file Tidegate knows.

    apiVersion: tidegate.sh/v1          # optional
    actions:
      - name: Deploy the demo service
        events:
          - name: sh.keptn.event.deployment.triggered      # a regular expression, matched whole
            jsonpath: {property: $.data.deployment.deploymentstrategy, match: direct}   # optional
        tasks:
          - name: start
            cmd: [deploy-demo]                             # argument list: never a shell string
            args: [--port, "8080"]
            files: [command/deploy.py]                     # resources copied into the task's directory
            workingDir: .                                  # inside the task's directory
            timeout: 5m                                    # Go duration or seconds
            env:
              - {name: MODE, value: fast}                              # a literal
              - {name: IMAGE, valueFrom: {event: $.data.configurationChange.values.image}}
              - {name: TOKEN, valueFrom: {secretRef: {name: demo, key: token}}}    # a key of a secret
              - {name: OTHER, valueFrom: {secretEnv: TIDEGATE_SECRET_DEMO_OTHER}}   # an operator's variable
            envFrom:
              - secretRef: {name: locust-secret}                       # every key of a secret, as Kubernetes

Secrets (`secretRef`, `envFrom`) come from Tidegate's secret store (`keptn create secret`), in the
scopes the project may read (streams.secrets: keptn-default and the project's own); a `secretRef`
key the store does not have is read from the connector's TIDEGATE_SECRET_<NAME>_<KEY>.

What the file cannot do, whoever wrote it: name a program the operator did not allow (the connector's
TIDEGATE_COMMAND_ALLOW, checked when the task runs), read a variable of the connector that is not a
secret meant for it (`secretEnv` must start with TIDEGATE_SECRET_, schemas.secrets), read another
project's secrets, or reach outside the task's directory with `workingDir` or `files` (relative, no `..`).
"""

from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from tidegate.schemas.jobevents import JobEvent
from tidegate.schemas.nulls import empty_list
from tidegate.schemas.secrets import SECRET_PREFIX, is_secret_variable

_CONFIG = ConfigDict(defer_build=True, extra="forbid", coerce_numbers_to_str=True)


def inside_path(path: str, what: str) -> str:
    """`path` if it is relative and stays inside the directory it is relative to; ValueError otherwise."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or "\x00" in path:
        raise ValueError(f"{what} {path!r} must be a relative path inside the task's directory (no leading / or ..)")
    return path


class EventSource(BaseModel):
    model_config = _CONFIG

    event: str = Field(min_length=1)
    """A JSONPath into the whole event, e.g. `$.data.deployment.deploymentURIsLocal[0]`."""


class SecretSource(BaseModel):
    model_config = _CONFIG

    secretEnv: str = Field(min_length=1)
    """The environment variable of the connector that holds the secret; it must start with TIDEGATE_SECRET_."""

    @field_validator("secretEnv")
    @classmethod
    def _a_secret(cls, value: str) -> str:
        if not is_secret_variable(value):
            raise ValueError(f"secretEnv {value!r} must name a variable starting with {SECRET_PREFIX} (the connector "
                             f"gives files only those, e.g. {SECRET_PREFIX}{value.upper()}); an operator sets it")
        return value


class SecretKeyRef(BaseModel):
    model_config = _CONFIG

    name: str = Field(min_length=1)
    """The secret's name, as `keptn create secret NAME` gave it."""
    key: str = Field(min_length=1)


class SecretRefSource(BaseModel):
    """A key of a secret of the secret store, else the connector's TIDEGATE_SECRET_<NAME>_<KEY>."""

    model_config = _CONFIG

    secretRef: SecretKeyRef


class SecretNameRef(BaseModel):
    model_config = _CONFIG

    name: str = Field(min_length=1)


class EnvFromSource(BaseModel):
    """Every key of a secret of the secret store as a variable (Kubernetes' `envFrom`, the job executor's
    `valueFrom: secret`)."""

    model_config = _CONFIG

    secretRef: SecretNameRef


class EnvVar(BaseModel):
    model_config = _CONFIG

    name: str = Field(min_length=1)
    value: str | None = None
    valueFrom: EventSource | SecretSource | SecretRefSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "EnvVar":
        if (self.value is None) == (self.valueFrom is None):
            raise ValueError(f"env {self.name}: give either `value` or `valueFrom` (event, secretRef or secretEnv), "
                             "not both or neither")
        return self


class CommandTask(BaseModel):
    model_config = _CONFIG

    name: str = Field(min_length=1)
    cmd: list[str] = Field(min_length=1)
    """The program (a name on the connector's PATH or an absolute path, allowed by the operator) and its
    first arguments."""
    args: list[str] = Field(default_factory=empty_list)
    env: list[EnvVar] = Field(default_factory=empty_list)
    envFrom: list[EnvFromSource] = Field(default_factory=empty_list)
    """Whole secrets as variables, set before `env` (which wins for a name in both)."""
    files: list[str] = Field(default_factory=empty_list)
    workingDir: str | None = None
    """Relative to the task's directory, and inside it."""
    timeout: str | None = None
    keptn_paths: SkipJsonSchema[bool] = Field(default=False, exclude=True)
    """Converted from job-executor: rewrite a `/keptn/` prefix in cmd and args to the task's directory."""

    @field_validator("args", "env", "envFrom", "files", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("files")
    @classmethod
    def _files_inside(cls, files: list[str]) -> list[str]:
        return [inside_path(path.lstrip("/"), "file") for path in files]

    @field_validator("workingDir")
    @classmethod
    def _workdir_inside(cls, value: str | None) -> str | None:
        return None if value is None else inside_path(value, "workingDir")

    @field_validator("cmd")
    @classmethod
    def _program_named(cls, cmd: list[str]) -> list[str]:
        if not cmd[0].strip():
            raise ValueError("the program (the first word of cmd) is empty")
        return cmd


class CommandAction(BaseModel):
    model_config = _CONFIG

    name: str = Field(min_length=1)
    events: list[JobEvent] = Field(min_length=1)
    tasks: list[CommandTask] = Field(min_length=1)


class CommandConfig(BaseModel):
    model_config = _CONFIG

    apiVersion: str | None = None
    actions: list[CommandAction] = Field(default_factory=empty_list)
