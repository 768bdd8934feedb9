"""The helm connector: Keptn's helm-service on the connector runtime (reference §6.1, §5.5).

Tasks: `deployment` (strategies direct, blue_green_service ≡ duplicate, user_managed), `release`,
`rollback`, and `action` with `action.action == "scaling"`. Per service: the chart is the resource
`helm/<svc>.tgz` (service, then stage, then project level), the namespace `<project>-<stage>`, the
release `<project>-<stage>-<svc>`, and for blue/green the generated chart `helm/<svc>-generated.tgz`
in the release `<project>-<stage>-<svc>-generated` (see charts.py: primary/canary Services, no mesh).
Every deployment passes Helm the values `keptn.{project,stage,service,deployment}`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tidegate.connectors.helm.charts import (
    CANARY_SUFFIX,
    ChartError,
    PublicHost,
    generated_chart,
    generated_objects,
    merge_values,
    parse_manifest,
    primary_objects,
    scale_manifest,
    service_uris,
)
from tidegate.connectors.helm.driver import HelmCli, HelmDriver, HelmError
from tidegate.connectors.helm.settings import HelmSettings
from tidegate.connectors.runtime import TaskContext, TaskOutcome
from tidegate.schemas.errors import FileError
from tidegate.schemas.events import KeptnEvent, Result
from tidegate.schemas.yamlreader import load_yaml
from tidegate.streams.resources import Resource

TASKS = ("deployment", "release", "rollback", "action")
SCALING = "scaling"
DIRECT, DUPLICATE, USER_MANAGED = "direct", "duplicate", "user_managed"
_STRATEGIES = {"direct": DIRECT, "blue_green_service": DUPLICATE, "duplicate": DUPLICATE, "user_managed": USER_MANAGED}
_NAMES = {DIRECT: "direct", DUPLICATE: "canary", USER_MANAGED: "user_managed"}
ENDPOINTS_FILE = "helm/endpoints.yaml"

DriverFactory = Callable[[TaskContext], HelmDriver]


def chart_path(service: str) -> str:
    return f"helm/{service}.tgz"


def generated_path(service: str) -> str:
    return f"helm/{service}-generated.tgz"


def strategy_of(data: dict[str, Any]) -> str | None:
    """The normalised strategy (direct|duplicate|user_managed) of data.deployment.deploymentstrategy."""
    block = data.get("deployment")
    raw = block.get("deploymentstrategy") if isinstance(block, dict) else None
    return _STRATEGIES.get(str(raw or "direct"))


def scaling_delta(value: Any) -> int | None:
    """Keptn's scaling value: a string holding an integer ("1", "-2"); anything else is refused."""
    if not isinstance(value, str):
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


class HelmConnector:
    name = "helm"
    tasks = list(TASKS)

    def __init__(self, settings: HelmSettings | None = None, driver_factory: DriverFactory | None = None,
                 binary: str | Path | None = None) -> None:
        self.settings = settings or HelmSettings()
        self._binary = binary
        self._driver_factory = driver_factory or self._cli

    def _cli(self, ctx: TaskContext) -> HelmDriver:
        if self._binary is None:
            from tidegate.connectors.helm.install import ensure_helm

            self._binary = self.settings.binary or ensure_helm()
        s = self.settings
        return HelmCli(ctx.run_program, self._binary, kubeconfig=s.kubeconfig, wait=s.wait,
                       create_namespace=s.create_namespace, openapi_validation=s.openapi_validation,
                       helm_timeout=s.helm_timeout)

    @property
    def public(self) -> PublicHost:
        s = self.settings
        return PublicHost(s.ingress_protocol, s.ingress_hostname_suffix, s.ingress_port, s.hostname_template)

    def wants(self, event: KeptnEvent) -> bool:
        task = event.parsed_type.task
        if task == "action":
            action = event.data.get("action")
            return isinstance(action, dict) and action.get("action") == SCALING
        return task in TASKS

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        handlers = {"deployment": self.deploy, "release": self.release, "rollback": self.rollback,
                    "action": self.scale}
        try:
            with tempfile.TemporaryDirectory(prefix="tidegate-helm-") as directory:
                return await handlers[ctx.task](ctx, self._driver_factory(ctx), Path(directory))
        except (HelmError, ChartError) as error:
            return TaskOutcome.errored(str(error))

    # --- shared steps ---
    def _names(self, ctx: TaskContext) -> tuple[str, str]:
        return f"{ctx.project}-{ctx.stage}", f"{ctx.project}-{ctx.stage}-{ctx.service}"

    def _chart(self, ctx: TaskContext) -> Resource | None:
        return ctx.resource(chart_path(ctx.service))

    def _keptn_values(self, ctx: TaskContext, directory: Path, deployment: str) -> Path:
        path = directory / "keptn-values.yaml"
        path.write_text(yaml.safe_dump({"keptn": {"project": ctx.project, "stage": ctx.stage,
                                                  "service": ctx.service, "deployment": deployment}}))
        return path

    @staticmethod
    def _write(directory: Path, name: str, content: bytes) -> Path:
        path = directory / name
        path.write_bytes(content)
        return path

    def _missing_chart(self, ctx: TaskContext) -> TaskOutcome:
        return TaskOutcome.errored(
            f"no Helm chart {chart_path(ctx.service)} for service {ctx.service} in stage {ctx.stage} of project "
            f"{ctx.project}; add the packaged chart as that resource (service, stage or project level)"
        )

    # --- deployment ---
    async def deploy(self, ctx: TaskContext, helm: HelmDriver, directory: Path) -> TaskOutcome:
        strategy = strategy_of(ctx.data)
        if strategy is None:
            raw = ctx.payload("deployment").get("deploymentstrategy")
            return TaskOutcome.errored(f"unknown deployment strategy {raw!r}; use direct, blue_green_service or "
                                       "user_managed")
        resource = self._chart(ctx)
        if resource is None:
            return self._missing_chart(ctx)
        content = resource.content
        values = ctx.payload("configurationChange").get("values")
        if isinstance(values, dict) and values:
            content = merge_values(content, values, resource.path)
            # Keptn committed the merged values; here they become the chart's next resource version.
            await ctx.store_resource(Resource.new(resource.project, resource.path, content, resource.stage,
                                                  resource.service))
        namespace, release = self._names(ctx)
        chart = self._write(directory, "chart.tgz", content)
        keptn_values = self._keptn_values(ctx, directory, _NAMES[strategy])
        await helm.upgrade(release, chart, namespace, [keptn_values])
        if strategy == USER_MANAGED:
            local, public = self._user_managed_uris(ctx)
        else:
            manifest = parse_manifest(await helm.template(release, chart, namespace, [keptn_values]))
            service_name = ctx.service
            if strategy == DUPLICATE:
                service_name = f"{ctx.service}{CANARY_SUFFIX}"
                if ctx.resource(generated_path(ctx.service)) is None:
                    # First deployment: the primary starts as a copy of the same version.
                    await self._install_generated(ctx, helm, directory, primary_objects(manifest, ctx.service))
            local, public = service_uris(manifest, ctx.service, ctx.project, ctx.stage, self.public, service_name)
        data = {"deployment": {
            "deploymentstrategy": strategy, "deploymentURIsLocal": local, "deploymentURIsPublic": public,
            "deploymentNames": [_NAMES[strategy]], **({"gitCommit": ctx.event.gitcommitid} if ctx.event.gitcommitid else {}),
        }}
        return TaskOutcome.passed(f"Finished Helm upgrade of release {release} in namespace {namespace} ({strategy})",
                                  data)

    def _user_managed_uris(self, ctx: TaskContext) -> tuple[list[str], list[str]]:
        endpoints = ctx.resource(ENDPOINTS_FILE)
        block = ctx.payload("deployment")
        local, public = list(block.get("deploymentURIsLocal") or []), list(block.get("deploymentURIsPublic") or [])
        if endpoints is not None:
            try:
                loaded = load_yaml(endpoints.text, ENDPOINTS_FILE) or {}
            except FileError as error:
                raise ChartError(f"{ENDPOINTS_FILE} cannot be used: {error}") from None
            if isinstance(loaded, dict):
                local = list(loaded.get("deploymentURIsLocal") or local)
                public = list(loaded.get("deploymentURIsPublic") or public)
        return local, public

    async def _install_generated(self, ctx: TaskContext, helm: HelmDriver, directory: Path,
                                 objects: list[dict[str, Any]]) -> None:
        namespace, release = self._names(ctx)
        content = generated_chart(objects, ctx.service)
        await helm.upgrade(f"{release}-generated", self._write(directory, "generated.tgz", content), namespace)
        await ctx.store_resource(Resource.new(ctx.project, generated_path(ctx.service), content, ctx.stage, ctx.service))

    # --- release ---
    async def release(self, ctx: TaskContext, helm: HelmDriver, directory: Path) -> TaskOutcome:
        incoming = str(ctx.data.get("result") or "pass")
        result = Result(incoming) if incoming in {r.value for r in Result} else Result.PASS
        strategy = strategy_of(ctx.data)
        outcome = TaskOutcome(result=result)
        if strategy != DUPLICATE:
            return TaskOutcome(result=result, message=f"nothing to release for the {strategy} strategy")
        if result not in (Result.PASS, Result.WARNING):
            return TaskOutcome(result=result, message=f"not promoted: the sequence result is {incoming}")
        resource = self._chart(ctx)
        if resource is None:
            return self._missing_chart(ctx)
        namespace, release = self._names(ctx)
        chart = self._write(directory, "chart.tgz", resource.content)
        keptn_values = self._keptn_values(ctx, directory, "primary")
        manifest = parse_manifest(await helm.template(release, chart, namespace, [keptn_values]))
        await self._install_generated(ctx, helm, directory, primary_objects(manifest, ctx.service))
        await helm.upgrade(release, chart, namespace, reuse_values=True, set_values={"replicaCount": "0"})
        return TaskOutcome(outcome.status, result, f"Promoted {ctx.service}: the primary now runs the new version and "
                                                   "the canary is scaled to 0")

    # --- rollback ---
    async def rollback(self, ctx: TaskContext, helm: HelmDriver, directory: Path) -> TaskOutcome:
        namespace, release = self._names(ctx)
        strategy = strategy_of(ctx.data)
        if strategy == DUPLICATE:
            resource = self._chart(ctx)
            if resource is None:
                return self._missing_chart(ctx)
            chart = self._write(directory, "chart.tgz", resource.content)
            await helm.upgrade(release, chart, namespace, reuse_values=True, set_values={"replicaCount": "0"})
            return TaskOutcome.passed(f"Rolled back {ctx.service}: the canary is scaled to 0, the primary serves")
        if strategy == USER_MANAGED:
            return TaskOutcome.passed("user_managed: Tidegate does not roll back charts it does not manage")
        # Keptn left direct deployments alone; going back one Helm revision is what a user means.
        await helm.rollback(release, namespace)
        return TaskOutcome.passed(f"Rolled back release {release} to its previous revision")

    # --- scaling action ---
    async def scale(self, ctx: TaskContext, helm: HelmDriver, directory: Path) -> TaskOutcome:
        action = ctx.payload("action")
        delta = scaling_delta(action.get("value"))
        if delta is None:
            return TaskOutcome.failed(f"could not parse the scaling value {action.get('value')!r}: it must be a "
                                      'string holding an integer, e.g. value: "1"')
        namespace, release = self._names(ctx)
        generated = ctx.resource(generated_path(ctx.service))
        if generated is not None:
            current_objects = generated_objects(generated.content, generated.path)
            before = sum(int((doc.get("spec") or {}).get("replicas", 1)) for doc in current_objects
                         if doc.get("kind") == "Deployment")
            objects, counts = scale_manifest(current_objects, delta)
            await self._install_generated(ctx, helm, directory, objects)
            return TaskOutcome.passed(f"Successfully executed scaling action: {release}-generated from {before} to "
                                      f"{sum(counts)} replicas",
                                      scaling_data(f"{namespace}/{release}-generated", before, sum(counts)))
        resource = self._chart(ctx)
        if resource is None:
            return self._missing_chart(ctx)
        current = (await helm.get_values(release, namespace)).get("replicaCount", 1)
        try:
            replicas = max(0, int(current) + delta)
        except (TypeError, ValueError):
            return TaskOutcome.errored(f"release {release} has replicaCount {current!r}, not a number")
        chart = self._write(directory, "chart.tgz", resource.content)
        await helm.upgrade(release, chart, namespace, reuse_values=True, set_values={"replicaCount": str(replicas)})
        await keep_replica_count(ctx, resource, replicas)
        return TaskOutcome.passed(f"Successfully executed scaling action: {release} from {current} to {replicas} "
                                  "replicas", scaling_data(f"{namespace}/{release}", int(current), replicas))


def scaling_data(target: str, before: int, after: int) -> dict[str, Any]:
    """The `.finished` data of a scaling action: what was scaled, and its replicas before and after."""
    return {"scaling": {"target": target, "replicasBefore": before, "replicasAfter": after}}


async def keep_replica_count(ctx: TaskContext, chart: Resource, replicas: int) -> None:
    """Store the chart with `replicaCount: replicas` in its values.yaml (as its next resource version), so the
    next deployment's `helm upgrade` keeps the scaled count instead of resetting it to the chart's default."""
    content = merge_values(chart.content, {"replicaCount": replicas}, chart.path)
    await ctx.store_resource(Resource.new(chart.project, chart.path, content, chart.stage, chart.service))
