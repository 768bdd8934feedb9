"""Analytics: the audit log turned into numbers people use (issue 10).

    Analytics().apply(event) / .report(project, since, until, ReportOptions(...)) -> MetricsReport
        DORA (deployment frequency, lead time, change failure rate, time to restore), quality-gate
        trends and remediation outcomes, per project, stage and service; a pure, idempotent fold
    analytics_from_store(store, project)      the fold over the history store (= a replay of audit)
    replay_evaluations(...) -> WhatIfReport   what-if: stored evaluations re-scored with another SLO
    parse_since("30d"), parse_until(...)      report windows

The HTTP API (`tidegate.gateway.routes.analytics`, under `/api/analytics/v1`) and the CLI
(`tidegate get metrics`, `tidegate evaluate --replay`) sit on top of these.
"""

from tidegate.readside.analytics.core import (
    DEFAULT_FAILURE_WINDOW,
    Analytics,
    ReportOptions,
    production_stage,
)
from tidegate.readside.analytics.facts import Fact, facts_of
from tidegate.readside.analytics.report import (
    DoraFigures,
    DurationStats,
    MetricsReport,
    QualityGateFigures,
    RemediationFigures,
    ServiceMetrics,
    StageMetrics,
)
from tidegate.readside.analytics.source import analytics_from_store, stored_events
from tidegate.readside.analytics.window import DEFAULT_SINCE, WindowError, parse_since, parse_until

__all__ = [
    "DEFAULT_FAILURE_WINDOW",
    "DEFAULT_SINCE",
    "Analytics",
    "DoraFigures",
    "DurationStats",
    "Fact",
    "MetricsReport",
    "QualityGateFigures",
    "RemediationFigures",
    "ReportOptions",
    "ServiceMetrics",
    "StageMetrics",
    "WindowError",
    "analytics_from_store",
    "facts_of",
    "parse_since",
    "parse_until",
    "production_stage",
    "stored_events",
]
