"""What the API and the CLI ask of analytics, answered from a history store.

    metrics_report(store, project, MetricsRequest(...), now) -> MetricsReport
    whatif_report(store, WhatIfRequest(...), now) -> WhatIfReport

Both take the user's text (`30d`, an SLO file's YAML) and raise `AnalyticsInputError` with a
message that says which input is wrong and how to write it; the caller shows it as a 400 or an
`error:` line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from tidegate.qualitygate import QualityGate
from tidegate.readside.analytics.core import DEFAULT_FAILURE_WINDOW, ReportOptions
from tidegate.readside.analytics.report import MetricsReport
from tidegate.readside.analytics.source import analytics_from_store, stored_events
from tidegate.readside.analytics.whatif import INPUT_TYPES, WhatIfReport, replay, stored_evaluations
from tidegate.readside.analytics.window import DEFAULT_SINCE, WindowError, parse_since, parse_until
from tidegate.readside.history.store import HistoryStore
from tidegate.schemas.errors import FileError, TidegateError, YamlSyntaxError
from tidegate.schemas.files import load_yaml
from tidegate.schemas.slo import SLO


class AnalyticsInputError(TidegateError, ValueError):
    """An input the user gave that analytics cannot use; `field` names it (e.g. `since`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class MetricsRequest:
    since: str = DEFAULT_SINCE
    until: str | None = None
    production_stage: str | None = None
    failure_window: str | None = None
    stage_order: Sequence[str] = field(default_factory=tuple)  # the shipyard's stages, if known


@dataclass(frozen=True, slots=True)
class WhatIfRequest:
    project: str
    stage: str
    service: str
    slo: str  # the SLO file's text
    since: str = DEFAULT_SINCE
    until: str | None = None
    slo_name: str = "the SLO file"  # how to name it in messages (the file path on the CLI)


def _window(since: str, until: str | None, now: datetime) -> tuple[datetime, datetime]:
    try:
        end = parse_until(until, now)
        return end - parse_since(since), end
    except WindowError as error:
        raise AnalyticsInputError("until" if "--until" in str(error) else "since", str(error)) from None


def metrics_report(store: HistoryStore, project: str, request: MetricsRequest, now: datetime) -> MetricsReport:
    since, until = _window(request.since, request.until, now)
    failure_window = DEFAULT_FAILURE_WINDOW
    if request.failure_window:
        try:
            failure_window = parse_since(request.failure_window)
        except WindowError:
            raise AnalyticsInputError(
                "failureWindow", f"failure window {request.failure_window!r} is not a duration; write it like 24h or 2d"
            ) from None
    stages = list(request.stage_order)
    production, production_from = request.production_stage, "given"
    if production is None and stages:
        production, production_from = stages[-1], "shipyard"  # the shipyard's last stage is production
    options = ReportOptions(production_stage=production, production_stage_from=production_from,
                            stage_order=tuple(stages), failure_window=failure_window)
    return analytics_from_store(store, project).report(project, since, until, options)


def parse_slo(text: str, name: str = "the SLO file") -> QualityGate:
    """The SLO in `text` ready to score; AnalyticsInputError says what is wrong with it."""
    try:
        document = load_yaml(text, name)  # the YAML limits: a request may carry an alias bomb
    except FileError as error:
        problem = error.problems[0]
        where = f" at line {problem.line}, column {problem.column}" if problem.line is not None else ""
        what = "is not valid YAML" if isinstance(error, YamlSyntaxError) else "cannot be read"
        raise AnalyticsInputError("slo", f"{name} {what}{where}: {problem.message.removeprefix('invalid YAML: ')}") from None
    try:
        slo = SLO.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'the file'}: {str(item['msg']).removeprefix('Value error, ')}"
            for item in error.errors()
        )
        raise AnalyticsInputError("slo", f"{name} is not a valid SLO: {problems}") from None
    if not slo.objectives:
        raise AnalyticsInputError("slo", f"{name} has no objectives; a what-if needs at least one objective to score")
    gate = QualityGate(slo)
    if gate.problems:
        objective, problem = gate.problems[0]
        raise AnalyticsInputError("slo", f"{name}: objective {objective!r} has an invalid criterion: {problem}")
    return gate


def whatif_report(store: HistoryStore, request: WhatIfRequest, now: datetime) -> WhatIfReport:
    gate = parse_slo(request.slo, request.slo_name)
    since, until = _window(request.since, request.until, now)
    # Every stored evaluation up to the end of the window: the earlier ones are the baselines.
    events = stored_events(store, request.project, types=INPUT_TYPES, stage=request.stage,
                           service=request.service, before=until)
    return replay(stored_evaluations(events), gate, project=request.project, stage=request.stage,
                  service=request.service, since=since, until=until)
