"""The sequencer agent (Keptn's shipyard-controller): pure core, in-memory driver; `shell.py` (apart) binds
it to the worker as an `agents.kernel.Agent`, which the loop host runs (`streams/kafka/loop.py`).

Core API (pure, no I/O):
    decide(state, event, config, now) -> Decision(state, outputs)   one key's state, one event
    next_deadline(state) -> datetime | None                           when the shell must send a tick
    Emit | AuditRecord | Ignored                                      the outputs
    KeyState, SequenceRun, CurrentTask, TaskSnapshot, SequenceState, SequencerConfig
    STATE_CODEC                                                       the state's record (compact JSON)
    TICK_TYPE/tick_event, CONTROL_TYPE/control_event, TASK_CANCELLED_TYPE   Tidegate's own events
Driver (reference loop for the shell, used by `tidegate simulate` and tests):
    Driver, Responders, RespondRule, Reply, ApprovalPolicy, SequenceSummary
"""

from tidegate.agents.sequencer.core import decide, next_deadline
from tidegate.agents.sequencer.driver import (
    ApprovalPolicy,
    Driver,
    Published,
    Reply,
    Responders,
    RespondRule,
    RuleError,
    SequenceSummary,
    SimulationLimitError,
)
from tidegate.agents.sequencer.model import (
    STATE_CODEC,
    CurrentTask,
    KeyState,
    SequencerConfig,
    SequenceRun,
    SequenceState,
    TaskSnapshot,
)
from tidegate.agents.sequencer.outputs import (
    AuditKind,
    AuditRecord,
    Decision,
    Emit,
    Ignored,
    IgnoreReason,
    Output,
)
from tidegate.schemas.tidegate_events import (
    CONTROL_TYPE,
    TASK_CANCELLED_TYPE,
    TICK_TYPE,
    CancelReason,
    ControlState,
    control_event,
    tick_event,
)

__all__ = [
    "CONTROL_TYPE",
    "STATE_CODEC",
    "TASK_CANCELLED_TYPE",
    "TICK_TYPE",
    "ApprovalPolicy",
    "AuditKind",
    "AuditRecord",
    "CancelReason",
    "ControlState",
    "CurrentTask",
    "Decision",
    "Driver",
    "Emit",
    "IgnoreReason",
    "Ignored",
    "KeyState",
    "Output",
    "Published",
    "Reply",
    "RespondRule",
    "Responders",
    "RuleError",
    "SequenceRun",
    "SequenceState",
    "SequenceSummary",
    "SequencerConfig",
    "SimulationLimitError",
    "TaskSnapshot",
    "control_event",
    "decide",
    "next_deadline",
    "tick_event",
]
