"""Go durations ("30s", "15m", "1h30m", "1.5h", "300ms"), as Keptn writes `triggeredAfter`.

`parse_duration` reads exactly what Go's `time.ParseDuration` reads: an optional sign, then one or
more `<number><unit>` pairs, where a number may have a fraction and the units are ns, us (µs, μs), ms,
s, m and h; a bare "0" is also allowed. Anything else raises `DurationError` with the reason.
"""

from __future__ import annotations

import re
from datetime import timedelta
from fractions import Fraction

from tidegate.schemas.errors import DurationError

_NANOSECONDS_PER_UNIT: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_NUMBER = re.compile(r"(\d*)(?:\.(\d*))?")
_NUMBER_CHARS = re.compile(r"[\d.]*")
_UNIT = re.compile(r"[^\d.]+")

_HOW = 'write it like "30s", "15m" or "1h30m" (units: ns, us, ms, s, m, h)'


def parse_duration(text: str) -> timedelta:
    """`parse_duration("1h30m") == timedelta(hours=1, minutes=30)`; raises DurationError otherwise."""
    if not isinstance(text, str):
        raise DurationError(f"expected a duration as text, got {text!r}; {_HOW}")
    rest = text
    sign = 1
    if rest[:1] in ("+", "-"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return timedelta(0)
    if not rest:
        raise DurationError(f"'{text}' is not a duration; {_HOW}")
    total = Fraction(0)
    while rest:
        run = _NUMBER_CHARS.match(rest)
        digits = run.group(0) if run else ""
        number = _NUMBER.fullmatch(digits)
        if not digits:
            raise DurationError(f"'{text}' is not a duration: a number is missing before '{rest}'; {_HOW}")
        if number is None or digits == ".":
            raise DurationError(f"'{text}' is not a duration: '{digits}' is not a number; {_HOW}")
        rest = rest[len(digits) :]
        unit_match = _UNIT.match(rest)
        if unit_match is None:
            raise DurationError(f"'{text}' is not a duration: the number {digits} has no unit; {_HOW}")
        unit = unit_match.group(0)
        if unit not in _NANOSECONDS_PER_UNIT:
            hint = " (Go has no days: write 24h)" if unit == "d" else ""
            raise DurationError(f"'{text}' is not a duration: unknown unit '{unit}'{hint}; {_HOW}")
        whole, fraction = number.group(1), number.group(2)
        value = Fraction(int(whole or "0"))
        if fraction:
            value += Fraction(int(fraction), 10 ** len(fraction))
        total += value * _NANOSECONDS_PER_UNIT[unit]
        rest = rest[unit_match.end() :]
    try:
        return sign * timedelta(microseconds=float(total / 1000))
    except OverflowError:
        raise DurationError(f"'{text}' is too long a duration") from None

