"""The unleash connector: the `toggle-feature` action (keptn-contrib/unleash-service, reference §5.5).

    action: {name: ..., action: toggle-feature, value: {EnablePromotion: "off", NewCheckout: "on"}}

Each toggle is switched in the Unleash project TIDEGATE_UNLEASH_PROJECT ("default") and the
environment TIDEGATE_UNLEASH_ENVIRONMENT (default: the event's stage). A value that is not a mapping
of toggle names to on/off ⇒ succeeded/fail (the action cannot be done as written); Unleash refusing
or unreachable ⇒ errored with its answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tidegate.connectors.runtime import TaskContext, TaskOutcome
from tidegate.connectors.unleash.api import UnleashApi, UnleashError, UnleashHttp
from tidegate.schemas.events import KeptnEvent

TOGGLE_FEATURE = "toggle-feature"
_STATES = {"on": True, "true": True, "enabled": True, "off": False, "false": False, "disabled": False}


class UnleashSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDEGATE_UNLEASH_", frozen=True, extra="ignore")

    url: str = "http://127.0.0.1:4242"
    token: SecretStr = SecretStr("")
    project: str = "default"
    environment: str | None = None


def toggles(value: Any) -> dict[str, bool] | str:
    """The requested toggle states, or why the value cannot be read."""
    if not isinstance(value, dict) or not value:
        return 'the toggle-feature value must map toggle names to "on" or "off", e.g. {EnablePromotion: "off"}'
    out: dict[str, bool] = {}
    for name, state in value.items():
        text = str(state).strip().lower() if not isinstance(state, bool) else ("on" if state else "off")
        if text not in _STATES:
            return f'toggle {name!r}: {state!r} is neither "on" nor "off"'
        out[str(name)] = _STATES[text]
    return out


class UnleashConnector:
    name = "unleash"
    tasks = ["action"]

    def __init__(self, settings: UnleashSettings | None = None, api: UnleashApi | None = None) -> None:
        self.settings = settings or UnleashSettings()
        self.api = api or UnleashHttp(self.settings.url, self.settings.token.get_secret_value())

    def wants(self, event: KeptnEvent) -> bool:
        action = event.data.get("action")
        return isinstance(action, dict) and action.get("action") == TOGGLE_FEATURE

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        wanted = toggles(ctx.payload("action").get("value"))
        if isinstance(wanted, str):
            return TaskOutcome.failed(wanted)
        environment = self.settings.environment or ctx.stage
        done: list[str] = []
        for feature, enabled in wanted.items():
            try:
                await self.api.set_toggle(self.settings.project, feature, environment, enabled)
            except UnleashError as error:
                already = f" (already switched: {', '.join(done)})" if done else ""
                return TaskOutcome.errored(f"{error}{already}")
            done.append(f"{feature} {'on' if enabled else 'off'}")
        return TaskOutcome.passed(f"Unleash ({self.settings.project}/{environment}): " + ", ".join(done))
