"""What the Bridge's buttons do, through the same code as the HTTP API.

Every action ends in the gateway's own functions: `ingest.accept_event` (Keptn's event validation,
names that must exist, then Kafka) or the controlPlane route functions for sequence controls and
evaluation triggers. So the Bridge cannot put on Kafka anything the API would refuse, and an API
refusal comes back as the same message, shown on the page.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tidegate.gateway.context import Gateway
from tidegate.gateway.errors import ApiError, invalid
from tidegate.gateway.ingest import accept_event
from tidegate.gateway.models import EvaluationRequest, SequenceControl
from tidegate.gateway.routes import control_plane
from tidegate.gateway.rules import EvaluationWindow, evaluation_window
from tidegate.schemas.events import format_time

from .data import BridgeData
from .evaluations import invalidation_event
from .forms import (
    BRIDGE_SOURCE,
    ApprovalAnswer,
    ControlRequest,
    EvaluationTrigger,
    SequenceTrigger,
    TriggerRequest,
    approval_finished,
)


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    message: str
    keptn_context: str | None = None


def _refused(error: ApiError) -> Outcome:
    return Outcome(False, error.message)


async def answer_approval(gw: Gateway, project: str, answer: ApprovalAnswer) -> Outcome:
    data = BridgeData(gw)
    triggered = await asyncio.to_thread(data.open_approval, project, answer.triggered_id)
    if triggered is None:
        return Outcome(False, "this approval is no longer open: it was answered already or its sequence ended; "
                              "the page shows the current state")
    body = approval_finished(triggered, answer)
    try:
        context = await accept_event(gw, body)
    except ApiError as error:
        return _refused(error)
    service = body["data"].get("service")
    stage = body["data"].get("stage")
    verb = "approved" if answer.approve else "declined"
    return Outcome(True, f"{verb}: {service} in {stage}", context)


async def control(gw: Gateway, project: str, keptn_context: str, request: ControlRequest) -> Outcome:
    try:
        answer = await control_plane.control_sequence(
            project, keptn_context, SequenceControl(state=request.state, stage=request.stage), gw
        )
    except ApiError as error:
        return _refused(error)
    return Outcome(True, answer.message, keptn_context)


async def trigger(gw: Gateway, project: str, request: TriggerRequest) -> Outcome:
    try:
        if isinstance(request, EvaluationTrigger):
            body = _evaluation_request(gw, request)
            out = await control_plane.trigger_evaluation(project, request.stage, request.service, body, gw)
            return Outcome(True, f"evaluation of {request.service} in {request.stage} triggered", out.keptnContext)
        assert isinstance(request, SequenceTrigger)
        context = await accept_event(gw, request.event(project))
    except ApiError as error:
        return _refused(error)
    return Outcome(True, f"{request.sequence} of {request.service} in {request.stage} triggered", context)


def _evaluation_request(gw: Gateway, request: EvaluationTrigger) -> EvaluationRequest:
    """The API request for an evaluation, with a timeframe turned into start and end by the gateway's own
    rule: Keptn's evaluation trigger sent only start and end, and the evaluator (like lighthouse) refuses
    an `evaluation.triggered` that carries `end` and `timeframe` together, which the gateway's route
    currently sends when given a timeframe."""
    if not request.timeframe:
        return EvaluationRequest(start=request.start, end=request.end, labels=request.labels or None)
    window = evaluation_window(start=request.start, end=request.end, timeframe=request.timeframe, now=gw.clock())
    if not isinstance(window, EvaluationWindow):
        raise invalid(window, "the evaluation request")
    return EvaluationRequest(start=format_time(window.start), end=format_time(window.end),
                             labels=request.labels or None)


async def invalidate(gw: Gateway, project: str, evaluation_id: str, reason: str) -> Outcome:
    data = BridgeData(gw)
    evaluation = await asyncio.to_thread(data.evaluation, project, evaluation_id)
    if evaluation is None:
        return Outcome(False, f"evaluation {evaluation_id!r} does not exist in project {project!r}")
    if evaluation.invalidated:
        return Outcome(False, "this evaluation is already invalidated")
    if not evaluation.triggered_id:
        return Outcome(False, "this evaluation has no triggeredid, so no invalidation can refer to it")
    try:
        await accept_event(gw, invalidation_event(evaluation, reason, BRIDGE_SOURCE))
    except ApiError as error:
        return _refused(error)
    return Outcome(True, "evaluation invalidated: it no longer counts as a baseline", evaluation.keptn_context)
