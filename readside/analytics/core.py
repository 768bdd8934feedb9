"""Analytics: a pure fold over audit events, and reports computed from what it holds.

    analytics = Analytics()
    for event in audit_events:            # any order, repeats allowed
        analytics.apply(event)            # idempotent by event id
    analytics.report("sockshop", since, until)   # -> MetricsReport

`apply` keeps only the facts an event holds (`facts.py`), per project, keyed by the event id, so
a redelivered or replayed event changes nothing. `report` joins and counts those facts for a
window (`figures.py`) by the events' own times, so a late event lands where it belongs and the
same events always give the same report: replaying `audit` from the start reproduces the figures.
Pure: no I/O; the clock is a parameter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tidegate.readside.analytics import figures
from tidegate.readside.analytics.facts import (
    Escalated,
    EvaluationFinished,
    EvaluationInvalidated,
    Fact,
    ProblemClosed,
    ProblemOpened,
    SequenceFinished,
    SequenceTriggered,
    TaskFinished,
    TaskTriggered,
    facts_of,
)
from tidegate.readside.analytics.report import MetricsReport, ServiceMetrics, StageMetrics
from tidegate.schemas.events import KeptnEvent

DEFAULT_FAILURE_WINDOW = timedelta(hours=24)
DEFAULT_TOP_SLIS = 10


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """How to read the facts: which stage is production, how long after a change a failure counts."""

    production_stage: str | None = None  # None: inferred (see `production_stage`)
    production_stage_from: str = "given"  # given | shipyard (how the caller chose it)
    stage_order: Sequence[str] = ()  # the shipyard's order for the per-stage list; others follow by name
    failure_window: timedelta = DEFAULT_FAILURE_WINDOW
    top_slis: int = DEFAULT_TOP_SLIS


class Analytics:
    """Facts of every project seen, by event id. Not thread-safe: one owner applies and reports."""

    def __init__(self) -> None:
        self._facts: dict[str, dict[str, tuple[Fact, ...]]] = {}  # project -> event id -> facts
        self._events: Counter[str] = Counter()  # project -> distinct events applied

    def apply(self, event: KeptnEvent) -> bool:
        """Take in one audit event; False if it was applied before (or belongs to no project)."""
        project = event.project
        if project is None:
            return False
        known = self._facts.setdefault(project, {})
        if event.id in known:
            return False
        facts = facts_of(event)
        known[event.id] = facts
        self._events[project] += 1
        return True

    def apply_all(self, events: Iterable[KeptnEvent]) -> int:
        """Apply each event; returns how many were new."""
        return sum(1 for event in events if self.apply(event))

    def projects(self) -> list[str]:
        return sorted(self._facts)

    def events(self, project: str) -> int:
        return self._events[project]

    def report(
        self, project: str, since: datetime, until: datetime, options: ReportOptions | None = None
    ) -> MetricsReport:
        """The figures of `project` for events with since <= time <= until."""
        options = options or ReportOptions()
        window = figures.Window(_utc(since), _utc(until))
        if window.until < window.since:
            raise ValueError(f"the window ends ({until.isoformat()}) before it starts ({since.isoformat()})")
        facts = self._collected(project)
        production, production_from = options.production_stage, options.production_stage_from
        if production is None:
            production = production_stage(facts)
            production_from = "inferred" if production is not None else "none"
        failure_window = options.failure_window
        top = options.top_slis
        stages = facts.stages()
        ordered = [s for s in options.stage_order if s in stages] + sorted(s for s in stages if s not in options.stage_order)
        whole = figures.Scope()
        return MetricsReport(
            project=project,
            since=window.since,
            until=window.until,
            window_days=round(window.days, 4),
            production_stage=production,
            production_stage_from=production_from,
            failure_window_seconds=failure_window.total_seconds(),
            events=self._events[project],
            dora=figures.dora(
                # Without any delivery there is no production stage, and nothing to measure.
                facts if production else figures.Facts(), figures.Scope(stage=production), window, failure_window
            ),
            quality_gates=figures.quality_gates(facts, whole, window, top),
            remediation=figures.remediation(facts, whole, window),
            stages=[
                StageMetrics(
                    stage=stage,
                    dora=figures.dora(facts, figures.Scope(stage=stage), window, failure_window),
                    quality_gates=figures.quality_gates(facts, figures.Scope(stage=stage), window, top),
                    remediation=figures.remediation(facts, figures.Scope(stage=stage), window),
                    services=[
                        ServiceMetrics(
                            service=service,
                            dora=figures.dora(facts, figures.Scope(stage, service), window, failure_window),
                            quality_gates=figures.quality_gates(facts, figures.Scope(stage, service), window, top),
                            remediation=figures.remediation(facts, figures.Scope(stage, service), window),
                        )
                        for service in sorted(stages[stage])
                    ],
                )
                for stage in ordered
            ],
        )

    def _collected(self, project: str) -> figures.Facts:
        facts = [fact for group in self._facts.get(project, {}).values() for fact in group]
        return figures.collect(
            sequence_triggers=[f for f in facts if isinstance(f, SequenceTriggered)],
            sequence_finishes=[f for f in facts if isinstance(f, SequenceFinished)],
            task_triggers=[f for f in facts if isinstance(f, TaskTriggered)],
            task_finishes=[f for f in facts if isinstance(f, TaskFinished)],
            evaluations=[f for f in facts if isinstance(f, EvaluationFinished)],
            invalidated=[f.triggered_id for f in facts if isinstance(f, EvaluationInvalidated)],
            opened=[f for f in facts if isinstance(f, ProblemOpened)],
            closed=[f for f in facts if isinstance(f, ProblemClosed)],
            escalations=[f for f in facts if isinstance(f, Escalated)],
        )


def production_stage(facts: figures.Facts) -> str | None:
    """The stage deliveries reach last: for each keptnContext, the stage of its last delivery; the
    most common of those (ties: by name). None without deliveries."""
    last: dict[str, figures.Delivery] = {}
    for delivery in facts.deliveries:  # sorted by time: the last one per context wins
        last[delivery.context] = delivery
    counts = Counter(delivery.stage for delivery in last.values() if delivery.stage)
    if not counts:
        return None
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[0][0]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
