"""What the engine scores: the SLI values just measured and the earlier evaluations to compare with.

Plain dataclasses, so the engine's hot loop reads attributes instead of validating dicts, plus the
edge functions that turn JSON (a `get-sli.finished` `indicatorValues` list, earlier
`evaluation.finished` data) into them with errors that say what is wrong and where. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tidegate.schemas.errors import TidegateError


class InputError(TidegateError, ValueError):
    """SLI values or previous evaluations that cannot be used; the message names the entry and the fix."""


@dataclass(frozen=True, slots=True)
class SLIValue:
    """One measured indicator, as in `get-sli.finished` `indicatorValues`."""

    metric: str
    value: float
    success: bool = True
    message: str = ""
    compared_value: float = 0.0


@dataclass(frozen=True, slots=True)
class PreviousIndicator:
    """One indicator of an earlier evaluation: only its metric, value and success matter for baselines."""

    metric: str
    value: float
    success: bool


@dataclass(frozen=True, slots=True)
class PreviousEvaluation:
    """An earlier `evaluation.finished`: its overall `result` decides whether it is compared with."""

    id: str | None
    result: str
    indicators: tuple[PreviousIndicator, ...]
    invalidated: bool = False


def sli_values_from_json(items: Any, source: str = "SLI values") -> list[SLIValue]:
    """`indicatorValues` entries (`metric`, `value`, `success`, `message`) as engine input."""
    if not isinstance(items, list):
        raise InputError(
            f"{source}: expected a JSON list of indicator values like "
            '[{"metric": "response_time_p95", "value": 540, "success": true}], got a JSON ' + _kind(items)
        )
    values: list[SLIValue] = []
    for index, item in enumerate(items):
        where = f"{source}: entry {index}"
        if not isinstance(item, dict):
            raise InputError(f"{where} is a JSON {_kind(item)}, expected an object with `metric`")
        metric = item.get("metric")
        if not isinstance(metric, str) or not metric:
            raise InputError(f"{where}: `metric` is required and must be the SLI name (a string)")
        values.append(
            SLIValue(
                metric=metric,
                value=_number(item.get("value"), f"{where} ({metric}): `value`"),
                success=_flag(item.get("success"), f"{where} ({metric}): `success`"),
                message=_string(item.get("message"), f"{where} ({metric}): `message`"),
                compared_value=_number(item.get("comparedValue"), f"{where} ({metric}): `comparedValue`"),
            )
        )
    return values


def previous_from_json(items: Any, source: str = "previous evaluations") -> list[PreviousEvaluation]:
    """Earlier `evaluation.finished` data objects, newest first, as engine input."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise InputError(
            f"{source}: expected a JSON list of evaluation.finished data objects (newest first), "
            f"got a JSON {_kind(items)}"
        )
    return [_previous(item, f"{source}: entry {index}") for index, item in enumerate(items)]


def _previous(item: Any, where: str) -> PreviousEvaluation:
    # Walked by hand: this runs for every stored result on every evaluation, and a generic
    # validator costs ten times the scoring itself (see benchmarks/bench_engine.py).
    if not isinstance(item, dict):
        raise InputError(f"{where} is a JSON {_kind(item)}, expected an evaluation.finished data object")
    result = item.get("result")
    if not isinstance(result, str):
        raise InputError(
            f"{where} has no `result`; give the overall result of that evaluation "
            "(pass, warning or fail), which include_result_with_score filters on"
        )
    ident = item.get("id")
    if ident is not None and not isinstance(ident, str):
        raise InputError(f"{where}: `id` must be the event id (a string), got a JSON {_kind(ident)}")
    evaluation = item.get("evaluation")
    if evaluation is None:
        evaluation = {}
    if not isinstance(evaluation, dict):
        raise InputError(f"{where}: `evaluation` must be an object, got a JSON {_kind(evaluation)}")
    results = evaluation.get("indicatorResults")
    if results is None:
        results = []
    if not isinstance(results, list):
        raise InputError(
            f"{where}: `evaluation.indicatorResults` must be a list, got a JSON {_kind(results)}"
        )
    indicators: list[PreviousIndicator] = []
    for position, entry in enumerate(results):
        value = entry.get("value") if isinstance(entry, dict) else entry
        if value is None:
            # An indicator result without a value carries nothing to compare with.
            continue
        if isinstance(value, dict):
            metric, number, success = value.get("metric"), value.get("value"), value.get("success")
            # The common case is checked inline; error texts are only built when something is wrong.
            if (
                type(metric) is str
                and (type(number) is float or type(number) is int)
                and (success is True or success is False)
            ):
                indicators.append(PreviousIndicator(metric, float(number), success))
                continue
        indicators.append(_previous_indicator(entry, f"{where}: evaluation.indicatorResults[{position}]"))
    return PreviousEvaluation(
        id=ident,
        result=result,
        indicators=tuple(indicators),
        invalidated=_flag(item.get("invalidated"), f"{where}: `invalidated`"),
    )


def _previous_indicator(entry: Any, at: str) -> PreviousIndicator:
    """The slow path of one previous indicator: defaults for missing fields, or an error naming the field."""
    if not isinstance(entry, dict):
        raise InputError(f"{at} must be an object, got a JSON {_kind(entry)}")
    value = entry.get("value")
    if not isinstance(value, dict):
        raise InputError(f"{at}.value must be an object with metric, value and success")
    return PreviousIndicator(
        metric=_string(value.get("metric"), f"{at}.value.metric"),
        value=_number(value.get("value"), f"{at}.value.value"),
        success=_flag(value.get("success"), f"{at}.value.success"),
    )


def _number(value: Any, what: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{what} must be a number, got a JSON {_kind(value)} ({json.dumps(value)[:40]})")
    return float(value)


def _flag(value: Any, what: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InputError(f"{what} must be true or false, got a JSON {_kind(value)}")
    return value


def _string(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, got a JSON {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    names: Sequence[tuple[type, str]] = ((bool, "boolean"), (dict, "object"), (list, "list"), (str, "string"))
    for kind, name in names:
        if isinstance(value, kind):
            return name
    if value is None:
        return "null"
    return "number" if isinstance(value, int | float) else type(value).__name__
