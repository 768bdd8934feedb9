"""The command connector's files: `command/config.yaml` (schemas.commandconfig, validated on upload)
and Keptn job-executor files (`job/config.yaml`, schemas.jobconfig), converted.

Job-executor files are read when a service has no command/config.yaml: `image` is ignored and
`cmd`/`args` run locally (programs the operator allowed, as for command/config.yaml); env
`valueFrom: event`, `string` and `secret` are supported (`secret` names a secret of Tidegate's secret
store, `keptn create secret`, whose keys all become variables: `envFrom`); `maxPollDuration` becomes
the timeout; `files`
are copied into the task's directory and, since job-executor programs find them under `/keptn/`, a
`/keptn/` prefix in cmd, args and workingDir points at the task's directory.
"""

from __future__ import annotations

from tidegate.schemas.commandconfig import (
    CommandAction,
    CommandConfig,
    CommandTask,
    EnvFromSource,
    EnvVar,
    EventSource,
    SecretNameRef,
    SecretRefSource,
    SecretSource,
)
from tidegate.schemas.jobconfig import JobConfig, JobTask

CONFIG_PATH = "command/config.yaml"
JOB_EXECUTOR_PATH = "job/config.yaml"
KEPTN_DIR = "/keptn"

__all__ = [
    "CONFIG_PATH",
    "JOB_EXECUTOR_PATH",
    "CommandAction",
    "CommandConfig",
    "CommandTask",
    "EnvFromSource",
    "EnvVar",
    "EventSource",
    "SecretNameRef",
    "SecretRefSource",
    "SecretSource",
    "from_job_config",
]


def _keptn_dir(path: str | None) -> str | None:
    """A job-executor workingDir under /keptn, relative to the task's directory."""
    if path is None or (path != KEPTN_DIR and not path.startswith(KEPTN_DIR + "/")):
        return path
    return path[len(KEPTN_DIR):].lstrip("/") or "."


def _converted_task(task: JobTask) -> CommandTask:
    env: list[EnvVar] = []
    env_from: list[EnvFromSource] = []
    for item in task.env:
        if item.valueFrom == "event":
            env.append(EnvVar(name=item.name, valueFrom=EventSource(event=item.value)))
        elif item.valueFrom == "string":
            env.append(EnvVar(name=item.name, value=item.value))
        else:  # secret: `name` is the secret's, and every key of it becomes a variable
            env_from.append(EnvFromSource(secretRef=SecretNameRef(name=item.name)))
    cmd = list(task.cmd)
    if not cmd:
        # The job executor then ran the image's entrypoint; there is no image here.
        cmd = [f"<no cmd: task {task.name!r} relied on the entrypoint of image {task.image}>"]
    return CommandTask(
        name=task.name,
        cmd=cmd,
        args=list(task.args),
        env=env,
        envFrom=env_from,
        files=list(task.files),
        workingDir=_keptn_dir(task.workingDir),
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
