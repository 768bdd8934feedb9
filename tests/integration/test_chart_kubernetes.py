"""Tidegate's own chart (deploy/helm/tidegate) installed into a real Kubernetes control plane.

`helm install --wait` must succeed (every pod Ready under kwok: nothing runs inside them, so this
proves the objects are valid and schedulable, not that Tidegate's processes start), `worker.replicas`
must scale, and the service accounts the chart makes must be able to do what their pods need and be
refused everything else: the helm/kubernetes connectors' account runs the real connectors with its
own token, the gateway's account may only handle Secrets in the release namespace, and the webhook
and command connectors' account may only read them there (their secrets store).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.local.kubernetes import layout_for, render_kubeconfig
from tests.conftest import REPO_ROOT, KubeCluster
from tests.integration.test_connector_helm import Harness, available, chart
from tidegate.connectors.helm import HelmConnector, HelmSettings, ensure_helm
from tidegate.connectors.kubernetes import KubernetesConnector, KubernetesSettings
from tidegate.connectors.runtime import TaskContext
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.secrets import (
    KubernetesSecretStore,
    SecretError,
    SecretNotFound,
    SecretReader,
    task_scopes,
)

pytestmark = pytest.mark.integration

CHART = REPO_ROOT / "deploy" / "helm" / "tidegate"
CI_VALUES = CHART / "ci" / "default-values.yaml"


class Install:
    def __init__(self, cluster: KubeCluster, helm: Path, namespace: str, target: str) -> None:
        self.cluster, self.helm, self.namespace, self.target = cluster, helm, namespace, target

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.helm), *args, "--namespace", self.namespace,
                               "--kubeconfig", str(self.cluster.kubeconfig)],
                              capture_output=True, text=True, timeout=180, check=False)

    def deployments(self) -> dict[str, dict[str, Any]]:
        found = json.loads(self.cluster.kubectl("get", "deployments", "-n", self.namespace, "-o", "json").stdout)
        return {item["metadata"]["name"]: item for item in found["items"]}

    def token_kubeconfig(self, account: str, path: Path) -> Path:
        """A kubeconfig that acts as `account` (a short-lived token from the TokenRequest API)."""
        token = self.cluster.kubectl("create", "token", account, "-n", self.namespace, "--duration", "10m").stdout.strip()
        layout = layout_for()
        path.write_text(render_kubeconfig(layout.server, (layout.pki / "ca.crt").read_bytes(), {"token": token}))
        path.chmod(0o600)
        return path

    def can(self, kubeconfig: Path, verb: str, resource: str, namespace: str | None = None) -> bool:
        args = ["--kubeconfig", str(kubeconfig), "auth", "can-i", verb, resource]
        args += ["-n", namespace] if namespace else []
        done = subprocess.run([str(layout_for().binary("kubectl")), *args], capture_output=True, text=True,
                              timeout=30, check=False)
        assert done.stdout.strip() in ("yes", "no"), done.stdout + done.stderr
        return done.stdout.strip() == "yes"


@pytest.fixture(scope="module")
def install(kube_cluster: KubeCluster) -> Iterator[Install]:
    helm = ensure_helm()
    namespace = kube_cluster.namespace("tidegate")
    project = f"p{uuid.uuid4().hex[:8]}"
    target = f"{project}-dev"
    kube_cluster.namespaces.append(target)
    kube_cluster.kubectl("create", "namespace", target)
    installed = Install(kube_cluster, helm, namespace, target)
    done = installed.run("install", "tg", str(CHART), "--create-namespace", "-f", str(CI_VALUES),
                         "--set", "gateway.persistence.enabled=false",  # no storage provisioner here
                         "--set", "connectors.kubernetes.enabled=true", "--set", "connectors.webhook.enabled=true",
                         "--set", "connectors.command.readSecretsStore=true",
                         "--set", "rbac.clusterWide=false", "--set", f"rbac.namespaces={{{target}}}",
                         "--wait", "--timeout", "120s")
    assert done.returncode == 0, done.stderr
    yield installed
    installed.run("uninstall", "tg", "--wait", "--timeout", "60s")


def test_the_chart_installs_and_every_pod_becomes_ready(install: Install) -> None:
    deployments = install.deployments()
    assert {"tg-tidegate-gateway", "tg-tidegate-worker", "tg-tidegate-connector-helm",
            "tg-tidegate-connector-kubernetes", "tg-tidegate-connector-command",
            "tg-tidegate-connector-webhook"} <= set(deployments)
    for name, deployment in deployments.items():
        assert available(deployment), name
        assert deployment["status"]["readyReplicas"] == deployment["spec"]["replicas"], name
    assert deployments["tg-tidegate-worker"]["spec"]["replicas"] == 2


def test_worker_replicas_scale_with_an_upgrade(install: Install) -> None:
    done = install.run("upgrade", "tg", str(CHART), "--reuse-values", "--set", "worker.replicas=3",
                       "--wait", "--timeout", "120s")
    assert done.returncode == 0, done.stderr
    worker = install.deployments()["tg-tidegate-worker"]
    assert (worker["spec"]["replicas"], worker["status"]["readyReplicas"]) == (3, 3)


async def test_the_connectors_account_deploys_and_scales_in_its_namespace_and_is_refused_elsewhere(
        install: Install, kube_cluster: KubeCluster, tmp_path: Path) -> None:
    kubeconfig = install.token_kubeconfig("tg-tidegate-cluster-access", tmp_path / "connectors.kubeconfig")
    # The real helm connector, as the chart configures it (no --create-namespace), with that account.
    harness = Harness(ensure_helm(), kube_cluster)
    harness.project, harness.namespace = install.target.removesuffix("-dev"), install.target
    harness.connector = HelmConnector(HelmSettings(kubeconfig=str(kubeconfig), create_namespace=False,
                                                   helm_timeout="90s"), binary=ensure_helm())
    harness.put_chart(chart())
    deployed = await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    assert deployed.result.value == "pass", deployed.message
    assert available(harness.deployment("carts"))

    scaler = KubernetesConnector(KubernetesSettings(kubeconfig=str(kubeconfig)))
    event = KeptnEvent(type="sh.keptn.event.action.triggered", data={
        "project": harness.project, "stage": "dev", "service": "carts",
        "action": {"action": "scaling", "value": "1"}})
    scaled = await scaler.run(TaskContext(event=event, task="action", connector="kubernetes",
                                          resources=harness.store, settings=harness.context("deployment").settings,
                                          timeout=60, store_resource_with=harness._store))
    assert scaled.result.value == "pass", scaled.message
    assert scaled.data["scaling"]["replicasAfter"] == 2

    # Elsewhere: an existing namespace it was not given, the cluster scope, and Tidegate's own namespace.
    other = Harness(ensure_helm(), kube_cluster)
    other.connector = harness.connector
    elsewhere = other.namespace
    kube_cluster.kubectl("create", "namespace", elsewhere)
    assert install.can(kubeconfig, "create", "deployments", install.target)
    assert install.can(kubeconfig, "patch", "deployments.apps/scale", install.target)
    assert not install.can(kubeconfig, "create", "deployments", elsewhere)
    assert not install.can(kubeconfig, "get", "secrets", elsewhere)
    assert not install.can(kubeconfig, "get", "secrets", install.namespace)
    assert not install.can(kubeconfig, "create", "namespaces")
    assert not install.can(kubeconfig, "create", "clusterrolebindings")
    refused = await other.run("deployment", deployment={"deploymentstrategy": "direct"})
    assert refused.status.value == "errored" and "forbidden" in refused.message, refused.message


def test_the_gateways_account_handles_secrets_in_its_namespace_only(install: Install, tmp_path: Path) -> None:
    kubeconfig = install.token_kubeconfig("tg-tidegate-gateway", tmp_path / "gateway.kubeconfig")
    for verb in ("get", "list", "create", "update", "delete"):
        assert install.can(kubeconfig, verb, "secrets", install.namespace), verb
    assert not install.can(kubeconfig, "patch", "secrets", install.namespace)
    assert not install.can(kubeconfig, "get", "secrets", install.target)
    assert not install.can(kubeconfig, "get", "configmaps", install.namespace)
    assert not install.can(kubeconfig, "list", "deployments", install.namespace)
    # The gateway's own secrets store, acting as that account against the real API server.
    store = KubernetesSecretStore(install.namespace, kubeconfig=str(kubeconfig))
    store.create("slack", "keptn-default", {"token": "s3cret"})
    store.update("slack", "keptn-default", {"token": "n3w", "channel": "ops"})
    assert [(info.name, info.scope, sorted(info.keys)) for info in store.list()] == [
        ("slack", "keptn-default", ["channel", "token"])]
    assert store.data("slack", ["keptn-default"]) == {"token": "n3w", "channel": "ops"}
    store.delete("slack", "keptn-default")
    assert store.list() == []
    # The chart's own Secret (tokens) is in the same namespace but is not the store's to show.
    assert store.data("tg-tidegate-secrets", ["keptn-default", ""]) is None
    elsewhere = KubernetesSecretStore(install.target, kubeconfig=str(kubeconfig))
    with pytest.raises(SecretError, match="403"):
        elsewhere.create("slack", "keptn-default", {"token": "x"})


def test_the_webhook_and_command_connectors_account_only_reads_secrets_in_its_namespace(
        install: Install, tmp_path: Path) -> None:
    reader_account = "tg-tidegate-secret-reader"
    for name, deployment in install.deployments().items():
        spec = deployment["spec"]["template"]["spec"]
        [container] = spec["containers"]
        backend = {item["name"]: item.get("value") for item in container.get("env", [])}.get("TIDEGATE_SECRETS_BACKEND")
        if name in ("tg-tidegate-connector-webhook", "tg-tidegate-connector-command"):
            assert (spec.get("serviceAccountName"), backend) == (reader_account, "kubernetes"), name
        elif name in ("tg-tidegate-connector-helm", "tg-tidegate-connector-kubernetes"):  # they keep theirs
            assert (spec.get("serviceAccountName"), backend) == ("tg-tidegate-cluster-access", None), name
        elif name != "tg-tidegate-gateway":
            assert spec.get("automountServiceAccountToken") is False and backend is None, name

    kubeconfig = install.token_kubeconfig(reader_account, tmp_path / "reader.kubeconfig")
    assert install.can(kubeconfig, "get", "secrets", install.namespace)
    for verb in ("list", "watch", "create", "update", "patch", "delete"):
        assert not install.can(kubeconfig, verb, "secrets", install.namespace), verb
    assert not install.can(kubeconfig, "get", "secrets", install.target)
    assert not install.can(kubeconfig, "get", "configmaps", install.namespace)

    # A secret the gateway's secrets API stored, read by a connector's SecretReader as that account.
    gateway = KubernetesSecretStore(install.namespace, kubeconfig=str(
        install.token_kubeconfig("tg-tidegate-gateway", tmp_path / "gateway.kubeconfig")))
    name, project = f"hook-{uuid.uuid4().hex[:8]}", install.target.removesuffix("-dev")
    gateway.create(name, project, {"token": "s3cret"})
    try:
        store = KubernetesSecretStore(install.namespace, kubeconfig=str(kubeconfig))
        assert SecretReader(task_scopes(project), {}, store).value(name, "token") == "s3cret"
        with pytest.raises(SecretNotFound):  # the store's scopes still apply
            SecretReader(task_scopes("another-project"), {}, store).data(name)
        with pytest.raises(SecretError, match="403"):
            store.create(f"{name}-new", project, {"token": "x"})
        with pytest.raises(SecretError, match="403"):
            store.update(name, project, {"token": "changed"})
        with pytest.raises(SecretError, match="403"):
            store.delete(name, project)
        with pytest.raises(SecretError, match="403"):
            store.list()
        assert gateway.data(name, [project]) == {"token": "s3cret"}
    finally:
        gateway.delete(name, project)

    # The same secret in another namespace (created by the admin): refused, not read.
    install.cluster.kubectl("create", "secret", "generic", name, "-n", install.target, "--from-literal=token=elsewhere")
    install.cluster.kubectl("label", "secret", name, "-n", install.target, "app.kubernetes.io/managed-by=tidegate",
                            f"app.kubernetes.io/scope={project}")
    elsewhere = SecretReader(task_scopes(project), {}, KubernetesSecretStore(install.target, kubeconfig=str(kubeconfig)))
    with pytest.raises(SecretError, match="403"):
        elsewhere.value(name, "token")
