"""The webhook connector: notifications and task calls over HTTP, configured by Keptn's webhook.yaml.

    WebhookConnector(resources, tasks)    notifications from `events` (follow) and task replies (run)
    render, to_jinja                      Keptn's {{.data.x}} templates in Jinja2's sandbox
    plan_calls, matching, parse_curl, secret_variable, WebhookFilter   from config and event to calls
    HttpSender                            httpx with retries and backoff
"""

from tidegate.connectors.webhook.calls import (
    CONFIG_PATH,
    PlannedCall,
    WebhookFilter,
    WebhookProblem,
    matching,
    parse_curl,
    plan_calls,
    secret_variable,
)
from tidegate.connectors.webhook.connector import WebhookConnector, WebhookSettings
from tidegate.connectors.webhook.sender import CallResult, HttpSender, WebhookCallError
from tidegate.connectors.webhook.templates import TemplateProblem, render, to_jinja

__all__ = [
    "CONFIG_PATH",
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
    "secret_variable",
    "to_jinja",
]
