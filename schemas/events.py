"""Keptn CloudEvents: the envelope, the type grammar and the common data block.

Tidegate speaks Keptn v1's events unchanged (CloudEvents 1.0 plus the `shkeptncontext`,
`triggeredid`, `gitcommitid` and `shkeptnspecversion` extensions), so clients, CI scripts and
integrations written for Keptn keep working.

Type grammar (parsing is by part count, which is why dots are forbidden in names):

    sh.keptn.event.<task>.<kind>              task event, kind in triggered|started|finished|invalidated
    sh.keptn.event.<task>.status.changed      task status update (6 parts, not a sequence event)
    sh.keptn.event.<stage>.<sequence>.<kind>  sequence event, kind in triggered|finished
    sh.keptn.events.problem                   external problem (capitalised payload keys)
    sh.keptn.log.error, sh.keptn.event.monitoring.configure, ...   other events
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tidegate.schemas.errors import TidegateError
from tidegate.schemas.outcomes import Result as Result  # `as`: re-exported (defined here before)
from tidegate.schemas.outcomes import Status as Status

KEPTN_PREFIX = "sh.keptn.event."
PROBLEM_TYPE = "sh.keptn.events.problem"
LOG_ERROR_TYPE = "sh.keptn.log.error"
MONITORING_CONFIGURE_TYPE = "sh.keptn.event.monitoring.configure"
DEFAULT_SPEC_VERSION = "0.2.4"
DEFAULT_SOURCE = "tidegate"


class TaskKind(StrEnum):
    TRIGGERED = "triggered"
    STARTED = "started"
    STATUS_CHANGED = "status.changed"
    FINISHED = "finished"
    INVALIDATED = "invalidated"


class SequenceKind(StrEnum):
    TRIGGERED = "triggered"
    FINISHED = "finished"


class EventTypeError(TidegateError, ValueError):
    """An event type that is not one of Keptn's forms."""


Category = Literal["task", "sequence", "problem", "other"]


@dataclass(frozen=True, slots=True)
class EventType:
    """A parsed event type. `category` says which of the fields are set."""

    raw: str
    category: Category
    kind: str | None = None
    task: str | None = None
    stage: str | None = None
    sequence: str | None = None

    @classmethod
    def parse(cls, raw: str) -> EventType:
        # Every agent parses each event's type several times (routing, metrics, decisions), and a
        # deployment sees few distinct types: parse each once. Bounded, so odd input cannot grow it.
        parsed = _parsed_types.get(raw)
        if parsed is None:
            parsed = cls._parse(raw)
            if len(_parsed_types) < _PARSED_TYPES_MAX:
                _parsed_types[raw] = parsed
        return parsed

    @classmethod
    def _parse(cls, raw: str) -> EventType:
        if raw == PROBLEM_TYPE:
            return cls(raw, "problem")
        if not raw.startswith(KEPTN_PREFIX):
            return cls(raw, "other")
        parts = raw.split(".")
        if len(parts) == 5 and parts[4] in _TASK_KINDS:
            return cls(raw, "task", kind=parts[4], task=parts[3])
        if len(parts) == 6 and parts[4:] == ["status", "changed"]:
            return cls(raw, "task", kind=TaskKind.STATUS_CHANGED.value, task=parts[3])
        if len(parts) == 6 and parts[5] in _SEQUENCE_KINDS:
            return cls(raw, "sequence", kind=parts[5], stage=parts[3], sequence=parts[4])
        return cls(raw, "other")

    @property
    def is_task(self) -> bool:
        return self.category == "task"

    @property
    def is_sequence(self) -> bool:
        return self.category == "sequence"


_parsed_types: dict[str, EventType] = {}  # EventType is frozen: one instance can serve every caller
_PARSED_TYPES_MAX = 4096
_TASK_KINDS = {k.value for k in TaskKind if k is not TaskKind.STATUS_CHANGED}
_SEQUENCE_KINDS = {k.value for k in SequenceKind}


def task_type(task: str, kind: str | TaskKind) -> str:
    """`sh.keptn.event.<task>.<kind>`."""
    # A member needs no lookup (the enum call is most of the cost on the sequencer's hot path).
    text = kind.value if isinstance(kind, TaskKind) else TaskKind(kind).value
    return f"{KEPTN_PREFIX}{task}.{text}"


def sequence_type(stage: str, sequence: str, kind: str | SequenceKind) -> str:
    """`sh.keptn.event.<stage>.<sequence>.<kind>`."""
    text = kind.value if isinstance(kind, SequenceKind) else SequenceKind(kind).value
    return f"{KEPTN_PREFIX}{stage}.{sequence}.{text}"


def now_utc() -> datetime:
    return datetime.now(UTC)


class KeptnEvent(BaseModel):
    """A CloudEvent with Keptn's extensions. Unknown extension attributes are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str = DEFAULT_SOURCE
    type: str
    time: datetime = Field(default_factory=now_utc)
    datacontenttype: str = "application/json"
    shkeptncontext: str | None = None
    triggeredid: str | None = None
    gitcommitid: str | None = None
    shkeptnspecversion: str = DEFAULT_SPEC_VERSION
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _type_not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("the event type must not be empty")
        return value

    @field_validator("data", mode="before")
    @classmethod
    def _data_object(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def parsed_type(self) -> EventType:
        return EventType.parse(self.type)

    @property
    def project(self) -> str | None:
        return _opt_str(self.data.get("project"))

    @property
    def stage(self) -> str | None:
        return _opt_str(self.data.get("stage"))

    @property
    def service(self) -> str | None:
        return _opt_str(self.data.get("service"))

    def to_json_dict(self) -> dict[str, Any]:
        """The structured-mode JSON form (`application/cloudevents+json`)."""
        out = self.model_dump(mode="json", exclude_none=True)
        out["time"] = format_time(self.time)
        return out


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_NO_OFFSET = timedelta(0)


def format_time(moment: datetime) -> str:
    """RFC 3339 with milliseconds and `Z`, as Keptn writes event times."""
    zone = moment.tzinfo
    # Naive times are UTC; aware ones in UTC need no conversion (this runs for every event written).
    utc = moment if zone is None or zone is UTC or zone.utcoffset(moment) == _NO_OFFSET else moment.astimezone(UTC)
    if utc.year < 1000 or utc.microsecond != moment.microsecond:
        # strftime does not pad such years to four digits on every platform, and a sub-second offset
        # moves the microseconds: keep the original form for both (rare) cases.
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    # isoformat starts with the same 23 characters ("YYYY-MM-DDTHH:MM:SS.mmm"), and is faster.
    return utc.isoformat(timespec="milliseconds")[:23] + "Z"


class EventData(BaseModel):
    """The common data block every Keptn event carries; task payloads sit beside it under the task's name."""

    model_config = ConfigDict(extra="allow")

    project: str | None = None
    stage: str | None = None
    service: str | None = None
    labels: dict[str, str] | None = None
    status: Status | None = None
    result: Result | None = None
    message: str | None = None
