"""The runtime's decisions that need no Kafka: a task's time limit, and the outcome of a stopped task.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tidegate.connectors.runtime.outcome import TaskOutcome
from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import DurationError

TIMEOUT_PROPERTY = "timeout"
ABORTED_MESSAGE = "cancelled because the sequence was aborted"


@dataclass(frozen=True, slots=True)
class TimeLimit:
    seconds: float
    source: str
    """Where the limit comes from, for messages: the connector's default or the task's property."""
    problem: str | None = None
    """Why the task's own `timeout` property was not used, if it was unreadable."""


def task_time_limit(data: Mapping[str, Any], task: str, default: float) -> TimeLimit:
    """The task's `timeout` property (shipyard task properties arrive under data.<task>), else `default`.

    The property is a Go duration ("90s", "15m") as in Keptn's shipyard, or a number of seconds.
    """
    block = data.get(task)
    raw = block.get(TIMEOUT_PROPERTY) if isinstance(block, Mapping) else None
    if raw is None or raw == "":
        return TimeLimit(default, "the connector's default timeout")
    where = f"the task property {task}.{TIMEOUT_PROPERTY}"
    if isinstance(raw, bool):
        return TimeLimit(default, "the connector's default timeout", f"{where} is {raw!r}, not a duration")
    if isinstance(raw, int | float):
        seconds = float(raw)
    else:
        try:
            seconds = parse_duration(str(raw)).total_seconds()
        except DurationError as error:
            return TimeLimit(default, "the connector's default timeout", f"{where} is unreadable: {error}")
    if seconds <= 0:
        return TimeLimit(default, "the connector's default timeout", f"{where} must be positive, got {raw!r}")
    return TimeLimit(seconds, where)


def describe_seconds(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def timed_out(connector: str, task: str, limit: TimeLimit) -> TaskOutcome:
    return TaskOutcome.errored(
        f"the {task} task timed out after {describe_seconds(limit.seconds)} ({limit.source}) and was stopped "
        f"by the {connector} connector; raise the timeout or find out why it is slow"
    )


def lost(connector: str) -> TaskOutcome:
    return TaskOutcome.errored(f"task lost: the {connector} connector stopped while running it; it may have partly run")


def cancelled(reason: str | None, message: str | None = None) -> TaskOutcome:
    """The reply to the sequencer's cancellation (`sh.tidegate.task.cancelled`, data.reason)."""
    if reason == "timedOut":
        detail = f": {message}" if message else ""
        return TaskOutcome.errored(f"cancelled because the sequence timed out waiting for this task{detail}")
    return TaskOutcome.aborted(ABORTED_MESSAGE)


def crashed(connector: str, error: BaseException) -> TaskOutcome:
    text = str(error) or type(error).__name__
    return TaskOutcome.errored(f"the {connector} connector failed: {text}")
