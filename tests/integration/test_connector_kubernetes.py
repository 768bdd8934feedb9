"""The kubernetes connector's scaling action against a real Kubernetes control plane (`kube_cluster`).

The Deployment is installed by the helm connector (real Helm), scaled through its scale subresource
with the official `kubernetes` client, and rolls out under kwok; the chart's replicaCount follows, so
the next `helm upgrade` keeps the scaled count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import KubeCluster
from tests.integration.test_connector_helm import Harness, available
from tidegate.connectors.helm import ensure_helm
from tidegate.connectors.helm.charts import read_chart
from tidegate.connectors.kubernetes import KubernetesConnector, KubernetesSettings
from tidegate.connectors.runtime import TaskContext, TaskOutcome
from tidegate.schemas.events import KeptnEvent

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def helm_binary() -> Path:
    return ensure_helm()


async def scale(harness: Harness, connector: KubernetesConnector, value: Any, stage: str = "dev") -> TaskOutcome:
    event = KeptnEvent(type="sh.keptn.event.action.triggered", data={
        "project": harness.project, "stage": stage, "service": "carts",
        "action": {"name": "scale it", "action": "scaling", "value": value},
        "problem": {"problemTitle": "response time degradation"}})
    assert connector.wants(event)
    ctx = TaskContext(event=event, task="action", connector=connector.name, resources=harness.store,
                      settings=harness.context("deployment").settings, timeout=60,
                      store_resource_with=harness._store)
    return await connector.run(ctx)


def rolled_out(cluster: KubeCluster, namespace: str, replicas: int) -> dict[str, Any]:
    cluster.kubectl("rollout", "status", "deployment/carts", "-n", namespace, "--timeout=60s")
    found = json.loads(cluster.kubectl("get", "deployment", "carts", "-n", namespace, "-o", "json").stdout)
    assert found["spec"]["replicas"] == replicas
    assert found["status"].get("readyReplicas", 0) == replicas and found["status"].get("replicas", 0) == replicas
    return dict(found)


async def test_scaling_changes_the_real_deployment_and_the_helm_values(
        helm_binary: Path, kube_cluster: KubeCluster) -> None:
    harness = Harness(helm_binary, kube_cluster)
    deployed = await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    assert deployed.result.value == "pass", deployed.message
    connector = KubernetesConnector(KubernetesSettings(kubeconfig=str(kube_cluster.kubeconfig)))
    ns = harness.namespace

    up = await scale(harness, connector, "2")
    assert (up.status.value, up.result.value) == ("succeeded", "pass"), up.message
    assert up.data == {"scaling": {"target": f"{ns}/carts", "replicasBefore": 1, "replicasAfter": 3}}
    assert "from 1 to 3 replicas" in up.message
    assert available(rolled_out(kube_cluster, ns, 3))
    [stored] = harness.stored
    assert yaml.safe_load(read_chart(stored.content).file("values.yaml") or b"")["replicaCount"] == 3

    # The next deployment (a new image) keeps the scaled count: the chart's values hold it now.
    again = await harness.run("deployment", deployment={"deploymentstrategy": "direct"},
                              configurationChange={"values": {"image": "carts:0.3"}})
    assert again.result.value == "pass", again.message
    assert rolled_out(kube_cluster, ns, 3)["spec"]["template"]["spec"]["containers"][0]["image"] == "carts:0.3"

    down = await scale(harness, connector, "-10")
    assert down.data["scaling"] == {"target": f"{ns}/carts", "replicasBefore": 3, "replicasAfter": 0}
    rolled_out(kube_cluster, ns, 0)


async def test_scaling_a_missing_deployment_or_a_bad_value_says_what_is_wrong(
        helm_binary: Path, kube_cluster: KubeCluster) -> None:
    harness = Harness(helm_binary, kube_cluster)
    connector = KubernetesConnector(KubernetesSettings(kubeconfig=str(kube_cluster.kubeconfig)))
    missing = await scale(harness, connector, "1", stage="nowhere")
    assert (missing.status.value, missing.result.value) == ("errored", "fail")
    assert f"deployment {harness.project}-nowhere/carts" in missing.message
    assert "there is no such Deployment" in missing.message, missing.message
    bad = await scale(harness, connector, "three")
    assert (bad.status.value, bad.result.value) == ("succeeded", "fail") and "string holding an integer" in bad.message
    assert harness.stored == []
