"""Builds the helm connector for `tidegate connector helm` (settings from TIDEGATE_HELM_*)."""

from __future__ import annotations

from connectors.helm.connector import HelmConnector
from connectors.runtime.catalog import BuildRequest


def build(request: BuildRequest) -> HelmConnector:
    return HelmConnector()
