"""What the worker gives every agent: the app and the configuration files (`WorkerContext`).

The audit topic holds all of `events`, all of `tasks.*` and every state transition (streams.audit).
The sequencer audits every event it consumes from `events`; each agent's host audits what the agent
sends to a task topic and its transitions (`agents.kernel.Runner`). So no event is audited twice by
design, and consumers of `audit` drop repeated ids anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from tidegate.schemas.files import FileKind, load_text
from tidegate.schemas.shipyard import Shipyard
from tidegate.streams.app import TidegateApp
from tidegate.streams.resources import SHIPYARD, ResourceStore, ResourceView

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What the worker hands every agent shell: the app and the configuration files."""

    app: TidegateApp
    resources: ResourceStore
    view: ResourceView | None = None
    _shipyards: dict[tuple[str, str], Shipyard] = field(default_factory=dict)

    async def wait_ready(self) -> None:
        """Block an agent until the configuration has been read once (never decide on half of it)."""
        if self.view is not None:
            await self.view.ready.wait()

    async def sync_resources(self) -> None:
        """Catch up with files written a moment ago (a trigger can follow its shipyard closely)."""
        if self.view is not None:
            await self.view.sync()

    def shipyard(self, project: str) -> tuple[Shipyard | None, str | None]:
        """The project's current shipyard and its version (parsed once per version)."""
        resource = self.resources.get(project, SHIPYARD)
        if resource is None:
            return None, None
        cache_key = (project, resource.version)
        if cache_key not in self._shipyards:
            loaded = load_text(resource.text, f"{project}/{SHIPYARD}", FileKind.SHIPYARD)
            model = loaded.model
            if not isinstance(model, Shipyard):
                raise TypeError(f"{project}/{SHIPYARD} did not load as a shipyard")
            self._shipyards[cache_key] = model
        return self._shipyards[cache_key], resource.version
