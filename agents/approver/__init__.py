"""The approver agent: automatic approvals by result; manual ones wait for a human's `approval.finished`.

Public API: `decide_approval(event) -> list[KeptnEvent]` (pure) and the approval type constants.
A missing `pass`/`warning` approval property means manual, as in Keptn's code (see `core`).
"""

from tidegate.agents.approver.core import (
    APPROVAL_FINISHED,
    APPROVAL_STARTED,
    APPROVAL_TRIGGERED,
    AUTOMATIC,
    MANUAL,
    approved_result,
    decide_approval,
    strategy_for,
)

__all__ = [
    "APPROVAL_FINISHED",
    "APPROVAL_STARTED",
    "APPROVAL_TRIGGERED",
    "AUTOMATIC",
    "MANUAL",
    "approved_result",
    "decide_approval",
    "strategy_for",
]
