"""Which programs to run for an event, with which arguments and environment. Pure: no I/O.

The event reaches a program in two ways only, never through a shell: the whole event as a JSON file
(`TIDEGATE_EVENT_FILE`), and the environment variables the configuration maps from it. The common
fields are always set: TIDEGATE_PROJECT, TIDEGATE_STAGE, TIDEGATE_SERVICE, TIDEGATE_TASK,
TIDEGATE_KEPTN_CONTEXT, TIDEGATE_TRIGGERED_ID.

Only programs the operator allowed run: TIDEGATE_COMMAND_ALLOW lists program names (looked up on the
connector's PATH) and absolute paths, comma-separated; `cmd[0]` must be one of them, written the same
way. Empty (the default) allows nothing. Allowing an interpreter (`python3`, `sh`) allows whatever a
resource author writes for it: prefer the scripts or tools themselves, installed by the operator.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import jsonpath
from jsonpath.exceptions import JSONPathError

from tidegate.connectors.command.config import (
    CommandAction,
    CommandConfig,
    CommandTask,
    EventSource,
    SecretRefSource,
    SecretSource,
)
from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import DurationError, TidegateError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.jobevents import JobEvent
from tidegate.streams.secrets import SecretError, SecretReader

KEPTN_DIR = "/keptn/"
ALLOW_VARIABLE = "TIDEGATE_COMMAND_ALLOW"


class PlanError(TidegateError, ValueError):
    """The configuration cannot be applied to this event; the message says what to change."""


@dataclass(frozen=True, slots=True)
class PlannedTask:
    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    files: tuple[str, ...]
    working_dir: str
    """Relative to the task's directory, inside it."""
    timeout: float | None
    secrets: tuple[str, ...] = ()
    """Secret values, to be masked in any output that is reported."""


def _values(path: str, document: Mapping[str, Any]) -> list[Any]:
    try:
        return list(jsonpath.findall(path, document))
    except JSONPathError as error:
        raise PlanError(f"{path!r} is not a JSONPath: {error}") from error


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _name_matches(pattern: str, event_type: str) -> bool:
    # The job executor reads event names as regular expressions; a plain type is one as well.
    try:
        return re.fullmatch(pattern, event_type) is not None
    except re.error:
        return pattern == event_type


def event_matches(selector: JobEvent, document: Mapping[str, Any]) -> bool:
    if not _name_matches(selector.name, str(document.get("type", ""))):
        return False
    if selector.jsonpath is None:
        return True
    try:
        found = _values(selector.jsonpath.property, document)
    except PlanError:
        return False
    return any(_as_text(value) == selector.jsonpath.match for value in found)


def matching_actions(config: CommandConfig, event: KeptnEvent) -> list[CommandAction]:
    document = event.to_json_dict()
    return [action for action in config.actions if any(event_matches(sel, document) for sel in action.events)]


def common_env(event: KeptnEvent, task: str) -> dict[str, str]:
    data = event.data
    return {
        "TIDEGATE_PROJECT": str(data.get("project") or ""),
        "TIDEGATE_STAGE": str(data.get("stage") or ""),
        "TIDEGATE_SERVICE": str(data.get("service") or ""),
        "TIDEGATE_TASK": task,
        "TIDEGATE_KEPTN_CONTEXT": event.shkeptncontext or "",
        "TIDEGATE_TRIGGERED_ID": event.id,
    }


def _timeout(task: CommandTask) -> float | None:
    if task.timeout is None or task.timeout == "":
        return None
    text = task.timeout
    try:
        seconds = float(text) if re.fullmatch(r"\d+(\.\d+)?", text) else parse_duration(text).total_seconds()
    except DurationError as error:
        raise PlanError(f"task {task.name!r}: timeout {text!r} is not a duration: {error}") from error
    if seconds <= 0:
        raise PlanError(f"task {task.name!r}: timeout must be positive, got {text!r}")
    return seconds


def _keptn_path(part: str, directory: str) -> str:
    return directory.rstrip("/") + "/" + part[len(KEPTN_DIR):] if part.startswith(KEPTN_DIR) else part


def program_allowed(program: str, allow: Collection[str]) -> bool:
    """Whether `program` (cmd[0]) is on the operator's list: a bare name as a bare name, a path as that
    absolute path."""
    if "/" in program:
        return posixpath.isabs(program) and posixpath.normpath(program) in allow
    return program in allow


def refused_program(task: str, program: str, allow: Collection[str]) -> str:
    listed = f"it lists {', '.join(sorted(allow))}" if allow else "it is empty, so nothing runs"
    return (f"task {task!r}: the program {program!r} is not allowed: the command connector runs only programs "
            f"an operator lists in {ALLOW_VARIABLE} (comma-separated names or absolute paths; {listed})")


def plan_task(task: CommandTask, event: KeptnEvent, task_name: str, secret_reader: SecretReader,
              directory: str, allow: Collection[str]) -> PlannedTask:
    """One configured task made concrete for `event`. `secret_reader` holds the secrets the task may
    read (the store in its project's scopes, then the connector's environment for secretRef and
    secretEnv), `directory` the task's temporary directory (for job-executor `/keptn/` paths), `allow`
    the programs the operator allows (PlanError for any other, before any secret is read)."""
    argv = [*task.cmd, *task.args]
    if task.keptn_paths:
        argv = [_keptn_path(part, directory) for part in argv]
    if argv[0].startswith("<no cmd"):
        raise PlanError(f"task {task.name!r} has no cmd: the job executor ran its image's entrypoint, which the "
                        "command connector cannot; write the program to run in `cmd`")
    if not program_allowed(argv[0], allow):
        raise PlanError(refused_program(task.name, argv[0], allow))
    document = event.to_json_dict()
    env: dict[str, str] = {}
    secrets: list[str] = []
    for source in task.envFrom:  # first: the common variables and `env` win over a secret's keys
        try:
            whole = secret_reader.data(source.secretRef.name)
        except SecretError as error:
            raise PlanError(f"task {task.name!r}: envFrom: {error}") from None
        env.update(whole)
        secrets.extend(value for value in whole.values() if value)
    env.update(common_env(event, task_name))
    for item in task.env:
        if item.value is not None:
            env[item.name] = item.value
        elif isinstance(item.valueFrom, EventSource):
            found = _values(item.valueFrom.event, document)
            if not found:
                raise PlanError(f"task {task.name!r}: env {item.name}: {item.valueFrom.event} matches nothing in the "
                                f"{event.type} event; fix the JSONPath or send the field")
            env[item.name] = _as_text(found[0])
        elif isinstance(item.valueFrom, SecretRefSource):
            ref = item.valueFrom.secretRef
            try:
                env[item.name] = secret_reader.value(ref.name, ref.key)
            except SecretError as error:
                raise PlanError(f"task {task.name!r}: env {item.name}: {error}") from None
            if env[item.name]:
                secrets.append(env[item.name])
        elif isinstance(item.valueFrom, SecretSource):
            secret = secret_reader.environ.get(item.valueFrom.secretEnv)
            if secret is None:
                raise PlanError(f"task {task.name!r}: env {item.name} takes the secret from the environment variable "
                                f"{item.valueFrom.secretEnv}, which is not set for the command connector")
            env[item.name] = secret
            if secret:
                secrets.append(secret)
    return PlannedTask(
        name=task.name,
        argv=tuple(argv),
        env=env,
        files=tuple(task.files),
        working_dir=task.workingDir or ".",
        timeout=_timeout(task),
        secrets=tuple(secrets),
    )


TIDEGATE_LINE = re.compile(r'^\s*\{\s*"tidegate"\s*:')


def is_result_line(line: str) -> bool:
    return TIDEGATE_LINE.match(line) is not None


def result_data(lines: list[str] | tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    """The data a program added with `{"tidegate": {...}}` lines (merged in order), and problems."""
    data: dict[str, Any] = {}
    problems: list[str] = []
    for line in lines:
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"a tidegate result line is not valid JSON ({error.msg}): {line[:200]}")
            continue
        block = parsed.get("tidegate") if isinstance(parsed, dict) else None
        if not isinstance(block, dict):
            problems.append(f'a tidegate result line must be {{"tidegate": {{...}}}}: {line[:200]}')
            continue
        data = _merged(data, block)
    return data, problems


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def masked(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def masked_data(value: Any, secrets: tuple[str, ...]) -> Any:
    """`value` (parsed JSON) with every secret masked in its texts, keys included."""
    if not secrets:
        return value
    if isinstance(value, str):
        return masked(value, secrets)
    if isinstance(value, dict):
        return {masked(str(key), secrets): masked_data(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [masked_data(item, secrets) for item in value]
    return value
