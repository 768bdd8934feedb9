"""The evaluator in the worker: its agent bundle (`AGENT`: inputs `tasks.evaluation` and `events`, state
`evaluations[key]`) and its configuration (`hosted(ctx)`); a host runs it (`agents.worker.HOSTS`).

The SLI provider of a key: the file `.tidegate/sli-provider` (service, stage or project level;
written by `tidegate configure monitoring`), else `prometheus` when a `prometheus/sli.yaml` exists
for the key, else `TIDEGATE_DEFAULT_SLI_PROVIDER`; none means Keptn's "no evaluation performed".
"""

from __future__ import annotations

import logging
import os

from tidegate.agents.evaluator.flow import EvaluatorConfig, EvaluatorState, SLOFile, StateCodec, decide
from tidegate.agents.kernel import Agent, Hosted
from tidegate.agents.shell import WorkerContext
from tidegate.schemas.events import EventType, KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.streams.resources import SLI_PROMETHEUS, SLO, Resource

log = logging.getLogger(__name__)

SLI_PROVIDER_FILE = ".tidegate/sli-provider"


def _file_name(resource: Resource) -> str:
    """`sockshop/dev/carts/slo.yaml`, `sockshop/dev/slo.yaml` or `sockshop/slo.yaml`: the level that has the file."""
    return "/".join(part for part in (resource.project, resource.stage, resource.service, resource.path) if part)


# The (task, kind) pairs `flow.decide` acts on; everything else on `events` (its own .started/.finished,
# every other task's replies) is let pass before any state is read.
_ACTS_ON = frozenset({("evaluation", "triggered"), ("get-sli", "finished"), ("evaluation", "invalidated")})


def _accepts(event_type: str, _topic: str) -> bool:
    parsed = EventType.parse(event_type)
    return parsed.is_task and (parsed.task, parsed.kind) in _ACTS_ON


AGENT: Agent[EvaluatorState, EvaluatorConfig] = Agent(
    name="evaluator",
    inputs=("tasks.evaluation", "events"),
    decide=decide,
    state=StateCodec(),  # EvaluatorState's JSON (its stored results' parts kept with them)
    state_topic=("worker", "evaluations"),  # <prefix>worker-evaluations-changelog on either host (Faust's table)
    accepts=_accepts,
    checks=frozenset({"tasks.evaluation"}),  # records of `events` are the sequencer's to dead-letter
)


def hosted(ctx: WorkerContext) -> Hosted[EvaluatorState, EvaluatorConfig]:
    """The evaluator bound to the worker's configuration files."""

    def slo_for(key: Key) -> SLOFile | None:
        found = ctx.resources.resolve(key.project, SLO, key.stage, key.service)
        return SLOFile(found.text, found.version, _file_name(found)) if found is not None else None

    def sli_provider_for(key: Key) -> str | None:
        configured = ctx.resources.resolve(key.project, SLI_PROVIDER_FILE, key.stage, key.service)
        if configured is not None and configured.text.strip():
            return configured.text.strip()
        if ctx.resources.layers(key.project, SLI_PROMETHEUS, key.stage, key.service):
            return "prometheus"
        return os.environ.get("TIDEGATE_DEFAULT_SLI_PROVIDER") or None

    def stale(event: KeptnEvent, key: Key) -> bool:
        # An evaluation can follow its slo.yaml closely: catch up with files written a moment ago.
        return event.parsed_type.kind == "triggered" and slo_for(key) is None

    return Hosted(AGENT, EvaluatorConfig(slo_for=slo_for, sli_provider_for=sli_provider_for), stale=stale)
