"""The helm connector's settings, from `TIDEGATE_HELM_*` environment variables.

| variable | default | meaning |
|---|---|---|
| TIDEGATE_HELM_BINARY | found by `ensure_helm` | the helm executable |
| TIDEGATE_HELM_KUBECONFIG | $KUBECONFIG | the cluster to deploy to |
| TIDEGATE_HELM_WAIT | true | `--wait` for workloads to become ready |
| TIDEGATE_HELM_CREATE_NAMESPACE | true | `--create-namespace` |
| TIDEGATE_HELM_OPENAPI_VALIDATION | true | false adds `--disable-openapi-validation` |
| TIDEGATE_HELM_INGRESS_PROTOCOL / _HOSTNAME_SUFFIX / _PORT | http / svc.cluster.local / 80 | public URIs |
| TIDEGATE_HELM_HOSTNAME_TEMPLATE | Keptn's HOSTNAME_TEMPLATE | `${INGRESS_PROTOCOL}://${SERVICE}.${PROJECT}-${STAGE}.${INGRESS_HOSTNAME_SUFFIX}:${INGRESS_PORT}` |
"""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOSTNAME_TEMPLATE = "${INGRESS_PROTOCOL}://${SERVICE}.${PROJECT}-${STAGE}.${INGRESS_HOSTNAME_SUFFIX}:${INGRESS_PORT}"


class HelmSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDEGATE_HELM_", frozen=True, extra="ignore")

    binary: str | None = None
    kubeconfig: str | None = Field(default_factory=lambda: os.environ.get("KUBECONFIG"))
    wait: bool = True
    create_namespace: bool = True
    openapi_validation: bool = True
    helm_timeout: str = "5m"
    ingress_protocol: str = "http"
    ingress_hostname_suffix: str = "svc.cluster.local"
    ingress_port: str = "80"
    hostname_template: str = DEFAULT_HOSTNAME_TEMPLATE
