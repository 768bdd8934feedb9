"""The gateway's decisions, with no I/O: what an inbound event must look like, which keptnContext it
gets, the evaluation timeframe, names, times and the datastore's filter syntax.

Every rule answers with `Problem`s that name the field and the rule broken, so the HTTP layer only
has to turn them into a 400 answer.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import DurationError
from tidegate.schemas.events import (
    LOG_ERROR_TYPE,
    MONITORING_CONFIGURE_TYPE,
    PROBLEM_TYPE,
    EventType,
    Result,
    Status,
)
from tidegate.schemas.ids import context_from_text
from tidegate.schemas.shipyard import NAME_PATTERN

PROJECT_NAME_MAX = 200
SERVICE_NAME_MAX = 43  # Keptn's limit: helm release names `<service>-generated` must stay short
DEFAULT_TIMEFRAME = timedelta(minutes=5)
MIN_EVALUATION_WINDOW = timedelta(minutes=1)
DEFAULT_SOURCE = "https://github.com/keptn/keptn/api"
RESULTS = frozenset(r.value for r in Result)
STATUSES = frozenset(s.value for s in Status)
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: the field (dotted path in the request) and what is wrong, for a person."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


# --------------------------------------------------------------------- names


def check_name(what: str, value: str, *, max_length: int) -> Problem | None:
    """Keptn's entity-name rule for projects, stages and services."""
    field = f"{what}Name" if what != "stage" else "stage"
    if not value:
        return Problem(field, f"a {what} name is required")
    if len(value) > max_length:
        return Problem(field, f"{what} name {value!r} is {len(value)} characters long; at most {max_length} are allowed")
    if not NAME_PATTERN.fullmatch(value):
        return Problem(
            field,
            f"{what} name {value!r} must start with a lower-case letter and contain only lower-case letters, "
            "digits and dashes (and not end with a dash)",
        )
    return None


# --------------------------------------------------------------------- inbound events (POST /v1/event)


def keptn_context_for(given: str | None) -> str:
    """Keptn's rule: keep a UUID, derive one from any other text, make a new one when none is given."""
    if not given:
        return str(uuid.uuid4())
    return context_from_text(given)


def check_event(body: dict[str, Any]) -> list[Problem]:
    """Keptn's `POST /v1/event` validation (api/handlers/eventvalidation.go, 0.19+), plus value checks.

    Allowed: `sh.keptn.log.error` and `sh.keptn.events.problem` (no further checks);
    `sh.keptn.event.monitoring.configure` (needs data.project and data.type); sequence events of kind
    `triggered` only (need project/stage/service, and the stage in the type equal to data.stage); task
    events of kind started, finished or invalidated (need project/stage/service and triggeredid;
    finished also result and status).
    """
    problems: list[Problem] = []
    for name in ("type", "source"):
        if name in body and not isinstance(body[name], str):
            problems.append(Problem(name, f"must be a string, got {_kind(body[name])}"))
    event_type = body.get("type")
    if not isinstance(event_type, str) or not event_type:
        problems.append(Problem("type", "is required, e.g. sh.keptn.event.dev.delivery.triggered"))
        return problems
    data = body.get("data")
    if data is None:
        problems.append(Problem("data", "is required: the event's data object with project, stage and service"))
        return problems
    if not isinstance(data, dict):
        problems.append(Problem("data", f"must be a JSON object, got {_kind(data)}"))
        return problems
    for name in ("shkeptncontext", "triggeredid", "gitcommitid"):
        if body.get(name) is not None and not isinstance(body[name], str):
            problems.append(Problem(name, f"must be a string, got {_kind(body[name])}"))
    for name in ("project", "stage", "service"):
        if data.get(name) is not None and not isinstance(data[name], str):
            problems.append(Problem(f"data.{name}", f"must be a string, got {_kind(data[name])}"))
    if problems:
        return problems
    if event_type in (LOG_ERROR_TYPE, PROBLEM_TYPE):
        return []
    if event_type == MONITORING_CONFIGURE_TYPE:
        return _require(data, ("project", "type"))
    parsed = EventType.parse(event_type)
    if parsed.is_sequence:
        return _check_sequence_event(parsed, data)
    if parsed.is_task:
        return _check_task_event(parsed, body, data)
    return [
        Problem(
            "type",
            f"{event_type!r} is not an event the API accepts; send a sequence trigger "
            "(sh.keptn.event.<stage>.<sequence>.triggered), a task reply (sh.keptn.event.<task>.started|finished|"
            f"invalidated), {MONITORING_CONFIGURE_TYPE}, {PROBLEM_TYPE} or {LOG_ERROR_TYPE}",
        )
    ]


def _check_sequence_event(parsed: EventType, data: dict[str, Any]) -> list[Problem]:
    if parsed.kind != "triggered":
        return [
            Problem(
                "type",
                f"{parsed.raw!r}: only `.triggered` sequence events may be sent; the sequencer itself sends "
                f"`{parsed.stage}.{parsed.sequence}.finished`",
            )
        ]
    problems = _require(data, ("project", "stage", "service"))
    stage = data.get("stage")
    if isinstance(stage, str) and stage and stage != parsed.stage:
        problems.append(Problem("data.stage", f"is {stage!r} but the event type names stage {parsed.stage!r}; make them equal"))
    return problems


def _check_task_event(parsed: EventType, body: dict[str, Any], data: dict[str, Any]) -> list[Problem]:
    if parsed.kind not in ("started", "finished", "invalidated"):
        return [
            Problem(
                "type",
                f"{parsed.raw!r}: task events may be sent only as started, finished or invalidated; "
                "the sequencer sends `.triggered` itself",
            )
        ]
    problems = _require(data, ("project", "stage", "service"))
    if not body.get("triggeredid"):
        problems.append(Problem("triggeredid", f"is required on {parsed.kind} events: the id of the `.triggered` event this answers"))
    if parsed.kind == "finished":
        for name, allowed in (("result", RESULTS), ("status", STATUSES)):
            value = data.get(name)
            if not value:
                problems.append(Problem(f"data.{name}", f"is required on finished events ({'|'.join(sorted(allowed))})"))
            elif value not in allowed:
                problems.append(Problem(f"data.{name}", f"{value!r} is not one of {'|'.join(sorted(allowed))}"))
    return problems


def _require(data: dict[str, Any], names: tuple[str, ...]) -> list[Problem]:
    return [Problem(f"data.{name}", "is required") for name in names if not data.get(name)]


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# --------------------------------------------------------------------- times and the evaluation window


def parse_time(text: str) -> datetime:
    """Keptn's accepted timestamps: `2006-01-02T15:04:05.000Z`, RFC 3339, or `2006-01-02T15:04:05` (UTC)."""
    candidate = text.strip()
    try:
        moment = datetime.fromisoformat(candidate.replace("Z", "+00:00") if candidate.endswith("Z") else candidate)
    except ValueError:
        for pattern in _TIME_FORMATS:
            try:
                moment = datetime.strptime(candidate, pattern)
                break
            except ValueError:
                continue
        else:
            raise ValueError(
                f"{text!r} is not a time; write it like 2024-05-01T12:00:00.000Z or 2024-05-01T12:00:00+02:00"
            ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class EvaluationWindow:
    start: datetime
    end: datetime


def evaluation_window(
    *, start: str | None, end: str | None, timeframe: str | None, now: datetime
) -> EvaluationWindow | list[Problem]:
    """Keptn's start/end rules (go-utils GetStartEndTime): timeframe alone ends now; start + timeframe
    ends start + timeframe; start + end as given (at least one minute apart); end + timeframe is an
    error; nothing given means the last 5 minutes."""
    problems: list[Problem] = []
    span: timedelta | None = None
    if timeframe:
        try:
            span = parse_duration(timeframe)
        except DurationError as error:
            problems.append(Problem("timeframe", str(error)))
        else:
            if span <= timedelta(0):
                problems.append(Problem("timeframe", f"{timeframe!r} must be longer than zero"))
    begin = _time_field("start", start, problems)
    finish = _time_field("end", end, problems)
    if end and timeframe:
        problems.append(Problem("timeframe", "give either end or timeframe (with an optional start), not both"))
    if finish is not None and begin is None and not timeframe:
        problems.append(Problem("start", "is required when end is given"))
    if problems:
        return problems
    if begin is not None and finish is not None:
        if finish <= begin:
            return [Problem("end", f"must be after start ({start})")]
        if finish - begin < MIN_EVALUATION_WINDOW:
            return [Problem("end", "must be at least one minute after start")]
        return EvaluationWindow(begin, finish)
    window = span or DEFAULT_TIMEFRAME
    if begin is not None:
        return EvaluationWindow(begin, begin + window)
    return EvaluationWindow(now - window, now)


def _time_field(name: str, value: str | None, problems: list[Problem]) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError as error:
        problems.append(Problem(name, str(error)))
        return None


# --------------------------------------------------------------------- the datastore's filter syntax


_FILTER_PART = re.compile(r"\s+AND\s+")


def parse_filter(text: str) -> dict[str, list[str]] | Problem:
    """`data.project:sockshop AND data.stage:dev,staging` -> {"data.project": ["sockshop"], ...}."""
    found: dict[str, list[str]] = {}
    for part in _FILTER_PART.split(text.strip()):
        if not part:
            continue
        name, sep, values = part.partition(":")
        if not sep or not name.strip() or not values.strip():
            return Problem("filter", f"{part!r} is not `key:value`; write e.g. data.project:sockshop AND data.stage:dev")
        found.setdefault(name.strip(), []).extend(v.strip() for v in values.split(",") if v.strip())
    if not found:
        return Problem("filter", "is empty; write e.g. data.project:sockshop AND data.stage:dev")
    if "data.project" not in found and "shkeptncontext" not in found:
        return Problem("filter", "must contain data.project or shkeptncontext (the store is searched by project or run)")
    return found
