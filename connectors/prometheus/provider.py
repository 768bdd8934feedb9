"""The Prometheus SLI provider: a `get-sli.triggered` request in, one value per indicator out.

    values = await get_slis(GetSLITriggered.model_validate(event.data), merged_indicators, client)
    data = finished_data(request, values)      # the `get-sli.finished` data block

Every indicator is queried at the timeframe's end, concurrently. Nothing an indicator can go wrong
with is raised: it becomes `success: false` with a message naming the indicator, the query and why,
so the Kafka shell only has to send what it gets back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from tidegate.connectors.prometheus.errors import PrometheusError, QueryNotAnswered, SliError
from tidegate.connectors.prometheus.sli import (
    QueryContext,
    build_query,
    context_from_request,
    merge_indicators,
    overall_result,
    parse_instant_answer,
    timeframe_error,
)
from tidegate.schemas.events import Status
from tidegate.schemas.payloads import GetSLIFinished, GetSLITriggered, IndicatorValue
from tidegate.schemas.sli import SLI

PROVIDER_NAME = "prometheus"


class InstantQueries(Protocol):
    """What the provider needs from a Prometheus client (PrometheusClient has it)."""

    async def query_instant(self, query: str, time: datetime) -> Mapping[str, Any]: ...


def handles(request: GetSLITriggered) -> bool:
    """Whether this provider answers the request (Keptn's prometheus-service answered `sliProvider: prometheus`)."""
    return request.get_sli.sliProvider.strip().lower() == PROVIDER_NAME


async def get_slis(
    request: GetSLITriggered, sli_config: SLI | Mapping[str, str] | None, client: InstantQueries
) -> list[IndicatorValue]:
    """One value per requested indicator, in request order. `sli_config`: the merged SLI file or its indicators."""
    indicators = merge_indicators(sli_config)
    try:
        context = context_from_request(request)
    except ValueError as error:
        return [_failed(timeframe_error(name, str(error))) for name in request.get_sli.indicators]
    return list(
        await asyncio.gather(*(_indicator_value(name, indicators, context, client) for name in request.get_sli.indicators))
    )


async def _indicator_value(
    name: str, indicators: Mapping[str, str], context: QueryContext, client: InstantQueries
) -> IndicatorValue:
    query = ""
    try:
        query = build_query(name, indicators, context)
        try:
            answer = await client.query_instant(query, context.end)
        except PrometheusError as error:
            raise QueryNotAnswered(name, query, f"could not query Prometheus: {error}") from error
        value = parse_instant_answer(name, query, answer)
    except SliError as error:
        return _failed(error)
    return IndicatorValue(metric=name, value=value, success=True, message="")


def _failed(error: SliError) -> IndicatorValue:
    # Keptn sends 0 as the value of a failed indicator; `success: false` is what consumers look at.
    return IndicatorValue(metric=error.indicator, value=0.0, success=False, message=str(error))


def finished_data(request: GetSLITriggered, values: list[IndicatorValue]) -> GetSLIFinished:
    """The `get-sli.finished` data: the request's project/stage/service/labels, the values, and the overall result."""
    result, message = overall_result(values)
    return GetSLIFinished.model_validate(
        {
            "project": request.project,
            "stage": request.stage,
            "service": request.service,
            "labels": request.labels,
            "status": Status.SUCCEEDED,
            "result": result,
            "message": message,
            "get-sli": {"start": request.get_sli.start, "end": request.get_sli.end, "indicatorValues": values},
        }
    )
