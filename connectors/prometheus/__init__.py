"""The Prometheus SLI provider: PromQL from Keptn's SLI files, answers from Prometheus, one value per indicator.

    from tidegate.connectors.prometheus import PrometheusClient, get_slis, finished_data, merge_indicators

    indicators = merge_indicators(project_sli, stage_sli, service_sli)
    async with PrometheusClient.from_env() as prometheus:
        values = await get_slis(request, indicators, prometheus)

Modules: `sli` (pure: merging, placeholders, built-in queries, answer parsing, overall result),
`client` (httpx, auth from env, retries), `provider` (the two combined), `errors` (the error tree).
"""

from tidegate.connectors.prometheus.client import PrometheusClient, auth_from_env
from tidegate.connectors.prometheus.errors import (
    EmptyResult,
    InvalidTimeframe,
    NotANumber,
    PrometheusError,
    PrometheusRefused,
    PrometheusUnavailable,
    QueryNotAnswered,
    QueryRejected,
    SeveralSeries,
    SliError,
    UnexpectedAnswer,
    UnknownIndicator,
    UnsafeValue,
)
from tidegate.connectors.prometheus.provider import (
    PROVIDER_NAME,
    InstantQueries,
    finished_data,
    get_slis,
    handles,
)
from tidegate.connectors.prometheus.sli import (
    BUILTIN_INDICATORS,
    QueryContext,
    build_query,
    builtin_query,
    merge_indicators,
    overall_result,
    parse_instant_answer,
    substitute_placeholders,
)

__all__ = [
    "BUILTIN_INDICATORS",
    "PROVIDER_NAME",
    "EmptyResult",
    "InstantQueries",
    "InvalidTimeframe",
    "NotANumber",
    "PrometheusClient",
    "PrometheusError",
    "PrometheusRefused",
    "PrometheusUnavailable",
    "QueryContext",
    "QueryNotAnswered",
    "QueryRejected",
    "SeveralSeries",
    "SliError",
    "UnexpectedAnswer",
    "UnknownIndicator",
    "UnsafeValue",
    "auth_from_env",
    "build_query",
    "builtin_query",
    "finished_data",
    "get_slis",
    "handles",
    "merge_indicators",
    "overall_result",
    "parse_instant_answer",
    "substitute_placeholders",
]
