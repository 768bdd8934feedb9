"""get_slis against a real Prometheus scraping the real demo service (fast 0.11.1 in dev, slow 0.11.2 in staging)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from deploy.local._process import free_port
from tests.integration.prometheus_fixtures import (  # noqa: F401
    DemoServices,
    LocalPrometheus,
    demo_services,
    local_prometheus,
)
from tidegate.connectors.prometheus.client import PrometheusClient
from tidegate.connectors.prometheus.provider import finished_data, get_slis
from tidegate.schemas.events import Result
from tidegate.schemas.payloads import GetSLITriggered

pytestmark = pytest.mark.integration

# Sockshop-style SLI file: queries select the scrape job `<service>-<project>-<stage>`.
SLI = {
    "response_time_p95": (
        "histogram_quantile(0.95, sum by(le) (rate(http_request_duration_seconds_bucket"
        '{job="$SERVICE-$PROJECT-$STAGE",handler="/carts"}[$DURATION_SECONDS])))'
    ),
    "throughput": 'sum(rate(http_requests_total{job="$SERVICE-$PROJECT-$STAGE",handler="/carts"}[$DURATION_SECONDS]))',
    "missing_metric": 'sum(rate(no_such_metric_total{job="$SERVICE-$PROJECT-$STAGE"}[$DURATION_SECONDS]))',
}
FAST_REQUESTS = 30
SLOW_REQUESTS = 8


@dataclass(frozen=True)
class Timeframe:
    start: datetime
    end: datetime


def _count_query(job: str) -> str:
    return f'sum(http_request_duration_seconds_count{{job="{job}",handler="/carts"}})'


@pytest.fixture(scope="module")
def timeframe(demo_services: DemoServices, local_prometheus: LocalPrometheus) -> Iterator[Timeframe]:  # noqa: F811
    """Both releases scraped, under load, and every request visible in Prometheus; the window around the load."""
    fast = demo_services.start("0.11.1")
    slow = demo_services.start("0.11.2")
    local_prometheus.scrape({"carts-sockshop-dev": [fast.address], "carts-sockshop-staging": [slow.address]})
    for job in ("carts-sockshop-dev", "carts-sockshop-staging"):
        # A zero sample before the load, so rate() over the window sees the whole burst.
        local_prometheus.wait_for(_count_query(job), lambda v: v == 0, f"a first scrape of {job}")
    start = datetime.now(UTC) - timedelta(seconds=2)

    with httpx.Client(timeout=30) as http, ThreadPoolExecutor(max_workers=SLOW_REQUESTS) as pool:
        answers = list(pool.map(lambda _: http.get(f"{slow.url}/carts").status_code, range(SLOW_REQUESTS)))
        answers += [http.get(f"{fast.url}/carts").status_code for _ in range(FAST_REQUESTS)]
    assert set(answers) == {200}

    local_prometheus.wait_for(_count_query("carts-sockshop-dev"), lambda v: v == FAST_REQUESTS, "the fast load")
    local_prometheus.wait_for(_count_query("carts-sockshop-staging"), lambda v: v == SLOW_REQUESTS, "the slow load")
    yield Timeframe(start, datetime.now(UTC))


def request(stage: str, timeframe: Timeframe, indicators: list[str]) -> GetSLITriggered:
    return GetSLITriggered.model_validate(
        {
            "project": "sockshop",
            "stage": stage,
            "service": "carts",
            "get-sli": {
                "sliProvider": "prometheus",
                "start": timeframe.start.isoformat(),
                "end": timeframe.end.isoformat(),
                "indicators": indicators,
            },
        }
    )


async def test_p95_of_the_slow_release_is_higher_than_of_the_fast_one(
    timeframe: Timeframe, local_prometheus: LocalPrometheus  # noqa: F811
) -> None:
    async with PrometheusClient(local_prometheus.url) as prometheus:
        (fast,) = await get_slis(request("dev", timeframe, ["response_time_p95"]), SLI, prometheus)
        (slow,) = await get_slis(request("staging", timeframe, ["response_time_p95"]), SLI, prometheus)
    assert fast.success, fast.message
    assert slow.success, slow.message
    assert fast.value is not None and slow.value is not None
    assert fast.value < slow.value
    # Every slow request sleeps at least 540 ms, so its p95 lies in a bucket above 0.5 s.
    assert slow.value >= 0.5


async def test_throughput_is_positive_and_a_missing_metric_fails_with_a_message(
    timeframe: Timeframe, local_prometheus: LocalPrometheus  # noqa: F811
) -> None:
    req = request("dev", timeframe, ["throughput", "missing_metric"])
    async with PrometheusClient(local_prometheus.url) as prometheus:
        throughput, missing = await get_slis(req, SLI, prometheus)
    assert throughput.success and throughput.value is not None and throughput.value > 0, throughput.message
    assert not missing.success
    assert "'missing_metric'" in missing.message
    assert "no data" in missing.message
    assert "no_such_metric_total" in missing.message
    assert finished_data(req, [throughput, missing]).result is Result.WARNING


async def test_a_bad_query_is_reported_with_prometheus_reason(
    timeframe: Timeframe, local_prometheus: LocalPrometheus  # noqa: F811
) -> None:
    async with PrometheusClient(local_prometheus.url) as prometheus:
        (broken,) = await get_slis(request("dev", timeframe, ["broken"]), {"broken": "sum(rate(x[5m]"}, prometheus)
    assert not broken.success
    assert "'broken'" in broken.message
    assert "bad_data" in broken.message


async def test_prometheus_down_is_reported_not_raised(timeframe: Timeframe) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    req = request("dev", timeframe, ["response_time_p95", "throughput"])
    async with PrometheusClient(nobody, retries=1, backoff=0.01) as prometheus:
        values = await get_slis(req, SLI, prometheus)
    assert [v.success for v in values] == [False, False]
    assert all(nobody in v.message and "is Prometheus running" in v.message for v in values)
    data = finished_data(req, values)
    assert data.result is Result.FAIL
    assert (data.message or "").startswith("unable to retrieve metrics")


async def test_a_label_cannot_rewrite_the_query_to_pass_a_gate(
    timeframe: Timeframe, local_prometheus: LocalPrometheus  # noqa: F811
) -> None:
    """The attack: whoever triggers the evaluation sets a label that closes the matcher and adds
    `or vector(1)`. Pasted as Keptn did, the indicator is 1 whatever the service does; escaped, the label
    is one odd handler name and the indicator has no data."""
    query = ('sum(rate(http_requests_total{job="$SERVICE-$PROJECT-$STAGE",handler="$LABEL.handler",code="500"}'
             "[$DURATION_SECONDS]))")
    attack = 'x"}[1m])) or vector(1) or sum(rate(http_requests_total{handler="x'
    req = request("dev", timeframe, ["server_errors"])
    req = req.model_copy(update={"labels": {"handler": attack}})
    async with PrometheusClient(local_prometheus.url) as prometheus:
        pasted = query.replace("$LABEL.handler", attack).replace("$SERVICE-$PROJECT-$STAGE", "carts-sockshop-dev")
        pasted = pasted.replace("$DURATION_SECONDS", "60s")
        answer = await prometheus.query_instant(pasted, timeframe.end)
        assert float(answer["data"]["result"][0]["value"][1]) == 1.0, "the attack works on a pasted query"
        (errors,) = await get_slis(req, {"server_errors": query}, prometheus)
    assert not errors.success and errors.value in (None, 0)
    assert "no data" in errors.message
