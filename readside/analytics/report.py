"""The figures analytics reports, as the API returns them (camelCase JSON, like Keptn's APIs).

    MetricsReport                    one project over one window
      .dora                          DORA of the production stage (all its services)
      .quality_gates, .remediation   over every stage and service
      .stages[]                      the same three per stage (DORA = deliveries into that stage)
        .services[]                  ... and per service in that stage

Durations are in seconds; shares and rates are fractions (0.25 = 25 %), None when there is nothing
to divide by. Every list is sorted, so the same facts always give the same JSON.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class _Figures(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, populate_by_name=True)


class DurationStats(_Figures):
    count: int
    median_seconds: float | None = None
    p90_seconds: float | None = None
    mean_seconds: float | None = None


class DoraFigures(_Figures):
    """The four DORA measures for deliveries into one stage (production at project level)."""

    stage: str | None
    deployments: int  # deliveries into the stage that finished with pass or warning in the window
    deployments_per_day: float
    lead_time: DurationStats  # first sequence trigger of the keptnContext -> that delivery finished
    changes: int  # deliveries whose deployment succeeded in the window
    failed_changes: int  # ... followed within the failure window by a rollback, failed evaluation or problem
    change_failure_rate: float | None
    failure_causes: dict[str, int]  # rollback / failed_evaluation / remediation -> changes they hit
    problems: int  # problems opened in the window
    restored: int
    unresolved: int
    time_to_restore: DurationStats  # problem opened -> closed (or its remediation passed)


class ScoreBucket(_Figures):
    lower: int  # inclusive
    upper: int  # exclusive, except the last bucket, which includes 100
    count: int


class ScoreStats(_Figures):
    count: int
    minimum: float | None = None
    median: float | None = None
    mean: float | None = None
    maximum: float | None = None
    buckets: list[ScoreBucket]


class DayCount(_Figures):
    date: str  # YYYY-MM-DD (UTC)
    evaluations: int
    results: dict[str, int]


class SliFailures(_Figures):
    sli: str
    failures: int
    share: float  # of the evaluations in the window


class QualityGateFigures(_Figures):
    evaluations: int  # evaluation.finished in the window, invalidated ones left out
    evaluations_per_day: float
    results: dict[str, int]  # pass / warning / fail
    shares: dict[str, float | None]
    errored: int  # status errored (counted in fail too)
    invalidated: int
    score: ScoreStats
    daily: list[DayCount]  # days with evaluations only
    failing_slis: list[SliFailures]  # most often failing first


class ActionFigures(_Figures):
    action: str
    runs: int
    succeeded: int
    failed: int
    pending: int  # no .finished yet
    success_rate: float | None  # succeeded / (succeeded + failed)


class RemediationFigures(_Figures):
    actions: int
    succeeded: int
    failed: int
    pending: int
    success_rate: float | None
    by_action: list[ActionFigures]
    escalations: int
    escalation_reasons: dict[str, int]


class ServiceMetrics(_Figures):
    service: str
    dora: DoraFigures
    quality_gates: QualityGateFigures
    remediation: RemediationFigures


class StageMetrics(_Figures):
    stage: str
    dora: DoraFigures
    quality_gates: QualityGateFigures
    remediation: RemediationFigures
    services: list[ServiceMetrics]


class MetricsReport(_Figures):
    project: str
    since: datetime
    until: datetime
    window_days: float
    production_stage: str | None
    production_stage_from: str  # given | shipyard | inferred | none
    failure_window_seconds: float
    events: int  # distinct audit events of the project that analytics holds
    dora: DoraFigures
    quality_gates: QualityGateFigures
    remediation: RemediationFigures
    stages: list[StageMetrics]

    def to_json_dict(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True)
