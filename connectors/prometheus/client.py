"""An async client for Prometheus's query API: auth from the environment, timeouts, retries with backoff.

    async with PrometheusClient.from_env() as prometheus:
        answer = await prometheus.query_instant("sum(rate(http_requests_total[5m]))", end)

`query_instant` returns Prometheus's JSON answer unchanged (also for `status: error`); what the answer
means is decided by `sli.parse_instant_answer`. Only transport failures and 5xx are retried.

Environment (Keptn's prometheus-service used the same names):
    PROMETHEUS_URL                            base URL, e.g. http://127.0.0.1:19190
    PROMETHEUS_TOKEN                          bearer token, or
    PROMETHEUS_USER + PROMETHEUS_PASSWORD     basic auth
Secrets are never logged and never appear in error messages or reprs.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_none,
    wait_random,
)
from tenacity.wait import wait_base

from tidegate.connectors.prometheus.errors import PrometheusRefused, PrometheusUnavailable

URL_ENV = "PROMETHEUS_URL"
TOKEN_ENV = "PROMETHEUS_TOKEN"
USER_ENV = "PROMETHEUS_USER"
PASSWORD_ENV = "PROMETHEUS_PASSWORD"
QUERY_PATH = "/api/v1/query"
# Prometheus answers a bad or failing query with a JSON error body and one of these codes.
_ANSWERS_WITH_JSON = {200, 400, 422}


class BearerToken(httpx.Auth):
    """`Authorization: Bearer <token>`; the token stays out of reprs."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerToken(<hidden>)"


def auth_from_env(env: Mapping[str, str]) -> httpx.Auth | None:
    """The auth the environment asks for, or None; ValueError if it asks for two kinds at once."""
    token = env.get(TOKEN_ENV, "")
    user = env.get(USER_ENV, "")
    password = env.get(PASSWORD_ENV, "")
    if token and (user or password):
        raise ValueError(f"set either {TOKEN_ENV} or {USER_ENV}/{PASSWORD_ENV} for Prometheus, not both")
    if token:
        return BearerToken(token)
    if user or password:
        if not (user and password):
            raise ValueError(f"basic auth for Prometheus needs both {USER_ENV} and {PASSWORD_ENV}")
        return httpx.BasicAuth(user, password)
    return None


def redact(url: str) -> str:
    """`url` without user and password, for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class _ServerFailed(Exception):
    """A 5xx answer: worth retrying."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}: {response.text.strip()[:300]}")


class PrometheusClient:
    """Queries one Prometheus. `transport` lets tests put a fake Prometheus behind the real client."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url:
            raise ValueError(f"no Prometheus URL: set {URL_ENV}, e.g. http://127.0.0.1:19190")
        if retries < 0:
            raise ValueError("retries must not be negative")
        self.url = redact(base_url.rstrip("/"))
        self._attempts = retries + 1
        # Exponential backoff with jitter, so several connectors do not retry in lockstep.
        self._wait: wait_base = (
            wait_exponential(multiplier=backoff, max=max_backoff) + wait_random(0, backoff) if backoff > 0 else wait_none()
        )
        self._http = httpx.AsyncClient(base_url=base_url, auth=auth, timeout=timeout, transport=transport)

    @classmethod
    def from_env(cls, base_url: str | None = None, env: Mapping[str, str] | None = None, **options: Any) -> PrometheusClient:
        """A client for `base_url` (default `$PROMETHEUS_URL`) with the auth the environment gives."""
        env = os.environ if env is None else env
        return cls(base_url or env.get(URL_ENV, ""), auth=auth_from_env(env), **options)

    def __repr__(self) -> str:
        return f"PrometheusClient({self.url!r})"

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def query_instant(self, query: str, time: datetime) -> dict[str, Any]:
        """`POST /api/v1/query` evaluated at `time`; Prometheus's JSON answer, successful or not."""
        form = {"query": query, "time": f"{time.timestamp():.3f}"}
        response = await self._post(QUERY_PATH, form)
        if response.status_code in (401, 403):
            raise PrometheusRefused(
                self.url,
                f"HTTP {response.status_code}: not allowed to query; check {TOKEN_ENV} or {USER_ENV}/{PASSWORD_ENV}",
            )
        if response.status_code == 404:
            raise PrometheusRefused(self.url, f"HTTP 404 for {QUERY_PATH}: {URL_ENV} must be the server's base URL")
        if response.status_code not in _ANSWERS_WITH_JSON:
            raise PrometheusRefused(self.url, f"unexpected HTTP {response.status_code}: {response.text.strip()[:300]}")
        try:
            answer = response.json()
        except ValueError:
            raise PrometheusRefused(
                self.url, f"the answer to {QUERY_PATH} is not JSON; is {URL_ENV} the Prometheus server?"
            ) from None
        if not isinstance(answer, dict):
            raise PrometheusRefused(self.url, f"the answer to {QUERY_PATH} is not a JSON object")
        return answer

    async def _post(self, path: str, form: Mapping[str, str]) -> httpx.Response:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            retry=retry_if_exception_type((httpx.TransportError, _ServerFailed)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._http.post(path, data=dict(form))
                    if response.status_code >= 500:
                        raise _ServerFailed(response)
        except httpx.TimeoutException as error:
            raise PrometheusUnavailable(self.url, f"no answer in time after {self._attempts} attempts ({type(error).__name__})") from error
        except httpx.TransportError as error:
            raise PrometheusUnavailable(
                self.url, f"cannot connect after {self._attempts} attempts ({_describe(error)}); is Prometheus running?"
            ) from error
        except _ServerFailed as error:
            raise PrometheusUnavailable(self.url, f"still failing after {self._attempts} attempts ({error})") from error
        return response


def _describe(error: httpx.TransportError) -> str:
    # httpx messages can carry the request URL; ours is already given (redacted) by the caller.
    return str(error) or type(error).__name__
