"""The helm connector with the real Helm 3 CLI against a real Kubernetes control plane.

The cluster is `deploy/local/kubernetes.py` (etcd, API server, controller-manager, scheduler and kwok
on 127.0.0.1; the `kube_cluster` session fixture), so Helm's `--create-namespace`, OpenAPI validation
and `--wait` are the real ones, and a Deployment becomes Available because its pods become Ready under
kwok (nothing runs inside them). Each test uses a fresh project, so a fresh namespace `<project>-dev`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import KubeCluster
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


class Harness:
    def __init__(self, helm_binary: Path, cluster: KubeCluster) -> None:
        self.cluster = cluster
        self.project = f"p{uuid.uuid4().hex[:8]}"
        self.namespace = f"{self.project}-dev"
        cluster.namespaces.append(self.namespace)
        self.store = ResourceStore()
        self.stored: list[Resource] = []
        settings = HelmSettings(kubeconfig=str(cluster.kubeconfig), helm_timeout="90s")
        self.connector = HelmConnector(settings, binary=helm_binary)
        self.put_chart(chart())

    def put_chart(self, content: bytes) -> None:
        self.store.put(Resource.new(self.project, "helm/carts.tgz", content, stage="dev", service="carts"))

    async def _store(self, resource: Resource) -> None:
        self.stored.append(resource)

    def context(self, task: str, **data: Any) -> TaskContext:
        event = KeptnEvent(type=f"sh.keptn.event.{task}.triggered", shkeptncontext="ctx", gitcommitid="g1",
                           data={"project": self.project, "stage": "dev", "service": "carts", **data})
        assert self.connector.wants(event)
        return TaskContext(event=event, task=task, connector="helm", resources=self.store, settings=Settings(),
                           timeout=120, store_resource_with=self._store)

    async def run(self, task: str, **data: Any) -> Any:
        return await self.connector.run(self.context(task, **data))

    def get(self, kind: str, name: str | None = None) -> Any:
        args = ["get", kind, *([name] if name else []), "-n", self.namespace, "-o", "json"]
        return json.loads(self.cluster.kubectl(*args).stdout)

    def deployment(self, name: str) -> dict[str, Any]:
        return dict(self.get("deployment", name))

    def image(self, name: str) -> str:
        return str(self.deployment(name)["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.fixture
def harness(helm_binary: Path, kube_cluster: KubeCluster) -> Harness:
    return Harness(helm_binary, kube_cluster)


def available(deployment: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in deployment.get("status", {}).get("conditions", [])}
    return conditions.get("Available") == "True"


async def test_direct_deployment_merges_values_installs_and_becomes_available(harness: Harness) -> None:
    outcome = await harness.run("deployment", deployment={"deploymentstrategy": "direct"},
                                configurationChange={"values": {"image": "carts:0.2", "replicaCount": 2}})
    assert (outcome.status.value, outcome.result.value) == ("succeeded", "pass"), outcome.message
    ns = harness.namespace
    assert outcome.data["deployment"] == {
        "deploymentstrategy": "direct",
        "deploymentURIsLocal": [f"http://carts.{ns}:8080"],
        "deploymentURIsPublic": [f"http://carts.{ns}.svc.cluster.local:80"],
        "deploymentNames": ["direct"],
        "gitCommit": "g1",
    }
    # `helm upgrade --install --wait` returned: the real Deployment rolled out (its pods Ready under kwok).
    carts = harness.deployment("carts")
    assert available(carts) and carts["status"]["readyReplicas"] == 2
    assert harness.image("carts") == "carts:0.2"
    # The merged values are stored back as the chart's next version; other values are kept.
    [stored] = harness.stored
    values = yaml.safe_load(read_chart(stored.content).file("values.yaml") or b"")
    assert values == {"image": "carts:0.2", "replicaCount": 2, "other": {"keep": True}}
    release_secrets = [s["metadata"]["name"] for s in harness.get("secrets")["items"]]
    assert release_secrets == [f"sh.helm.release.v1.{ns}-carts.v1"]


async def test_scaling_adds_to_replica_count_and_refuses_a_bad_value(harness: Harness) -> None:
    await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    outcome = await harness.run("action", action={"action": "scaling", "value": "2"})
    assert outcome.result.value == "pass", outcome.message
    assert outcome.data == {"scaling": {"target": f"{harness.namespace}/{harness.namespace}-carts",
                                        "replicasBefore": 1, "replicasAfter": 3}}
    carts = harness.deployment("carts")
    assert carts["spec"]["replicas"] == 3 and carts["status"]["readyReplicas"] == 3
    # The chart's values keep the count, so the next deployment (a new image) does not undo the scaling.
    for stored in harness.stored:
        harness.store.put(stored)
    again = await harness.run("deployment", deployment={"deploymentstrategy": "direct"},
                              configurationChange={"values": {"image": "carts:0.3"}})
    assert again.result.value == "pass", again.message
    carts = harness.deployment("carts")
    assert (carts["spec"]["replicas"], harness.image("carts")) == (3, "carts:0.3") and available(carts)
    bad = await harness.run("action", action={"action": "scaling", "value": 2})
    assert (bad.status.value, bad.result.value) == ("succeeded", "fail")
    assert "string holding an integer" in bad.message


async def test_rollback_of_a_direct_deployment_returns_to_the_previous_revision(harness: Harness) -> None:
    await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    harness.put_chart(chart(image="carts:bad"))
    await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    assert harness.image("carts") == "carts:bad"
    outcome = await harness.run("rollback", deployment={"deploymentstrategy": "direct"})
    assert outcome.result.value == "pass", outcome.message
    carts = harness.deployment("carts")
    assert harness.image("carts") == "carts:0.1" and available(carts)
    assert carts["metadata"]["annotations"]["meta.helm.sh/release-name"] == f"{harness.namespace}-carts"


async def test_blue_green_deploys_a_canary_then_promotes_it_on_release(harness: Harness) -> None:
    ns = harness.namespace
    first = await harness.run("deployment", deployment={"deploymentstrategy": "blue_green_service"})
    assert first.result.value == "pass", first.message
    assert first.data["deployment"]["deploymentstrategy"] == "duplicate"
    assert first.data["deployment"]["deploymentNames"] == ["canary"]
    assert first.data["deployment"]["deploymentURIsLocal"] == [f"http://carts-canary.{ns}:8080"]
    primary = harness.deployment("carts-primary")
    assert primary["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "carts-primary"}
    assert available(primary) and available(harness.deployment("carts"))
    services = {s["metadata"]["name"]: s["spec"]["selector"] for s in harness.get("services")["items"]}
    assert services == {"carts": {"app.kubernetes.io/name": "carts"},
                        "carts-canary": {"app.kubernetes.io/name": "carts"},
                        "carts-primary": {"app.kubernetes.io/name": "carts-primary"}}
    for stored in harness.stored:  # the generated chart is kept as a resource for later promotions
        harness.store.put(stored)

    second = await harness.run("deployment", deployment={"deploymentstrategy": "blue_green_service"},
                               configurationChange={"values": {"image": "carts:0.2"}})
    assert second.result.value == "pass", second.message
    assert harness.image("carts") == "carts:0.2"
    assert harness.image("carts-primary") == "carts:0.1"
    for stored in harness.stored:
        harness.store.put(stored)

    released = await harness.run("release", result="pass", deployment={"deploymentstrategy": "duplicate"})
    assert (released.status.value, released.result.value) == ("succeeded", "pass"), released.message
    assert harness.image("carts-primary") == "carts:0.2" and available(harness.deployment("carts-primary"))
    assert harness.deployment("carts")["spec"]["replicas"] == 0

    failed = await harness.run("release", result="fail", deployment={"deploymentstrategy": "duplicate"})
    assert (failed.status.value, failed.result.value) == ("succeeded", "fail")
    assert "not promoted" in failed.message

    # Scaling a blue/green service scales the primary (the generated chart), and it rolls out.
    for stored in harness.stored:
        harness.store.put(stored)
    scaled = await harness.run("action", action={"action": "scaling", "value": "2"})
    assert scaled.result.value == "pass", scaled.message
    assert scaled.data == {"scaling": {"target": f"{ns}/{ns}-carts-generated", "replicasBefore": 1, "replicasAfter": 3}}
    primary = harness.deployment("carts-primary")
    assert (primary["spec"]["replicas"], primary["status"]["readyReplicas"]) == (3, 3)


async def test_helm_errors_become_the_task_message(harness: Harness) -> None:
    harness.put_chart(chart(template="{{ .Values.image "))
    outcome = await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    assert (outcome.status.value, outcome.result.value) == ("errored", "fail")
    assert "helm upgrade" in outcome.message and "parse error" in outcome.message


async def test_a_chart_the_api_server_rejects_ends_errored_with_helms_message(harness: Harness) -> None:
    # Valid YAML and valid against the OpenAPI schema, but the API server's validation refuses the port.
    harness.put_chart(chart(template=TEMPLATE.replace("port: 8080, targetPort", "port: 99999, targetPort")))
    outcome = await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    assert (outcome.status.value, outcome.result.value) == ("errored", "fail")
    assert "helm upgrade" in outcome.message, outcome.message
    assert "Invalid value: 99999" in outcome.message and "between 1 and 65535" in outcome.message, outcome.message


def _helm_processes(release: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if release.encode() in cmdline and any(part.endswith(b"helm") for part in cmdline[:1]):
                found.append(int(proc.name))
    return found


async def test_an_aborted_sequence_cancels_the_running_helm_call(harness: Harness) -> None:
    # A pod that no node can take: `helm upgrade --wait` waits (up to 90 s) for a rollout that never comes.
    stuck = TEMPLATE.replace("      containers:", "      nodeSelector: {tidegate.test/none: \"true\"}\n      containers:")
    harness.put_chart(chart(template=stuck))
    release = f"{harness.namespace}-carts"
    work = asyncio.create_task(harness.run("deployment", deployment={"deploymentstrategy": "direct"}))
    deadline = time.monotonic() + 60
    while not harness.get("deployments")["items"]:  # helm created the Deployment and is now waiting
        assert not work.done() and time.monotonic() < deadline, "helm never created the Deployment"
        await asyncio.sleep(0.2)
    assert _helm_processes(release)
    work.cancel()  # what the connector runtime does when the sequencer cancels the task
    with pytest.raises(asyncio.CancelledError):
        await work
    assert _helm_processes(release) == []
    carts = harness.deployment("carts")
    assert not available(carts)


async def test_a_missing_chart_or_strategy_is_an_errored_task_that_says_what_to_do(harness: Harness) -> None:
    unknown = await harness.run("deployment", deployment={"deploymentstrategy": "canary_magic"})
    assert unknown.status.value == "errored" and "use direct, blue_green_service or user_managed" in unknown.message
    harness.store = ResourceStore()
    missing = await harness.run("deployment", deployment={"deploymentstrategy": "direct"})
    assert missing.status.value == "errored" and "no Helm chart helm/carts.tgz" in missing.message


async def test_user_managed_reports_the_endpoints_file(harness: Harness) -> None:
    harness.store.put(Resource.new(harness.project, "helm/endpoints.yaml",
                                   b"deploymentURIsLocal: ['http://carts.internal:8080']\n", stage="dev", service="carts"))
    outcome = await harness.run("deployment", deployment={"deploymentstrategy": "user_managed"})
    assert outcome.result.value == "pass", outcome.message
    assert outcome.data["deployment"]["deploymentURIsLocal"] == ["http://carts.internal:8080"]
    assert outcome.data["deployment"]["deploymentNames"] == ["user_managed"]
    assert available(harness.deployment("carts"))
