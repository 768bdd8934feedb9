"""Go durations as Keptn's `triggeredAfter` uses them: what Go's time.ParseDuration accepts, and only that."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import DurationError, SchemaError


@pytest.mark.parametrize(("text", "expected"), [
    ("0", timedelta(0)),
    ("30s", timedelta(seconds=30)),
    ("15m", timedelta(minutes=15)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("1.5h", timedelta(hours=1, minutes=30)),
    (".5s", timedelta(milliseconds=500)),
    ("1.s", timedelta(seconds=1)),
    ("300ms", timedelta(milliseconds=300)),
    ("2us", timedelta(microseconds=2)),
    ("2µs", timedelta(microseconds=2)),
    ("2μs", timedelta(microseconds=2)),
    ("1500ns", timedelta(microseconds=1.5)),
    ("1h2m3s4ms5us", timedelta(hours=1, minutes=2, seconds=3, milliseconds=4, microseconds=5)),
    ("+5m", timedelta(minutes=5)),
    ("-5m", timedelta(minutes=-5)),
    ("72h", timedelta(days=3)),
])
def test_go_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("", "'' is not a duration"),
    ("10", "the number 10 has no unit"),
    ("m", "a number is missing before 'm'"),
    ("1d", "unknown unit 'd' (Go has no days: write 24h)"),
    ("1.2.3s", "'1.2.3' is not a number"),
    ("5 m", "unknown unit ' m'"),
    ("ten minutes", "a number is missing before 'ten minutes'"),
    ("-", "'-' is not a duration"),
])
def test_anything_else_is_a_duration_error_saying_why(text: str, reason: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert reason in str(caught.value)
    assert 'write it like "30s", "15m" or "1h30m"' in str(caught.value)
    # Both a schema error for callers and a ValueError for pydantic validators.
    assert isinstance(caught.value, SchemaError) and isinstance(caught.value, ValueError)
