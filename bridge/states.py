"""How the Bridge names and colours states and results, and how it writes times and durations. Pure.

States are Keptn's (reference §3.2): a stage is `triggered`/`waiting` while queued, `started`,
`waitingForApproval` or `paused` while it runs, and afterwards the status of its finished event
(`succeeded`, `errored`, `aborted`) or `timedOut`. The overall state adds `finished`.
A tone is the CSS class that colours a badge; every badge also shows its label in words, so
nothing is told by colour alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

QUEUED_STATES = frozenset({"triggered", "waiting"})
RUNNING_STATES = frozenset({"started", "waitingForApproval", "paused"})
FAILED_STATES = frozenset({"errored", "aborted", "timedOut", "unknown"})
FAILED_RESULTS = frozenset({"fail", "failed"})

# Every state a sequence can be filtered by (overall states first, as Keptn's Bridge listed them).
SEQUENCE_STATES = ("triggered", "waiting", "started", "waitingForApproval", "paused", "finished", "aborted", "timedOut")

_LABELS = {
    "triggered": "triggered",
    "waiting": "waiting in queue",
    "started": "running",
    "waitingForApproval": "waiting for approval",
    "paused": "paused",
    "finished": "finished",
    "succeeded": "succeeded",
    "errored": "errored",
    "aborted": "aborted",
    "timedOut": "timed out",
    "unknown": "unknown",
    "pass": "pass",
    "warning": "warning",
    "fail": "fail",
    "failed": "fail",
    "info": "info",
}


class Tone(StrEnum):
    PASS = "pass"
    WARNING = "warning"
    FAIL = "fail"
    INFO = "info"
    RUNNING = "running"
    QUEUED = "queued"
    PAUSED = "paused"
    NEUTRAL = "neutral"


class Group(StrEnum):
    """Where a sequence appears on the environment page."""

    QUEUED = "queued"
    RUNNING = "running"
    FAILED = "failed"
    SUCCEEDED = "succeeded"


def label(state: str | None) -> str:
    if not state:
        return "unknown"
    return _LABELS.get(state, state)


def tone(state: str | None, result: str | None = None) -> Tone:
    """The colour of a state or result; a failed result wins over a state that looks fine."""
    if result in FAILED_RESULTS or state in FAILED_RESULTS:
        return Tone.FAIL
    if state in FAILED_STATES:
        return Tone.FAIL
    if state == "paused":
        return Tone.PAUSED
    if state in RUNNING_STATES:
        return Tone.RUNNING
    if state in QUEUED_STATES:
        return Tone.QUEUED
    if result == "warning" or state == "warning":
        return Tone.WARNING
    if state in ("pass", "succeeded", "finished") or result == "pass":
        return Tone.PASS
    if state == "info":
        return Tone.INFO
    return Tone.NEUTRAL


def group(state: str, result: str | None) -> Group:
    if state in QUEUED_STATES:
        return Group.QUEUED
    if state in RUNNING_STATES:
        return Group.RUNNING
    if state in FAILED_STATES or result in FAILED_RESULTS:
        return Group.FAILED
    return Group.SUCCEEDED


def is_failure(result: str | None, status: str | None) -> bool:
    return result in FAILED_RESULTS or status in FAILED_STATES


def duration_text(span: timedelta | None) -> str:
    """`850 ms`, `42 s`, `3 min 5 s`, `2 h 4 min`, `3 d 2 h`."""
    if span is None:
        return ""
    total = span.total_seconds()
    if total < 0:
        total = 0
    if total < 1:
        return f"{round(total * 1000)} ms"
    seconds = int(total)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def time_text(moment: datetime | None) -> str:
    """A UTC time the way the pages show it: `2024-05-01 12:00:03 UTC`."""
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def short_time(moment: datetime | None) -> str:
    """`05-01 12:00` for column headings."""
    if moment is None:
        return ""
    return moment.strftime("%m-%d %H:%M")


def number_text(value: float | None, digits: int = 4) -> str:
    """A measured value without noise: `0.42`, `540`, `83.33`; empty when there is none."""
    if value is None:
        return ""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}g}"
