"""The one way Tidegate builds a Kubernetes API client: a kubeconfig file when one is named, else the
in-cluster configuration of the pod it runs in. Callers wrap the failure in their own error."""

from __future__ import annotations

from typing import Any


def api_client(kubeconfig: str | None = None) -> Any:
    """A `kubernetes.client.ApiClient`; raises what the official client raises when neither works."""
    from kubernetes import client, config

    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)
    config.load_incluster_config()
    return client.ApiClient()
