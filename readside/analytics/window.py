"""How far back a report looks: `30d`, `2w`, `12h`, `90m`, or any Go duration (`1h30m`). Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import DurationError, TidegateError

DEFAULT_SINCE = "30d"
_DAYS = re.compile(r"^(\d+)([dw])$")


class WindowError(TidegateError, ValueError):
    """A window the user wrote that cannot be read; the message says how to write it."""


def parse_since(text: str) -> timedelta:
    """`parse_since("30d") == timedelta(days=30)`; weeks (`2w`) and Go durations (`36h`, `90m`) too."""
    cleaned = text.strip()
    matched = _DAYS.match(cleaned)
    if matched:
        amount = int(matched.group(1))
        span = timedelta(days=amount) if matched.group(2) == "d" else timedelta(weeks=amount)
    else:
        try:
            span = parse_duration(cleaned)
        except DurationError:
            raise WindowError(
                f"--since {text!r} is not a duration; write it like 30d, 2w, 12h or 90m"
            ) from None
    if span <= timedelta(0):
        raise WindowError(f"--since {text!r} must be longer than zero, e.g. 30d")
    return span


def parse_until(text: str | None, now: datetime) -> datetime:
    """An ISO 8601 time (`2026-01-31T00:00:00Z`), or `now` when not given."""
    if not text:
        return now
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise WindowError(f"--until {text!r} is not a time; write it like 2026-01-31T00:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
