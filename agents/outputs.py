"""The outputs every agent core hands its shell in the same way (the sequencer's and the remediator's).

Each agent keeps its own `Emit`, `AuditRecord`, `AuditKind` and `IgnoreReason` (they route and record
different things); what is the same for all is how an ignored input is told apart from an invalid one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

# Every agent's IgnoreReason has this member: the input cannot be processed as sent and goes to the DLQ.
DEAD_LETTER_REASON = "invalid"

ReasonT = TypeVar("ReasonT", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class Ignored(Generic[ReasonT]):
    """The input changed nothing; `dead_letter` says it is invalid, otherwise the shell only counts `reason`.

    Each agent subclasses it with its own `IgnoreReason`, so `isinstance` still tells the agents apart.
    """

    reason: ReasonT
    detail: str

    @property
    def dead_letter(self) -> bool:
        return self.reason == DEAD_LETTER_REASON
