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

Each worker is a static member of its groups (`group.instance.id`, Faust's and every loop's): a worker
killed and started again on the same host, with the same data directory, claims the same id
(`claim_instance_id`) and gets its partitions back at once, instead of after the dead member's session
(10 s). The other side of it: a worker that stops for good keeps its partitions until that session ends
(static members do not leave their group), so the others take them over 10 s later.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import logging
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

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
# 34-65 ms vs 71-159 ms. The approver and remediator act rarely, but the Faust host loses records after a
# restart (faust-streaming 0.15.3, agents.hosts.faust; tests/integration/test_worker_crash.py): the loop too.
HOSTS: dict[str, str] = {
    "sequencer": "loop",
    "approver": "loop",
    "evaluator": "loop",
    "remediator": "loop",
}
HOST_MODULES: dict[str, str] = {"loop": "tidegate.agents.hosts.loop", "faust": "tidegate.agents.hosts.faust"}
HOSTS_ENV = "TIDEGATE_AGENT_HOSTS"
APP_NAME = "worker"
INSTANCE_SLOTS = 64  # workers one host may run with one data directory
_claims: list[IO[bytes]] = []  # the claimed slots' lock files, held open while the process lives


def claim_instance_id(data_dir: Path) -> str:
    """This worker's id as a static group member: `<host>-<data dir digest>-<slot>`, the lowest slot no
    other live process on this host holds (an exclusive lock on `<data dir>/instance-<slot>.lock`, which
    the kernel releases when the process dies, even by kill -9). A worker started again after a crash
    thus claims its predecessor's id, and two live workers never share one (a shared id would fence one
    of them out of the group)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:100] or "host"
    for slot in range(INSTANCE_SLOTS):
        lock = open(data_dir / f"instance-{slot}.lock", "ab")  # noqa: SIM115 (held open: it is the claim)
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        _claims.append(lock)
        return f"{host}-{digest}-{slot}"
    raise RuntimeError(f"{INSTANCE_SLOTS} workers already run with the data directory {data_dir} on this host")


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
    overridden by `hosts`); a static group member under `claim_instance_id` unless `app_options` give
    `consumer_group_instance_id` (None: a dynamic member)."""
    if "consumer_group_instance_id" not in app_options:
        app_options["consumer_group_instance_id"] = claim_instance_id(settings.data_dir)
    app = create_app(settings, APP_NAME, **app_options)
    view = ResourceView(settings, app.topic_registry.resources, ResourceStore())
    ctx = WorkerContext(app=app, resources=view.store, view=view)

    @app.task_from_start
    async def follow_resources() -> None:
        # Inside Faust's own task (the worker cancels it on shutdown), from the app's start: every agent
        # waits for it, the loop host's without waiting for Faust's table recovery.
        await view.run()

    # A worker with no Faust agent starts no Faust consumer (its conductor would crash on an empty
    # subscription): TidegateApp.on_init_dependencies decides that for every app made by create_app.
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
