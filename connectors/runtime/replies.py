"""The `.started` and `.finished` replies every connector sends, built one way. Pure: no I/O.

A reply copies `shkeptncontext` and `gitcommitid` from the `.triggered` event, sets `triggeredid` to
its id and `source` to the connector's name (as Keptn's go-utils `createEvent` did), and carries the
common data block (project, stage, service, labels). Reply ids derive from the triggered id, so a
connector that replies again after a crash re-sends the same ids and consumers drop the repeat.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tidegate.connectors.runtime.outcome import TaskOutcome
from tidegate.schemas.events import KeptnEvent, Status, TaskKind, now_utc, task_type
from tidegate.schemas.ids import derived_id

_COMMON = ("project", "stage", "service", "labels")


def task_name(event: KeptnEvent) -> str | None:
    """The task of a task event (`sh.keptn.event.<task>.<kind>`), else None."""
    parsed = event.parsed_type
    return parsed.task if parsed.is_task else None


def reply_id(triggered_id: str, connector: str, kind: TaskKind) -> str:
    return derived_id(triggered_id, f"{connector}:{kind.value}")


def common_data(triggered: KeptnEvent) -> dict[str, Any]:
    """project/stage/service/labels of the triggered event, as far as it has them."""
    return {name: triggered.data[name] for name in _COMMON if triggered.data.get(name) is not None}


def _reply(triggered: KeptnEvent, connector: str, kind: TaskKind, data: dict[str, Any],
           time: datetime | None) -> KeptnEvent:
    task = task_name(triggered)
    if task is None:
        raise ValueError(f"event {triggered.id} of type {triggered.type} is not a task event; only tasks get replies")
    return KeptnEvent(
        id=reply_id(triggered.id, connector, kind),
        source=connector,
        type=task_type(task, kind),
        time=time or now_utc(),
        shkeptncontext=triggered.shkeptncontext,
        triggeredid=triggered.id,
        gitcommitid=triggered.gitcommitid,
        shkeptnspecversion=triggered.shkeptnspecversion,
        data=data,
    )


def started_event(triggered: KeptnEvent, connector: str, *, time: datetime | None = None) -> KeptnEvent:
    """`<task>.started` for `triggered`, sent before the work begins."""
    data = {**common_data(triggered), "status": Status.SUCCEEDED.value}
    return _reply(triggered, connector, TaskKind.STARTED, data, time)


def finished_event(
    triggered: KeptnEvent, connector: str, outcome: TaskOutcome, *, time: datetime | None = None
) -> KeptnEvent:
    """`<task>.finished` for `triggered` with the outcome's status, result, message and data."""
    data: dict[str, Any] = {
        **outcome.data,
        **common_data(triggered),
        "status": outcome.status.value,
        "result": outcome.result.value,
        "message": outcome.message,
    }
    return _reply(triggered, connector, TaskKind.FINISHED, data, time)
