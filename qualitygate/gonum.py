"""Numbers read and written the way Keptn's Go code did, so texts and verdicts match to the digit.

`parse_float` accepts exactly what Go's `strconv.ParseFloat(s, 64)` accepts (Python's `float()`
is more lenient: surrounding whitespace, `1_000`), and `format_float` writes what Go's `%v`
writes for a float64 (`100`, `83.33333333333334`, `1e+06`), which is how lighthouse put scores
and thresholds into its messages. Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Hexadecimal floats are rare: compiled by `re`'s own cache the first time one is read, not at start.
_HEX = r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+"
_SPECIAL = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}


def parse_float(text: str) -> float | None:
    """The value of `text` as Go's ParseFloat reads it, or None where Go returned an error."""
    if _DECIMAL.fullmatch(text):
        value = float(text)
    elif re.fullmatch(_HEX, text):
        value = float.fromhex(text)
    else:
        unsigned = text[1:] if text[:1] in "+-" else text
        special = _SPECIAL.get(unsigned.lower())
        if special is None or (math.isnan(special) and unsigned != text):
            return None
        return -special if text.startswith("-") else special
    # Go reports a finite literal too large for a float64 as an error (ErrRange).
    return None if math.isinf(value) else value


def format_float(value: float) -> str:
    """`fmt.Sprintf("%v", value)` for a Go float64: shortest digits, exponent below 1e-4 and from 1e6."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    # Position of the decimal point relative to the first digit (Go's `dp`).
    point = len(digits) + exponent
    prefix = "-" if sign else ""
    power = point - 1
    if power < -4 or power >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{prefix}{digits}{'0' * (point - len(digits))}"
    return f"{prefix}{digits[:point]}.{digits[point:]}"
