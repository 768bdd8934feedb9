"""The events the CLI sends, built from command-line values. Pure: no I/O."""

from __future__ import annotations

from typing import Any

from tidegate.schemas.events import sequence_type, task_type

from .client import CLI_SOURCE


def image_reference(image: str, tag: str | None) -> str:
    """`--image carts --tag 1.2` and `--image carts:1.2` both mean carts:1.2; a registry port is not a tag."""
    if tag:
        return f"{image}:{tag}"
    return image


def sequence_trigger(
    project: str,
    stage: str,
    service: str,
    sequence: str,
    *,
    labels: dict[str, str] | None = None,
    data: dict[str, Any] | None = None,
    keptn_context: str | None = None,
    gitcommitid: str | None = None,
) -> dict[str, Any]:
    """`sh.keptn.event.<stage>.<sequence>.triggered` as Keptn's API takes it."""
    body: dict[str, Any] = {**(data or {}), "project": project, "stage": stage, "service": service}
    if labels:
        body["labels"] = labels
    event: dict[str, Any] = {"type": sequence_type(stage, sequence, "triggered"), "source": CLI_SOURCE, "data": body}
    if keptn_context:
        event["shkeptncontext"] = keptn_context
    if gitcommitid:
        event["gitcommitid"] = gitcommitid
    return event


def delivery_trigger(
    project: str,
    stage: str,
    service: str,
    image: str,
    *,
    sequence: str = "delivery",
    labels: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    keptn_context: str | None = None,
) -> dict[str, Any]:
    """Keptn's `trigger delivery`: data.configurationChange.values = {image, ...values}."""
    change = {"values": {**(values or {}), "image": image}}
    return sequence_trigger(project, stage, service, sequence, labels=labels,
                            data={"configurationChange": change}, keptn_context=keptn_context)


def approval_finished(triggered: dict[str, Any], *, approve: bool, message: str | None = None) -> dict[str, Any]:
    """The human's answer to an open `approval.triggered` (Keptn: result pass = approve, fail = decline)."""
    data = triggered.get("data") or {}
    body: dict[str, Any] = {
        "project": data.get("project"),
        "stage": data.get("stage"),
        "service": data.get("service"),
        "status": "succeeded",
        "result": "pass" if approve else "fail",
    }
    if data.get("labels"):
        body["labels"] = data["labels"]
    if message:
        body["message"] = message
    return {
        "type": task_type("approval", "finished"),
        "source": CLI_SOURCE,
        "shkeptncontext": triggered.get("shkeptncontext"),
        "triggeredid": triggered.get("id"),
        "data": body,
    }
