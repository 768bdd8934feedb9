"""The remediator agent: answers `get-action` with the next action of remediation.yaml, with safety limits.

Core API (pure, no I/O):
    decide(state, event, remediation, settings, now) -> Decision(state, outputs)   one key, one event
    next_deadline(state) -> datetime | None        when the host must send the key a tick (cooldowns)
    is_relevant(event_type) -> bool                whether the remediator acts on events of a type at all
    RemediationState, ProblemRecord, ProblemStatus, PendingAnswer   the `remediations` table's values
    RemediatorSettings                             cooldown, hourly cap per project, problem TTL (env)
    Emit | AuditRecord | Ignored                   the outputs
    ESCALATED_TYPE, QUOTA_*_TYPE, REMEDIATION_TICK_TYPE   Tidegate's own remediation events
`agents.remediator.shell` bundles it as an `agents.kernel.Agent` (`AGENT`, `hosted(ctx)`), which a host
runs (the loop host by default, `agents.worker.HOSTS`); it is imported separately.
"""

from tidegate.agents.remediator.core import (
    RemediationFileProblem,
    RemediationInput,
    decide,
    is_relevant,
    next_deadline,
    problem_identity,
)
from tidegate.agents.remediator.model import (
    ActionTaken,
    PendingAnswer,
    ProblemRecord,
    ProblemStatus,
    RemediationState,
    Waiting,
)
from tidegate.agents.remediator.outputs import (
    AuditKind,
    AuditRecord,
    Decision,
    Emit,
    Ignored,
    IgnoreReason,
    Output,
)
from tidegate.agents.remediator.settings import RemediatorSettings
from tidegate.schemas.tidegate_events import (
    ESCALATED_TYPE,
    QUOTA_DENIED_TYPE,
    QUOTA_GRANTED_TYPE,
    QUOTA_REQUESTED_TYPE,
    REMEDIATION_TICK_TYPE,
    remediation_tick,
)

__all__ = [
    "ESCALATED_TYPE",
    "QUOTA_DENIED_TYPE",
    "QUOTA_GRANTED_TYPE",
    "QUOTA_REQUESTED_TYPE",
    "REMEDIATION_TICK_TYPE",
    "ActionTaken",
    "AuditKind",
    "AuditRecord",
    "Decision",
    "Emit",
    "IgnoreReason",
    "Ignored",
    "Output",
    "PendingAnswer",
    "ProblemRecord",
    "ProblemStatus",
    "RemediationFileProblem",
    "RemediationInput",
    "RemediationState",
    "RemediatorSettings",
    "Waiting",
    "decide",
    "is_relevant",
    "next_deadline",
    "problem_identity",
    "remediation_tick",
]
