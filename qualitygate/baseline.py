"""Baselines for relative criteria: which earlier evaluations count, and how their values aggregate.

Selection (Keptn's datastore query, reference §4.3): newest first, invalidated evaluations left
out, `include_result_with_score` filtering on each evaluation's OVERALL result (`pass`: pass only;
`pass_or_warn`: pass or warning; anything else: all), then the newest N. Their ids become
`comparedEvents`. Per objective, every earlier indicator with the same metric contributes, but
only successful values are aggregated.

Aggregation: avg is the mean; pXX sorts the values and takes position p * (n + 1) (1-based),
interpolating between neighbours; before the first value it is the minimum, at or past the last
the maximum. An unknown function name aggregates to 0, as in Keptn. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tidegate.qualitygate.inputs import PreviousEvaluation
from tidegate.schemas.slo import INCLUDE_PASS, INCLUDE_PASS_OR_WARN

_PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95}


@dataclass(frozen=True, slots=True)
class Baseline:
    """The aggregated previous value of one SLI (`comparedValue`), and what it was built from."""

    function: str
    values: tuple[float, ...]
    value: float

    @property
    def known_function(self) -> bool:
        return self.function == "avg" or self.function in _PERCENTILES


class Outline(Protocol):
    """What selection reads of an earlier evaluation (a `PreviousEvaluation`, or a caller's stored
    result, which is then converted only if selected)."""

    @property
    def result(self) -> str: ...

    @property
    def invalidated(self) -> bool: ...


E = TypeVar("E", bound=Outline)


def select_previous(previous: Iterable[E], include_results: str, limit: int) -> list[E]:
    """The earlier evaluations to compare with, newest first (`previous` must be newest first)."""
    include = include_results.lower()
    selected: list[E] = []
    if limit <= 0:
        return selected
    for evaluation in previous:
        if evaluation.invalidated:
            continue
        if include == INCLUDE_PASS and evaluation.result != "pass":
            continue
        if include == INCLUDE_PASS_OR_WARN and evaluation.result not in ("pass", "warning"):
            continue
        selected.append(evaluation)
        if len(selected) == limit:
            break
    return selected


def successful_values(
    previous: Sequence[PreviousEvaluation], metrics: Iterable[str] | None = None
) -> dict[str, list[float]]:
    """Per metric (all, or only `metrics`), the successful previous values in evaluation order."""
    if metrics is None:
        values: dict[str, list[float]] = {}
        for evaluation in previous:
            for indicator in evaluation.indicators:
                if indicator.success:
                    values.setdefault(indicator.metric, []).append(indicator.value)
        return values
    wanted: dict[str, list[float]] = {metric: [] for metric in metrics}
    for evaluation in previous:
        for indicator in evaluation.indicators:
            found = wanted.get(indicator.metric)
            if found is not None and indicator.success:
                found.append(indicator.value)
    return {metric: found for metric, found in wanted.items() if found}


def aggregate(values: Sequence[float], function: str) -> float:
    """Keptn's aggregate of `values` (which must not be empty) with avg, p50, p90 or p95."""
    if function == "avg":
        total = 0.0
        for value in values:
            total += value
        return total / len(values)
    fraction = _PERCENTILES.get(function)
    if fraction is None:
        return 0.0
    ordered = sorted(values)
    size = len(ordered)
    position = fraction * float(size + 1)
    if position < 1.0:
        return ordered[0]
    if position >= float(size):
        return ordered[size - 1]
    lower = ordered[int(position) - 1]
    upper = ordered[int(position)]
    return lower + (position - math.floor(position)) * (upper - lower)


def baseline_of(values: Sequence[float] | None, function: str) -> Baseline | None:
    """The baseline for an SLI, or None when there is no successful previous value."""
    if not values:
        return None
    return Baseline(function=function, values=tuple(values), value=aggregate(values, function))
