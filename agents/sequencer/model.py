"""The sequencer's state for one key (`project/stage/service`), its codec and its configuration.

The state is what the host keeps per key (in memory and in its state topic). It is made of msgspec
Structs, not pydantic models: the core copies and changes it on every event, and a Struct's copy,
attribute write and JSON encoding cost a fraction of a model's. `STATE_CODEC` stores it as compact
JSON (fields at their default left out); it also reads every record written when the state was a
pydantic model (all fields, `recent` in base64url, or `seen`: see below). A sequence lives here only
while it is active; once it finishes, only the audit records remember it.

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

import msgspec

from tidegate.agents.dedupe import REMEMBERED_INPUTS, migrate_seen
from tidegate.agents.merge import copy_value
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


class TaskSnapshot(msgspec.Struct, omit_defaults=True):
    """A shipyard task as the sequence snapshotted it at trigger time (what the core reads of a `Task`;
    the shipyard's unknown task keys are not kept)."""

    name: str
    triggeredAfter: str | None = None  # the shipyard's key
    properties: dict[str, Any] | None = None

    @classmethod
    def of(cls, task: Task) -> TaskSnapshot:
        """A snapshot of `task` that shares nothing with it (its properties are deep-copied)."""
        return cls(task.name, task.triggeredAfter, copy_value(task.properties))


class CurrentTask(msgspec.Struct, omit_defaults=True):
    """The task a sequence is on: delayed (not yet dispatched) or dispatched and counting replies."""

    index: int
    name: str
    due_at: datetime | None = None  # set while a `triggeredAfter` delay runs
    triggered_id: str | None = None  # set once the `.triggered` event is sent
    dispatched_at: datetime | None = None
    started: int = 0
    finished: int = 0
    results: list[str | None] = []
    statuses: list[str | None] = []
    properties: dict[str, Any] = {}  # merged data of the `.finished` events
    message: str | None = None
    started_deadline: datetime | None = None  # no `.started`/`.finished` by then: the sequence times out
    timeout_deadline: datetime | None = None  # the task's own `timeout` property

    @property
    def dispatched(self) -> bool:
        return self.triggered_id is not None


class SequenceRun(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One active sequence: the definition snapshotted at trigger time and how far it got."""

    triggered_id: str  # id of the `<stage>.<sequence>.triggered` event
    keptn_context: str
    name: str
    order: int  # arrival order within the key: FIFO for the stage lock
    triggered_at: datetime
    gitcommitid: str | None = None
    tasks: list[TaskSnapshot]
    state: SequenceState = SequenceState.TRIGGERED
    state_before_pause: SequenceState | None = None
    payload: dict[str, Any] = {}  # trigger data merged with each finished task's data
    next_index: int = 0  # index of the next task to dispatch (= number of completed tasks)
    last_task: str | None = None
    last_result: str | None = None
    last_status: str | None = None
    last_message: str | None = None
    current: CurrentTask | None = None


class KeyState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Everything the sequencer knows about one `project/stage/service`."""

    project: str
    stage: str
    service: str
    sequences: list[SequenceRun] = []  # active ones, in arrival order
    lock: str | None = None  # triggered id of the sequence holding the stage lock
    next_order: int = 0
    # "<topic>:<partition>" -> offset of the last input applied from there (bounded: REMEMBERED_PARTITIONS)
    applied: dict[str, int] = {}
    recent: bytes = b""  # digests of the last applied input ids, oldest first (bounded)
    paused_contexts: list[str] = []
    aborted_contexts: list[str] = []  # bounded; late triggers of these end at once

    def sequence(self, triggered_id: str) -> SequenceRun | None:
        for run in self.sequences:
            if run.triggered_id == triggered_id:
                return run
        return None


class KeyStateCodec:
    """A key's state as its state topic's record: compact JSON (msgspec), every field at its default
    left out and `recent` in standard base64.

    It reads the records written when the state was a pydantic model too: every field present,
    `recent` in base64url, and before that `seen` (`agents.dedupe.migrate_seen`). Such a record takes
    the slower way, through a dict: one that names `seen` anywhere, or whose `recent` the standard
    alphabet refuses (base64url differs only in `-` and `_`, so any other string means the same bytes).
    """

    __slots__ = ("_decoder", "_encoder")

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(KeyState)

    def encode(self, state: KeyState) -> bytes:
        return self._encoder.encode(state)

    def size(self, state: KeyState) -> int:
        """The bytes of `state`'s record."""
        return len(self._encoder.encode(state))

    def decode(self, value: bytes) -> KeyState:
        if b'"seen"' not in value:
            try:
                return self._decoder.decode(value)
            except msgspec.ValidationError:
                pass  # an earlier record's base64url `recent`, or an invalid record (refused below)
        data = migrate_seen(msgspec.json.decode(value))
        if isinstance(data, dict) and isinstance(data.get("recent"), str):
            data["recent"] = data["recent"].translate(_TO_STANDARD_BASE64)  # either alphabet
        return msgspec.convert(data, KeyState)


_TO_STANDARD_BASE64 = str.maketrans("-_", "+/")


STATE_CODEC = KeyStateCodec()


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
