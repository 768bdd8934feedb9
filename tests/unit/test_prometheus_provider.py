"""get_slis end to end against a fake Prometheus (the real client behind httpx's MockTransport)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import httpx

from tidegate.connectors.prometheus.client import PrometheusClient
from tidegate.connectors.prometheus.provider import finished_data, get_slis, handles
from tidegate.schemas.events import Result, Status
from tidegate.schemas.payloads import GetSLITriggered


def request(indicators: list[str], **get_sli: Any) -> GetSLITriggered:
    block: dict[str, Any] = {
        "sliProvider": "prometheus",
        "start": "2021-05-10T09:51:00.000Z",
        "end": "2021-05-10T10:21:00.000Z",
        "indicators": indicators,
        "customFilters": [],
    }
    block.update(get_sli)
    return GetSLITriggered.model_validate(
        {"project": "sockshop", "stage": "staging", "service": "carts", "deployment": "canary", "get-sli": block}
    )


def value_answer(value: str) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, value]}]}}


class FakePrometheus:
    """Answers by query text; records what it was asked."""

    def __init__(self, answers: dict[str, httpx.Response]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        query, at = form["query"][0], form["time"][0]
        self.asked.append((query, at))
        return self.answers.get(query, httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": []}}))


def client_for(fake: FakePrometheus) -> PrometheusClient:
    return PrometheusClient("http://prometheus.test", transport=httpx.MockTransport(fake), backoff=0)


async def test_values_in_request_order_with_failures_per_indicator() -> None:
    sli = {
        "response_time_p95": "p95{job='$SERVICE-$PROJECT-$STAGE-$DEPLOYMENT'}[$DURATION_SECONDS]",
        "error_rate": "errors{job='$SERVICE'}",
        "broken": "sum(",
    }
    fake = FakePrometheus(
        {
            "p95{job='carts-sockshop-staging-canary'}[1800s]": httpx.Response(200, json=value_answer("412.5")),
            "sum(": httpx.Response(400, json={"status": "error", "errorType": "bad_data", "error": "unexpected end"}),
        }
    )
    async with client_for(fake) as prom:
        values = await get_slis(request(["response_time_p95", "error_rate", "broken", "cpu_usage"]), sli, prom)

    assert [v.metric for v in values] == ["response_time_p95", "error_rate", "broken", "cpu_usage"]
    p95, error_rate, broken, cpu = values
    assert (p95.success, p95.value, p95.message) == (True, 412.5, "")
    assert not error_rate.success and "no data" in error_rate.message and "errors{job='carts'}" in error_rate.message
    assert not broken.success and "unexpected end" in broken.message
    assert not cpu.success and "no query" in cpu.message
    # Every query is evaluated at the end of the timeframe; the unknown indicator is never sent.
    assert {at for _, at in fake.asked} == {"1620642060.000"}
    assert len(fake.asked) == 3


async def test_builtin_indicators_are_queried_when_the_sli_file_has_none() -> None:
    fake = FakePrometheus({})
    async with client_for(fake) as prom:
        await get_slis(request(["throughput"]), None, prom)
    assert fake.asked[0][0] == "sum(rate(http_requests_total{job='carts-sockshop-staging-canary'}[1800s]))"


async def test_prometheus_down_is_reported_per_indicator_not_raised() -> None:
    def down(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=req)

    prom = PrometheusClient("http://prometheus.test", transport=httpx.MockTransport(down), retries=1, backoff=0)
    values = await get_slis(request(["throughput", "error_rate"]), None, prom)
    await prom.aclose()
    assert [v.success for v in values] == [False, False]
    assert all("could not query Prometheus" in v.message and "http://prometheus.test" in v.message for v in values)


async def test_an_unusable_timeframe_fails_every_indicator_without_querying() -> None:
    fake = FakePrometheus({})
    async with client_for(fake) as prom:
        values = await get_slis(request(["throughput", "error_rate"], end=None), None, prom)
    assert fake.asked == []
    assert [v.metric for v in values] == ["throughput", "error_rate"]
    assert all(not v.success and "no end time" in v.message for v in values)


async def test_finished_data_carries_values_and_the_overall_result() -> None:
    fake = FakePrometheus({"a": httpx.Response(200, json=value_answer("1"))})
    req = request(["x", "y"])
    async with client_for(fake) as prom:
        values = await get_slis(req, {"x": "a", "y": "b"}, prom)
    data = finished_data(req, values)
    dumped = data.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["status"] == Status.SUCCEEDED.value
    assert dumped["result"] == Result.WARNING.value
    assert (dumped["project"], dumped["stage"], dumped["service"]) == ("sockshop", "staging", "carts")
    assert dumped["get-sli"]["start"] == "2021-05-10T09:51:00.000Z"
    assert [(v["metric"], v["success"]) for v in dumped["get-sli"]["indicatorValues"]] == [("x", True), ("y", False)]


def test_only_prometheus_requests_are_handled() -> None:
    assert handles(request([]))
    assert not handles(request([], sliProvider="dynatrace"))
