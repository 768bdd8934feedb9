"""Builds the helm connector for `tidegate connector helm` (settings from TIDEGATE_HELM_*)."""

from __future__ import annotations

from tidegate.connectors.helm.connector import HelmConnector
from tidegate.connectors.runtime.catalog import BuildRequest


def build(request: BuildRequest) -> HelmConnector:
    return HelmConnector()
