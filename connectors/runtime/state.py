"""A connector's memory of the tasks it handled, kept in a compacted Kafka topic. Pure: no I/O.

Topic `<prefix>connector-<name>.state`, key = the task's `triggeredid`, value (JSON):

    {"state": "started" | "finished", "task": "deployment", "key": "project/stage/service",
     "started_at": "<RFC 3339>", "finished_at": "<RFC 3339, once finished>"}

The runtime writes `started` (and waits for the broker's acknowledgement) when the program gets its
concurrency slot, right before it runs, and `finished` after the `.finished` reply went out. A task
accepted but still waiting for a slot has no record: its offset stays uncommitted, so after a crash
it is delivered again and runs then. A connector only needs Kafka, so this memory travels with it
to any cluster. On a redelivered `.triggered` event the memory decides (`verdict`):

- finished: skip (the reply was sent already);
- accepted or running in this process: skip (a duplicate, or a redelivery after a rebalance back);
- started, not in this process: the connector stopped while running it; report the task lost
  (errored), never run it again, because side effects like a deployment are not idempotent;
- unknown: run it (new, or accepted but never started before a crash).
"""

from __future__ import annotations

import json
from collections.abc import Container
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, ValidationError


class TaskPhase(StrEnum):
    STARTED = "started"
    FINISHED = "finished"


class TaskRecord(BaseModel):
    """One handled task, as stored in the state topic."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    state: TaskPhase
    task: str
    key: str
    started_at: str
    finished_at: str | None = None

    def finish(self, at: str) -> TaskRecord:
        return self.model_copy(update={"state": TaskPhase.FINISHED, "finished_at": at})


class Verdict(StrEnum):
    RUN = "run"
    SKIP_FINISHED = "skip-finished"
    SKIP_RUNNING = "skip-running"
    REPORT_LOST = "report-lost"


def state_topic(prefix: str, connector: str) -> str:
    return f"{prefix}connector-{connector}.state"


def consumer_group(prefix: str, connector: str) -> str:
    return f"{prefix}connector-{connector}"


def encode_record(triggered_id: str, record: TaskRecord) -> tuple[bytes, bytes]:
    return triggered_id.encode("utf-8"), record.model_dump_json(exclude_none=True).encode("utf-8")


def decode_record(key: bytes | None, value: bytes | None) -> tuple[str, TaskRecord] | None:
    """The (triggeredid, record) of a state-topic record, or None for a tombstone or garbage."""
    if key is None or value is None:
        return None
    try:
        return key.decode("utf-8"), TaskRecord.model_validate(json.loads(value))
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError):
        return None


class TaskMemory:
    """triggeredid -> the latest record. Monotonic: once finished, a task never goes back to started
    (the runtime reads its own writes back from the topic, possibly after it finished the task)."""

    def __init__(self) -> None:
        self._records: dict[str, TaskRecord] = {}

    def apply(self, triggered_id: str, record: TaskRecord) -> None:
        known = self._records.get(triggered_id)
        if known is not None and known.state is TaskPhase.FINISHED and record.state is TaskPhase.STARTED:
            return
        self._records[triggered_id] = record

    def get(self, triggered_id: str) -> TaskRecord | None:
        return self._records.get(triggered_id)

    def __len__(self) -> int:
        return len(self._records)

    def verdict(self, triggered_id: str, running: Container[str]) -> Verdict:
        """`running`: the tasks this process accepted (queued for a slot or running)."""
        record = self._records.get(triggered_id)
        if record is not None and record.state is TaskPhase.FINISHED:
            return Verdict.SKIP_FINISHED
        if triggered_id in running:
            return Verdict.SKIP_RUNNING
        if record is None:
            return Verdict.RUN
        return Verdict.REPORT_LOST
