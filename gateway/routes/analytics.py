"""Analytics on the gateway, under `/api/analytics/v1` (the `x-token` header like every `/api` route).

    GET  /api/analytics/v1/metrics?project=P[&since=30d][&until=ISO][&productionStage=S][&failureWindow=24h]
         -> MetricsReport: DORA, quality-gate trends and remediation outcomes, per stage and service
    POST /api/analytics/v1/evaluations/replay   {project, stage, service, slo: "<slo.yaml text>", since?, until?}
         -> WhatIfReport: which stored verdicts the SLO would change, and why

The production stage is the shipyard's last stage unless `productionStage` says otherwise.
Figures are computed from the history store on each request (the same store the other read APIs
use), so they are exactly what a replay of `audit` would give. `install(app, registry)` adds the
routes and puts Tidegate's shared collectors (streams.metrics) into the gateway's `/metrics`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from tidegate.gateway.auth import require_token
from tidegate.gateway.context import Gateway, gateway
from tidegate.gateway.errors import invalid, not_found
from tidegate.gateway.rules import Problem
from tidegate.readside.analytics.report import MetricsReport
from tidegate.readside.analytics.service import (
    AnalyticsInputError,
    MetricsRequest,
    WhatIfRequest,
    metrics_report,
    whatif_report,
)
from tidegate.readside.analytics.whatif import WhatIfReport
from tidegate.readside.analytics.window import DEFAULT_SINCE
from tidegate.readside.history.store import EventFilter
from tidegate.streams.metrics import SharedCollectors, default_metrics

PREFIX = "/api/analytics/v1"
router = APIRouter(prefix=PREFIX, tags=["analytics"], dependencies=[Depends(require_token)])

Gw = Annotated[Gateway, Depends(gateway)]


class ReplayRequest(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    project: str = Field(min_length=1)
    stage: str = Field(min_length=1)
    service: str = Field(min_length=1)
    slo: str = Field(min_length=1, description="the SLO file to score with (slo.yaml text)")
    since: str = DEFAULT_SINCE
    until: str | None = None


def _known(gw: Gateway, project: str) -> None:
    # A deleted project keeps its history: it is known while it has stored events.
    if gw.catalog.shipyard(project) is None and not gw.history.events(EventFilter(project=project), page_size=1).items:
        raise not_found("project", project, "create it with `tidegate create project`, or check the name")


def _refused(error: AnalyticsInputError, where: str) -> Exception:
    return invalid([Problem(f"{where}:{error.field}", error.message)])


@router.get("/metrics", response_model=MetricsReport, summary="DORA, quality-gate and remediation figures of a project")
def metrics(
    gw: Gw,
    project: Annotated[str, Query(min_length=1)],
    since: str = DEFAULT_SINCE,
    until: Annotated[str | None, Query(description="end of the window, ISO 8601 (default: now)")] = None,
    production_stage: Annotated[str | None, Query(alias="productionStage")] = None,
    failure_window: Annotated[str | None, Query(alias="failureWindow", description="default 24h")] = None,
) -> MetricsReport:
    # A plain `def`: FastAPI runs it in its thread pool, so reading the store never blocks the loop.
    _known(gw, project)
    request = MetricsRequest(since=since, until=until, production_stage=production_stage,
                             failure_window=failure_window, stage_order=tuple(gw.catalog.stages(project)))
    try:
        return metrics_report(gw.history, project, request, gw.clock())
    except AnalyticsInputError as error:
        raise _refused(error, "query") from None


@router.post("/evaluations/replay", response_model=WhatIfReport,
             summary="Re-score a service's stored evaluations with another SLO (what-if)")
def replay_evaluations(gw: Gw, body: ReplayRequest) -> WhatIfReport:
    _known(gw, body.project)
    request = WhatIfRequest(project=body.project, stage=body.stage, service=body.service, slo=body.slo,
                            since=body.since, until=body.until, slo_name="the SLO in the request")
    try:
        return whatif_report(gw.history, request, gw.clock())
    except AnalyticsInputError as error:
        raise _refused(error, "body") from None


def install(app: FastAPI, registry: CollectorRegistry | None = None) -> None:
    """Add the analytics routes; with `registry`, also serve the shared collectors in it."""
    app.include_router(router)
    if registry is not None:
        default_metrics()  # created now, so every shared series is there from the first scrape
        registry.register(SharedCollectors())
