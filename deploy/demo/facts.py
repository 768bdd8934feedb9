"""What happened, read from the events of a keptnContext, and the summary that ends the demo (pure).

    delivery = delivery_outcome(events)          # one `trigger delivery`: stages, gates, rollbacks
    remediation = remediation_outcome(events)    # one problem: actions, gates, when it was over
    text = summary_lines(story)                  # what was delivered where, blocked and why, remediated
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from deploy.demo.narrate import PROBLEM, image_tag, split_type, violated_targets


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    return data if isinstance(data, dict) else {}


def _time(event: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(event.get("time", "")).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Gate:
    stage: str
    result: str
    score: float | None
    violated: tuple[str, ...] = ()
    """`Response time P95 (s) = 0.61: <0.5 (target 0.5)` per objective that missed a pass target."""


@dataclass(frozen=True, slots=True)
class SequenceRun:
    stage: str
    sequence: str
    result: str


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    context: str
    version: str
    runs: tuple[SequenceRun, ...] = ()
    gates: tuple[Gate, ...] = ()

    def result_in(self, stage: str, sequence: str = "delivery") -> str | None:
        found = [run.result for run in self.runs if run.stage == stage and run.sequence == sequence]
        return found[-1] if found else None

    @property
    def delivered_to(self) -> tuple[str, ...]:
        return tuple(run.stage for run in self.runs if run.sequence == "delivery" and run.result in ("pass", "warning"))

    @property
    def blocked_in(self) -> str | None:
        failed = [run.stage for run in self.runs if run.sequence == "delivery" and run.result == "fail"]
        return failed[0] if failed else None

    @property
    def rolled_back_in(self) -> tuple[str, ...]:
        return tuple(run.stage for run in self.runs if run.sequence == "rollback" and run.result in ("pass", "warning"))

    def gate_in(self, stage: str) -> Gate | None:
        found = [gate for gate in self.gates if gate.stage == stage and gate.score is not None]
        return found[-1] if found else None


@dataclass(frozen=True, slots=True)
class RemediationOutcome:
    context: str
    stage: str
    problem: str
    opened: str | None
    actions: tuple[str, ...] = ()
    """`Scale up: 1 -> 2 replicas` per action that ran."""
    replicas: tuple[int, ...] = ()
    """Replica counts after each scaling action."""
    gates: tuple[Gate, ...] = ()
    result: str | None = None
    """The last remediation run's result (pass: the evaluation after an action passed)."""
    resolved: str | None = None
    """When a run ended with pass: the SLOs held again."""
    closed: str | None = None
    """When the problem was closed: its alert resolved."""
    seconds_to_resolve: float | None = None
    seconds_to_close: float | None = None


@dataclass(frozen=True, slots=True)
class Story:
    deliveries: tuple[DeliveryOutcome, ...] = ()
    remediation: RemediationOutcome | None = None
    serving: dict[str, str] = field(default_factory=dict)
    """stage -> `0.11.1 (2 replicas)`: what the deployment program runs now."""
    bridge_url: str = ""
    service: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def gate_of(data: dict[str, Any]) -> Gate:
    evaluation = data.get("evaluation") if isinstance(data.get("evaluation"), dict) else {}
    assert isinstance(evaluation, dict)
    violated = []
    for indicator in evaluation.get("indicatorResults") or []:
        if not isinstance(indicator, dict):
            continue
        targets = violated_targets(indicator)
        if targets:
            value = indicator.get("value") if isinstance(indicator.get("value"), dict) else {}
            assert isinstance(value, dict)
            name = indicator.get("displayName") or value.get("metric")
            number = value.get("value")
            shown = f"{number:.3g}" if isinstance(number, int | float) and not isinstance(number, bool) else "no value"
            violated.append(f"{name} = {shown}: {', '.join(targets)}")
    score = evaluation.get("score")
    return Gate(
        stage=str(data.get("stage", "")),
        result=str(data.get("result", "")),
        score=float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
        violated=tuple(violated),
    )


def delivery_outcome(context: str, events: list[dict[str, Any]]) -> DeliveryOutcome:
    version = ""
    runs: list[SequenceRun] = []
    gates: list[Gate] = []
    for event in events:
        parts = split_type(str(event.get("type", "")))
        data = _data(event)
        if len(parts) == 3 and parts[0] == data.get("stage"):
            if parts[2] == "triggered" and not version:
                version = image_tag(data)
            elif parts[2] == "finished":
                runs.append(SequenceRun(parts[0], parts[1], str(data.get("result", ""))))
        elif parts == ("evaluation", "finished"):
            gates.append(gate_of(data))
    return DeliveryOutcome(context, version, tuple(runs), tuple(gates))


def remediation_outcome(context: str, events: list[dict[str, Any]]) -> RemediationOutcome:
    stage = problem = ""
    opened: datetime | None = None
    resolved: datetime | None = None
    closed: datetime | None = None
    result: str | None = None
    actions: list[str] = []
    replicas: list[int] = []
    gates: list[Gate] = []
    pending_action = ""
    for event in events:
        event_type = str(event.get("type", ""))
        data = _data(event)
        parts = split_type(event_type)
        if event_type == PROBLEM and data.get("State") == "CLOSED":
            closed = closed or _time(event)
        elif len(parts) == 3 and parts[1] == "remediation" and parts[0] == data.get("stage"):
            if parts[2] == "triggered" and opened is None:
                stage = parts[0]
                found = data.get("problem") if isinstance(data.get("problem"), dict) else {}
                assert isinstance(found, dict)
                problem = str(found.get("problemTitle") or found.get("ProblemTitle") or "")
                opened = _time(event)
            elif parts[2] == "finished":
                result = str(data.get("result", ""))
                if result == "pass" and resolved is None:
                    resolved = _time(event)
        elif parts == ("get-action", "finished"):
            action = data.get("action") if isinstance(data.get("action"), dict) else {}
            assert isinstance(action, dict)
            pending_action = str(action.get("name") or action.get("action") or "")
        elif parts == ("action", "finished"):
            scaling = data.get("scaling") if isinstance(data.get("scaling"), dict) else None
            if isinstance(scaling, dict) and data.get("result") == "pass":
                actions.append(f"{pending_action or 'scaling'}: {scaling.get('replicasBefore')} -> "
                               f"{scaling.get('replicas')} replicas")
                replicas.append(int(scaling.get("replicas", 0)))
            else:
                actions.append(f"{pending_action or 'action'}: {data.get('result')} ({data.get('message', '')})")
        elif parts == ("evaluation", "finished"):
            gates.append(gate_of(data))

    def since_open(moment: datetime | None) -> float | None:
        return (moment - opened).total_seconds() if moment is not None and opened is not None else None

    return RemediationOutcome(
        context=context,
        stage=stage,
        problem=problem,
        opened=opened.isoformat() if opened else None,
        actions=tuple(actions),
        replicas=tuple(replicas),
        gates=tuple(gates),
        result=result,
        resolved=resolved.isoformat() if resolved else None,
        closed=closed.isoformat() if closed else None,
        seconds_to_resolve=since_open(resolved),
        seconds_to_close=since_open(closed),
    )


def _stages(stages: tuple[str, ...]) -> str:
    if len(stages) <= 1:
        return "".join(stages) or "no stage"
    return ", ".join(stages[:-1]) + " and " + stages[-1]


def summary_lines(story: Story) -> list[str]:
    lines: list[str] = []
    service = f"{story.service} " if story.service else ""
    for delivery in story.deliveries:
        gate = delivery.gate_in(delivery.blocked_in or "staging")
        gate_text = f"quality gate {gate.result}, score {gate.score:.0f}" if gate and gate.score is not None else ""
        if delivery.blocked_in:
            why = "; ".join(gate.violated) if gate and gate.violated else "see the Bridge"
            back = f"; rolled back in {_stages(delivery.rolled_back_in)}" if delivery.rolled_back_in else ""
            passed = f" (passed {_stages(delivery.delivered_to)})" if delivery.delivered_to else ""
            lines.append(f"Blocked:     {service}{delivery.version} stopped in {delivery.blocked_in}{passed}: {gate_text}: "
                         f"{why}{back}")
        else:
            through = f" ({gate_text} in staging)" if gate_text else ""
            lines.append(f"Delivered:   {service}{delivery.version} through {_stages(delivery.delivered_to)}{through}")
    remediation = story.remediation
    if remediation is not None:
        steps = "; ".join(remediation.actions) or "no action ran"
        resolved = (f"the alert resolved {remediation.seconds_to_close:.0f} s after it fired"
                    if remediation.seconds_to_close is not None else "the alert is still open")
        verdict = (f"the evaluation after the action passed ({remediation.seconds_to_resolve:.0f} s)"
                   if remediation.seconds_to_resolve is not None else f"last run: {remediation.result or 'unfinished'}")
        lines.append(f"Remediated:  {remediation.problem} in {remediation.stage}: {steps}; {resolved}; {verdict}")
    if story.serving:
        lines.append("Now serving: " + ", ".join(f"{stage} {what}" for stage, what in story.serving.items()))
    return lines
