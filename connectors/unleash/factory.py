"""Builds the unleash connector for `tidegate connector unleash` (settings from TIDEGATE_UNLEASH_*)."""

from __future__ import annotations

from tidegate.connectors.runtime.catalog import BuildRequest
from tidegate.connectors.unleash.connector import UnleashConnector


def build(request: BuildRequest) -> UnleashConnector:
    return UnleashConnector()
