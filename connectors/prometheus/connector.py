"""The Prometheus SLI connector: answers `get-sli.triggered` events whose `sliProvider` is `prometheus`,
and `sh.keptn.event.monitoring.configure` events for Prometheus (`keptn configure monitoring
prometheus`; monitoring.py: the project's SLI provider and, with a rules file, its alert rules).

    tidegate connector prometheus

It runs on the connector runtime (consumer group `<prefix>connector-prometheus` on `tasks.get-sli`),
so the runtime sends `get-sli.started`, remembers handled requests and sends `get-sli.finished` with
what `run` returns. Per request (reference §5.4):

1. the queries: `prometheus/sli.yaml` of the project, the stage and the service, merged in that order
   (the more specific level wins per indicator); indicators no file defines use Keptn's built-ins;
2. the Prometheus to ask (below);
3. one instant query per indicator at the window's end (`provider.get_slis`) and the answer
   (`provider.finished_data`): result pass when every indicator has a value, warning when some
   have, fail ("unable to retrieve metrics") when none has. A file that cannot be used, or no
   Prometheus to ask, is status errored with a message naming the file and the fix.

Which Prometheus, and how to log in:
    TIDEGATE_PROMETHEUS_URL      the default (PROMETHEUS_URL is read as well, as Keptn's service did),
                                 with the credentials in PROMETHEUS_TOKEN or PROMETHEUS_USER/_PASSWORD
    .tidegate/prometheus.yaml    a project's own (service, stage or project level, most specific first):
                                     url: http://prometheus.team-a:9090
                                     tokenEnv: TEAM_A_PROMETHEUS_TOKEN       # or userEnv + passwordEnv
Resources are readable by everyone who can read the project, so the file only names environment
variables; their values stay in this connector's environment. A file that gives its own `url` gets
only the credentials it names: the default credentials are never sent to another server.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from tidegate.connectors.prometheus.client import BearerToken, PrometheusClient, auth_from_env
from tidegate.connectors.prometheus.monitoring import MonitoringSettings, follow_configure_events
from tidegate.connectors.prometheus.provider import PROVIDER_NAME, finished_data, get_slis, handles
from tidegate.connectors.prometheus.sli import merge_indicators
from tidegate.connectors.runtime.catalog import BuildRequest
from tidegate.connectors.runtime.context import TaskContext
from tidegate.connectors.runtime.outcome import TaskOutcome
from tidegate.schemas.errors import FileError, TidegateError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.files import FileKind, load_text, load_yaml
from tidegate.schemas.payloads import GetSLITriggered
from tidegate.schemas.sli import SLI
from tidegate.streams.resources import SLI_PROMETHEUS, Resource
from tidegate.streams.settings import Settings

TASK = "get-sli"
URL_ENV = "TIDEGATE_PROMETHEUS_URL"
KEPTN_URL_ENV = "PROMETHEUS_URL"
TARGET_FILE = ".tidegate/prometheus.yaml"


class ConfigProblem(TidegateError, ValueError):
    """A configuration file or setting that cannot be used; the message names it and says what to change."""


def file_name(resource: Resource) -> str:
    """`sockshop/dev/carts/prometheus/sli.yaml`: the level that holds the file, for messages."""
    return "/".join(part for part in (resource.project, resource.stage, resource.service, resource.path) if part)


# --- which queries (pure) --------------------------------------------------------------------------


def sli_files(layers: Sequence[Resource]) -> list[SLI]:
    """The SLI files of a key, project level first; ConfigProblem naming the first one that cannot be used."""
    files: list[SLI] = []
    for resource in layers:
        try:
            loaded = load_text(resource.text, file_name(resource), FileKind.SLI)
        except FileError as error:
            raise ConfigProblem(f"{error}. Fix the file; until then this service's SLIs cannot be queried") from error
        files.append(loaded.expect(SLI))
    return files


# --- which Prometheus (pure) -----------------------------------------------------------------------


class TargetFile(BaseModel):
    """`.tidegate/prometheus.yaml`: where a project's Prometheus is and which variables hold its credentials."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = None
    tokenEnv: str | None = None
    userEnv: str | None = None
    passwordEnv: str | None = None

    @model_validator(mode="after")
    def _one_kind_of_login(self) -> TargetFile:
        if self.tokenEnv and (self.userEnv or self.passwordEnv):
            raise ValueError("give either tokenEnv or userEnv and passwordEnv, not both")
        if bool(self.userEnv) != bool(self.passwordEnv):
            raise ValueError("basic auth needs both userEnv and passwordEnv")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"url {self.url!r} is not an http(s) URL like http://prometheus:9090")
            if parts.username or parts.password:
                raise ValueError(
                    "url must not carry credentials: put them in environment variables of the connector "
                    "and name those here with tokenEnv, or userEnv and passwordEnv"
                )
        return self


def parse_target_file(text: str, name: str) -> TargetFile:
    try:
        raw = load_yaml(text, name)  # a resource: the same size and alias limits as every user file
    except FileError as error:
        raise ConfigProblem(f"{name} is not valid YAML: {error}") from error
    try:
        return TargetFile.model_validate(raw if raw is not None else {})
    except ValidationError as error:
        problems = "; ".join(
            ".".join(str(part) for part in item["loc"]) + ": " + item["msg"] if item["loc"] else item["msg"]
            for item in error.errors(include_url=False)
        )
        raise ConfigProblem(
            f"{name}: {problems} (expected `url:` and optionally `tokenEnv:`, or `userEnv:` and `passwordEnv:`)"
        ) from error


@dataclass(frozen=True)
class Target:
    """The Prometheus to ask for one key, and how to log in (the auth object hides its secret)."""

    url: str
    auth: httpx.Auth | None
    where: str  # what chose it, for messages


def _variable(env: Mapping[str, str], name: str, where: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigProblem(f"{where} names the environment variable {name}, which is not set for the connector; set it")
    return value


def target_for(configured: TargetFile | None, where: str, env: Mapping[str, str]) -> Target:
    """The Prometheus of a key: its `.tidegate/prometheus.yaml` (`configured`, found at `where`), else the default."""
    default_url = env.get(URL_ENV) or env.get(KEPTN_URL_ENV) or ""
    if configured is None:
        if not default_url:
            raise ConfigProblem(
                f"no Prometheus to ask: set {URL_ENV} for the connector, or add {TARGET_FILE} with `url:` to the project"
            )
        try:
            return Target(default_url, auth_from_env(env), URL_ENV)
        except ValueError as error:
            raise ConfigProblem(str(error)) from error
    url = configured.url or default_url
    if not url:
        raise ConfigProblem(f"{where} gives no `url` and {URL_ENV} is not set; add `url:` to the file")
    auth: httpx.Auth | None
    if configured.tokenEnv:
        auth = BearerToken(_variable(env, configured.tokenEnv, where))
    elif configured.userEnv and configured.passwordEnv:
        auth = httpx.BasicAuth(_variable(env, configured.userEnv, where), _variable(env, configured.passwordEnv, where))
    elif configured.url:
        auth = None  # another server: never send it the default credentials
    else:
        try:
            auth = auth_from_env(env)
        except ValueError as error:
            raise ConfigProblem(str(error)) from error
    return Target(url, auth, where)


# --- the connector (the shell) ---------------------------------------------------------------------


class PrometheusSLIConnector:
    """`get-sli` for `sliProvider: prometheus`, on the connector runtime."""

    name = "prometheus"
    tasks: Sequence[str] = (TASK,)

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._environ = environ if environ is not None else os.environ
        # A test puts a fake Prometheus behind the real client here.
        self._client_options = {**(client_options or {}), **({"transport": transport} if transport else {})}
        # Set once the monitoring.configure follower reads the events topic.
        self.following = asyncio.Event()

    async def follow(self, settings: Settings, stop: asyncio.Event) -> None:
        """Answer `monitoring.configure` for Prometheus (monitoring.py) beside the get-sli tasks."""
        await follow_configure_events(settings, stop, MonitoringSettings.from_env(self._environ), self.following)

    def wants(self, event: KeptnEvent) -> bool:
        try:
            return handles(GetSLITriggered.model_validate(event.data))
        except ValidationError:
            # Malformed, but meant for us: `run` reports what is wrong instead of leaving it unanswered.
            block = event.data.get("get-sli")
            provider = block.get("sliProvider") if isinstance(block, dict) else None
            return isinstance(provider, str) and provider.strip().lower() == PROVIDER_NAME

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        try:
            request = GetSLITriggered.model_validate(ctx.data)
        except ValidationError as error:
            return TaskOutcome.errored(f"the get-sli.triggered event cannot be used: {error}")
        try:
            files = sli_files(ctx.resources.layers(ctx.project, SLI_PROMETHEUS, ctx.stage, ctx.service))
            found = ctx.resource(TARGET_FILE)
            configured = parse_target_file(found.text, file_name(found)) if found is not None else None
            target = target_for(configured, file_name(found) if found is not None else URL_ENV, self._environ)
            client = PrometheusClient(target.url, auth=target.auth, **self._client_options)
        except (ConfigProblem, ValueError) as problem:
            return TaskOutcome.errored(str(problem))
        async with client:
            ctx.log.info("querying %d indicator(s) on %s (%s)", len(request.get_sli.indicators), client.url, target.where)
            values = await get_slis(request, merge_indicators(*files), client)
        answer = finished_data(request, values)
        block = answer.get_sli.model_dump(mode="json", by_alias=True, exclude_none=True)
        assert answer.status is not None and answer.result is not None  # finished_data always sets both
        return TaskOutcome(answer.status, answer.result, answer.message or "", {TASK: block})


def build(request: BuildRequest) -> PrometheusSLIConnector:
    """The catalog's factory (`tidegate connector prometheus`)."""
    return PrometheusSLIConnector()
