"""The command connector: run configured programs for any task, like Keptn's job executor, locally.

Exit code 0 ⇒ pass, non-zero ⇒ fail (status succeeded: the program ran and said no); a program that
cannot start, a missing file or a bad configuration ⇒ errored. The programs' output (bounded, secrets
masked) is the message; `{"tidegate": {...}}` lines they print are merged into the `.finished` data.

A program may leave a process running on purpose (the demo "deploys" a service as a local process):
processes it started are not killed when it exits normally, only when the task times out or is
cancelled (the whole process group). Such a service must write its output to a file, not to the
inherited stdout/stderr, which the connector stops reading when the program ends.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from tidegate.connectors.command.config import CONFIG_PATH, JOB_EXECUTOR_PATH, CommandConfig, from_job_config
from tidegate.connectors.command.plan import (
    PlanError,
    PlannedTask,
    is_result_line,
    masked,
    matching_actions,
    plan_task,
    result_data,
)
from tidegate.connectors.runtime import ProgramStartError, TaskContext, TaskOutcome
from tidegate.connectors.runtime.replies import task_name
from tidegate.schemas.errors import FileError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.files import load_text
from tidegate.schemas.jobconfig import JobConfig
from tidegate.schemas.keys import Key
from tidegate.streams.resources import Resource, ResourceStore
from tidegate.streams.topics import STANDARD_TASKS

log = logging.getLogger("tidegate.connector.command")

MESSAGE_CHARS = 1500
EVENT_FILE = "event.json"


class ConfigProblem(ValueError):
    """command/config.yaml or job/config.yaml cannot be used; the message names the file and the field."""


def parse_config(resource: Resource) -> CommandConfig:
    if resource.path == JOB_EXECUTOR_PATH:
        try:
            loaded = load_text(resource.text, JOB_EXECUTOR_PATH, kind="job-executor")
        except FileError as error:
            raise ConfigProblem(str(error)) from error
        return from_job_config(loaded.expect(JobConfig))
    try:
        raw = yaml.safe_load(resource.text)
        return CommandConfig.model_validate(raw or {})
    except yaml.YAMLError as error:
        raise ConfigProblem(f"{CONFIG_PATH} is not valid YAML: {error}") from error
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        raise ConfigProblem(f"{CONFIG_PATH}: {problems}") from error


class CommandConnector:
    """Runs `command/config.yaml` (or `job/config.yaml`) actions for the tasks it is given."""

    def __init__(self, resources: ResourceStore, tasks: Sequence[str] = STANDARD_TASKS,
                 environ: Mapping[str, str] | None = None, name: str = "command") -> None:
        self.name = name
        self.tasks = list(tasks)
        self._resources = resources
        self._environ = environ if environ is not None else os.environ
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
            for action in matching_actions(config, ctx.event):
                for configured in action.tasks:
                    try:
                        planned = plan_task(configured, ctx.event, task, self._environ, directory)
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
            target = workdir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(resource.content)

    async def _run_one(self, ctx: TaskContext, planned: PlannedTask, workdir: Path, event_file: Path,
                       reports: list[str], data: dict[str, object]) -> TaskOutcome | None:
        cwd = Path(planned.working_dir)
        cwd = cwd if cwd.is_absolute() else workdir / cwd
        env = {**planned.env, "TIDEGATE_EVENT_FILE": str(event_file), "TIDEGATE_TASK_DIR": str(workdir)}
        timeout = min(planned.timeout, ctx.timeout) if planned.timeout else ctx.timeout
        try:
            result = await ctx.run_program(planned.argv, env=env, cwd=cwd, timeout=timeout, capture=is_result_line)
        except ProgramStartError as error:
            return TaskOutcome.errored(f"task {planned.name!r}: {error}", dict(data))
        added, problems = result_data(result.captured)
        data.update(added)
        output = masked(result.tail(MESSAGE_CHARS), planned.secrets)
        if result.timed_out:
            return TaskOutcome.errored(f"task {planned.name!r} timed out after {timeout:g} s and was killed\n{output}",
                                       dict(data))
        report = f"{planned.name}: exit {result.exit_code}" + (f"\n{output}" if output else "")
        reports.extend([report, *problems])
        if result.exit_code != 0:
            return TaskOutcome.failed(_joined(reports), dict(data))
        return None


def _joined(reports: list[str]) -> str:
    text = "\n".join(reports)
    return text if len(text) <= 2 * MESSAGE_CHARS else "…" + text[-2 * MESSAGE_CHARS:]
