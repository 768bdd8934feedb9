"""What a connector's work produced: the task's status, result, message and result data. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tidegate.schemas.events import Result, Status


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """The content of a task's `.finished` event.

    `status` says whether the connector ran without an unexpected error; `result` is the verdict when
    it did (Keptn's meaning, reference §2.3). `data` is the task's result payload, merged into the
    `.finished` data beside the common block (e.g. `{"deployment": {"deploymentURIsLocal": [...]}}`).
    """

    status: Status = Status.SUCCEEDED
    result: Result = Result.PASS
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def passed(cls, message: str = "", data: dict[str, Any] | None = None) -> TaskOutcome:
        return cls(Status.SUCCEEDED, Result.PASS, message, data or {})

    @classmethod
    def warning(cls, message: str = "", data: dict[str, Any] | None = None) -> TaskOutcome:
        return cls(Status.SUCCEEDED, Result.WARNING, message, data or {})

    @classmethod
    def failed(cls, message: str, data: dict[str, Any] | None = None) -> TaskOutcome:
        """The work ran and its verdict is negative (a failed test, a bad action value)."""
        return cls(Status.SUCCEEDED, Result.FAIL, message, data or {})

    @classmethod
    def errored(cls, message: str, data: dict[str, Any] | None = None) -> TaskOutcome:
        """The work could not be done (a missing file, a tool that failed, a timeout)."""
        return cls(Status.ERRORED, Result.FAIL, message, data or {})

    @classmethod
    def aborted(cls, message: str) -> TaskOutcome:
        # Keptn's abort ends the sequence aborted/pass; the task's own reply says the same.
        return cls(Status.ABORTED, Result.PASS, message, {})
