"""Structured JSON logs, with the keptnContext of the event being worked on on every line.

    bind_event(event)          # the shell, once per input event (streams.app.decode_or_dlq does it)
    log.info("dispatched %s", task)
    -> {"time": "...", "level": "INFO", "logger": "...", "message": "dispatched test",
        "keptnContext": "9f1c...", "eventId": "...", "eventType": "sh.keptn.event.dev.delivery.triggered",
        "project": "sockshop", "stage": "dev", "service": "carts"}

The work context lives in a `ContextVar`: each Faust agent runs in its own asyncio task, so a
binding holds for everything that agent logs while it handles that event and never leaks into
another agent's lines. `TIDEGATE_LOG_FORMAT=json` switches a Faust worker (through
`faust_logging_options()`, which `create_app` passes on) or any other process (`configure()`) to
these JSON lines; the default stays Faust's readable text for people at a terminal.
"""

from __future__ import annotations

import logging
import os
import sys
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from tidegate.schemas.events import KeptnEvent

FORMAT_VARIABLE = "TIDEGATE_LOG_FORMAT"
JSON = "json"
TEXT = "text"


@dataclass(frozen=True, slots=True)
class WorkContext:
    """Which event a line of work is for (the fields a reader filters logs on)."""

    keptn_context: str | None
    event_id: str | None = None
    event_type: str | None = None
    project: str | None = None
    stage: str | None = None
    service: str | None = None

    @classmethod
    def of(cls, event: KeptnEvent) -> WorkContext:
        return cls(
            keptn_context=event.shkeptncontext,
            event_id=event.id,
            event_type=event.type,
            project=event.project,
            stage=event.stage,
            service=event.service,
        )

    def fields(self) -> dict[str, str]:
        """The JSON fields of this context, leaving out the unknown ones."""
        named = {
            "keptnContext": self.keptn_context,
            "eventId": self.event_id,
            "eventType": self.event_type,
            "project": self.project,
            "stage": self.stage,
            "service": self.service,
        }
        return {name: value for name, value in named.items() if value}


# What `bind_event` keeps: the event's context, id and type and its data's project, stage and service, as they
# were when it was bound; made into a WorkContext (`WorkContext.of`'s) only when a line is logged. An agent
# binds every input and logs for few of them.
_EventFields = tuple[Any, Any, Any, Any, Any, Any]
Binding = WorkContext | _EventFields | None

_current: ContextVar[Binding] = ContextVar("tidegate_work_context", default=None)


def bind_event(event: KeptnEvent) -> Token[Binding]:
    """From now on (in this task), log lines carry `event`'s keptnContext, id, type and key."""
    data = event.data
    return _current.set((event.shkeptncontext, event.id, event.type,
                         data.get("project"), data.get("stage"), data.get("service")))


def bind(context: WorkContext | None) -> Token[Binding]:
    return _current.set(context)


def unbind(token: Token[Binding] | None = None) -> None:
    """Forget the binding: back to what it was before `token`, or to none at all."""
    if token is not None:
        _current.reset(token)
    else:
        _current.set(None)


def current() -> WorkContext | None:
    bound = _current.get()
    if isinstance(bound, tuple):
        keptn_context, event_id, event_type, project, stage, service = bound
        return WorkContext(keptn_context, event_id, event_type, _text(project), _text(stage), _text(service))
    return bound


def _text(value: Any) -> str | None:
    # What KeptnEvent.project, .stage and .service give for their data field.
    return value if isinstance(value, str) and value else None


class TidegateJsonFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, the work context, and any `extra`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", *args, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # RFC 3339 in UTC with milliseconds, like the events' own times: lines sort and join on time.
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        context = current()
        if context is not None:
            for name, value in context.fields().items():
                log_data.setdefault(name, value)


def wanted_format(environ: dict[str, str] | None = None) -> str:
    """`json` or `text`, from TIDEGATE_LOG_FORMAT; anything else is refused with the choices."""
    value = (environ if environ is not None else dict(os.environ)).get(FORMAT_VARIABLE, TEXT).strip().lower() or TEXT
    if value not in (JSON, TEXT):
        raise ValueError(f"{FORMAT_VARIABLE}={value!r} is not a log format; use {JSON} or {TEXT}")
    return value


def faust_logging_options(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Options for `faust.App` that make a worker log JSON lines when TIDEGATE_LOG_FORMAT=json.

    Faust (mode) builds a `default` handler and merges a `logging_config` marked `merge` over it; ours
    replaces that handler's formatter, so Faust's own lines are JSON too and nothing is logged twice.
    """
    if wanted_format(environ) != JSON:
        return {}
    return {
        "logging_config": {
            "version": 1,
            "merge": True,
            "disable_existing_loggers": False,
            "formatters": {"tidegate_json": {"()": f"{__name__}.TidegateJsonFormatter"}},
            "handlers": {
                "default": {
                    "class": "logging.StreamHandler",
                    "formatter": "tidegate_json",
                    "stream": "ext://sys.stdout",
                }
            },
        }
    }


def configure(level: str | int = "INFO", *, fmt: str | None = None, stream: Any = None) -> None:
    """Set up the root logger of a process that is not a Faust worker (gateway, connectors, CLI).

    `fmt` defaults to TIDEGATE_LOG_FORMAT; `text` keeps a plain one-line format.
    """
    chosen = fmt or wanted_format()
    handler = logging.StreamHandler(stream or sys.stderr)
    if chosen == JSON:
        handler.setFormatter(TidegateJsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)


__all__ = [
    "FORMAT_VARIABLE",
    "TidegateJsonFormatter",
    "WorkContext",
    "bind",
    "bind_event",
    "configure",
    "current",
    "faust_logging_options",
    "unbind",
    "wanted_format",
]
