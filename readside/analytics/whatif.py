"""What-if: re-score a service's stored evaluations with another SLO file. Pure: no I/O.

    stored = stored_evaluations(events)               # evaluation.finished, get-sli.finished, .invalidated
    report = replay(stored, QualityGate(new_slo), since, until)
    report.changed                                     # verdicts that would differ, and why

Each evaluation is scored again with the SLI values it received at the time: the `indicatorValues`
of the `get-sli.finished` that answered it (the latest one of its keptnContext, stage and service
at or before the verdict), so SLIs the old SLO did not score are there too; without that event, the
values recorded in its `indicatorResults`. All stored evaluations are re-scored oldest first and
each new verdict becomes the history the next one compares with, as if the new SLO had been in
force all along (relative criteria and `include_result_with_score` then behave as they would
have). Invalidated evaluations are left out, as Keptn leaves them out of comparisons; evaluations
whose SLI provider failed, or that never got values, cannot be re-scored and are listed as skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from tidegate.qualitygate import (
    EvaluationResult,
    InputError,
    PreviousEvaluation,
    PreviousIndicator,
    QualityGate,
    SLIValue,
    sli_values_from_json,
)
from tidegate.schemas.events import KeptnEvent, task_type

EVALUATION_FINISHED = task_type("evaluation", "finished")
EVALUATION_INVALIDATED = task_type("evaluation", "invalidated")
GET_SLI_FINISHED = task_type("get-sli", "finished")
INPUT_TYPES = (EVALUATION_FINISHED, EVALUATION_INVALIDATED, GET_SLI_FINISHED)


@dataclass(frozen=True, slots=True)
class StoredEvaluation:
    """One `evaluation.finished` with the SLI values it was scored on."""

    id: str
    time: datetime
    keptn_context: str | None
    result: str
    score: float | None
    statuses: Mapping[str, str]  # SLI -> its status in that verdict
    values: tuple[SLIValue, ...]
    values_from: str  # "get-sli.finished" | "indicatorResults" | "" (none)
    sli_failure: str | None  # the get-sli.finished said result fail: the gate fails (Keptn #6096)
    skip_reason: str | None  # why it cannot be re-scored (None: it can)
    invalidated: bool


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)


class IndicatorChange(_Model):
    sli: str
    value: float | None  # None: not measured then
    was: str | None  # its status then (None: the old SLO did not score it)
    now: str
    violated: list[str]  # the new SLO's criteria it misses


class Rescored(_Model):
    id: str
    time: datetime
    keptn_context: str | None
    was_result: str
    was_score: float | None
    now_result: str
    now_score: float
    message: str  # the new verdict's message
    indicators: list[IndicatorChange]  # objectives whose status differs
    unmeasured: list[str]  # SLIs the new SLO asks for that were not measured then
    values_from: str


class Skipped(_Model):
    id: str
    time: datetime
    reason: str


class WhatIfReport(_Model):
    project: str
    stage: str
    service: str
    since: datetime
    until: datetime
    evaluations: int  # stored in the window, invalidated ones left out
    rescored: int
    changed: list[Rescored]  # oldest first
    unchanged: int
    skipped: list[Skipped]
    transitions: dict[str, int]  # "pass->fail": how many verdicts would move that way

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def stored_evaluations(events: Iterable[KeptnEvent]) -> list[StoredEvaluation]:
    """The evaluations among `events` (one service's), joined with their SLI answers; oldest first."""
    finished: list[KeptnEvent] = []
    answers: dict[tuple[str, str, str], list[KeptnEvent]] = {}
    invalidated: set[str] = set()
    seen: set[str] = set()
    for event in events:
        if event.id in seen:
            continue
        seen.add(event.id)
        if event.type == EVALUATION_FINISHED:
            finished.append(event)
        elif event.type == GET_SLI_FINISHED and event.shkeptncontext:
            answers.setdefault(_where(event), []).append(event)
        elif event.type == EVALUATION_INVALIDATED and event.triggeredid:
            invalidated.add(event.triggeredid)
    stored = []
    for event in sorted(finished, key=lambda e: (_utc(e.time), e.id)):
        candidates = [a for a in answers.get(_where(event), []) if _utc(a.time) <= _utc(event.time)]
        answer = max(candidates, key=lambda a: (_utc(a.time), a.id)) if candidates else None
        stored.append(_stored(event, answer, event.triggeredid in invalidated if event.triggeredid else False))
    return stored


def _where(event: KeptnEvent) -> tuple[str, str, str]:
    return event.shkeptncontext or "", event.stage or "", event.service or ""


def _stored(event: KeptnEvent, answer: KeptnEvent | None, invalidated: bool) -> StoredEvaluation:
    data = event.data
    block = data.get("evaluation") if isinstance(data.get("evaluation"), dict) else {}
    assert isinstance(block, dict)
    results = [r for r in block.get("indicatorResults") or [] if isinstance(r, dict)]
    statuses = {
        str(r["value"]["metric"]): str(r.get("status") or "")
        for r in results
        if isinstance(r.get("value"), dict) and isinstance(r["value"].get("metric"), str)
    }
    score = block.get("score")
    values: tuple[SLIValue, ...] = ()
    values_from = ""
    sli_failure: str | None = None
    skip: str | None = None
    if answer is not None:
        status = answer.data.get("status")
        if status in ("errored", "aborted"):
            skip = f"its SLI provider failed then ({status}: {answer.data.get('message') or 'no message'})"
        else:
            sli_block = answer.data.get("get-sli") if isinstance(answer.data.get("get-sli"), dict) else {}
            assert isinstance(sli_block, dict)
            try:
                values = tuple(sli_values_from_json(sli_block.get("indicatorValues") or [], "get-sli.finished"))
                values_from = "get-sli.finished"
            except InputError as error:
                skip = f"its SLI values cannot be read: {error}"
            if answer.data.get("result") == "fail":
                sli_failure = str(answer.data.get("message") or "")
    if skip is None and not values:
        recorded = [r["value"] for r in results if isinstance(r.get("value"), dict)]
        try:
            values = tuple(sli_values_from_json(recorded, "evaluation.finished indicatorResults"))
            values_from = "indicatorResults" if values else ""
        except InputError as error:
            skip = f"its recorded SLI values cannot be read: {error}"
    if skip is None and not values:
        skip = f"it received no SLI values (it ended with: {data.get('message') or data.get('result')})"
    return StoredEvaluation(
        id=event.id,
        time=_utc(event.time),
        keptn_context=event.shkeptncontext,
        result=str(data.get("result") or ""),
        score=float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
        statuses=statuses,
        values=values,
        values_from=values_from,
        sli_failure=sli_failure,
        skip_reason=skip,
        invalidated=invalidated,
    )


def replay(
    evaluations: Iterable[StoredEvaluation],
    gate: QualityGate,
    *,
    project: str,
    stage: str,
    service: str,
    since: datetime,
    until: datetime,
) -> WhatIfReport:
    """Re-score `evaluations` (oldest first) with `gate`; report those with since <= time <= until."""
    since, until = _utc(since), _utc(until)
    history: list[PreviousEvaluation] = []  # newest first, as the engine wants it
    changed: list[Rescored] = []
    skipped: list[Skipped] = []
    transitions: Counter[str] = Counter()
    counted = rescored = 0
    for stored in sorted(evaluations, key=lambda e: (e.time, e.id)):
        if stored.invalidated:
            continue
        inside = since <= stored.time <= until
        counted += inside
        if stored.skip_reason is not None:
            if inside:
                skipped.append(Skipped(id=stored.id, time=stored.time, reason=stored.skip_reason))
            continue
        verdict = gate.evaluate(stored.values, history, sli_failure=stored.sli_failure)
        history.insert(0, _as_previous(stored.id, verdict))
        if not inside:
            continue
        rescored += 1
        now = verdict.result.value
        if now != stored.result:
            transitions[f"{stored.result}->{now}"] += 1
            changed.append(_rescored(stored, verdict))
    return WhatIfReport(
        project=project,
        stage=stage,
        service=service,
        since=since,
        until=until,
        evaluations=counted,
        rescored=rescored,
        changed=changed,
        unchanged=rescored - len(changed),
        skipped=skipped,
        transitions=dict(sorted(transitions.items())),
    )


def _as_previous(ident: str, verdict: EvaluationResult) -> PreviousEvaluation:
    return PreviousEvaluation(
        id=ident,
        result=verdict.result.value,
        indicators=tuple(PreviousIndicator(i.metric, i.value, i.success) for i in verdict.indicator_results),
    )


def _rescored(stored: StoredEvaluation, verdict: EvaluationResult) -> Rescored:
    measured = {value.metric for value in stored.values}
    changes = []
    for indicator in verdict.indicator_results:
        was = stored.statuses.get(indicator.metric)
        now = indicator.status.value
        if was == now:
            continue
        violated = [t.criteria for t in (*indicator.pass_targets, *indicator.warning_targets) if t.violated]
        changes.append(
            IndicatorChange(
                sli=indicator.metric,
                value=None if indicator.value_missing else indicator.value,
                was=was,
                now=now,
                violated=violated,
            )
        )
    return Rescored(
        id=stored.id,
        time=stored.time,
        keptn_context=stored.keptn_context,
        was_result=stored.result,
        was_score=stored.score,
        now_result=verdict.result.value,
        now_score=round(verdict.score, 4),
        message=verdict.message,
        indicators=changes,
        unmeasured=sorted({i.metric for i in verdict.indicator_results if i.metric not in measured}),
        values_from=stored.values_from,
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
