"""The deployment program's decisions (pure: no I/O).

    request = request_from_event(event_json)            # what the task asks for
    decision = decide(stage_state, request)             # what should run afterwards, and the task's outcome
    work = reconcile(alive_replicas, decision.live)     # which processes to start and stop to get there

Tasks, as Keptn's helm-service did them (reference §6.1, §5.5), on local processes:
- `deployment`: start the version from `configurationChange.values.image` (its tag). Strategy
  `direct` (and `user_managed`) replaces the running release; `blue_green_service` (and `duplicate`)
  starts it as the canary and remembers the primary it replaced.
- `release`: the canary becomes the primary; nothing to go back to any more.
- `rollback`: the remembered primary serves again and the canary stops.
- `action` with `action: scaling`: `value` (a string integer, as in Keptn) replicas are added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from examples.sockshop.deploy.model import ReleaseSpec, Replica, Role, StageState

TASKS = ("deployment", "release", "rollback", "action")
DIRECT_STRATEGIES = frozenset({"direct", "user_managed"})
BLUE_GREEN_STRATEGIES = frozenset({"blue_green_service", "duplicate"})
SCALING = "scaling"


class RequestError(ValueError):
    """The task's event cannot be acted on; the message says which field is wrong and how to fix it."""


@dataclass(frozen=True, slots=True)
class Request:
    task: str
    project: str
    stage: str
    service: str
    version: str | None = None
    strategy: str | None = None
    action: str | None = None
    value: Any = None


@dataclass(frozen=True, slots=True)
class Outcome:
    passed: bool
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    """Merged into the task's `.finished` data (printed as a `{"tidegate": {...}}` line)."""


@dataclass(frozen=True, slots=True)
class Decision:
    live: ReleaseSpec | None
    previous: ReleaseSpec | None
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Reconciliation:
    start: int
    version: str | None
    stop: tuple[Replica, ...]


def _block(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    return value if isinstance(value, Mapping) else {}


def version_of(image: str) -> str:
    """`docker.io/keptnexamples/carts:0.11.2` -> `0.11.2` (a registry port such as `host:5000/x` is no tag)."""
    name, sep, tag = image.rpartition(":")
    if not sep or not tag or "/" in tag or not name:
        raise RequestError(
            f"the image {image!r} has no tag, so the version to deploy is unknown; "
            "deliver it with a tag, e.g. `tidegate trigger delivery --image carts --tag 0.11.1`"
        )
    return tag


def request_from_event(event: Mapping[str, Any]) -> Request:
    """The request in a `sh.keptn.event.<task>.triggered` event (as the command connector hands it over)."""
    event_type = str(event.get("type", ""))
    parts = event_type.split(".")
    if len(parts) != 5 or parts[:3] != ["sh", "keptn", "event"] or parts[4] != "triggered":
        raise RequestError(f"{event_type!r} is not a task's triggered event; run this program for {', '.join(TASKS)}")
    task = parts[3]
    if task not in TASKS:
        raise RequestError(f"the demo deployment program does not handle the task {task!r}, only {', '.join(TASKS)}")
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise RequestError("the event has no data block")
    where = {name: str(data.get(name) or "") for name in ("project", "stage", "service")}
    missing = [name for name, value in where.items() if not value]
    if missing:
        raise RequestError(f"the event's data has no {', '.join(missing)}")
    image = _block(_block(data, "configurationChange"), "values").get("image")
    version = version_of(str(image)) if image else None
    strategy = _block(data, "deployment").get("deploymentstrategy")
    action = _block(data, "action")
    return Request(
        task=task,
        version=version,
        strategy=str(strategy) if strategy else None,
        action=str(action["action"]) if action.get("action") else None,
        value=action.get("value"),
        **where,
    )


def stage_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def decide(state: StageState, request: Request) -> Decision:
    """What should serve the stage after `request`, and the task's outcome."""
    if request.task == "deployment":
        return _deploy(state, request)
    if request.task == "release":
        return _release(state)
    if request.task == "rollback":
        return _rollback(state)
    return _scale(state, request)


def _unchanged(state: StageState, passed: bool, message: str) -> Decision:
    return Decision(state.live, state.previous, Outcome(passed, message))


def _where(state: StageState) -> str:
    return f"{state.service} in {state.project}/{state.stage}"


def _deploy(state: StageState, request: Request) -> Decision:
    if request.version is None:
        return _unchanged(state, False, "no image to deploy: the event has no configurationChange.values.image; "
                                        "trigger the delivery with --image")
    strategy = request.strategy or "direct"
    replicas = state.live.replicas if state.live else 1
    if strategy in DIRECT_STRATEGIES:
        live = ReleaseSpec(version=request.version, role=Role.DIRECT, replicas=replicas)
        previous = state.live
    elif strategy in BLUE_GREEN_STRATEGIES:
        live = ReleaseSpec(version=request.version, role=Role.CANARY, replicas=replicas)
        # A canary that was never released is no primary to go back to: keep the primary it replaced.
        previous = state.previous if state.live is not None and state.live.role is Role.CANARY else state.live
        if previous is not None:
            previous = previous.model_copy(update={"role": Role.PRIMARY})
    else:
        known = ", ".join(sorted(DIRECT_STRATEGIES | BLUE_GREEN_STRATEGIES))
        return _unchanged(state, False, f"unknown deployment strategy {strategy!r}; use one of {known}")
    url = stage_url(state.port)
    replaced = f", replacing {state.live.version}" if state.live and state.live.version != request.version else ""
    message = (f"{_where(state)}: {request.version} serves {url} as {live.role.value} "
               f"with {replicas} replica{'s' if replicas != 1 else ''}{replaced}")
    data = {
        "deployment": {
            "deploymentstrategy": strategy,
            "deploymentURIsLocal": [url],
            "deploymentURIsPublic": [url],
            "deploymentNames": [live.role.value],
        }
    }
    return Decision(live, previous, Outcome(True, message, data))


def _release(state: StageState) -> Decision:
    if state.live is None:
        return _unchanged(state, False, f"{_where(state)}: nothing is deployed, so there is nothing to release")
    live = state.live.model_copy(update={"role": Role.PRIMARY}) if state.live.role is Role.CANARY else state.live
    message = f"{_where(state)}: {live.version} released ({live.role.value})"
    return Decision(live, None, Outcome(True, message))


def _rollback(state: StageState) -> Decision:
    if state.previous is not None:
        back = state.previous.model_copy(update={"role": Role.PRIMARY})
        gone = f"{state.live.version} stopped, " if state.live else ""
        message = f"{_where(state)}: rolled back: {gone}{back.version} serves {stage_url(state.port)} again"
        return Decision(back, None, Outcome(True, message))
    if state.live is not None and state.live.role is Role.CANARY:
        message = f"{_where(state)}: rolled back: canary {state.live.version} stopped; no earlier release to restore"
        return Decision(None, None, Outcome(True, message))
    return _unchanged(state, True, f"{_where(state)}: nothing to roll back")


def _scale(state: StageState, request: Request) -> Decision:
    if request.action != SCALING:
        return _unchanged(state, False, f"the demo deployment program only performs the {SCALING!r} action, "
                                        f"not {request.action!r}")
    value = request.value
    # Keptn's helm-service takes the value as a string integer ("1") and fails anything else.
    if not isinstance(value, str) or not value.strip().lstrip("+-").isdigit():
        return _unchanged(state, False, f"the scaling value {value!r} is not a string integer such as \"1\"")
    change = int(value)
    if state.live is None:
        return _unchanged(state, False, f"{_where(state)}: nothing is deployed, so there is nothing to scale")
    wanted = state.live.replicas + change
    if wanted < 1:
        return _unchanged(state, False, f"{_where(state)}: scaling by {change} would leave {wanted} replicas; "
                                        "at least one must run")
    live = state.live.model_copy(update={"replicas": wanted})
    message = f"{_where(state)}: scaled {live.version} from {state.live.replicas} to {wanted} replicas"
    data = {"scaling": {"version": live.version, "replicasBefore": state.live.replicas, "replicas": wanted}}
    return Decision(live, state.previous, Outcome(True, message, data))


def reconcile(alive: Sequence[Replica], live: ReleaseSpec | None) -> Reconciliation:
    """Processes to start (of `live.version`) and to stop so that exactly `live` runs."""
    if live is None:
        return Reconciliation(0, None, tuple(alive))
    keep = [replica for replica in alive if replica.version == live.version]
    stop = [replica for replica in alive if replica.version != live.version]
    if len(keep) > live.replicas:
        # The most recently started go first (scaling down undoes the last scale-up).
        stop.extend(keep[live.replicas:])
        keep = keep[: live.replicas]
    return Reconciliation(max(live.replicas - len(keep), 0), live.version, tuple(stop))
