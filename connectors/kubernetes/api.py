"""The Deployment scale subresource behind one small interface; the real one uses the `kubernetes` client.

    GET   /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale
    PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale   {"spec": {"replicas": N}}
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from tidegate.schemas.errors import TidegateError


class ScaleError(TidegateError, RuntimeError):
    """The cluster refused or could not be reached; the message names the Deployment and the cause."""


class ScaleApi(Protocol):
    async def get_replicas(self, namespace: str, name: str) -> int: ...

    async def set_replicas(self, namespace: str, name: str, replicas: int) -> None: ...


class KubernetesScaleApi:
    """The official client (blocking) in a worker thread; kubeconfig file, else in-cluster config."""

    def __init__(self, kubeconfig: str | None = None) -> None:
        self.kubeconfig = kubeconfig
        self._apps: Any = None

    def _client(self) -> Any:
        if self._apps is None:
            from kubernetes import client

            from tidegate.streams.kubeclient import api_client

            try:
                apps = client.AppsV1Api(api_client(self.kubeconfig))
            except Exception as error:
                raise ScaleError(f"cannot configure the Kubernetes client ({error}); set TIDEGATE_KUBERNETES_KUBECONFIG "
                                 "or run in a cluster") from error
            self._apps = apps
        return self._apps

    async def _call(self, what: str, call: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return await asyncio.to_thread(call)
        except ApiException as error:
            reason = error.reason
            if error.status == 404:
                raise ScaleError(f"{what}: there is no such Deployment (is the service deployed to that namespace, "
                                 "or does TIDEGATE_KUBERNETES_NAMESPACE name another one?)") from error
            raise ScaleError(f"{what}: Kubernetes answered {error.status} {reason}: {str(error.body)[:300]}") from error
        except Exception as error:
            raise ScaleError(f"{what}: {error}") from error

    async def get_replicas(self, namespace: str, name: str) -> int:
        apps = self._client()
        scale = await self._call(f"reading the scale of deployment {namespace}/{name}",
                                 lambda: apps.read_namespaced_deployment_scale(name, namespace))
        return int(scale.spec.replicas or 0)

    async def set_replicas(self, namespace: str, name: str, replicas: int) -> None:
        apps = self._client()
        await self._call(f"scaling deployment {namespace}/{name}",
                         lambda: apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}}))
