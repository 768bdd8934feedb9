"""The criteria grammar of SLO objectives (`<=+10%`, `<600`, `>=-5`), exactly as lighthouse parsed it.

After removing spaces, a criterion is an operator (`<=`, `<`, `=`, `>=`, `>`) and a number:

    <600      fixed       the value must be below 600
    <=+10%    relative_pct the value may be at most 10 % above the baseline   (target = b * 110 / 100)
    <=10%     relative_pct the same: a trailing % always compares with the baseline (Keptn #1498)
    >=-5%     relative_pct at least 95 % of the baseline                      (target = b * 95 / 100)
    <=+50     relative_abs at most 50 above the baseline                     (target = b + 50)
    <=-10     relative_abs at least 10 below the baseline: a leading sign makes any criterion
                           relative, so a negative fixed threshold cannot be written (Keptn quirk)

The baseline is the aggregate of previous values (see `baseline.py`). A relative criterion with
no previous value holds automatically. Pure: no I/O.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from tidegate.qualitygate.gonum import parse_float
from tidegate.schemas.errors import TidegateError

# Keptn's shape check (`^([<|<=|=|>|>=]{1,2})...`, unanchored at the end and with everything after
# the operator optional) only demands that the text starts with one of these characters; the
# number parse below decides the rest.
_SHAPE = re.compile(r"[<|=>]")
_OPERATORS = ("<=", "<", "=", ">=", ">")  # longest first, as Keptn matched them
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}

INVALID_CRITERIA = "invalid criteria string"
UNPARSABLE_TARGET = "could not parse criteria target value"


class CriterionKind(StrEnum):
    FIXED = "fixed"
    RELATIVE_PCT = "relative_pct"
    RELATIVE_ABS = "relative_abs"


class CriteriaError(TidegateError, ValueError):
    """A criterion that is not in the grammar. `reason` is Keptn's wording, `str()` the user's help."""

    def __init__(self, criteria: str, reason: str) -> None:
        self.criteria = criteria
        self.reason = reason
        super().__init__(
            f"criterion {criteria!r} is not valid ({reason}): write an operator (<, <=, =, >=, >) "
            'followed by a number, e.g. "<600"; a leading + or - ("<=+50") or a trailing % '
            '("<=+10%") compares with the previous results instead'
        )


@dataclass(frozen=True, slots=True)
class Criterion:
    """A parsed criterion. `value` is signed: `<=-5%` has value -5 (target = baseline * 95 / 100)."""

    text: str
    operator: str
    kind: CriterionKind
    value: float
    # The operator as a function, looked up once (the engine calls it in its hot loop).
    compare: Callable[[float, float], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compare", _COMPARE[self.operator])

    @property
    def is_relative(self) -> bool:
        return self.kind is not CriterionKind.FIXED

    def target(self, baseline: float) -> float:
        """The threshold this criterion sets, given the aggregated previous value."""
        # The same float operations as lighthouse, so targets match to the last bit.
        if self.kind is CriterionKind.RELATIVE_PCT:
            return (baseline * (100.0 + self.value)) / 100.0
        if self.kind is CriterionKind.RELATIVE_ABS:
            return baseline + self.value
        return self.value

    def holds(self, measured: float, target: float) -> bool:
        return self.compare(measured, target)


def parse_criteria(text: str) -> Criterion:
    """Parse one criterion as Keptn did; raise `CriteriaError` with Keptn's reason if it is invalid."""
    # Keptn removed spaces only (not tabs or other whitespace).
    compact = text.replace(" ", "")
    if not _SHAPE.match(compact):
        raise CriteriaError(text, INVALID_CRITERIA)
    op = next((candidate for candidate in _OPERATORS if compact.startswith(candidate)), "")
    rest = compact[len(op) :]
    kind = CriterionKind.FIXED
    sign = 1.0
    if rest.endswith("%"):
        kind = CriterionKind.RELATIVE_PCT
        rest = rest[:-1]
    if rest.startswith("-"):
        kind = (
            CriterionKind.RELATIVE_PCT if kind is CriterionKind.RELATIVE_PCT else CriterionKind.RELATIVE_ABS
        )
        sign = -1.0
        rest = rest[1:]
    elif rest.startswith("+"):
        kind = (
            CriterionKind.RELATIVE_PCT if kind is CriterionKind.RELATIVE_PCT else CriterionKind.RELATIVE_ABS
        )
        rest = rest[1:]
    number = parse_float(rest)
    if number is None or not op:
        raise CriteriaError(text, UNPARSABLE_TARGET)
    return Criterion(text=text, operator=op, kind=kind, value=sign * number)
