"""Sends planned webhook calls with httpx, retrying transport errors, 429 and 5xx with backoff.

Before a call its host is resolved once, every address is checked against the AddressPolicy
(addresses.py: public only, unless allowed), and the connection goes to that checked address (the URL's
host becomes the address; `Host` and, for https, the TLS server name and certificate check keep the
name): a DNS answer that changes between the check and the call cannot move the call elsewhere.
Redirects are not followed. Answers are read up to MAX_ANSWER bytes; a refused or failed call is
reported by its status alone, never with the answer's body (it may hold anything the target knows).
httpx's own INFO line per request (`HTTP Request: POST <url>`) is dropped: webhook URLs hold secrets
(Slack's do), and a connector logging at INFO would otherwise write them out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from tidegate.connectors.webhook.addresses import AddressPolicy
from tidegate.connectors.webhook.calls import PlannedCall
from tidegate.schemas.errors import TidegateError

MAX_ANSWER = 64 * 1024
RESOLVE_TIMEOUT = 10.0

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) -> its IP addresses."""


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class RetryableResponse(TidegateError):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class WebhookCallError(TidegateError, RuntimeError):
    """A call failed for good or was refused; the message (secrets masked) says how."""


@dataclass(frozen=True, slots=True)
class CallResult:
    status_code: int
    body: str
    """The first MAX_ANSWER bytes of the answer."""


class _NoRequestLines(logging.Filter):
    """Drops httpx's `HTTP Request: METHOD URL ...` lines (the URL may hold a secret)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("HTTP Request:"))


def _quiet_request_lines() -> None:
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(existing, _NoRequestLines) for existing in httpx_log.filters):
        httpx_log.addFilter(_NoRequestLines())


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HttpSender:
    def __init__(self, transport: httpx.AsyncBaseTransport | None = None, attempts: int = 3, backoff: float = 0.5,
                 timeout: float = 10.0, allow: AddressPolicy | Iterable[str] = (),
                 resolver: Resolver = resolve) -> None:
        self._transport = transport
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.policy = allow if isinstance(allow, AddressPolicy) else AddressPolicy.of(allow)
        self._resolve = resolver
        _quiet_request_lines()

    async def _pinned(self, call: PlannedCall, what: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
        """The URL to connect to (host replaced by its checked address), the headers and the request extensions."""
        try:
            url = httpx.URL(call.url)
        except httpx.InvalidURL as error:
            raise WebhookCallError(f"{what}: the URL is not valid: {call.masked(str(error))}") from None
        host = url.host
        if _is_address(host):
            addresses = [host]
        else:
            try:
                addresses = await asyncio.wait_for(self._resolve(host, url.port or (443 if url.scheme == "https" else 80)),
                                                   RESOLVE_TIMEOUT)
            except (OSError, TimeoutError) as error:
                raise WebhookCallError(f"{what}: the host {call.masked(host)} cannot be resolved ({error})") from None
        if not addresses:
            raise WebhookCallError(f"{what}: the host {call.masked(host)} has no address")
        for address in addresses:
            refusal = self.policy.refusal(host, address)
            if refusal is not None:
                raise WebhookCallError(f"{what} refused: {call.masked(refusal)}")
        headers = {key: value for key, value in call.headers.items() if key.lower() != "host"}
        headers["Host"] = url.netloc.decode("ascii")
        extensions = {"sni_hostname": host} if url.scheme == "https" and not _is_address(host) else {}
        return url.copy_with(host=addresses[0]), headers, extensions

    async def send(self, call: PlannedCall) -> CallResult:
        what = f"{call.method} {call.masked(call.url)}"
        url, headers, extensions = await self._pinned(call, what)
        status, body = 0, b""
        async with httpx.AsyncClient(transport=self._transport, timeout=self.timeout, follow_redirects=False) as client:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(self.attempts),
                    wait=wait_exponential(multiplier=self.backoff, max=30),
                    retry=retry_if_exception_type((httpx.TransportError, RetryableResponse)),
                    reraise=True,
                ):
                    with attempt:
                        request = client.build_request(call.method, url, headers=headers, extensions=extensions,
                                                       content=call.body.encode() if call.body else None)
                        response = await client.send(request, stream=True)
                        try:
                            status = response.status_code
                            if status == 429 or status >= 500:
                                raise RetryableResponse(status)
                            body = b""
                            async for chunk in response.aiter_bytes():
                                body += chunk[:MAX_ANSWER - len(body)]
                                if len(body) >= MAX_ANSWER:
                                    break
                        finally:
                            await response.aclose()
            except RetryableResponse as final:
                raise WebhookCallError(f"{what} answered HTTP {final.status_code} after {self.attempts} tries") from None
            except httpx.HTTPError as error:
                # Connection and timeout errors are the client's own words; others may quote the answer.
                said = f" ({call.masked(str(error))[:160]})" if isinstance(error, httpx.ConnectError | httpx.TimeoutException) else ""
                raise WebhookCallError(f"{what} failed after {self.attempts} tries: {type(error).__name__}{said}") from None
        if status >= 400:
            raise WebhookCallError(f"{what} answered HTTP {status}")
        return CallResult(status, body.decode("utf-8", errors="replace"))
