"""The Prometheus client against a fake Prometheus behind httpx's MockTransport."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import pytest

from tidegate.connectors.prometheus.client import PrometheusClient, auth_from_env, redact
from tidegate.connectors.prometheus.errors import PrometheusRefused, PrometheusUnavailable

AT = datetime(2021, 5, 10, 10, 21, tzinfo=UTC)
SUCCESS = {"status": "success", "data": {"resultType": "vector", "result": []}}


def client(handler: Callable[[httpx.Request], httpx.Response], **options: object) -> PrometheusClient:
    options.setdefault("backoff", 0)
    return PrometheusClient("http://prometheus.test:9090", transport=httpx.MockTransport(handler), **options)  # type: ignore[arg-type]


async def test_posts_the_query_and_time_and_returns_the_answer() -> None:
    seen: list[httpx.Request] = []

    def prometheus(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=SUCCESS)

    async with client(prometheus) as prom:
        assert await prom.query_instant("up{job='a'}", AT) == SUCCESS
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/api/v1/query"
    form = parse_qs(request.content.decode())
    assert form == {"query": ["up{job='a'}"], "time": ["1620642060.000"]}


async def test_a_base_url_with_a_path_prefix_is_kept() -> None:
    seen: list[str] = []

    def prometheus(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=SUCCESS)

    prom = PrometheusClient("http://gw.test/prometheus/", transport=httpx.MockTransport(prometheus))
    await prom.query_instant("up", AT)
    await prom.aclose()
    assert seen == ["/prometheus/api/v1/query"]


async def test_an_error_answer_with_json_is_returned_for_the_parser() -> None:
    rejected = {"status": "error", "errorType": "bad_data", "error": "parse error"}
    async with client(lambda _: httpx.Response(400, json=rejected)) as prom:
        assert await prom.query_instant("sum(", AT) == rejected


async def test_server_errors_are_retried_until_an_answer_comes() -> None:
    answers = iter([httpx.Response(503, text="overloaded"), httpx.Response(502), httpx.Response(200, json=SUCCESS)])
    async with client(lambda _: next(answers), retries=2) as prom:
        assert await prom.query_instant("up", AT) == SUCCESS


async def test_server_errors_after_all_retries_make_prometheus_unavailable() -> None:
    calls = 0

    def prometheus(_: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(500, text="boom")

    async with client(prometheus, retries=2) as prom:
        with pytest.raises(PrometheusUnavailable, match="boom") as raised:
            await prom.query_instant("up", AT)
    assert calls == 3
    assert "http://prometheus.test:9090" in str(raised.value)


async def test_connection_errors_are_retried_then_reported() -> None:
    calls = 0

    def prometheus(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("Connection refused", request=request)

    async with client(prometheus, retries=1) as prom:
        with pytest.raises(PrometheusUnavailable, match="is Prometheus running"):
            await prom.query_instant("up", AT)
    assert calls == 2


async def test_timeouts_are_reported_as_unavailable() -> None:
    def prometheus(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with client(prometheus, retries=0) as prom:
        with pytest.raises(PrometheusUnavailable, match="no answer in time"):
            await prom.query_instant("up", AT)


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (401, "", "PROMETHEUS_TOKEN"),
        (403, "", "PROMETHEUS_USER"),
        (404, "", "base URL"),
        (200, "<html>login</html>", "not JSON"),
        (302, "", "unexpected HTTP 302"),
    ],
)
async def test_answers_that_are_not_the_query_api_are_refusals_with_a_hint(status: int, body: str, words: str) -> None:
    async with client(lambda _: httpx.Response(status, text=body)) as prom:
        with pytest.raises(PrometheusRefused, match=words):
            await prom.query_instant("up", AT)


async def test_a_bearer_token_from_the_environment_is_sent() -> None:
    seen: list[str | None] = []

    def prometheus(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200, json=SUCCESS)

    env = {"PROMETHEUS_URL": "http://prometheus.test", "PROMETHEUS_TOKEN": "s3cret"}
    async with PrometheusClient.from_env(env=env, transport=httpx.MockTransport(prometheus)) as prom:
        await prom.query_instant("up", AT)
        assert "s3cret" not in repr(prom)
    assert seen == ["Bearer s3cret"]


async def test_basic_auth_from_the_environment_is_sent() -> None:
    seen: list[str | None] = []

    def prometheus(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(200, json=SUCCESS)

    env = {"PROMETHEUS_USER": "keptn", "PROMETHEUS_PASSWORD": "pw"}
    async with PrometheusClient.from_env("http://prometheus.test", env=env, transport=httpx.MockTransport(prometheus)) as prom:
        await prom.query_instant("up", AT)
    assert seen == ["Basic " + base64.b64encode(b"keptn:pw").decode()]


def test_no_auth_when_the_environment_names_none() -> None:
    assert auth_from_env({}) is None


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"PROMETHEUS_TOKEN": "t", "PROMETHEUS_USER": "u"}, "not both"),
        ({"PROMETHEUS_USER": "u"}, "needs both"),
    ],
)
def test_contradictory_or_partial_auth_is_refused(env: dict[str, str], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        auth_from_env(env)


def test_no_url_is_refused_with_the_variable_to_set() -> None:
    with pytest.raises(ValueError, match="PROMETHEUS_URL"):
        PrometheusClient.from_env(env={})


def test_credentials_in_the_url_never_reach_messages() -> None:
    assert redact("https://user:pw@prom.example:9090/x") == "https://prom.example:9090/x"
    prom = PrometheusClient("https://user:pw@prom.example:9090")
    assert "pw" not in repr(prom)
    assert "pw" not in prom.url
