"""What a connector's `run` gets: the triggered event and the few services it may use."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tidegate.connectors.runtime.program import DEFAULT_OUTPUT_LIMIT, ProgramResult, RunAs, run_program
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.streams.resources import Resource, ResourceStore
from tidegate.streams.settings import Settings

ResourceWriter = Callable[[Resource], Awaitable[None]]


async def _no_resource_writer(resource: Resource) -> None:
    raise RuntimeError(f"this connector cannot store resources (tried to store {resource.key})")


class EventLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Prefixes every line with the connector, the task and the keptnContext."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = self.extra or {}
        return f"[{extra.get('connector')} {extra.get('task')} ctx={extra.get('keptn_context')}] {msg}", kwargs


@dataclass
class TaskContext:
    """One task run: the `.triggered` event, configuration files, settings, a logger, programs."""

    event: KeptnEvent
    task: str
    connector: str
    resources: ResourceStore
    settings: Settings
    timeout: float
    """Seconds the whole task may take (the runtime enforces it; programs may use it as a bound)."""
    store_resource_with: ResourceWriter = field(default=_no_resource_writer)
    log: logging.LoggerAdapter = field(init=False)  # type: ignore[type-arg]

    def __post_init__(self) -> None:
        self.log = EventLogger(
            logging.getLogger(f"tidegate.connector.{self.connector}"),
            {"connector": self.connector, "task": self.task, "keptn_context": self.event.shkeptncontext},
        )

    # --- the event ---
    @property
    def data(self) -> dict[str, Any]:
        return self.event.data

    @property
    def key(self) -> Key:
        return Key.of_data(self.event.data)

    @property
    def project(self) -> str:
        return self.key.project

    @property
    def stage(self) -> str:
        return self.key.stage

    @property
    def service(self) -> str:
        return self.key.service

    def payload(self, name: str | None = None) -> dict[str, Any]:
        """The block under `name` (default: the task's own, where the shipyard's task properties are)."""
        value = self.event.data.get(name or self.task)
        return value if isinstance(value, dict) else {}

    # --- configuration files ---
    def resource(self, path: str) -> Resource | None:
        """The most specific version of a file: service in stage, then stage, then project."""
        return self.resources.resolve(self.project, path, self.stage, self.service)

    async def store_resource(self, resource: Resource) -> None:
        """Write a new version of a file to the resources topic (e.g. a chart with merged values)."""
        await self.store_resource_with(resource)
        self.resources.put(resource)

    # --- programs ---
    async def run_program(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float | None = None,
        capture: Callable[[str], bool] | None = None,
        user: RunAs | None = None,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
    ) -> ProgramResult:
        """Run a program (argument list, never a shell string); bounded by `timeout` or the task's.
        `output_limit`: bytes of stdout and of stderr kept (a program whose output is data, such as
        `helm template`, needs it whole)."""
        self.log.info("running %s", argv[0] if argv else "?")
        return await run_program(
            argv, env=env, cwd=cwd, timeout=timeout if timeout is not None else self.timeout, capture=capture,
            user=user, output_limit=output_limit,
        )
