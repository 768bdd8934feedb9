"""The sequencer's state for one key (`project/stage/service`) and its configuration.

The state is what the host keeps per key (in memory and in its state topic): JSON-serialisable
(`model_dump(mode="json")` / `model_validate`) and compact. A sequence lives here only while it is
active; once it finishes, only the audit records remember it.

The stage lock: at most one sequence of a key holds `KeyState.lock` (the right to dispatch tasks).
A sequence waiting for approval or paused gives the lock up, so it does not block the others
(Keptn's rule); a sequence resumed while another holds the lock lets its running task finish and
then waits (`waiting`) for the lock before it dispatches its next task.

Redelivery: a key remembers the inputs it applied in two small, bounded forms: `applied`, the offset
of the last applied input per input partition (a host that reads Kafka gives each input's position;
offsets only grow, so an input at or below it was applied before: a replay after a crash), and
`recent`, 8-byte digests of the last `SequencerConfig.remembered_inputs` applied input ids (the same
event sent again under a new offset, or a host without offsets such as `tidegate simulate`). Records
written before these existed carry `seen` (up to 500 full ids); they are migrated when read (the last
`REMEMBERED_INPUTS` ids become digests; a replay after the upgrade reaches back about a second).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import Base64UrlBytes, BaseModel, Field, model_validator

from tidegate.agents.dedupe import REMEMBERED_INPUTS, migrate_seen
from tidegate.schemas.shipyard import Shipyard, Task


class SequenceState(StrEnum):
    """Keptn's sequence state names (go-utils `models/state.go`)."""

    TRIGGERED = "triggered"  # queued: waits for the stage lock, never started
    STARTED = "started"  # running a task (or holding the lock while a `triggeredAfter` delay runs)
    WAITING = "waiting"  # started before, blocked by the lock before its next task
    WAITING_FOR_APPROVAL = "waitingForApproval"
    PAUSED = "paused"
    FINISHED = "finished"
    TIMED_OUT = "timedOut"
    ABORTED = "aborted"


#: The states in which a sequence wants the lock to dispatch its next task.
WANTS_LOCK = frozenset({SequenceState.TRIGGERED, SequenceState.WAITING})


class CurrentTask(BaseModel):
    """The task a sequence is on: delayed (not yet dispatched) or dispatched and counting replies."""

    index: int
    name: str
    due_at: datetime | None = None  # set while a `triggeredAfter` delay runs
    triggered_id: str | None = None  # set once the `.triggered` event is sent
    dispatched_at: datetime | None = None
    started: int = 0
    finished: int = 0
    results: list[str | None] = Field(default_factory=list)
    statuses: list[str | None] = Field(default_factory=list)
    properties: dict[str, Any] = Field(default_factory=dict)  # merged data of the `.finished` events
    message: str | None = None
    started_deadline: datetime | None = None  # no `.started`/`.finished` by then: the sequence times out
    timeout_deadline: datetime | None = None  # the task's own `timeout` property

    @property
    def dispatched(self) -> bool:
        return self.triggered_id is not None


class SequenceRun(BaseModel):
    """One active sequence: the definition snapshotted at trigger time and how far it got."""

    triggered_id: str  # id of the `<stage>.<sequence>.triggered` event
    keptn_context: str
    name: str
    order: int  # arrival order within the key: FIFO for the stage lock
    triggered_at: datetime
    gitcommitid: str | None = None
    tasks: list[Task]
    state: SequenceState = SequenceState.TRIGGERED
    state_before_pause: SequenceState | None = None
    payload: dict[str, Any] = Field(default_factory=dict)  # trigger data merged with each finished task's data
    next_index: int = 0  # index of the next task to dispatch (= number of completed tasks)
    last_task: str | None = None
    last_result: str | None = None
    last_status: str | None = None
    last_message: str | None = None
    current: CurrentTask | None = None


class KeyState(BaseModel):
    """Everything the sequencer knows about one `project/stage/service`."""

    project: str
    stage: str
    service: str
    sequences: list[SequenceRun] = Field(default_factory=list)  # active ones, in arrival order
    lock: str | None = None  # triggered id of the sequence holding the stage lock
    next_order: int = 0
    # "<topic>:<partition>" -> offset of the last input applied from there (bounded: REMEMBERED_PARTITIONS)
    applied: dict[str, int] = Field(default_factory=dict)
    recent: Base64UrlBytes = b""  # digests of the last applied input ids, oldest first (bounded)
    paused_contexts: list[str] = Field(default_factory=list)
    aborted_contexts: list[str] = Field(default_factory=list)  # bounded; late triggers of these end at once

    @model_validator(mode="before")
    @classmethod
    def _migrate_seen(cls, data: Any) -> Any:
        """A record written before `applied`/`recent`: its last `seen` ids become the digest window."""
        return migrate_seen(data)

    def sequence(self, triggered_id: str) -> SequenceRun | None:
        for run in self.sequences:
            if run.triggered_id == triggered_id:
                return run
        return None


ShipyardLookup = Callable[[str], Shipyard | None]


@dataclass(frozen=True, slots=True)
class SequencerConfig:
    """What the core needs besides state and event; the shell resolves the shipyard per project."""

    shipyard_for: ShipyardLookup
    # Keptn's TASK_STARTED_WAIT_DURATION: a triggered task with no `.started`/`.finished` by then times out.
    started_timeout: timedelta = timedelta(minutes=10)
    remembered_inputs: int = REMEMBERED_INPUTS  # input ids a key remembers (`KeyState.recent`)
    remembered_contexts: int = 100
    source: str = "tidegate-sequencer"
    # Wait before the built-in remediation sequence re-evaluates (a Go duration).
    remediation_wait: str = "10m"
    # The most a key's state may hold, as JSON (TIDEGATE_MAX_STATE_BYTES): a trigger that would pass it
    # ends at once, errored, so the state record always fits the broker's message limit.
    max_state_bytes: int = 512 * 1024
