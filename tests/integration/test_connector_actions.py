"""The action connectors against local servers speaking the real APIs: unleash (toggle-feature) and
kubernetes (scaling through the Deployment scale subresource, with the real `kubernetes` client)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.fakes.kubernetes import FakeKubernetes
from tests.fakes.unleash import FakeUnleash
from tidegate.connectors.kubernetes import KubernetesConnector, KubernetesSettings
from tidegate.connectors.runtime import TaskContext, TaskOutcome
from tidegate.connectors.unleash import UnleashConnector, UnleashSettings
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.resources import ResourceStore
from tidegate.streams.settings import Settings

pytestmark = pytest.mark.integration


def action(name: str, value: Any, stage: str = "production") -> KeptnEvent:
    return KeptnEvent(type="sh.keptn.event.action.triggered", data={
        "project": "sockshop", "stage": stage, "service": "carts",
        "action": {"name": f"{name} it", "action": name, "value": value},
        "problem": {"problemTitle": "response time degradation"}})


async def run(connector: UnleashConnector | KubernetesConnector, event: KeptnEvent) -> TaskOutcome:
    assert connector.wants(event)
    ctx = TaskContext(event=event, task="action", connector=connector.name, resources=ResourceStore(),
                      settings=Settings(), timeout=30)
    return await connector.run(ctx)


async def test_unleash_switches_each_toggle_in_the_stage_environment() -> None:
    with FakeUnleash() as unleash:
        unleash.add("EnablePromotion", production=True, dev=True)
        unleash.add("NewCheckout", production=False)
        connector = UnleashConnector(UnleashSettings(url=unleash.url, token=SecretStr(unleash.token)))
        outcome = await run(connector, action("toggle-feature", {"EnablePromotion": "off", "NewCheckout": "on"}))
    assert (outcome.status.value, outcome.result.value) == ("succeeded", "pass"), outcome.message
    assert unleash.features[("default", "EnablePromotion")] == {"production": False, "dev": True}
    assert unleash.features[("default", "NewCheckout")] == {"production": True}
    assert unleash.calls == [("default", "EnablePromotion", "production", "off"),
                             ("default", "NewCheckout", "production", "on")]


async def test_unleash_errors_say_what_to_check_and_never_show_the_token() -> None:
    with FakeUnleash() as unleash:
        unleash.add("EnablePromotion", production=True)
        wrong_token = UnleashConnector(UnleashSettings(url=unleash.url, token=SecretStr("nope-secret")))
        refused = await run(wrong_token, action("toggle-feature", {"EnablePromotion": "off"}))
        right = UnleashConnector(UnleashSettings(url=unleash.url, token=SecretStr(unleash.token)))
        missing = await run(right, action("toggle-feature", {"Unknown": "off"}))
        bad = await run(right, action("toggle-feature", {"EnablePromotion": "sideways"}))
    assert refused.status.value == "errored" and "TIDEGATE_UNLEASH_TOKEN" in refused.message
    assert "nope-secret" not in refused.message
    assert missing.status.value == "errored" and "Could not find feature toggle with name Unknown" in missing.message
    assert (bad.status.value, bad.result.value) == ("succeeded", "fail") and "neither" in bad.message


async def test_kubernetes_scales_a_deployment_through_the_scale_subresource(tmp_path: Path) -> None:
    with FakeKubernetes() as api:
        api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sockshop-production"}})
        api.put({"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": "carts", "namespace": "sockshop-production"},
                 "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "carts"}},
                          "template": {"metadata": {"labels": {"app": "carts"}}, "spec": {"containers": []}}}})
        connector = KubernetesConnector(KubernetesSettings(kubeconfig=str(api.kubeconfig(tmp_path / "kubeconfig"))))
        up = await run(connector, action("scaling", "3"))
        down = await run(connector, action("scaling", "-10"))
        replicas_after_down = (api.get("apps/v1", "deployments", "sockshop-production", "carts") or {})["spec"]["replicas"]
        missing = await run(connector, action("scaling", "1", stage="dev"))
        bad = await run(connector, action("scaling", "three"))
    assert up.result.value == "pass" and "from 2 to 5 replicas" in up.message, up.message
    assert down.result.value == "pass" and replicas_after_down == 0
    assert missing.status.value == "errored" and "sockshop-dev/carts" in missing.message
    assert (bad.status.value, bad.result.value) == ("succeeded", "fail")
    scale_calls = [(m, p) for m, p in api.requests if p.endswith("/scale")]
    assert ("PATCH", "/apis/apps/v1/namespaces/sockshop-production/deployments/carts/scale") in scale_calls
