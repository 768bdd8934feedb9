"""The webhook connector: notifications and task calls over HTTP, configured by Keptn's webhook.yaml.

    WebhookConnector(resources, tasks)    notifications from `events` (follow) and task replies (run)
    render, to_jinja                      Keptn's {{.data.x}} templates in Jinja2's sandbox
    plan_calls, matching, parse_curl, WebhookFilter   from config and event to calls
    WEBHOOK_SCOPE, secret_variable        where `envFrom` secrets come from (the store's scopes, the environment)
    HttpSender                            httpx with retries and backoff, to checked addresses only
    AddressPolicy                         public addresses plus the operator's allow-list
"""

from tidegate.connectors.webhook.addresses import ALLOW_VARIABLE, AddressPolicy
from tidegate.connectors.webhook.calls import (
    CONFIG_PATH,
    WEBHOOK_SCOPE,
    PlannedCall,
    WebhookFilter,
    WebhookProblem,
    matching,
    parse_curl,
    plan_calls,
    split_curl,
)
from tidegate.connectors.webhook.connector import WebhookConnector, WebhookSettings
from tidegate.connectors.webhook.sender import CallResult, HttpSender, WebhookCallError
from tidegate.connectors.webhook.templates import TemplateProblem, render, render_url, to_jinja
from tidegate.schemas.secrets import secret_variable

__all__ = [
    "ALLOW_VARIABLE",
    "CONFIG_PATH",
    "WEBHOOK_SCOPE",
    "AddressPolicy",
    "CallResult",
    "HttpSender",
    "PlannedCall",
    "TemplateProblem",
    "WebhookCallError",
    "WebhookConnector",
    "WebhookFilter",
    "WebhookProblem",
    "WebhookSettings",
    "matching",
    "parse_curl",
    "plan_calls",
    "render",
    "render_url",
    "secret_variable",
    "split_curl",
    "to_jinja",
]
