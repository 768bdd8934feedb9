"""The kubernetes connector: the `scaling` action for Deployments that Helm does not manage.

    action: {action: scaling, value: "1"}          # Keptn's form: a string holding an integer to add

The Deployment is the service's name in the namespace TIDEGATE_KUBERNETES_NAMESPACE (a template,
default `{project}-{stage}`, Keptn's namespace). The `.finished` data says
`scaling: {target: <ns>/<name>, replicasBefore, replicasAfter}`. When the service has a Helm chart
(`helm/<svc>.tgz`), its `replicaCount` value is set to the new count too (the chart's next resource
version), so the next deployment's `helm upgrade` keeps the scaled count. Run either this connector or the helm connector
for scaling actions of a service, not both: each would answer the same `action.triggered`.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from tidegate.connectors.helm.charts import ChartError
from tidegate.connectors.helm.connector import (
    SCALING,
    chart_path,
    keep_replica_count,
    scaling_data,
    scaling_delta,
)
from tidegate.connectors.kubernetes.api import KubernetesScaleApi, ScaleApi, ScaleError
from tidegate.connectors.runtime import TaskContext, TaskOutcome
from tidegate.schemas.events import KeptnEvent


class KubernetesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDEGATE_KUBERNETES_", frozen=True, extra="ignore")

    kubeconfig: str | None = None
    namespace: str = "{project}-{stage}"


class KubernetesConnector:
    name = "kubernetes"
    tasks = ["action"]

    def __init__(self, settings: KubernetesSettings | None = None, api: ScaleApi | None = None) -> None:
        self.settings = settings or KubernetesSettings()
        self.api = api or KubernetesScaleApi(self.settings.kubeconfig)

    def wants(self, event: KeptnEvent) -> bool:
        action = event.data.get("action")
        return isinstance(action, dict) and action.get("action") == SCALING

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        value = ctx.payload("action").get("value")
        delta = scaling_delta(value)
        if delta is None:
            return TaskOutcome.failed(f'could not parse the scaling value {value!r}: it must be a string holding an '
                                      'integer, e.g. value: "1"')
        namespace = self.settings.namespace.format(project=ctx.project, stage=ctx.stage, service=ctx.service)
        target = f"{namespace}/{ctx.service}"
        try:
            current = await self.api.get_replicas(namespace, ctx.service)
            replicas = max(0, current + delta)
            await self.api.set_replicas(namespace, ctx.service, replicas)
        except ScaleError as error:
            return TaskOutcome.errored(str(error))
        chart = ctx.resource(chart_path(ctx.service))
        note = ""
        if chart is not None:
            try:
                await keep_replica_count(ctx, chart, replicas)
                note = f"; replicaCount {replicas} kept in {chart.path}"
            except ChartError as error:
                note = f"; the chart's replicaCount was not updated ({error})"
        return TaskOutcome.passed(f"Successfully executed scaling action: deployment {target} "
                                  f"from {current} to {replicas} replicas{note}", scaling_data(target, current, replicas))
