"""Accepting an event from outside (`POST /v1/event`): Keptn's rules, then names that must exist, then Kafka.

Nothing invalid reaches Kafka: the body is checked against Keptn's validation rules (rules.check_event),
the project, stage, service and sequence it names must exist, and only then is the event built
(server-side id and time, Keptn's keptnContext rule) and published.
"""

from __future__ import annotations

import uuid
from typing import Any

from tidegate.schemas.events import LOG_ERROR_TYPE, PROBLEM_TYPE, EventType, KeptnEvent

from .context import Gateway
from .errors import ApiError, invalid, not_found
from .rules import DEFAULT_SOURCE, check_event, keptn_context_for

_PASSTHROUGH = frozenset({"shkeptnspecversion"})


async def accept_event(gateway: Gateway, body: dict[str, Any]) -> str:
    """Validate, build and publish an inbound event; return its keptnContext. Raises ApiError."""
    problems = check_event(body)
    if problems:
        gateway.metrics.events_refused.inc()
        raise invalid(problems, "the event")
    event_type: str = body["type"]
    data: dict[str, Any] = body["data"]
    try:
        _check_names(gateway, event_type, data)
    except ApiError:
        gateway.metrics.events_refused.inc()
        raise
    context = keptn_context_for(body.get("shkeptncontext"))
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "time": gateway.clock(),
        "type": event_type,
        "source": body.get("source") or DEFAULT_SOURCE,
        "shkeptncontext": context,
        "data": data,
    }
    for name in ("triggeredid", "gitcommitid"):
        if body.get(name):
            fields[name] = body[name]
    for name in _PASSTHROUGH:
        if isinstance(body.get(name), str) and body[name]:
            fields[name] = body[name]
    await gateway.publish(KeptnEvent.model_validate(fields))
    return context


def _check_names(gateway: Gateway, event_type: str, data: dict[str, Any]) -> None:
    """The project, stage, service and sequence an event names must exist (404 names the missing one)."""
    project = data.get("project")
    if event_type in (LOG_ERROR_TYPE, PROBLEM_TYPE) or not isinstance(project, str) or not project:
        return
    shipyard = gateway.catalog.shipyard(project)
    if shipyard is None:
        raise not_found("project", project, "create it first (tidegate create project)")
    stage_name = data.get("stage")
    if not isinstance(stage_name, str) or not stage_name:
        return
    stage = shipyard.stage(stage_name)
    if stage is None:
        raise not_found("stage", stage_name, f"project {project!r} has the stages {', '.join(shipyard.stage_names)}")
    service = data.get("service")
    if isinstance(service, str) and service and not gateway.catalog.service_exists(project, service, stage_name):
        raise not_found("service", service, f"create it in project {project!r} first (tidegate create service)")
    parsed = EventType.parse(event_type)
    # `evaluation` is built in: a stage without such a sequence still runs quality gates (Keptn's rule).
    if parsed.is_sequence and parsed.sequence and stage.sequence(parsed.sequence) is None:
        known = ", ".join(s.name for s in stage.sequences) or "none"
        raise not_found(
            "sequence", parsed.sequence, f"stage {stage_name!r} of project {project!r} has the sequences: {known}"
        )
