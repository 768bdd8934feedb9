"""From a WebhookConfig entry and an event to concrete HTTP calls. Pure but for the secrets, which come
from the SecretReader it is given (streams.secrets).

Secrets: `envFrom: [{name: token, secretRef: {name: slack, key: token}}]` makes `{{.env.token}}`
available. As Keptn's webhook-service read Kubernetes secrets, Tidegate reads the secret store
(`/api/secrets/v1`, `keptn create secret slack --from-literal=token=...`) in the scopes the task may
read: keptn-default, keptn-webhook-service and the project's own; else the operator's environment
variable `TIDEGATE_SECRET_<NAME>_<KEY>` (upper case, other characters as `_`), here
TIDEGATE_SECRET_SLACK_TOKEN (schemas.secrets: the one prefix connectors read secrets from).
Secret values are masked in every message; a missing secret is named with its key, never a value.

Filters (a Tidegate extension; Keptn filtered in the Uniform subscription instead): a webhook may say

    filter: {stages: [production], services: [carts], results: [fail], statuses: [errored]}

and its `type` may use shell wildcards (`sh.keptn.event.*.finished`).

v1alpha1 requests are curl command lines; they are split like a shell would split words (never run)
and the flags -X/--request, -H/--header, -d/--data/--data-raw/--data-binary and the URL are read.
The line is split *before* it is rendered, each word on its own (template expressions are kept whole
while splitting), so event data can never add a word: a label `x' http://evil/ -d 'y` stays inside
the body it was placed in. URLs are rendered by `render_url`: event values URL-encoded, scheme, host
and port those of the file.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tidegate.connectors.webhook.templates import TemplateProblem, Trusted, render, render_url
from tidegate.schemas.errors import TidegateError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.webhook import Webhook, WebhookConfig, WebhookRequest
from tidegate.streams.secrets import SecretError, SecretReader

CONFIG_PATH = "webhook/webhook.yaml"
WEBHOOK_SCOPE = "keptn-webhook-service"
"""Keptn's secret scope for its webhook-service; webhook tasks of every project read it."""


class WebhookProblem(TidegateError, ValueError):
    """A webhook that cannot be called as configured; the message says what to fix."""


class WebhookFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    projects: list[str] = Field(default_factory=list)
    stages: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    results: list[str] = Field(default_factory=list)
    statuses: list[str] = Field(default_factory=list)

    def accepts(self, data: Mapping[str, Any]) -> bool:
        checks = ((self.projects, "project"), (self.stages, "stage"), (self.services, "service"),
                  (self.results, "result"), (self.statuses, "status"))
        return all(not allowed or str(data.get(field) or "") in allowed for allowed, field in checks)


@dataclass(frozen=True, slots=True)
class PlannedCall:
    method: str
    url: str
    headers: dict[str, str]
    body: str
    secrets: tuple[str, ...] = ()

    def masked(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def webhook_filter(webhook: Webhook) -> WebhookFilter:
    raw = (webhook.model_extra or {}).get("filter")
    try:
        return WebhookFilter.model_validate(raw or {})
    except ValidationError as error:
        raise WebhookProblem(f"webhook {webhook.subscriptionID}: filter is not readable: {error}") from error


def matching(config: WebhookConfig, event: KeptnEvent) -> list[Webhook]:
    """The webhooks of `config` for this event: type (wildcards allowed) and filter."""
    found = []
    for webhook in config.spec.webhooks:
        if not fnmatch.fnmatchcase(event.type, webhook.type):
            continue
        if webhook_filter(webhook).accepts(event.data):
            found.append(webhook)
    return found


_TEMPLATE_PART = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_HIDDEN = re.compile("\x00([0-9]+)\x00")


def split_curl(command: str) -> list[str]:
    """The words of a curl line as a shell would split them, template expressions (`{{ a b }}`) kept whole
    and unrendered."""
    parts: list[str] = []

    def hide(match: re.Match[str]) -> str:
        parts.append(match.group(0))
        return f"\x00{len(parts) - 1}\x00"

    words = shlex.split(_TEMPLATE_PART.sub(hide, command))
    return [_HIDDEN.sub(lambda match: parts[int(match.group(1))], word) for word in words]


def parse_curl(command: str) -> WebhookRequest:
    """A curl line as a request whose parts are still templates (render them word by word)."""
    try:
        words = split_curl(command)
    except ValueError as error:
        raise WebhookProblem(f"the curl request cannot be read: {error}") from error
    if not words or words[0] != "curl":
        raise WebhookProblem(f"a v1alpha1 request must be a curl command, got {command[:60]!r}")
    method, url, headers, body = "", "", [], ""
    flags = iter(words[1:])
    for word in flags:
        if word in ("-X", "--request"):
            method = next(flags, "")
        elif word in ("-H", "--header"):
            key, _, value = next(flags, "").partition(":")
            headers.append({"key": key.strip(), "value": value.strip()})
        elif word in ("-d", "--data", "--data-raw", "--data-binary"):
            body = next(flags, "")
        elif word in ("-s", "--silent", "-S", "--show-error", "-f", "--fail", "-L", "--location"):
            continue
        elif word.startswith("-"):
            raise WebhookProblem(f"the curl flag {word} is not supported; use url/method/headers/payload (v1beta1)")
        else:
            url = word
    if not url:
        raise WebhookProblem("the curl request has no URL")
    return WebhookRequest.model_validate({"url": url, "method": method or ("POST" if body else "GET"),
                                          "headers": headers, "payload": body})


def plan_calls(webhook: Webhook, event: KeptnEvent, secrets: SecretReader) -> list[PlannedCall]:
    """The HTTP calls of one webhook for one event, rendered, its `envFrom` secrets read from `secrets`;
    raises WebhookProblem."""
    env: dict[str, str] = {}
    for item in webhook.envFrom:
        try:
            env[item.name] = secrets.value(item.secretRef.name, item.secretRef.key)
        except SecretError as error:
            raise WebhookProblem(f"webhook {webhook.subscriptionID}: {{{{.env.{item.name}}}}}: {error}") from None
    secrets = tuple(value for value in env.values() if value)
    context = {**event.to_json_dict(), "env": {name: Trusted(value) for name, value in env.items()}}
    calls = []
    for index, request in enumerate(webhook.requests):
        where = f"webhook {webhook.subscriptionID} request {index + 1}"
        try:
            if isinstance(request, str):
                request = parse_curl(request)
            url = render_url(request.url, context, f"{where} url")
            payload = render(request.payload, context, f"{where} payload")
            headers = {h.key: render(h.value, context, f"{where} header {h.key}") for h in request.headers}
        except TemplateProblem as problem:
            raise WebhookProblem(_mask(str(problem), secrets)) from problem
        for key, value in headers.items():
            if any(c in value for c in "\r\n\x00"):
                raise WebhookProblem(f"{where}: the header {key} would hold a line break once rendered; a header "
                                     "value is one line")
        if not url.startswith(("http://", "https://")):
            raise WebhookProblem(f"{where}: the URL {_mask(url, secrets)!r} is not http(s)")
        calls.append(PlannedCall(request.method.upper(), url, headers, payload, secrets))
    return calls


def _mask(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
