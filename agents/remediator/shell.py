"""The remediator in the worker: its agent bundle (`AGENT`: inputs `tasks.get-action` and `events`, state
`remediations[key]`, a timer) and its configuration (`hosted(ctx)`); a host runs it (`agents.worker.HOSTS`).

Everything the remediator decides happens in `agents.remediator.core.decide`; this module finds
remediation.yaml for the key (service, else stage, else project level, from the resources view). The
outputs: events to `events` (task replies, escalations, quota requests and answers, sequence aborts)
and transitions to `audit` as `sh.tidegate.audit.remediator.<kind>`. The state is keyed like the topics
(`project/stage/service`, a project's quota under `project//`), and every event that changes an entry
carries that same key, so state records stay co-partitioned.

On `events` the remediator skips everything it does not act on without dead letters of its own:
records that cannot be decoded or are keyed wrongly are the sequencer's to dead-letter (it reads every
record of `events`), so they are not dead-lettered twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tidegate.agents.kernel import Agent, Decision, Hosted, ModelCodec, Position
from tidegate.agents.remediator.core import (
    RemediationFileProblem,
    RemediationInput,
    decide,
    is_relevant,
    next_deadline,
)
from tidegate.agents.remediator.events import GET_ACTION
from tidegate.agents.remediator.model import RemediationState
from tidegate.agents.remediator.outputs import AGENT as AGENT_NAME
from tidegate.agents.remediator.settings import RemediatorSettings
from tidegate.agents.shell import WorkerContext
from tidegate.schemas.errors import FileError
from tidegate.schemas.events import EventType, KeptnEvent
from tidegate.schemas.files import FileKind, load_text
from tidegate.schemas.keys import Key
from tidegate.schemas.remediation import Remediation
from tidegate.schemas.tidegate_events import remediation_tick
from tidegate.streams.resources import REMEDIATION, Resource

log = logging.getLogger(__name__)


class RemediationFiles:
    """remediation.yaml of a key from the resources view, parsed once per version."""

    def __init__(self, ctx: WorkerContext) -> None:
        self._ctx = ctx
        self._parsed: dict[tuple[str, str], Remediation | RemediationFileProblem] = {}

    def lookup(self, key: Key) -> RemediationInput:
        """The key's remediation.yaml as the view has it now (None: there is none)."""
        resource = self.resolve(key)
        if resource is None:
            return None
        cache_key = (resource.key, resource.version)
        if cache_key not in self._parsed:
            self._parsed[cache_key] = _parse(resource)
        return self._parsed[cache_key]

    def resolve(self, key: Key) -> Resource | None:
        return self._ctx.resources.resolve(key.project, REMEDIATION, key.stage, key.service)


def _parse(resource: Resource) -> Remediation | RemediationFileProblem:
    path = "/".join(part for part in (resource.project, resource.stage, resource.service, resource.path) if part)
    try:
        loaded = load_text(resource.text, path, FileKind.REMEDIATION)
    except FileError as error:
        problems = "; ".join(
            f"{'line ' + str(p.line) + ': ' if p.line is not None else ''}{p.field + ': ' if p.field else ''}{p.message}"
            for p in error.problems
        )
        return RemediationFileProblem(path, problems or str(error))
    except UnicodeDecodeError:
        return RemediationFileProblem(path, "the file is not UTF-8 text")
    if not isinstance(loaded.model, Remediation):
        return RemediationFileProblem(path, f"the file is a {loaded.kind.value} file, not a remediation file")
    return loaded.model


@dataclass(frozen=True)
class RemediatorConfig:
    """What the remediator decides with: its settings and remediation.yaml of a key."""

    settings: RemediatorSettings
    remediation_for: Callable[[Key], RemediationInput]


def decide_remediation(
    state: RemediationState | None, event: KeptnEvent, config: RemediatorConfig, now: datetime,
    position: Position | None = None,
) -> Decision[RemediationState]:
    """The core's decision, with remediation.yaml read only for the inputs that use it (get-action)."""
    remediation: RemediationInput = None
    if _uses_file(event):
        remediation = config.remediation_for(Key.of_data(event.data))
    return decide(state, event, remediation, config.settings, now, position)


def _uses_file(event: KeptnEvent) -> bool:
    parsed = event.parsed_type
    return parsed.is_task and parsed.task == GET_ACTION


def _accepts(event_type: str, topic: str) -> bool:
    # On `events` only what the remediator acts on; task triggers arrive on tasks.get-action, never there.
    return topic != "events" or (is_relevant(event_type) and not EventType.parse(event_type).is_task)


def _tick(key: Key, deadline: datetime, config: RemediatorConfig) -> KeptnEvent:
    return remediation_tick(key, deadline, config.settings.source)


AGENT: Agent[RemediationState, RemediatorConfig] = Agent(
    name=AGENT_NAME,
    inputs=(f"tasks.{GET_ACTION}", "events"),
    decide=decide_remediation,
    state=ModelCodec(RemediationState),
    state_topic=("worker", "remediations"),  # the worker's table `remediations`, on either host
    next_deadline=next_deadline,
    tick=_tick,
    accepts=_accepts,
    checks=frozenset({f"tasks.{GET_ACTION}"}),  # records of `events` are the sequencer's to dead-letter
)


def hosted(ctx: WorkerContext, settings: RemediatorSettings | None = None) -> Hosted[RemediationState, RemediatorConfig]:
    """The remediator bound to the worker's configuration files."""
    files = RemediationFiles(ctx)

    def stale(event: KeptnEvent, key: Key) -> bool:
        # remediation.yaml may have been written a moment before the problem was reported.
        return _uses_file(event) and files.resolve(key) is None

    return Hosted(AGENT, RemediatorConfig(settings or RemediatorSettings(), files.lookup), stale=stale)
