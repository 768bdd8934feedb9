"""Keptn's sequencing rules as small pure functions: result aggregation, follow-up triggers, task payloads.

- `aggregate` (§3.3 step 7): one result and status for a task from all its `.finished` replies.
- `follow_ups` (§1.2): which sequences a finished sequence triggers through `triggeredOn`.
- `task_payload` (§3.4): the data of the next task's `.triggered` event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tidegate.agents.merge import copy_value, merge
from tidegate.schemas.events import Result, Status
from tidegate.schemas.shipyard import REMEDIATION, Sequence, Shipyard, Stage, Task

from .model import TaskSnapshot

# The plain strings the replies carry: an enum's `.value` costs a descriptor call per use.
_WARNING = Result.WARNING.value
_FAIL = Result.FAIL.value
_ERRORED = Status.ERRORED.value
_ABORTED = Status.ABORTED.value
_SUCCEEDED = Status.SUCCEEDED.value
_GOOD_RESULTS = {Result.PASS.value, _WARNING}
# Keptn's own docs write `result: failed` in selectors while results are `fail`, so such selectors
# never fired. Tidegate reads `failed` as `fail`.
_RESULT_SYNONYMS = {"failed": _FAIL}


def aggregate(results: Iterable[str | None], statuses: Iterable[str | None]) -> tuple[Result, Status]:
    """Keptn's aggregation: any result other than pass/warning (even a missing one) is fail; any warning
    is warning. Status: errored beats aborted beats succeeded; anything else is unknown and forces fail.

    One deliberate fix: errored also forces fail. A result only means something when the executor
    succeeded (Keptn's spec), and Keptn kept e.g. `pass` on an errored task, so the sequence finished
    `errored/pass` and a `triggeredOn` without selector promoted it to the next stage."""
    result_list = list(results)
    status_list = list(statuses)
    if any(r not in _GOOD_RESULTS for r in result_list):
        result = Result.FAIL
    elif _WARNING in result_list:
        result = Result.WARNING
    else:
        result = Result.PASS
    if _ERRORED in status_list:
        status, result = Status.ERRORED, Result.FAIL
    elif _ABORTED in status_list:
        status = Status.ABORTED
    elif all(s == _SUCCEEDED for s in status_list):
        status = Status.SUCCEEDED
    else:
        status, result = Status.UNKNOWN, Result.FAIL
    return result, status


def stops_sequence(result: str | None, status: str | None) -> bool:
    """A task that failed or errored ends its sequence; a warning does not."""
    return result == _FAIL or status == _ERRORED


@dataclass(frozen=True, slots=True)
class FollowUp:
    stage: str
    sequence: str


def _normalise(result: str) -> str:
    return _RESULT_SYNONYMS.get(result, result)


def follow_ups(
    shipyard: Shipyard, stage: str, sequence: str, result: str, last_task: str | None, *, remediation_wait: str = "10m"
) -> list[FollowUp]:
    """Every sequence of any stage whose `triggeredOn` matches `<stage>.<sequence>.finished` with `result`.

    No selector: fires on pass or warning (Keptn's implementation; its spec text says pass only).
    A selector fires when `match.result` or `match["<last task>.result"]` equals the result; other
    match keys are not evaluated (as in Keptn), so a selector with only other keys never fires.
    """
    finished = f"{stage}.{sequence}.finished"
    fired: list[FollowUp] = []
    for candidate_stage in shipyard.spec.stages:
        for candidate in _candidates(candidate_stage, sequence, remediation_wait):
            if any(_fires(trigger.selector.match if trigger.selector else {}, result, last_task)
                   for trigger in candidate.triggeredOn if trigger.event == finished):
                fired.append(FollowUp(candidate_stage.name, candidate.name))
    return fired


def _candidates(stage: Stage, finished_sequence: str, remediation_wait: str) -> list[Sequence]:
    """The sequences of `stage` a `finished_sequence` can trigger."""
    # The built-in remediation (for stages that declare none) only listens to `remediation.finished`:
    # building it for every other finished sequence cost ~5% of all decisions.
    if finished_sequence != REMEDIATION:
        return stage.sequences
    return stage.sequences_with_builtins(remediation_wait=remediation_wait)


def _fires(match: dict[str, str], result: str, last_task: str | None) -> bool:
    if not match:
        return result in _GOOD_RESULTS
    wanted = [match.get("result")]
    if last_task is not None:
        wanted.append(match.get(f"{last_task}.result"))
    return any(value is not None and _normalise(str(value)) == result for value in wanted)


def task_payload(accumulated: dict[str, Any], task: Task | TaskSnapshot) -> dict[str, Any]:
    """The `<task>.triggered` data: the sequence's accumulated payload (trigger data merged with every
    completed task's finished data, with the last task's result and status), the task's shipyard
    properties merged under the task's name, and `message` cleared (it belonged to an earlier event)."""
    payload: dict[str, Any] = copy_value(accumulated)
    if task.properties:
        # A missing or non-object value under the task's name is replaced (the later value wins).
        payload[task.name] = merge(payload.get(task.name), task.properties)
    if "message" in payload:
        payload["message"] = ""
    return payload
