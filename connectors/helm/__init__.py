"""The helm connector (Keptn's helm-service): deployment strategies, release, rollback, scaling.

    HelmConnector(settings, driver_factory)   the connector; swap the driver in tests
    HelmDriver, HelmCli, HelmError            the helm CLI behind one interface
    ensure_helm()                             find helm or `go install` it into $TIDEGATE_HOME/bin
    charts                                    values merging, URIs, the generated blue/green chart
"""

from tidegate.connectors.helm.connector import HelmConnector, scaling_delta, strategy_of
from tidegate.connectors.helm.driver import HelmCli, HelmDriver, HelmError
from tidegate.connectors.helm.install import HELM_VERSION, ensure_helm, find_helm
from tidegate.connectors.helm.settings import HelmSettings

__all__ = [
    "HELM_VERSION",
    "HelmCli",
    "HelmConnector",
    "HelmDriver",
    "HelmError",
    "HelmSettings",
    "ensure_helm",
    "find_helm",
    "scaling_delta",
    "strategy_of",
]
