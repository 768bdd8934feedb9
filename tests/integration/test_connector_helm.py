"""The helm connector with the real Helm 3 CLI against a fake Kubernetes API server (tests/fakes).

What this proves: the helm commands Tidegate builds work with real Helm (rendering, values merging,
install/upgrade/rollback, release storage), and the connector reads the results right. What it
cannot prove (see tests/fakes/kubernetes.py): that a real cluster runs the workloads; the fake runs no
controllers, and Helm's `--create-namespace` and OpenAPI validation need a real API server's schema,
so these tests pre-create the namespace and turn validation off (TIDEGATE_HELM_* settings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.kubernetes import FakeKubernetes
from tidegate.connectors.helm import HelmConnector, HelmSettings, ensure_helm
from tidegate.connectors.helm.charts import Chart, read_chart, write_chart
from tidegate.connectors.runtime import TaskContext
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.resources import Resource, ResourceStore
from tidegate.streams.settings import Settings

pytestmark = pytest.mark.integration

TEMPLATE = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Values.keptn.service }}
  labels: {app.kubernetes.io/name: {{ .Values.keptn.service }}}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels: {app.kubernetes.io/name: {{ .Values.keptn.service }}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: {{ .Values.keptn.service }}}
    spec:
      containers:
        - name: app
          image: {{ .Values.image }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Values.keptn.service }}
spec:
  selector: {app.kubernetes.io/name: {{ .Values.keptn.service }}}
  ports:
    - {name: http, port: 8080, targetPort: 8080, protocol: TCP}
    - {name: metrics, port: 9100, protocol: TCP}
    - {name: dns, port: 53, protocol: UDP}
"""


def chart(template: str = TEMPLATE, image: str = "carts:0.1") -> bytes:
    return write_chart(Chart({
        "carts/Chart.yaml": b"apiVersion: v2\nname: carts\nversion: 0.1.0\n",
        "carts/values.yaml": yaml.safe_dump({"image": image, "replicaCount": 1, "other": {"keep": True}}).encode(),
        "carts/templates/all.yaml": template.encode(),
    }))


@pytest.fixture(scope="module")
def helm_binary() -> Path:
    return ensure_helm()


@pytest.fixture
def cluster(tmp_path: Path):  # type: ignore[no-untyped-def]
    with FakeKubernetes() as api:
        api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sockshop-dev"}})
        api.kubeconfig(tmp_path / "kubeconfig")
        yield api


class Harness:
    def __init__(self, helm_binary: Path, kubeconfig: Path) -> None:
        self.store = ResourceStore()
        self.stored: list[Resource] = []
        settings = HelmSettings(kubeconfig=str(kubeconfig), wait=False, create_namespace=False,
                                openapi_validation=False)
        self.connector = HelmConnector(settings, binary=helm_binary)

    async def _store(self, resource: Resource) -> None:
        self.stored.append(resource)

    async def run(self, task: str, **data: Any) -> Any:
        event = KeptnEvent(type=f"sh.keptn.event.{task}.triggered", shkeptncontext="ctx", gitcommitid="g1",
                           data={"project": "sockshop", "stage": "dev", "service": "carts", **data})
        assert self.connector.wants(event)
        ctx = TaskContext(event=event, task=task, connector="helm", resources=self.store, settings=Settings(),
                          timeout=120, store_resource_with=self._store)
        return await self.connector.run(ctx)


@pytest.fixture
def harness(helm_binary: Path, cluster: FakeKubernetes, tmp_path: Path) -> Harness:
    h = Harness(helm_binary, tmp_path / "kubeconfig")
    h.store.put(Resource.new("sockshop", "helm/carts.tgz", chart(), stage="dev", service="carts"))
    return h


def deployment(cluster: FakeKubernetes, name: str) -> dict[str, Any]:
    found = cluster.get("apps/v1", "deployments", "sockshop-dev", name)
    assert found is not None, f"no Deployment {name}; have {[d['metadata']['name'] for d in cluster.objects('apps/v1', 'deployments', 'sockshop-dev')]}"
    return found


async def test_direct_deployment_merges_values_installs_and_reports_uris(harness: Harness, cluster: FakeKubernetes) -> None:
    outcome = await harness.run("deployment", deployment={"deploymentstrategy": "direct"},
                                configurationChange={"values": {"image": "carts:0.2"}})
    assert (outcome.status.value, outcome.result.value) == ("succeeded", "pass"), outcome.message
    assert outcome.data["deployment"] == {
        "deploymentstrategy": "direct",
        "deploymentURIsLocal": ["http://carts.sockshop-dev:8080"],
        "deploymentURIsPublic": ["http://carts.sockshop-dev.svc.cluster.local:80"],
        "deploymentNames": ["direct"],
        "gitCommit": "g1",
    }
    assert deployment(cluster, "carts")["spec"]["template"]["spec"]["containers"][0]["image"] == "carts:0.2"
    # The merged values are stored back as the chart's next version; other values are kept.
    [stored] = harness.stored
    values = yaml.safe_load(read_chart(stored.content).file("values.yaml") or b"")
    assert values == {"image": "carts:0.2", "replicaCount": 1, "other": {"keep": True}}
    release_secrets = [s["metadata"]["name"] for s in cluster.objects("v1", "secrets", "sockshop-dev")]
    assert release_secrets == ["sh.helm.release.v1.sockshop-dev-carts.v1"]


async def test_scaling_adds_to_replica_count_and_refuses_a_bad_value(harness: Harness, cluster: FakeKubernetes) -> None:
    await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    outcome = await harness.run("action", action={"action": "scaling", "value": "2"})
    assert outcome.result.value == "pass", outcome.message
    assert deployment(cluster, "carts")["spec"]["replicas"] == 3
    bad = await harness.run("action", action={"action": "scaling", "value": 2})
    assert (bad.status.value, bad.result.value) == ("succeeded", "fail")
    assert "string holding an integer" in bad.message


async def test_rollback_of_a_direct_deployment_returns_to_the_previous_revision(harness: Harness, cluster: FakeKubernetes) -> None:
    await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    harness.store.put(Resource.new("sockshop", "helm/carts.tgz", chart(image="carts:bad"), stage="dev", service="carts"))
    await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    assert deployment(cluster, "carts")["spec"]["template"]["spec"]["containers"][0]["image"] == "carts:bad"
    outcome = await harness.run("rollback", deployment={"deploymentstrategy": "direct"})
    assert outcome.result.value == "pass", outcome.message
    assert deployment(cluster, "carts")["spec"]["template"]["spec"]["containers"][0]["image"] == "carts:0.1"


async def test_blue_green_deploys_a_canary_then_promotes_it_on_release(harness: Harness, cluster: FakeKubernetes) -> None:
    first = await harness.run("deployment", deployment={"deploymentstrategy": "blue_green_service"})
    assert first.result.value == "pass", first.message
    assert first.data["deployment"]["deploymentstrategy"] == "duplicate"
    assert first.data["deployment"]["deploymentNames"] == ["canary"]
    assert first.data["deployment"]["deploymentURIsLocal"] == ["http://carts-canary.sockshop-dev:8080"]
    primary = deployment(cluster, "carts-primary")
    assert primary["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "carts-primary"}
    services = {s["metadata"]["name"]: s["spec"]["selector"] for s in cluster.objects("v1", "services", "sockshop-dev")}
    assert services == {"carts": {"app.kubernetes.io/name": "carts"},
                        "carts-canary": {"app.kubernetes.io/name": "carts"},
                        "carts-primary": {"app.kubernetes.io/name": "carts-primary"}}
    for stored in harness.stored:  # the generated chart is kept as a resource for later promotions
        harness.store.put(stored)

    second = await harness.run("deployment", deployment={"deploymentstrategy": "blue_green_service"},
                               configurationChange={"values": {"image": "carts:0.2"}})
    assert second.result.value == "pass", second.message
    assert deployment(cluster, "carts")["spec"]["template"]["spec"]["containers"][0]["image"] == "carts:0.2"
    assert deployment(cluster, "carts-primary")["spec"]["template"]["spec"]["containers"][0]["image"] == "carts:0.1"
    for stored in harness.stored:
        harness.store.put(stored)

    released = await harness.run("release", result="pass", deployment={"deploymentstrategy": "duplicate"})
    assert (released.status.value, released.result.value) == ("succeeded", "pass"), released.message
    assert deployment(cluster, "carts-primary")["spec"]["template"]["spec"]["containers"][0]["image"] == "carts:0.2"
    assert deployment(cluster, "carts")["spec"]["replicas"] == 0

    failed = await harness.run("release", result="fail", deployment={"deploymentstrategy": "duplicate"})
    assert (failed.status.value, failed.result.value) == ("succeeded", "fail")
    assert "not promoted" in failed.message


async def test_helm_errors_become_the_task_message(harness: Harness) -> None:
    harness.store.put(Resource.new("sockshop", "helm/carts.tgz", chart(template="{{ .Values.image "),
                                   stage="dev", service="carts"))
    outcome = await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    assert (outcome.status.value, outcome.result.value) == ("errored", "fail")
    assert "helm upgrade" in outcome.message and "parse error" in outcome.message


async def test_a_missing_chart_or_strategy_is_an_errored_task_that_says_what_to_do(harness: Harness) -> None:
    unknown = await harness.run("deployment", deployment={"deploymentstrategy": "canary_magic"})
    assert unknown.status.value == "errored" and "use direct, blue_green_service or user_managed" in unknown.message
    harness.store = ResourceStore()
    missing = await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    assert missing.status.value == "errored" and "no Helm chart helm/carts.tgz" in missing.message


async def test_user_managed_reports_the_endpoints_file(harness: Harness, cluster: FakeKubernetes) -> None:
    harness.store.put(Resource.new("sockshop", "helm/endpoints.yaml",
                                   b"deploymentURIsLocal: ['http://carts.internal:8080']\n", stage="dev", service="carts"))
    outcome = await harness.run("deployment", deployment={"deploymentstrategy": "user_managed"})
    assert outcome.result.value == "pass", outcome.message
    assert outcome.data["deployment"]["deploymentURIsLocal"] == ["http://carts.internal:8080"]
    assert outcome.data["deployment"]["deploymentNames"] == ["user_managed"]
    assert deployment(cluster, "carts")
