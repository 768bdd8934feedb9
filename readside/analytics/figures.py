"""The figures of one scope (a stage, a service, or both) from a project's facts. Pure: no I/O.

Definitions (the report's documentation points here):
- A **delivery** is a keptnContext that dispatched a `deployment` task in a stage. It *changed* the
  stage when a `deployment.finished` succeeded (pass or warning); that time is when the change went
  live. Its sequence is the first `<stage>.<sequence>.finished` of that context and stage at or after
  the deployment was triggered (the stage lock runs one sequence per service at a time).
- **Deployment frequency**: deliveries whose sequence finished with pass or warning in the window.
- **Lead time**: from the first sequence trigger of the keptnContext (the first stage's delivery
  trigger) to that finish.
- **Change failure rate**: of the changes in the window, the share followed by a `rollback` task,
  a failed evaluation (not invalidated) or a problem, in the same stage and service, at or after the
  change and before the failure window ends, the service's next change goes live, or the report's
  end, whichever is first. A failed evaluation inside the delivery itself counts.
- **Time to restore**: a problem opens with its first `<stage>.remediation.triggered` (or a
  `sh.keptn.events.problem` OPEN) and closes with its CLOSED event or when a remediation run of it
  finishes with pass or warning, whichever is first.
Everything is selected by the events' own times, so late and repeated events change nothing.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from tidegate.readside.analytics.facts import (
    Escalated,
    EvaluationFinished,
    ProblemClosed,
    ProblemOpened,
    SequenceFinished,
    SequenceTriggered,
    TaskFinished,
    TaskTriggered,
    Where,
)
from tidegate.readside.analytics.report import (
    ActionFigures,
    DayCount,
    DoraFigures,
    DurationStats,
    QualityGateFigures,
    RemediationFigures,
    ScoreBucket,
    ScoreStats,
    SliFailures,
)

RESULTS = ("pass", "warning", "fail")
CAUSES = ("rollback", "failed_evaluation", "remediation")
BUCKET_WIDTH = 10
SECONDS_DIGITS = 3
SHARE_DIGITS = 4


@dataclass(frozen=True, slots=True)
class Window:
    since: datetime
    until: datetime

    def holds(self, moment: datetime) -> bool:
        return self.since <= moment <= self.until

    @property
    def days(self) -> float:
        return max((self.until - self.since).total_seconds(), 0.0) / 86400.0


@dataclass(frozen=True, slots=True)
class Scope:
    """Which facts count: a stage and/or a service (None: any)."""

    stage: str | None = None
    service: str | None = None

    def holds(self, stage: str, service: str) -> bool:
        return (self.stage is None or stage == self.stage) and (self.service is None or service == self.service)


@dataclass(frozen=True, slots=True)
class Delivery:
    context: str
    stage: str
    service: str
    triggered_at: datetime  # the deployment task was triggered (or finished, if its trigger is unknown)
    started_at: datetime | None  # first sequence trigger of the context, any stage
    deployed_at: datetime | None  # first successful deployment.finished
    finished: SequenceFinished | None


@dataclass(frozen=True, slots=True)
class Problem:
    key: str
    stage: str
    service: str
    opened_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Action:
    triggered: TaskTriggered
    finished: TaskFinished | None


@dataclass
class Facts:
    """A project's facts, sorted by time, with the joins every scope needs done once."""

    deliveries: list[Delivery] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    evaluations: list[EvaluationFinished] = field(default_factory=list)
    invalidated: set[str] = field(default_factory=set)  # triggered ids of invalidated evaluations
    rollbacks: list[TaskTriggered] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    escalations: list[Escalated] = field(default_factory=list)

    def stages(self) -> dict[str, set[str]]:
        """Every stage seen, with its services."""
        seen: dict[str, set[str]] = defaultdict(set)
        located: Iterable[tuple[str, str]] = (
            *((d.stage, d.service) for d in self.deliveries),
            *((p.stage, p.service) for p in self.problems),
            *((e.at.stage, e.at.service) for e in self.evaluations),
            *((r.at.stage, r.at.service) for r in self.rollbacks),
            *((a.triggered.at.stage, a.triggered.at.service) for a in self.actions),
            *((e.at.stage, e.at.service) for e in self.escalations),
        )
        for stage, service in located:
            if stage:
                services = seen[stage]
                if service:
                    services.add(service)
        return seen


class _Timed(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def at(self) -> Where: ...


_T = TypeVar("_T", bound=_Timed)


def _by_time(items: Iterable[_T]) -> list[_T]:
    # Time, then id: facts of the same instant always come in the same order.
    return sorted(items, key=lambda item: (item.at.time, item.id))


def collect(
    sequence_triggers: Iterable[SequenceTriggered],
    sequence_finishes: Iterable[SequenceFinished],
    task_triggers: Iterable[TaskTriggered],
    task_finishes: Iterable[TaskFinished],
    evaluations: Iterable[EvaluationFinished],
    invalidated: Iterable[str],
    opened: Iterable[ProblemOpened],
    closed: Iterable[ProblemClosed],
    escalations: Iterable[Escalated],
) -> Facts:
    """Join the facts of one project (in any order) into deliveries, problems and actions."""
    triggers = _by_time(sequence_triggers)
    finishes = _by_time(sequence_finishes)
    tasks = _by_time(task_triggers)
    replies = _by_time(task_finishes)
    first_trigger: dict[str, datetime] = {}
    for trigger in triggers:
        first_trigger.setdefault(trigger.at.context, trigger.at.time)
    return Facts(
        deliveries=_deliveries(first_trigger, finishes, tasks, replies),
        problems=_problems(_by_time(opened), _by_time(closed)),
        evaluations=_by_time(evaluations),
        invalidated=set(invalidated),
        rollbacks=[task for task in tasks if task.task == "rollback"],
        actions=_actions(tasks, replies),
        escalations=_by_time(escalations),
    )


def _deliveries(
    first_trigger: dict[str, datetime],
    finishes: list[SequenceFinished],
    tasks: list[TaskTriggered],
    replies: list[TaskFinished],
) -> list[Delivery]:
    located: dict[tuple[str, str], tuple[datetime, str]] = {}  # (context, stage) -> first deployment, service
    for task in tasks:
        if task.task == "deployment" and task.at.context:
            located.setdefault((task.at.context, task.at.stage), (task.at.time, task.at.service))
    deployed: dict[tuple[str, str], datetime] = {}
    for reply in replies:
        if reply.task != "deployment" or not reply.at.context:
            continue
        where = (reply.at.context, reply.at.stage)
        located.setdefault(where, (reply.at.time, reply.at.service))  # its trigger is not (yet) known
        if reply.succeeded:
            deployed.setdefault(where, reply.at.time)
    by_stage: dict[tuple[str, str], list[SequenceFinished]] = defaultdict(list)
    for finish in finishes:
        by_stage[(finish.at.context, finish.at.stage)].append(finish)
    deliveries = []
    for (context, stage), (triggered_at, service) in located.items():
        finished = next((f for f in by_stage.get((context, stage), []) if f.at.time >= triggered_at), None)
        deliveries.append(
            Delivery(context, stage, service, triggered_at, first_trigger.get(context),
                     deployed.get((context, stage)), finished)
        )
    return sorted(deliveries, key=lambda d: (d.triggered_at, d.context, d.stage))


def _problems(opened: list[ProblemOpened], closed: list[ProblemClosed]) -> list[Problem]:
    first: dict[str, ProblemOpened] = {}
    for event in opened:
        # One problem per keptnContext (a remediation loop re-triggers with the same one).
        first.setdefault(event.at.context or event.id, event)
    closes: dict[str, list[datetime]] = defaultdict(list)
    for close in closed:
        if close.at.context:
            closes[close.at.context].append(close.at.time)
    problems = []
    for key, event in first.items():
        after = [moment for moment in closes.get(key, []) if moment >= event.at.time]
        problems.append(Problem(key, event.at.stage, event.at.service, event.at.time, min(after) if after else None))
    return sorted(problems, key=lambda p: (p.opened_at, p.key))


def _actions(tasks: list[TaskTriggered], replies: list[TaskFinished]) -> list[Action]:
    answer: dict[str, TaskFinished] = {}
    for reply in replies:
        if reply.task == "action":
            answer.setdefault(reply.triggered_id, reply)  # the first answer decides
    return [Action(task, answer.get(task.id)) for task in tasks if task.task == "action"]


# --------------------------------------------------------------------- figures


def durations(seconds: Sequence[float]) -> DurationStats:
    if not seconds:
        return DurationStats(count=0)
    ordered = sorted(seconds)
    p90 = ordered[0] if len(ordered) == 1 else statistics.quantiles(ordered, n=10, method="inclusive")[8]
    return DurationStats(
        count=len(ordered),
        median_seconds=round(statistics.median(ordered), SECONDS_DIGITS),
        p90_seconds=round(p90, SECONDS_DIGITS),
        mean_seconds=round(statistics.fmean(ordered), SECONDS_DIGITS),
    )


def share(part: int, whole: int) -> float | None:
    return round(part / whole, SHARE_DIGITS) if whole else None


def per_day(count: int, window: Window) -> float:
    return round(count / window.days, SHARE_DIGITS) if window.days > 0 else float(count)


def dora(facts: Facts, scope: Scope, window: Window, failure_window: timedelta) -> DoraFigures:
    deliveries = [d for d in facts.deliveries if scope.holds(d.stage, d.service)]
    finished_ok = [
        d for d in deliveries
        if d.finished is not None and d.finished.succeeded and window.holds(d.finished.at.time)
    ]
    lead_times = [
        (d.finished.at.time - d.started_at).total_seconds()
        for d in finished_ok
        if d.finished is not None and d.started_at is not None
    ]
    changes, causes = _change_failures(facts, deliveries, scope, window, failure_window)
    problems = [p for p in facts.problems if scope.holds(p.stage, p.service) and window.holds(p.opened_at)]
    restored = [p for p in problems if p.closed_at is not None and p.closed_at <= window.until]
    return DoraFigures(
        stage=scope.stage,
        deployments=len(finished_ok),
        deployments_per_day=per_day(len(finished_ok), window),
        lead_time=durations(lead_times),
        changes=len(changes),
        failed_changes=sum(1 for hit in changes if hit),
        change_failure_rate=share(sum(1 for hit in changes if hit), len(changes)),
        failure_causes={cause: causes[cause] for cause in CAUSES},
        problems=len(problems),
        restored=len(restored),
        unresolved=len(problems) - len(restored),
        time_to_restore=durations(
            [(p.closed_at - p.opened_at).total_seconds() for p in restored if p.closed_at is not None]
        ),
    )


def _change_failures(
    facts: Facts, deliveries: list[Delivery], scope: Scope, window: Window, failure_window: timedelta
) -> tuple[list[bool], Counter[str]]:
    """For each change in the window, whether something failed it; and how many changes each cause hit."""
    signals: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)
    for rollback in facts.rollbacks:
        signals[(rollback.at.stage, rollback.at.service)].append((rollback.at.time, "rollback"))
    for evaluation in facts.evaluations:
        if evaluation.result == "fail" and not _invalidated(facts, evaluation):
            signals[(evaluation.at.stage, evaluation.at.service)].append((evaluation.at.time, "failed_evaluation"))
    for problem in facts.problems:
        signals[(problem.stage, problem.service)].append((problem.opened_at, "remediation"))
    live: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for delivery in deliveries:
        if delivery.deployed_at is not None:
            live[(delivery.stage, delivery.service)].append(delivery.deployed_at)
    outcomes: list[bool] = []
    causes: Counter[str] = Counter()
    for delivery in deliveries:
        went_live = delivery.deployed_at
        if went_live is None or not window.holds(went_live) or not scope.holds(delivery.stage, delivery.service):
            continue
        where = (delivery.stage, delivery.service)
        next_live = min((moment for moment in live[where] if moment > went_live), default=None)
        end = min(went_live + failure_window, window.until)
        hit = {cause for moment, cause in signals[where]
               if went_live <= moment <= end and (next_live is None or moment < next_live)}
        outcomes.append(bool(hit))
        causes.update(hit)
    return outcomes, causes


def _invalidated(facts: Facts, evaluation: EvaluationFinished) -> bool:
    return evaluation.triggered_id is not None and evaluation.triggered_id in facts.invalidated


def quality_gates(facts: Facts, scope: Scope, window: Window, top: int) -> QualityGateFigures:
    chosen = [e for e in facts.evaluations if scope.holds(e.at.stage, e.at.service) and window.holds(e.at.time)]
    counted = [e for e in chosen if not _invalidated(facts, e)]
    results = Counter(_result(e) for e in counted)
    daily: dict[str, Counter[str]] = defaultdict(Counter)
    for evaluation in counted:
        daily[evaluation.at.time.date().isoformat()][_result(evaluation)] += 1
    failing: Counter[str] = Counter(sli for e in counted for sli in e.failed_slis)
    ranked = sorted(failing.items(), key=lambda item: (-item[1], item[0]))[:top]
    return QualityGateFigures(
        evaluations=len(counted),
        evaluations_per_day=per_day(len(counted), window),
        results={result: results[result] for result in RESULTS},
        shares={result: share(results[result], len(counted)) for result in RESULTS},
        errored=sum(1 for e in counted if e.status == "errored"),
        invalidated=len(chosen) - len(counted),
        score=scores([e.score for e in counted if e.score is not None]),
        daily=[
            DayCount(date=day, evaluations=sum(counts.values()), results={r: counts[r] for r in RESULTS})
            for day, counts in sorted(daily.items())
        ],
        failing_slis=[SliFailures(sli=sli, failures=count, share=share(count, len(counted)) or 0.0)
                      for sli, count in ranked],
    )


def _result(evaluation: EvaluationFinished) -> str:
    return evaluation.result if evaluation.result in RESULTS else "fail"


def scores(values: Sequence[float]) -> ScoreStats:
    counts = [0] * (100 // BUCKET_WIDTH)
    for value in values:
        counts[min(max(int(value // BUCKET_WIDTH), 0), len(counts) - 1)] += 1
    buckets = [ScoreBucket(lower=i * BUCKET_WIDTH, upper=(i + 1) * BUCKET_WIDTH, count=c) for i, c in enumerate(counts)]
    if not values:
        return ScoreStats(count=0, buckets=buckets)
    return ScoreStats(
        count=len(values),
        minimum=round(min(values), SHARE_DIGITS),
        median=round(statistics.median(values), SHARE_DIGITS),
        mean=round(statistics.fmean(sorted(values)), SHARE_DIGITS),
        maximum=round(max(values), SHARE_DIGITS),
        buckets=buckets,
    )


def remediation(facts: Facts, scope: Scope, window: Window) -> RemediationFigures:
    actions = [
        a for a in facts.actions
        if scope.holds(a.triggered.at.stage, a.triggered.at.service) and window.holds(a.triggered.at.time)
    ]
    by_name: dict[str, list[Action]] = defaultdict(list)
    for action in actions:
        by_name[action.triggered.action or "unknown"].append(action)
    escalations = [e for e in facts.escalations if scope.holds(e.at.stage, e.at.service) and window.holds(e.at.time)]
    total = _action_figures("all", actions)
    return RemediationFigures(
        actions=total.runs,
        succeeded=total.succeeded,
        failed=total.failed,
        pending=total.pending,
        success_rate=total.success_rate,
        by_action=[_action_figures(name, runs) for name, runs in sorted(by_name.items())],
        escalations=len(escalations),
        escalation_reasons=dict(sorted(Counter(e.reason for e in escalations).items())),
    )


def _action_figures(name: str, actions: list[Action]) -> ActionFigures:
    succeeded = sum(1 for a in actions if a.finished is not None and a.finished.succeeded)
    failed = sum(1 for a in actions if a.finished is not None and not a.finished.succeeded)
    return ActionFigures(
        action=name,
        runs=len(actions),
        succeeded=succeeded,
        failed=failed,
        pending=len(actions) - succeeded - failed,
        success_rate=share(succeeded, succeeded + failed),
    )
