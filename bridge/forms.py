"""The Bridge's forms, read and checked: what a person typed becomes a request the API code accepts,
or problems that name the field and say what to enter. Pure: no I/O.

The gateway checks everything again when the request reaches it (nothing invalid reaches Kafka);
the checks here exist so the page can point at the field instead of repeating an API message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tidegate.schemas.events import sequence_type

from .overview import ProjectInfo
from .records import mapping

BRIDGE_SOURCE = "tidegate-bridge"
MAX_REASON = 500
MAX_MESSAGE = 500

TriggerKind = Literal["delivery", "evaluation", "sequence"]


@dataclass(frozen=True, slots=True)
class FormProblem:
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class SequenceTrigger:
    """A delivery or any other sequence: becomes `sh.keptn.event.<stage>.<sequence>.triggered`."""

    stage: str
    service: str
    sequence: str
    labels: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def event(self, project: str) -> dict[str, Any]:
        body: dict[str, Any] = {**self.data, "project": project, "stage": self.stage, "service": self.service}
        if self.labels:
            body["labels"] = self.labels
        return {"type": sequence_type(self.stage, self.sequence, "triggered"), "source": BRIDGE_SOURCE, "data": body}


@dataclass(frozen=True, slots=True)
class EvaluationTrigger:
    """A quality gate: goes through the API's evaluation trigger (it computes the window)."""

    stage: str
    service: str
    timeframe: str | None
    start: str | None
    end: str | None
    labels: dict[str, str] = field(default_factory=dict)


TriggerRequest = SequenceTrigger | EvaluationTrigger


def _value(form: Mapping[str, str], name: str) -> str:
    return (form.get(name) or "").strip()


def parse_labels(raw: str) -> dict[str, str] | FormProblem:
    """`key=value` pairs, one per line or separated by commas."""
    labels: dict[str, str] = {}
    for part in raw.replace("\n", ",").split(","):
        item = part.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            return FormProblem("labels", f"{item!r} is not key=value; write labels like buildId=17, one per line")
        labels[key.strip()] = value.strip()
    return labels


def parse_trigger(form: Mapping[str, str], project: ProjectInfo) -> TriggerRequest | list[FormProblem]:
    problems: list[FormProblem] = []
    kind = _value(form, "kind") or "delivery"
    if kind not in ("delivery", "evaluation", "sequence"):
        return [FormProblem("kind", f"{kind!r} is not something to trigger; choose delivery, evaluation or sequence")]
    stage_name = _value(form, "stage")
    service = _value(form, "service")
    stage = project.stage(stage_name) if stage_name else None
    if not stage_name:
        problems.append(FormProblem("stage", "choose the stage to run in"))
    elif stage is None:
        problems.append(FormProblem("stage", f"project {project.name!r} has no stage {stage_name!r}; it has "
                                             f"{', '.join(s.name for s in project.stages)}"))
    if not service:
        problems.append(FormProblem("service", "choose the service"))
    elif stage is not None and service not in project.services.get(stage.name, []):
        problems.append(FormProblem("service", f"service {service!r} does not exist in stage {stage_name!r}"))
    labels = parse_labels(_value(form, "labels"))
    if isinstance(labels, FormProblem):
        problems.append(labels)
        labels = {}
    if kind == "evaluation":
        timeframe = _value(form, "timeframe") or None
        start = _value(form, "start") or None
        end = _value(form, "end") or None
        if end and timeframe:
            problems.append(FormProblem("timeframe", "give either an end or a timeframe (with an optional start), "
                                                     "not both"))
        if problems:
            return problems
        return EvaluationTrigger(stage_name, service, timeframe, start, end, labels)
    sequence = _value(form, "sequence") or ("delivery" if kind == "delivery" else "")
    if not sequence:
        problems.append(FormProblem("sequence", "choose the sequence to trigger"))
    elif stage is not None and sequence not in stage.sequences and sequence != "evaluation":
        known = ", ".join(stage.sequences) or "none"
        problems.append(FormProblem("sequence", f"stage {stage_name!r} has no sequence {sequence!r}; it has {known}"))
    data: dict[str, Any] = {}
    if kind == "delivery":
        image = _value(form, "image")
        if not image:
            problems.append(FormProblem("image", "enter the image to deliver, e.g. docker.io/keptnexamples/carts:0.13.1"))
        data = {"configurationChange": {"values": {"image": image}}}
    else:
        raw = _value(form, "data")
        if raw:
            try:
                parsed = json.loads(raw)
            except json.JSONDecodeError as error:
                problems.append(FormProblem("data", f"is not JSON ({error.msg} at line {error.lineno}); "
                                                    'write an object, e.g. {"deployment": {"strategy": "direct"}}'))
            else:
                if isinstance(parsed, dict):
                    data = parsed
                else:
                    problems.append(FormProblem("data", "must be a JSON object ({...}) of properties for the sequence"))
    if problems:
        return problems
    return SequenceTrigger(stage_name, service, sequence, labels, data)


# --------------------------------------------------------------------- approvals, controls, invalidation


@dataclass(frozen=True, slots=True)
class ApprovalAnswer:
    triggered_id: str
    approve: bool
    message: str | None


def parse_approval(form: Mapping[str, str]) -> ApprovalAnswer | list[FormProblem]:
    triggered_id = _value(form, "triggeredid")
    decision = _value(form, "decision")
    message = _value(form, "message") or None
    problems = []
    if not triggered_id:
        problems.append(FormProblem("triggeredid", "the approval to answer is missing; reload the page and use its "
                                                   "Approve or Decline button"))
    if decision not in ("approve", "decline"):
        problems.append(FormProblem("decision", "choose Approve or Decline"))
    if message is not None and len(message) > MAX_MESSAGE:
        problems.append(FormProblem("message", f"is {len(message)} characters long; keep it under {MAX_MESSAGE}"))
    if problems:
        return problems
    return ApprovalAnswer(triggered_id, decision == "approve", message)


def approval_finished(triggered: dict[str, Any], answer: ApprovalAnswer) -> dict[str, Any]:
    """The person's answer to an open `approval.triggered`: Keptn's `approval.finished`, result pass
    (approve) or fail (decline), status succeeded, `triggeredid` = the approval's id."""
    data = mapping(triggered.get("data"))
    body: dict[str, Any] = {
        "project": data.get("project"),
        "stage": data.get("stage"),
        "service": data.get("service"),
        "status": "succeeded",
        "result": "pass" if answer.approve else "fail",
        "message": answer.message or ("approved in the Bridge" if answer.approve else "declined in the Bridge"),
    }
    if isinstance(data.get("labels"), dict) and data["labels"]:
        body["labels"] = data["labels"]
    return {
        "type": "sh.keptn.event.approval.finished",
        "source": BRIDGE_SOURCE,
        "shkeptncontext": triggered.get("shkeptncontext"),
        "triggeredid": triggered.get("id"),
        "data": body,
    }


@dataclass(frozen=True, slots=True)
class ControlRequest:
    state: Literal["pause", "resume", "abort"]
    stage: str | None


def parse_control(form: Mapping[str, str]) -> ControlRequest | list[FormProblem]:
    state = _value(form, "state")
    stage = _value(form, "stage") or None
    if state == "pause":
        return ControlRequest("pause", stage)
    if state == "resume":
        return ControlRequest("resume", stage)
    if state == "abort":
        return ControlRequest("abort", stage)
    return [FormProblem("state", f"{state!r} is not a control; use pause, resume or abort")]


def parse_reason(form: Mapping[str, str]) -> str | list[FormProblem]:
    reason = _value(form, "reason")
    if not reason:
        return [FormProblem("reason", "say why this evaluation should no longer count (e.g. the load test was broken)")]
    if len(reason) > MAX_REASON:
        return [FormProblem("reason", f"is {len(reason)} characters long; keep it under {MAX_REASON}")]
    return reason
