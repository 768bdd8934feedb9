"""Builds the kubernetes connector for `tidegate connector kubernetes` (settings from TIDEGATE_KUBERNETES_*)."""

from __future__ import annotations

from tidegate.connectors.kubernetes.connector import KubernetesConnector
from tidegate.connectors.runtime.catalog import BuildRequest


def build(request: BuildRequest) -> KubernetesConnector:
    return KubernetesConnector()
