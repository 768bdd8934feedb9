"""The project-level pages' view models: dashboard tiles, sequence lists and filters, and the
environment (a column per stage, a card per service). Pure: built from what `data.py` loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tidegate.readside.history.sequences import SequenceView, StageState

from .evaluations import Evaluation
from .records import EventRecord, mapping, number, text
from .states import Group, group, label, tone

REMEDIATION = "remediation"


@dataclass(frozen=True, slots=True)
class StageInfo:
    name: str
    parents: list[str]
    sequences: list[str]


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    """A project's shape: its stages (shipyard order), services per stage and deployed images."""

    name: str
    stages: list[StageInfo]
    services: dict[str, list[str]]
    deployed: dict[tuple[str, str], str | None] = field(default_factory=dict)

    @property
    def service_names(self) -> list[str]:
        return sorted({name for names in self.services.values() for name in names})

    def stage(self, name: str) -> StageInfo | None:
        return next((s for s in self.stages if s.name == name), None)


# --------------------------------------------------------------------- sequence rows and filters


@dataclass(frozen=True, slots=True)
class StageChip:
    name: str
    state: str
    label: str
    tone: str


@dataclass(frozen=True, slots=True)
class SequenceRow:
    keptn_context: str
    project: str
    service: str
    name: str
    state: str
    label: str
    tone: str
    result: str | None
    time: datetime
    updated: datetime
    stages: list[StageChip]
    problem_title: str | None


def _chip(stage: StageState) -> StageChip:
    return StageChip(stage.name, stage.state, label(stage.state), tone(stage.state, stage.result))


def sequence_row(view: SequenceView, stage_order: Sequence[str] = ()) -> SequenceRow:
    order = {name: index for index, name in enumerate(stage_order)}
    stages = sorted(view.stages, key=lambda s: order.get(s.name, len(order)))
    state = view.state
    return SequenceRow(
        keptn_context=view.keptn_context,
        project=view.project,
        service=view.service,
        name=view.name,
        state=state,
        label=label(state),
        tone=tone(state, view.result),
        result=view.result,
        time=view.time,
        updated=view.updated,
        stages=[_chip(s) for s in stages],
        problem_title=view.problem_title,
    )


@dataclass(frozen=True, slots=True)
class SequenceQuery:
    """The sequence list's filters; empty means any."""

    service: str = ""
    stage: str = ""
    name: str = ""
    state: str = ""

    @property
    def active(self) -> bool:
        return bool(self.service or self.stage or self.name or self.state)


def matches(view: SequenceView, query: SequenceQuery) -> bool:
    """Service and name must match; with a stage, the sequence must have reached it and the state
    filter applies to that stage; without one, to the overall state."""
    if query.service and view.service != query.service:
        return False
    if query.name and view.name != query.name:
        return False
    if query.stage:
        stage = view.stage(query.stage)
        if stage is None:
            return False
        return not query.state or stage.state == query.state or (query.state == "finished" and stage.state in (
            "succeeded", "errored", "aborted", "timedOut"))
    return not query.state or view.state == query.state


def filter_sequences(views: Iterable[SequenceView], query: SequenceQuery) -> list[SequenceView]:
    return [view for view in views if matches(view, query)]


@dataclass(frozen=True, slots=True)
class FilterOptions:
    services: list[str]
    stages: list[str]
    names: list[str]
    states: list[str]


def filter_options(project: ProjectInfo, views: Iterable[SequenceView], states: Sequence[str]) -> FilterOptions:
    names = {stage_name for stage in project.stages for stage_name in stage.sequences}
    names.update(view.name for view in views if view.name)
    names.add("evaluation")
    return FilterOptions(project.service_names, [s.name for s in project.stages], sorted(names), list(states))


# --------------------------------------------------------------------- dashboard


@dataclass(frozen=True, slots=True)
class ProjectTile:
    name: str
    stages: list[str]
    service_count: int
    running: int
    failed: int
    waiting_for_approval: int


def project_tile(project: ProjectInfo, views: Iterable[SequenceView]) -> ProjectTile:
    running = failed = approvals = 0
    for view in views:
        state = view.state
        if state in ("started", "paused", "triggered", "waiting", "waitingForApproval"):
            running += 1
        if state == "waitingForApproval" or any(s.state == "waitingForApproval" for s in view.stages):
            approvals += 1
        if view.done and view.result == "fail":
            failed += 1
    return ProjectTile(project.name, [s.name for s in project.stages], len(project.service_names), running, failed,
                       approvals)


# --------------------------------------------------------------------- environment


@dataclass(frozen=True, slots=True)
class SequenceRef:
    keptn_context: str
    name: str
    state: str
    label: str
    tone: str
    time: datetime
    image: str | None


@dataclass(frozen=True, slots=True)
class Approval:
    """An open `approval.triggered` a person has to answer."""

    triggered_id: str
    keptn_context: str
    stage: str
    service: str
    time: datetime
    previous_result: str | None
    evaluation_score: float | None
    image: str | None
    sequence_state: str | None


@dataclass(frozen=True, slots=True)
class Problem:
    keptn_context: str
    title: str
    state: str
    label: str
    tone: str
    time: datetime


@dataclass(frozen=True, slots=True)
class EvaluationBadge:
    evaluation_id: str
    result: str
    score: float | None
    time: datetime
    tone: str


@dataclass(frozen=True, slots=True)
class ServiceCard:
    name: str
    deployed_image: str | None
    last_evaluation: EvaluationBadge | None
    running: list[SequenceRef]
    queued: list[SequenceRef]
    failed: list[SequenceRef]
    approvals: list[Approval]
    problems: list[Problem]


@dataclass(frozen=True, slots=True)
class StageColumn:
    name: str
    parents: list[str]
    services: list[ServiceCard]

    @property
    def approval_count(self) -> int:
        return sum(len(card.approvals) for card in self.services)

    @property
    def problem_count(self) -> int:
        return sum(len(card.problems) for card in self.services)


def read_approval(event: EventRecord, view: SequenceView | None) -> Approval:
    data = event.data
    evaluation = mapping(data.get("evaluation"))
    change = mapping(data.get("configurationChange"))
    values = mapping(change.get("values"))
    stage = event.stage or ""
    stage_state = view.stage(stage) if view is not None else None
    return Approval(
        triggered_id=event.id,
        keptn_context=event.keptn_context or "",
        stage=stage,
        service=event.service or "",
        time=event.time,
        previous_result=event.result or text(evaluation.get("result")),
        evaluation_score=number(evaluation.get("score")),
        image=text(values.get("image")),
        sequence_state=stage_state.state if stage_state is not None else None,
    )


def pending_approvals(events: Iterable[EventRecord], views: dict[str, SequenceView]) -> list[Approval]:
    """Open approvals a person can still answer: the run they belong to has not ended."""
    found = []
    for event in events:
        view = views.get(event.keptn_context or "")
        approval = read_approval(event, view)
        if view is not None and approval.sequence_state is not None and approval.sequence_state not in (
            "started", "waitingForApproval", "paused", "triggered", "waiting"
        ):
            continue
        found.append(approval)
    return found


def _ref(view: SequenceView, stage: StageState) -> SequenceRef:
    return SequenceRef(view.keptn_context, stage.sequence or view.name, stage.state, label(stage.state),
                       tone(stage.state, stage.result), view.updated, stage.image)


def environment(
    project: ProjectInfo,
    views: Sequence[SequenceView],
    approvals: Sequence[Approval],
    evaluations: Sequence[Evaluation],
) -> list[StageColumn]:
    """Stage columns; `views` and `evaluations` newest first (as the store answers)."""
    columns = []
    for stage in project.stages:
        cards = []
        for service in project.services.get(stage.name, []):
            running: list[SequenceRef] = []
            queued: list[SequenceRef] = []
            failed: list[SequenceRef] = []
            problems: list[Problem] = []
            latest_finished_seen = False
            for view in views:
                if view.service != service:
                    continue
                stage_state = view.stage(stage.name)
                if stage_state is None:
                    continue
                kind = group(stage_state.state, stage_state.result)
                if view.name == REMEDIATION and kind in (Group.RUNNING, Group.QUEUED):
                    problems.append(Problem(view.keptn_context, view.problem_title or "problem", stage_state.state,
                                            label(stage_state.state), tone(stage_state.state), view.time))
                    continue
                if kind is Group.RUNNING:
                    running.append(_ref(view, stage_state))
                elif kind is Group.QUEUED:
                    queued.append(_ref(view, stage_state))
                elif not latest_finished_seen:
                    # Only the latest finished run says how the service stands; older failures are history.
                    latest_finished_seen = True
                    if kind is Group.FAILED:
                        failed.append(_ref(view, stage_state))
            latest = next((e for e in evaluations if e.stage == stage.name and e.service == service
                           and not e.invalidated), None)
            badge = (EvaluationBadge(latest.id, latest.result, latest.score, latest.time, tone(latest.result))
                     if latest is not None else None)
            cards.append(ServiceCard(
                name=service,
                deployed_image=project.deployed.get((stage.name, service)),
                last_evaluation=badge,
                running=running,
                queued=queued,
                failed=failed,
                approvals=[a for a in approvals if a.stage == stage.name and a.service == service],
                problems=problems,
            ))
        columns.append(StageColumn(stage.name, stage.parents, cards))
    return columns
