"""How a Keptn task or sequence ended: `Result` and `Status`, the `result` and `status` of its events.

In a module of their own, with nothing but the standard library, so that the quality gate and
`tidegate evaluate` use them without building the event models of `schemas.events` (which
re-exports both: `from tidegate.schemas.events import Result, Status` names the same classes).
"""

from __future__ import annotations

from enum import StrEnum


class Result(StrEnum):
    """The outcome of a task or sequence when it ran (`status == succeeded`)."""

    PASS = "pass"
    WARNING = "warning"
    FAIL = "fail"


class Status(StrEnum):
    """Whether the executor ran without an unexpected error."""

    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    ABORTED = "aborted"
    UNKNOWN = "unknown"
