"""The approver's pure core: answers `sh.keptn.event.approval.triggered` as Keptn's approval-service does.

- `approval.started` always, at once (so the sequencer's started timeout never ends an approval
  that waits for a human, keptn#4620).
- The result being approved is `data.result` (the previous task's), or `data.evaluation.result`
  when that is empty (approval as the first task, keptn#4391).
- pass with `approval.pass: automatic`, or warning with `approval.warning: automatic`:
  `approval.finished` with result pass.
- fail: `approval.finished` with result fail.
- Anything else waits for a human's `approval.finished` (result pass = approve, fail = decline),
  sent with `triggeredid` = the approval's `.triggered` id.

Note (kept from Keptn on purpose): a *missing* `pass` or `warning` property means **manual**.
Keptn's spec says the default is automatic, but its code waits for a human, and projects migrated
from Keptn rely on the code. Write `pass: automatic` / `warning: automatic` to approve automatically.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tidegate.schemas.events import KeptnEvent, Result, Status, TaskKind, task_type
from tidegate.schemas.ids import derived_id

APPROVAL = "approval"
AUTOMATIC = "automatic"
MANUAL = "manual"
APPROVAL_TRIGGERED = task_type(APPROVAL, TaskKind.TRIGGERED)
APPROVAL_STARTED = task_type(APPROVAL, TaskKind.STARTED)
APPROVAL_FINISHED = task_type(APPROVAL, TaskKind.FINISHED)
DEFAULT_SOURCE = "tidegate-approver"


def approved_result(data: dict[str, Any]) -> str | None:
    """The result the approval is about: the previous task's, else the evaluation's."""
    result = data.get("result")
    if isinstance(result, str) and result:
        return result
    evaluation = data.get("evaluation")
    if isinstance(evaluation, dict):
        nested = evaluation.get("result")
        if isinstance(nested, str) and nested:
            return nested
    return None


def strategy_for(data: dict[str, Any], result: str | None) -> str:
    """`automatic` or `manual` for this result; missing properties are manual (Keptn's code)."""
    settings = data.get(APPROVAL)
    if not isinstance(settings, dict) or result not in (Result.PASS.value, Result.WARNING.value):
        return MANUAL
    value = settings.get(result)
    return AUTOMATIC if isinstance(value, str) and value.strip().lower() == AUTOMATIC else MANUAL


def decide_approval(
    event: KeptnEvent, *, now: datetime | None = None, source: str = DEFAULT_SOURCE
) -> list[KeptnEvent]:
    """The approver's answer to one event: `[started]`, `[started, finished]`, or `[]` if not an approval.

    Ids derive from the approval's id, so answering a redelivered approval re-sends identical events.
    `now` is the replies' time (default: the approval's own time)."""
    moment = now or event.time
    if event.type != APPROVAL_TRIGGERED:
        return []
    result = approved_result(event.data)
    decision: Result | None
    if result == Result.FAIL.value:
        strategy, decision = "automatic decline", Result.FAIL
    else:
        strategy = strategy_for(event.data, result)
        decision = Result.PASS if strategy == AUTOMATIC else None
    shown = result or "none"
    started = _reply(event, APPROVAL_STARTED, "started", source, moment, {
        "status": Status.SUCCEEDED.value,
        "message": f"Approval strategy for result '{shown}': {strategy}",
    })
    if decision is None:
        return [started]
    finished = _reply(event, APPROVAL_FINISHED, "finished", source, moment, {
        "status": Status.SUCCEEDED.value,
        "result": decision.value,
        "message": f"Approval {'granted' if decision is Result.PASS else 'declined'} automatically "
                   f"for result '{shown}'",
    })
    return [started, finished]


def _reply(
    trigger: KeptnEvent, event_type: str, purpose: str, source: str, moment: datetime, fields: dict[str, Any]
) -> KeptnEvent:
    data: dict[str, Any] = {name: trigger.data[name] for name in ("project", "stage", "service", "labels")
                            if name in trigger.data}
    data.update(fields)
    return KeptnEvent(
        id=derived_id(trigger.id, f"approval:{purpose}"),
        source=source,
        type=event_type,
        time=moment,
        shkeptncontext=trigger.shkeptncontext,
        triggeredid=trigger.id,
        gitcommitid=trigger.gitcommitid,
        data=data,
    )
