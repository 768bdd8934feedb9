"""The kubernetes connector: `scaling` actions through a Deployment's scale subresource.

    KubernetesConnector(settings, api)   KubernetesSettings (TIDEGATE_KUBERNETES_KUBECONFIG, _NAMESPACE)
    ScaleApi, KubernetesScaleApi, ScaleError
"""

from tidegate.connectors.kubernetes.api import KubernetesScaleApi, ScaleApi, ScaleError
from tidegate.connectors.kubernetes.connector import KubernetesConnector, KubernetesSettings

__all__ = ["KubernetesConnector", "KubernetesScaleApi", "KubernetesSettings", "ScaleApi", "ScaleError"]
