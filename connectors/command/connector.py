"""The command connector: run configured programs for any task, like Keptn's job executor, locally.

Exit code 0 ⇒ pass, non-zero ⇒ fail (status succeeded: the program ran and said no); a program that
cannot start, a missing file or a bad configuration ⇒ errored. The programs' output (bounded, secrets
masked) is the message; `{"tidegate": {...}}` lines they print are merged into the `.finished` data.

A program may leave a process running on purpose (the demo "deploys" a service as a local process):
processes it started are not killed when it exits normally, only when the task times out or is
cancelled (the whole process group). Such a service must write its output to a file, not to the
inherited stdout/stderr, which the connector stops reading when the program ends.

What a resource author can and cannot make it do (the operator's settings, TIDEGATE_COMMAND_*):
- run only programs in TIDEGATE_COMMAND_ALLOW (names on PATH or absolute paths; empty: nothing runs,
  each task ends errored saying so);
- read only secrets meant for its project: the secret store's (`secretRef`, `envFrom`; scopes
  keptn-default and the project's own, streams.secrets) and TIDEGATE_SECRET_* variables (`secretRef`
  when the store lacks the key, `secretEnv`), never another variable of the connector;
- work only inside the task's temporary directory (workingDir and files relative, symlinks resolved);
- programs start with a clean environment (PATH, locale and what the task maps), and cannot read the
  connector's own through /proc (the connector is non-dumpable); TIDEGATE_COMMAND_USER runs them as
  another user (the connector must then be root; their directory is given to that user). A connector
  running as root without it logs a warning: root programs can read anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tidegate.connectors.command.config import CONFIG_PATH, JOB_EXECUTOR_PATH, CommandConfig, from_job_config
from tidegate.connectors.command.plan import (
    ALLOW_VARIABLE,
    PlanError,
    PlannedTask,
    is_result_line,
    masked,
    masked_data,
    matching_actions,
    plan_task,
    result_data,
)
from tidegate.connectors.runtime import ProgramStartError, RunAs, TaskContext, TaskOutcome
from tidegate.connectors.runtime.replies import task_name
from tidegate.schemas.errors import FileError, TidegateError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.files import load_text
from tidegate.schemas.jobconfig import JobConfig
from tidegate.schemas.keys import Key
from tidegate.streams.resources import Resource, ResourceStore
from tidegate.streams.secrets import SecretReader, SecretStore, secret_store, task_scopes
from tidegate.streams.topics import STANDARD_TASKS

log = logging.getLogger("tidegate.connector.command")

MESSAGE_CHARS = 1500
EVENT_FILE = "event.json"


class ConfigProblem(TidegateError, ValueError):
    """command/config.yaml or job/config.yaml cannot be used; the message names the file and the field."""


class CommandSettings(BaseSettings):
    """The operator's limits (TIDEGATE_COMMAND_*)."""

    model_config = SettingsConfigDict(env_prefix="TIDEGATE_COMMAND_", frozen=True, extra="ignore")

    allow: Annotated[list[str], NoDecode] = []
    """Programs that may run: names looked up on PATH, or absolute paths (TIDEGATE_COMMAND_ALLOW=a,/opt/b)."""
    user: str | None = None
    """Run programs as this user (name or uid); needs a connector running as root."""

    @field_validator("allow", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    @field_validator("allow")
    @classmethod
    def _names_or_absolute(cls, allow: list[str]) -> list[str]:
        for program in allow:
            if "/" in program and not os.path.isabs(program):
                raise ValueError(f"{ALLOW_VARIABLE}: {program!r} is neither a program name nor an absolute path")
        return [os.path.normpath(program) if "/" in program else program for program in allow]


def parse_config(resource: Resource) -> CommandConfig:
    if resource.path == JOB_EXECUTOR_PATH:
        try:
            loaded = load_text(resource.text, JOB_EXECUTOR_PATH, kind="job-executor")
        except FileError as error:
            raise ConfigProblem(str(error)) from error
        try:
            return from_job_config(loaded.expect(JobConfig))
        except ValueError as error:  # a task the command connector cannot run as written (workingDir: /tmp)
            raise ConfigProblem(f"{JOB_EXECUTOR_PATH}: {error}") from error
    try:
        return load_text(resource.text, CONFIG_PATH, kind="command").expect(CommandConfig)
    except FileError as error:
        raise ConfigProblem(str(error)) from error


def _run_as(user: str | None) -> RunAs | None:
    if not user:
        if os.geteuid() == 0:
            log.warning("the command connector runs as root and so do its programs, which can then read everything "
                        "it can; set TIDEGATE_COMMAND_USER to run them as another user")
        return None
    run_as = RunAs.of(user)
    if os.geteuid() not in (0, run_as.uid):
        raise ValueError(f"TIDEGATE_COMMAND_USER={user}: only a connector running as root can start programs as "
                         "another user; run the connector as that user instead")
    return run_as


class CommandConnector:
    """Runs `command/config.yaml` (or `job/config.yaml`) actions for the tasks it is given."""

    def __init__(self, resources: ResourceStore, tasks: Sequence[str] = STANDARD_TASKS,
                 environ: Mapping[str, str] | None = None, name: str = "command",
                 settings: CommandSettings | None = None, secrets: SecretStore | None = None) -> None:
        self.name = name
        self.tasks = list(tasks)
        self.settings = settings or CommandSettings()
        self._allow = frozenset(self.settings.allow)
        self._run_as = _run_as(self.settings.user)
        self._resources = resources
        self._environ = environ if environ is not None else os.environ
        self._secrets = secrets if secrets is not None else secret_store(self._environ)
        self._parsed: dict[tuple[str, str], CommandConfig | ConfigProblem] = {}

    def config_for(self, key: Key) -> CommandConfig | None:
        """The configuration for a service: command/config.yaml, else job/config.yaml (most specific
        level first); None if neither exists. Raises ConfigProblem for a file that cannot be used."""
        for path in (CONFIG_PATH, JOB_EXECUTOR_PATH):
            resource = self._resources.resolve(key.project, path, key.stage, key.service)
            if resource is None:
                continue
            cache_key = (resource.key, resource.version)
            if cache_key not in self._parsed:
                try:
                    self._parsed[cache_key] = parse_config(resource)
                except ConfigProblem as problem:
                    self._parsed[cache_key] = problem
            found = self._parsed[cache_key]
            if isinstance(found, ConfigProblem):
                raise found
            return found
        return None

    def wants(self, event: KeptnEvent) -> bool:
        try:
            config = self.config_for(Key.of_data(event.data))
        except ConfigProblem as problem:
            log.error("ignoring %s for %s: %s", event.type, Key.of_data(event.data), problem)
            return False
        return config is not None and bool(matching_actions(config, event))

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        try:
            config = self.config_for(ctx.key)
        except ConfigProblem as problem:
            return TaskOutcome.errored(str(problem))
        if config is None:
            return TaskOutcome.errored(f"no {CONFIG_PATH} for {ctx.key} any more; nothing to run")
        task = task_name(ctx.event) or ctx.task
        with tempfile.TemporaryDirectory(prefix="tidegate-command-") as directory:
            workdir = Path(directory)
            event_file = workdir / EVENT_FILE
            event_file.write_text(json.dumps(ctx.event.to_json_dict()), encoding="utf-8")
            reports: list[str] = []
            data: dict[str, object] = {}
            secrets = SecretReader(task_scopes(ctx.project), self._environ, self._secrets)
            for action in matching_actions(config, ctx.event):
                for configured in action.tasks:
                    try:
                        # The store may be a file or the Kubernetes API: read it off the event loop.
                        planned = await asyncio.to_thread(plan_task, configured, ctx.event, task, secrets, directory,
                                                          self._allow)
                        self._materialise(ctx, planned, workdir)
                    except PlanError as problem:
                        return TaskOutcome.errored(f"action {action.name!r}: {problem}", data)
                    outcome = await self._run_one(ctx, planned, workdir, event_file, reports, data)
                    if outcome is not None:
                        return outcome
            return TaskOutcome.passed(_joined(reports), data)

    def _materialise(self, ctx: TaskContext, planned: PlannedTask, workdir: Path) -> None:
        for path in planned.files:
            resource = ctx.resource(path)
            if resource is None:
                raise PlanError(f"task {planned.name!r} needs the file {path}, which is not in the resources of "
                                f"{ctx.key} (service, stage or project level); upload it")
            target = _inside(workdir, path, f"task {planned.name!r}: file")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(resource.content)

    def _hand_over(self, workdir: Path) -> None:
        """Give the task's directory to the user the programs run as."""
        if self._run_as is None:
            return
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, self._run_as.uid, self._run_as.gid, follow_symlinks=False)

    async def _run_one(self, ctx: TaskContext, planned: PlannedTask, workdir: Path, event_file: Path,
                       reports: list[str], data: dict[str, object]) -> TaskOutcome | None:
        try:
            cwd = _inside(workdir, planned.working_dir, f"task {planned.name!r}: workingDir")
            cwd.mkdir(parents=True, exist_ok=True)
            self._hand_over(workdir)
        except PlanError as problem:
            return TaskOutcome.errored(str(problem), dict(data))
        env = {**planned.env, "TIDEGATE_EVENT_FILE": str(event_file), "TIDEGATE_TASK_DIR": str(workdir)}
        if self._run_as is not None:
            env.update(HOME=str(workdir), USER=self._run_as.name)
        timeout = min(planned.timeout, ctx.timeout) if planned.timeout else ctx.timeout
        try:
            result = await ctx.run_program(planned.argv, env=env, cwd=cwd, timeout=timeout, capture=is_result_line,
                                           user=self._run_as)
        except ProgramStartError as error:
            return TaskOutcome.errored(f"task {planned.name!r}: {error}", dict(data))
        added, problems = result_data(result.captured)
        # A program may print a secret it was given in a result line too: the event never carries it.
        data.update(masked_data(added, planned.secrets))
        problems = [masked(problem, planned.secrets) for problem in problems]
        output = masked(result.tail(MESSAGE_CHARS), planned.secrets)
        if result.timed_out:
            return TaskOutcome.errored(f"task {planned.name!r} timed out after {timeout:g} s and was killed\n{output}",
                                       dict(data))
        report = f"{planned.name}: exit {result.exit_code}" + (f"\n{output}" if output else "")
        reports.extend([report, *problems])
        if result.exit_code != 0:
            return TaskOutcome.failed(_joined(reports), dict(data))
        return None


def _inside(workdir: Path, relative: str, what: str) -> Path:
    """`workdir / relative` with symlinks resolved, if it stays inside `workdir`; PlanError otherwise."""
    root = workdir.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise PlanError(f"{what} {relative!r} leads outside the task's directory (to {target})")
    return target


def _joined(reports: list[str]) -> str:
    text = "\n".join(reports)
    return text if len(text) <= 2 * MESSAGE_CHARS else "…" + text[-2 * MESSAGE_CHARS:]
