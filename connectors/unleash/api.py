"""Unleash's admin API behind one small interface (swap the httpx transport or the whole API in tests).

    POST /api/admin/projects/{project}/features/{feature}/environments/{environment}/on|off
    Authorization: <admin or personal access token>
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

import httpx

from tidegate.schemas.errors import TidegateError


class UnleashError(TidegateError, RuntimeError):
    """Unleash refused or could not be reached; the message says which toggle and what to check."""


class UnleashApi(Protocol):
    async def set_toggle(self, project: str, feature: str, environment: str, enabled: bool) -> None: ...


class UnleashHttp:
    def __init__(self, base_url: str, token: str, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._transport = transport
        self._timeout = timeout

    async def set_toggle(self, project: str, feature: str, environment: str, enabled: bool) -> None:
        path = (f"/api/admin/projects/{quote(project, safe='')}/features/{quote(feature, safe='')}"
                f"/environments/{quote(environment, safe='')}/{'on' if enabled else 'off'}")
        where = f"feature toggle {feature!r} (project {project}, environment {environment})"
        async with httpx.AsyncClient(base_url=self.base_url, transport=self._transport, timeout=self._timeout) as client:
            try:
                response = await client.post(path, headers={"Authorization": self._token, "Accept": "application/json"})
            except httpx.HTTPError as error:
                raise UnleashError(f"cannot reach Unleash at {self.base_url} to switch {where}: {error}") from error
        if response.is_success:
            return
        detail = _detail(response)
        if response.status_code in (401, 403):
            raise UnleashError(f"Unleash refused the token for {where} (HTTP {response.status_code}): {detail}; "
                               "check TIDEGATE_UNLEASH_TOKEN (an admin token or a personal access token)")
        if response.status_code == 404:
            raise UnleashError(f"Unleash has no {where}: {detail}; create the toggle or fix the name in remediation.yaml")
        raise UnleashError(f"Unleash answered HTTP {response.status_code} for {where}: {detail}")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("message") or body.get("details") or body)[:300]
    return str(body)[:300]
