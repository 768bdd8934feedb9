"""What the engine scores: the SLI values just measured and the earlier evaluations to compare with.

Plain dataclasses, so the engine's hot loop reads attributes instead of validating dicts, plus the
edge functions that turn JSON (a `get-sli.finished` `indicatorValues` list, earlier
`evaluation.finished` data) into them with errors that say what is wrong and where. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.payloads import IndicatorValue


class InputError(ValueError):
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


class _PreviousValue(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metric: str = ""
    value: float | None = None
    success: bool = False


class _PreviousIndicatorResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: _PreviousValue | None = None


class _PreviousDetails(BaseModel):
    model_config = ConfigDict(extra="ignore")

    indicatorResults: list[_PreviousIndicatorResult] | None = None


class _PreviousData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    result: str | None = None
    invalidated: bool = False
    evaluation: _PreviousDetails = Field(default_factory=_PreviousDetails)


def _where(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']}" if location else str(first["msg"])


def sli_values_from_json(items: Any, source: str = "SLI values") -> list[SLIValue]:
    """`indicatorValues` entries (`metric`, `value`, `success`, `message`) as engine input."""
    if not isinstance(items, list):
        raise InputError(
            f"{source}: expected a JSON list of indicator values like "
            '[{"metric": "response_time_p95", "value": 540, "success": true}], got a JSON ' + _kind(items)
        )
    values: list[SLIValue] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(
                f"{source}: entry {index} is a JSON {_kind(item)}, expected an object with `metric`"
            )
        try:
            parsed = IndicatorValue.model_validate(item)
        except ValidationError as error:
            raise InputError(f"{source}: entry {index}: {_where(error)}") from None
        values.append(
            SLIValue(
                metric=parsed.metric,
                value=0.0 if parsed.value is None else parsed.value,
                success=parsed.success,
                message=parsed.message,
                compared_value=0.0 if parsed.comparedValue is None else parsed.comparedValue,
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
    return [_previous(index, item, source) for index, item in enumerate(items)]


def _previous(index: int, item: Any, source: str) -> PreviousEvaluation:
    if not isinstance(item, dict):
        raise InputError(
            f"{source}: entry {index} is a JSON {_kind(item)}, expected an evaluation.finished data object"
        )
    try:
        data = _PreviousData.model_validate(item)
    except ValidationError as error:
        raise InputError(f"{source}: entry {index}: {_where(error)}") from None
    if data.result is None:
        raise InputError(
            f"{source}: entry {index} has no `result`; give the overall result of that evaluation "
            "(pass, warning or fail), which include_result_with_score filters on"
        )
    indicators = tuple(
        PreviousIndicator(metric=r.value.metric, value=r.value.value or 0.0, success=r.value.success)
        for r in data.evaluation.indicatorResults or ()
        # An indicator result without a value carries nothing to compare with.
        if r.value is not None
    )
    return PreviousEvaluation(
        id=data.id, result=data.result, indicators=indicators, invalidated=data.invalidated
    )


def _kind(value: Any) -> str:
    names: Sequence[tuple[type, str]] = ((bool, "boolean"), (dict, "object"), (list, "list"), (str, "string"))
    for kind, name in names:
        if isinstance(value, kind):
            return name
    if value is None:
        return "null"
    return "number" if isinstance(value, int | float) else type(value).__name__
