"""Sends planned webhook calls with httpx, retrying transport errors, 429 and 5xx with backoff."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from tidegate.connectors.webhook.calls import PlannedCall


class RetryableResponse(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class WebhookCallError(RuntimeError):
    """A call failed for good; the message (secrets masked) says how."""


@dataclass(frozen=True, slots=True)
class CallResult:
    status_code: int
    body: str


class HttpSender:
    def __init__(self, transport: httpx.AsyncBaseTransport | None = None, attempts: int = 3, backoff: float = 0.5,
                 timeout: float = 10.0) -> None:
        self._transport = transport
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout

    async def send(self, call: PlannedCall) -> CallResult:
        what = f"{call.method} {call.masked(call.url)}"
        async with httpx.AsyncClient(transport=self._transport, timeout=self.timeout) as client:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.attempts),
                    wait=wait_exponential(multiplier=self.backoff, max=30),
                    retry=retry_if_exception_type((httpx.TransportError, RetryableResponse)),
                    reraise=True,
                ):
                    with attempt:
                        response = await client.request(call.method, call.url, headers=call.headers,
                                                        content=call.body.encode() if call.body else None)
                        if response.status_code == 429 or response.status_code >= 500:
                            raise RetryableResponse(response)
            except RetryableResponse as final:
                raise WebhookCallError(f"{what} answered HTTP {final.response.status_code} after {self.attempts} "
                                       f"tries: {call.masked(final.response.text[:300])}") from None
            except httpx.HTTPError as error:
                raise WebhookCallError(f"{what} failed after {self.attempts} tries: "
                                       f"{call.masked(str(error) or type(error).__name__)}") from None
        if response.status_code >= 400:
            raise WebhookCallError(f"{what} answered HTTP {response.status_code}: {call.masked(response.text[:300])}")
        return CallResult(response.status_code, response.text)
