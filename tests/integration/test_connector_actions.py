"""The unleash action connector (toggle-feature) against a local server speaking Unleash's API.
The kubernetes connector's scaling runs against a real control plane: test_connector_kubernetes.py."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from tests.fakes.unleash import FakeUnleash
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


async def run(connector: UnleashConnector, event: KeptnEvent) -> TaskOutcome:
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
