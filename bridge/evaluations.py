"""Quality gates as the Bridge shows them: the heatmap, the score over time and one evaluation's
breakdown ("why did the gate fail?"). Pure: built from stored `evaluation.finished` events.

The event data is lighthouse's (reference §4.7): `evaluation.indicatorResults[]` with value,
comparedValue, status, score, keySli and pass/warning targets. Weights and the total-score
thresholds are not in that list: they are read from `evaluation.sloFileContent` (the SLO file the
evaluation used, base64), as Keptn's Bridge did.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from pydantic import ValidationError

from tidegate.schemas.errors import FileError
from tidegate.schemas.files import load_yaml
from tidegate.schemas.slo import SLO

from .records import EventRecord, mapping, number, parse_time, text
from .states import short_time

EVALUATION_FINISHED = "sh.keptn.event.evaluation.finished"
EVALUATION_INVALIDATED = "sh.keptn.event.evaluation.invalidated"
SLI_STATUSES = frozenset({"pass", "warning", "fail", "info"})
_PERCENT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*%?\s*$")


# --------------------------------------------------------------------- one evaluation


@dataclass(frozen=True, slots=True)
class TargetRow:
    criteria: str
    target_value: float | None
    violated: bool


@dataclass(frozen=True, slots=True)
class IndicatorRow:
    name: str
    metric: str
    value: float | None
    compared_value: float | None
    status: str
    score: float | None
    weight: int | None
    key_sli: bool
    success: bool
    message: str | None
    pass_targets: list[TargetRow]
    warning_targets: list[TargetRow]

    @property
    def violated_targets(self) -> list[TargetRow]:
        return [t for t in [*self.pass_targets, *self.warning_targets] if t.violated]

    @property
    def has_criteria(self) -> bool:
        return bool(self.pass_targets or self.warning_targets)

    @property
    def change(self) -> float | None:
        """Relative change against the baseline, in percent (None without a usable baseline)."""
        if self.value is None or not self.compared_value:
            return None
        return (self.value - self.compared_value) / abs(self.compared_value) * 100


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One `evaluation.finished`, read for people."""

    id: str
    keptn_context: str | None
    triggered_id: str | None
    project: str
    stage: str
    service: str
    time: datetime
    result: str
    status: str | None
    score: float | None
    message: str | None
    source: str
    time_start: datetime | None
    time_end: datetime | None
    indicators: list[IndicatorRow]
    compared_events: list[str]
    pass_threshold: float | None
    warning_threshold: float | None
    slo_problem: str | None
    invalidated: bool
    labels: dict[str, str]

    @property
    def failed_key_slis(self) -> list[IndicatorRow]:
        return [row for row in self.indicators if row.key_sli and row.status == "fail"]

    @property
    def violations(self) -> list[tuple[IndicatorRow, TargetRow]]:
        """Every violated target of every indicator that did not pass: the answer to "why"."""
        return [(row, target) for row in self.indicators if row.status in ("fail", "warning")
                for target in row.violated_targets]

    def verdict(self) -> str:
        """One sentence: the result and the reason, from the score, the thresholds and the key SLIs."""
        score = _score_text(self.score)
        if self.result in ("pass", "warning") and not self.indicators:
            return f"{self.result}: {self.message or 'no objectives were scored'}"
        keys = self.failed_key_slis
        if self.result == "fail" and keys:
            names = ", ".join(row.name for row in keys)
            return f"fail: the key SLI {names} failed, which fails the whole evaluation (score {score})"
        if self.result == "fail" and self.pass_threshold is not None:
            bound = self.warning_threshold if self.warning_threshold is not None else self.pass_threshold
            which = "warning" if self.warning_threshold is not None else "pass"
            return f"fail: the score {score} is below the {which} threshold of {_score_text(bound)}"
        if self.result == "warning" and self.pass_threshold is not None:
            return (f"warning: the score {score} is below the pass threshold of {_score_text(self.pass_threshold)}"
                    + (f" and reaches the warning threshold of {_score_text(self.warning_threshold)}"
                       if self.warning_threshold is not None else ""))
        if self.result == "pass" and self.pass_threshold is not None:
            return f"pass: the score {score} reaches the pass threshold of {_score_text(self.pass_threshold)}"
        return f"{self.result or 'unknown'}: {self.message or 'score ' + score}"


def _score_text(value: float | None) -> str:
    if value is None:
        return "none"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _targets(raw: Any) -> list[TargetRow]:
    if not isinstance(raw, list):
        return []
    rows = []
    for item in raw:
        if isinstance(item, dict):
            rows.append(TargetRow(criteria=text(item.get("criteria")) or "", target_value=number(item.get("targetValue")),
                                  violated=item.get("violated") is True))
    return rows


@dataclass(frozen=True, slots=True)
class SloSummary:
    weights: dict[str, int]
    pass_threshold: float | None
    warning_threshold: float | None
    problem: str | None = None


def slo_summary(encoded: Any) -> SloSummary:
    """Weights and total-score thresholds of the SLO file an evaluation used (base64 in the event)."""
    if not isinstance(encoded, str) or not encoded:
        return SloSummary({}, None, None)
    try:
        content = base64.b64decode(encoded, validate=True).decode("utf-8")
        slo = SLO.model_validate(load_yaml(content, "slo.yaml"))  # the YAML limits: event data may be a bomb
    except (binascii.Error, ValueError, UnicodeDecodeError, FileError, ValidationError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return SloSummary({}, None, None, f"the SLO file stored with this evaluation cannot be read: {first}")
    weights = {objective.sli: objective.weight for objective in slo.objectives}
    total = slo.total_score
    return SloSummary(
        weights,
        _threshold(total.pass_ if total is not None else None),
        _threshold(total.warning if total is not None else None),
    )


def _threshold(value: str | None) -> float | None:
    if not value:
        return None
    match = _PERCENT.match(value)
    return float(match.group(1)) if match else None


def read_evaluation(body: dict[str, Any], *, invalidated: bool = False) -> Evaluation:
    """An `evaluation.finished` event (structured JSON as stored) as an Evaluation."""
    event = EventRecord.of(body)
    data = event.data
    block = mapping(data.get("evaluation"))
    slo = slo_summary(block.get("sloFileContent"))
    indicators = []
    for item in block.get("indicatorResults") or []:
        if not isinstance(item, dict):
            continue
        value = mapping(item.get("value"))
        metric = text(value.get("metric")) or ""
        status = text(item.get("status")) or "info"
        indicators.append(
            IndicatorRow(
                name=text(item.get("displayName")) or metric,
                metric=metric,
                value=number(value.get("value")) if value.get("success", True) is not False else None,
                compared_value=number(value.get("comparedValue")),
                status=status if status in SLI_STATUSES else "info",
                score=number(item.get("score")),
                weight=slo.weights.get(metric),
                key_sli=item.get("keySli") is True,
                success=value.get("success", True) is not False,
                message=text(value.get("message")),
                pass_targets=_targets(item.get("passTargets")),
                warning_targets=_targets(item.get("warningTargets")),
            )
        )
    labels = mapping(data.get("labels"))
    return Evaluation(
        id=event.id,
        keptn_context=event.keptn_context,
        triggered_id=event.triggered_id,
        project=event.project or "",
        stage=event.stage or "",
        service=event.service or "",
        time=event.time,
        result=text(block.get("result")) or event.result or "",
        status=event.status,
        score=number(block.get("score")),
        message=event.message,
        source=event.source,
        time_start=parse_time(block.get("timeStart")),
        time_end=parse_time(block.get("timeEnd")),
        indicators=indicators,
        compared_events=[e for e in block.get("comparedEvents") or [] if isinstance(e, str)],
        pass_threshold=slo.pass_threshold,
        warning_threshold=slo.warning_threshold,
        slo_problem=slo.problem,
        invalidated=invalidated,
        labels={str(k): str(v) for k, v in labels.items()},
    )


# --------------------------------------------------------------------- the heatmap


@dataclass(frozen=True, slots=True)
class HeatCell:
    status: str  # pass | warning | fail | info | missing
    value: float | None
    score: float | None
    title: str


@dataclass(frozen=True, slots=True)
class HeatColumn:
    evaluation_id: str
    time: datetime
    heading: str
    result: str
    score: float | None
    invalidated: bool


@dataclass(frozen=True, slots=True)
class HeatRow:
    name: str
    key_sli: bool
    cells: list[HeatCell]


@dataclass(frozen=True, slots=True)
class Heatmap:
    """SLIs (rows) by evaluations (columns, oldest left); the first row is the total score."""

    columns: list[HeatColumn]
    score_cells: list[HeatCell]
    rows: list[HeatRow]
    hidden_rows: int


def heatmap(evaluations: Sequence[Evaluation], *, max_rows: int = 20) -> Heatmap:
    """The heatmap of evaluations given newest first (as the store answers), shown oldest first."""
    ordered = sorted(evaluations, key=lambda e: e.time)
    columns = [
        HeatColumn(e.id, e.time, short_time(e.time), e.result, e.score, e.invalidated) for e in ordered
    ]
    score_cells = [
        HeatCell(e.result if e.result in SLI_STATUSES else "info", e.score, e.score,
                 f"{short_time(e.time)}: score {_score_text(e.score)}, {e.result or 'no result'}")
        for e in ordered
    ]
    names: list[str] = []
    key_slis: set[str] = set()
    for evaluation in reversed(ordered):  # newest first: the current SLIs come first
        for row in evaluation.indicators:
            if row.name not in names:
                names.append(row.name)
            if row.key_sli:
                key_slis.add(row.name)
    rows = []
    for name in names[:max_rows]:
        cells = []
        for evaluation in ordered:
            found = next((row for row in evaluation.indicators if row.name == name), None)
            if found is None:
                cells.append(HeatCell("missing", None, None, f"{short_time(evaluation.time)}: {name} not evaluated"))
                continue
            shown = "no value" if found.value is None else f"value {found.value:g}"
            cells.append(HeatCell(found.status, found.value, found.score,
                                  f"{short_time(evaluation.time)}: {name} {shown}, {found.status}"))
        rows.append(HeatRow(name, name in key_slis, cells))
    return Heatmap(columns, score_cells, rows, max(0, len(names) - max_rows))


# --------------------------------------------------------------------- the score over time

_PAD = 24.0  # above 100 and below 0
CHART_LEFT = 40.0  # room for the axis labels
CHART_RIGHT = 48.0  # room for the threshold labels


@dataclass(frozen=True, slots=True)
class ChartPoint:
    x: float
    y: float
    score: float
    result: str
    label: str
    evaluation_id: str


@dataclass(frozen=True, slots=True)
class ScoreChart:
    """An SVG line chart's geometry (viewBox 0 0 width height), score 0..100 bottom to top."""

    left: ClassVar[float] = CHART_LEFT
    right: ClassVar[float] = CHART_RIGHT
    width: int
    height: int
    points: list[ChartPoint]
    pass_y: float | None
    warning_y: float | None

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)

    def y_of(self, score: float) -> float:
        return _y(score, self.height)




def _y(score: float, height: int) -> float:
    bounded = max(0.0, min(100.0, score))
    return height - _PAD - bounded / 100.0 * (height - 2 * _PAD)


def score_chart(evaluations: Iterable[Evaluation], *, width: int = 640, height: int = 200) -> ScoreChart:
    ordered = [e for e in sorted(evaluations, key=lambda e: e.time) if e.score is not None and not e.invalidated]
    count = len(ordered)
    span = width - CHART_LEFT - CHART_RIGHT
    points = []
    for index, evaluation in enumerate(ordered):
        x = CHART_LEFT + (span / 2 if count == 1 else span * index / (count - 1))
        score = evaluation.score if evaluation.score is not None else 0.0
        points.append(ChartPoint(x, _y(score, height), score, evaluation.result,
                                 f"{short_time(evaluation.time)}: {_score_text(score)} ({evaluation.result})",
                                 evaluation.id))
    newest = ordered[-1] if ordered else None
    return ScoreChart(
        width,
        height,
        points,
        _y(newest.pass_threshold, height) if newest is not None and newest.pass_threshold is not None else None,
        _y(newest.warning_threshold, height) if newest is not None and newest.warning_threshold is not None else None,
    )


def invalidation_event(evaluation: Evaluation, reason: str, source: str) -> dict[str, Any]:
    """The `evaluation.invalidated` event (API form) that withdraws an evaluation, as Keptn's Bridge sent it:
    `triggeredid` = the evaluation's `.triggered` id, the reason in `data.evaluation.reason` and as message."""
    return {
        "type": EVALUATION_INVALIDATED,
        "source": source,
        "shkeptncontext": evaluation.keptn_context,
        "triggeredid": evaluation.triggered_id,
        "data": {
            "project": evaluation.project,
            "stage": evaluation.stage,
            "service": evaluation.service,
            "message": reason,
            "evaluation": {"reason": reason},
        },
    }
