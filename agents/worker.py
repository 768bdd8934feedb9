"""The Tidegate worker: one Faust app hosting the agents, plus the resources view they read.

Every agent is written against `agents.kernel` and runs on one of two hosts (`HOSTS`, one line each):
- `loop`: the shared consume-decide-produce loop (`tidegate.streams.kafka.loop`), a confluent-kafka
  thread that a task of this app starts and stops (group `<prefix><agent>`);
- `faust`: Faust agents and a table of this app (group `<prefix>worker`).
Both keep an agent's state in the same topic, so an agent keeps its state when it moves (its inputs
are read again from the new group's start: deterministic ids and remembered inputs make that harmless).

    tidegate worker            # all agents
    tidegate worker --agents sequencer,approver
    TIDEGATE_AGENT_HOSTS=evaluator=faust tidegate worker   # another host for one run (benchmarks)

Scale out by starting more workers with the same settings: partitions (and the agents' state, through
their state topics) move between them. Each agent's module exposes `hosted(ctx)` (`kernel.Hosted`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tidegate.agents.kernel import Hosted
from tidegate.agents.shell import WorkerContext
from tidegate.streams.app import TidegateApp, create_app
from tidegate.streams.metrics import expose_worker_metrics
from tidegate.streams.resources import ResourceStore, ResourceView
from tidegate.streams.settings import Settings

log = logging.getLogger(__name__)

# Agent name -> module with `hosted(ctx)`; modules are optional so a partial install still runs.
AGENTS: dict[str, str] = {
    "sequencer": "tidegate.agents.sequencer.shell",
    "approver": "tidegate.agents.approver.shell",
    "evaluator": "tidegate.agents.evaluator.shell",
    "remediator": "tidegate.agents.remediator.shell",
}
# Agent name -> the host that runs it. The sequencer, which every event passes through, needs the loop's
# throughput. The evaluator is faster on the loop too: benchmarks/bench_evaluator.py --host, three runs
# each on a 2-core machine, whole evaluation (4 hops) p50 13-21 ms on the loop vs 23-31 ms on Faust, p99
# 34-65 ms vs 71-159 ms. The approver and remediator act rarely: Faust, where its cost does not matter.
HOSTS: dict[str, str] = {
    "sequencer": "loop",
    "approver": "faust",
    "evaluator": "loop",
    "remediator": "faust",
}
HOST_MODULES: dict[str, str] = {"loop": "tidegate.agents.hosts.loop", "faust": "tidegate.agents.hosts.faust"}
HOSTS_ENV = "TIDEGATE_AGENT_HOSTS"
APP_NAME = "worker"


def hosts_from_env(text: str) -> dict[str, str]:
    """`TIDEGATE_AGENT_HOSTS` (`agent=host,...`): hosts that differ from `HOSTS` for this worker."""
    chosen: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, host = item.partition("=")
        if name.strip() not in AGENTS or host.strip() not in HOST_MODULES:
            raise ValueError(f"{HOSTS_ENV}: {item!r} is not agent=host with an agent of {', '.join(AGENTS)} "
                             f"and a host of {', '.join(HOST_MODULES)}")
        chosen[name.strip()] = host.strip()
    return chosen


def build_worker(
    settings: Settings,
    agents: Iterable[str] | None = None,
    *,
    hosts: Mapping[str, str] | None = None,
    **app_options: object,
) -> TidegateApp:
    """The worker app with the chosen agents registered (all by default), each on its host (`HOSTS`,
    overridden by `hosts`)."""
    app = create_app(settings, APP_NAME, **app_options)
    view = ResourceView(settings, app.topic_registry.resources, ResourceStore())
    ctx = WorkerContext(app=app, resources=view.store, view=view)

    @app.task  # type: ignore[untyped-decorator]
    async def follow_resources() -> None:
        # Run inside Faust's own task, so the worker cancels it on shutdown.
        await view.run()

    chosen = list(agents) if agents is not None else list(AGENTS)
    for name in chosen:
        if name not in AGENTS:
            raise ValueError(f"unknown agent {name!r}; choose from {', '.join(AGENTS)}")
        hosted = _hosted_function(AGENTS[name])
        if hosted is None:
            log.warning("agent %s is not available in this installation", name)
            continue
        host = {**HOSTS, **(hosts or {})}[name]
        importlib.import_module(HOST_MODULES[host]).register(ctx, hosted(ctx))
    app.worker_context = ctx  # type: ignore[attr-defined]
    expose_worker_metrics(app)  # on 127.0.0.1:$TIDEGATE_METRICS_PORT when set (streams.metrics)
    return app


def _hosted_function(module_name: str) -> Callable[[WorkerContext], Hosted[Any, Any]] | None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise
    hosted: Callable[[WorkerContext], Hosted[Any, Any]] = module.hosted
    return hosted
