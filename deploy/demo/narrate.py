"""How the demo tells the story: lines for events, sequence states and evaluations (pure), and a
Narrator that prints them, in colour when the output is a terminal.

    lines = describe(event)          # [] for events not worth a line (e.g. .started)
    Narrator(sys.stdout).say(lines)
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

KEPTN = "sh.keptn.event."
PROBLEM = "sh.keptn.events.problem"
ESCALATED = "sh.tidegate.remediation.escalated"
RESULT_MARK = {"pass": "✓", "warning": "!", "fail": "✗"}


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    style: str = ""  # "", "dim", "good", "bad", "warn", "head", "cmd"


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    return data if isinstance(data, dict) else {}


PROGRAM_EXIT = re.compile(r"^[\w.-]+: exit \d+$")


def _first_line(text: Any, limit: int = 110) -> str:
    """The first line that says something (the command connector starts with `<task>: exit 0`)."""
    lines = [line.strip() for line in str(text or "").strip().splitlines() if line.strip()]
    if len(lines) > 1 and PROGRAM_EXIT.match(lines[0]):
        lines = lines[1:]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-" if value is None else str(value)
    return f"{value:.4g}"


def _style(result: Any) -> str:
    return {"pass": "good", "warning": "warn", "fail": "bad"}.get(str(result), "")


def image_tag(data: dict[str, Any]) -> str:
    change = data.get("configurationChange")
    values = change.get("values") if isinstance(change, dict) else None
    image = str(values.get("image", "")) if isinstance(values, dict) else ""
    return image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else image


def split_type(event_type: str) -> tuple[str, ...]:
    """`sh.keptn.event.staging.delivery.finished` -> ("staging", "delivery", "finished")."""
    return tuple(event_type.removeprefix(KEPTN).split(".")) if event_type.startswith(KEPTN) else ()


def violated_targets(indicator: dict[str, Any]) -> list[str]:
    targets = [t for t in indicator.get("passTargets") or [] if isinstance(t, dict) and t.get("violated")]
    return [f"{t.get('criteria')} (target {_number(t.get('targetValue'))})" for t in targets]


def evaluation_lines(data: dict[str, Any]) -> list[Line]:
    """Score, verdict and each objective's value and violated targets from `evaluation.finished` data."""
    evaluation = data.get("evaluation") if isinstance(data.get("evaluation"), dict) else None
    stage = str(data.get("stage", ""))
    result = str(data.get("result", ""))
    if evaluation is None:
        return [Line(f"  {stage:<11} {RESULT_MARK.get(result, '·')} evaluation {result}: {_first_line(data.get('message'))}",
                     _style(result))]
    score = evaluation.get("score")
    lines = [Line(f"  {stage:<11} {RESULT_MARK.get(result, '·')} quality gate {result}, score {_number(score)}/100",
                  _style(result))]
    for indicator in evaluation.get("indicatorResults") or []:
        if not isinstance(indicator, dict):
            continue
        value = indicator.get("value") if isinstance(indicator.get("value"), dict) else {}
        assert isinstance(value, dict)
        name = str(indicator.get("displayName") or value.get("metric") or "?")
        status = str(indicator.get("status", ""))
        shown = _number(value.get("value")) if value.get("success", True) else "no value"
        violated = violated_targets(indicator)
        detail = f"  violated: {', '.join(violated)}" if violated else ""
        if status == "info":
            detail = "  (reported, not scored)"
        mark = RESULT_MARK.get(status, "·")
        lines.append(Line(f"  {'':<11}   {mark} {name:<32} {shown:>8}{detail}", _style(status) if violated else "dim"))
    return lines


def describe(event: dict[str, Any]) -> list[Line]:
    """The narration of one event; [] when it is not worth a line."""
    event_type = str(event.get("type", ""))
    data = _data(event)
    stage = str(data.get("stage", ""))
    if event_type == PROBLEM:
        state = data.get("State") or data.get("state")
        if state == "CLOSED":
            return [Line(f"  {stage:<11} ✓ problem {data.get('ProblemTitle', '')} closed: the alert resolved", "good")]
        return []
    if event_type == ESCALATED:
        return [Line(f"  {stage:<11} ⚠ escalated: {_first_line(data.get('message'))}", "warn")]
    parts = split_type(event_type)
    if len(parts) == 3 and parts[2] in ("triggered", "finished") and stage and parts[0] == stage:
        sequence, kind = parts[1], parts[2]
        if kind == "triggered":
            if sequence == "remediation":
                problem = data.get("problem") if isinstance(data.get("problem"), dict) else {}
                assert isinstance(problem, dict)
                title = problem.get("problemTitle") or problem.get("ProblemTitle") or "a problem"
                return [Line(f"▶ {stage}: problem {title} reported by Alertmanager: remediation starts", "head")]
            tag = image_tag(data)
            return [Line(f"▶ {stage}: {sequence} of {data.get('service', '')} {tag}".rstrip(), "head")]
        result = str(data.get("result", ""))
        return [Line(f"■ {stage}: {sequence} finished, result {result or '-'}", _style(result))]
    if len(parts) != 2 and not (len(parts) == 3 and parts[1:] == ("status", "changed")):
        return []
    task, kind = parts[0], parts[-1]
    if kind == "triggered":
        if task == "approval":
            approval = data.get("approval") if isinstance(data.get("approval"), dict) else {}
            assert isinstance(approval, dict)
            mode = approval.get("pass", "?")
            return [Line(f"  {stage:<11} ⏸ approval: {mode} for a passed build", "warn")]
        return [Line(f"  {stage:<11} · {task}", "dim")]
    if kind != "finished":
        return []
    if task == "evaluation":
        return evaluation_lines(data)
    result = str(data.get("result", ""))
    status = str(data.get("status", ""))
    mark = RESULT_MARK.get(result, "·") if status in ("succeeded", "") else "✗"
    if task == "get-action":
        action = data.get("action") if isinstance(data.get("action"), dict) else None
        if isinstance(action, dict) and result == "pass":
            return [Line(f"  {stage:<11} {mark} get-action: next step is {action.get('name')!r} "
                         f"({action.get('action')} {action.get('value')})")]
    message = _first_line(data.get("message"))
    outcome = result if status in ("succeeded", "") else f"{status}/{result}"
    return [Line(f"  {stage:<11} {mark} {task} {outcome}" + (f": {message}" if message else ""), _style(result))]


def state_line(state: dict[str, Any]) -> Line:
    """The sequence state the gateway reports: overall, then each stage's latest sequence."""
    stages = []
    for stage in state.get("stages") or []:
        if isinstance(stage, dict):
            result = f"/{stage['result']}" if stage.get("result") else ""
            stages.append(f"{stage.get('name')} {stage.get('sequence', '')} {stage.get('state')}{result}")
    return Line(f"    sequence state: {state.get('state')} · " + " · ".join(stages), "dim")


COLOURS = {"dim": "\033[2m", "good": "\033[32m", "bad": "\033[31m", "warn": "\033[33m", "head": "\033[1;36m",
           "cmd": "\033[35m", "title": "\033[1m"}
RESET = "\033[0m"


class Narrator:
    """Prints lines to one stream (fixed at start, so output captured elsewhere never swallows it)."""

    def __init__(self, out: TextIO | None = None, colour: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.colour = self.out.isatty() if colour is None else colour

    def say(self, lines: Iterable[Line | str] | Line | str, style: str = "") -> None:
        items: Sequence[Line | str] = [lines] if isinstance(lines, Line | str) else list(lines)
        for item in items:
            line = item if isinstance(item, Line) else Line(item, style)
            if self.colour and line.style in COLOURS:
                self.out.write(f"{COLOURS[line.style]}{line.text}{RESET}\n")
            else:
                self.out.write(line.text + "\n")
        self.out.flush()

    def act(self, title: str, explanation: str = "") -> None:
        self.say("")
        self.say(Line(f"━━ {title} " + "━" * max(3, 70 - len(title)), "title"))
        if explanation:
            self.say(Line(explanation, "dim"))

    def command(self, line: str, output: str = "") -> None:
        self.say(Line(line, "cmd"))
        for text in output.splitlines():
            self.say(Line(f"  {text}", "dim"))
