"""Builds the webhook connector for `tidegate connector webhook [--task T ...]` (TIDEGATE_WEBHOOK_*)."""

from __future__ import annotations

from tidegate.connectors.runtime.catalog import BuildRequest
from tidegate.connectors.webhook.connector import WebhookConnector


def build(request: BuildRequest) -> WebhookConnector:
    return WebhookConnector(request.resources, tasks=request.tasks)
