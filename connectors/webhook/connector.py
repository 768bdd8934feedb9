"""The webhook connector: HTTP calls (Slack, Teams, any URL) for Keptn events, per `webhook/webhook.yaml`.

Two ways it runs, both configured by the same WebhookConfig (schemas.webhook, Keptn's format):
- notifications: it follows the `events` topic in its own group (`<prefix>connector-webhook-notify`,
  from the newest offset when new) and calls every webhook whose `type` (wildcards allowed) and
  `filter` match the event, e.g. only failed evaluations, only production. Fire and forget, at least
  once: a call may repeat after a crash. Failures are logged, never sent as events.
- tasks (Keptn's webhook-service): for the task topics it is given (`--task`, or
  TIDEGATE_WEBHOOK_TASKS=a,b), it answers `<task>.triggered` events that a webhook of the service's
  configuration matches, with `.started` and `.finished` (all calls 2xx ⇒ pass; a call that fails
  ⇒ errored with its status). Keptn's `sendStarted: false` / `sendFinished: false` (the called service
  replies itself) are not supported: the runtime always replies.
The file is resolved service → stage → project for the event's project/stage/service.
`envFrom` secrets come from the secret store (streams.secrets; scopes keptn-default,
keptn-webhook-service and the event's project), else the operator's TIDEGATE_SECRET_<NAME>_<KEY>.
Calls go to public addresses only, checked after DNS resolution (sender.py, addresses.py); internal
targets need TIDEGATE_WEBHOOK_ALLOW_HOSTS=name,10.0.0.0/8,... from the operator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tidegate.connectors.runtime import TaskContext, TaskOutcome
from tidegate.connectors.webhook.calls import CONFIG_PATH, WEBHOOK_SCOPE, WebhookProblem, matching, plan_calls
from tidegate.connectors.webhook.sender import HttpSender, WebhookCallError
from tidegate.schemas.errors import FileError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.files import load_text
from tidegate.schemas.keys import Key
from tidegate.schemas.webhook import Webhook, WebhookConfig
from tidegate.streams.codec import DecodeError, decode
from tidegate.streams.kafka import async_consumer
from tidegate.streams.resources import ResourceStore
from tidegate.streams.secrets import SecretReader, SecretStore, secret_store, task_scopes
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

log = logging.getLogger("tidegate.connector.webhook")


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDEGATE_WEBHOOK_", frozen=True, extra="ignore")

    tasks: Annotated[list[str], NoDecode] = []
    notify: bool = True
    attempts: int = 3
    backoff: float = 0.5
    allow_hosts: Annotated[list[str], NoDecode] = []
    """Host names, addresses and CIDR networks that may be called although not public (addresses.py)."""

    @field_validator("tasks", "allow_hosts", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value


class WebhookConnector:
    name = "webhook"

    def __init__(self, resources: ResourceStore, tasks: Sequence[str] = (), settings: WebhookSettings | None = None,
                 sender: HttpSender | None = None, environ: Mapping[str, str] | None = None,
                 secrets: SecretStore | None = None) -> None:
        self.settings = settings or WebhookSettings()
        self.tasks = list(tasks) or list(self.settings.tasks)
        self.resources = resources
        self.sender = sender or HttpSender(attempts=self.settings.attempts, backoff=self.settings.backoff,
                                           allow=self.settings.allow_hosts)
        self._environ = environ if environ is not None else os.environ
        self._secrets = secrets if secrets is not None else secret_store(self._environ)
        self._parsed: dict[tuple[str, str], WebhookConfig | FileError] = {}
        self.following = asyncio.Event()
        """Set once notifications are followed (the consumer has its partitions and positions)."""

    # --- configuration ---
    def config_for(self, key: Key) -> WebhookConfig | None:
        resource = self.resources.resolve(key.project, CONFIG_PATH, key.stage, key.service)
        if resource is None:
            return None
        cache_key = (resource.key, resource.version)
        if cache_key not in self._parsed:
            try:
                self._parsed[cache_key] = load_text(resource.text, CONFIG_PATH, kind="webhook").expect(WebhookConfig)
            except FileError as error:
                self._parsed[cache_key] = error
        found = self._parsed[cache_key]
        if isinstance(found, FileError):
            raise found
        return found

    def webhooks(self, event: KeptnEvent) -> list[Webhook]:
        try:
            config = self.config_for(Key.of_data(event.data))
            return matching(config, event) if config is not None else []
        except (FileError, WebhookProblem) as error:
            log.error("webhook configuration for %s is unusable: %s", Key.of_data(event.data), error)
            return []

    async def call(self, webhooks: list[Webhook], event: KeptnEvent) -> list[str]:
        """Make every call of `webhooks` for `event`; the answers, or raise WebhookProblem/WebhookCallError."""
        answers = []
        secrets = SecretReader(task_scopes(str(event.data.get("project") or ""), WEBHOOK_SCOPE), self._environ,
                               self._secrets)
        for webhook in webhooks:
            # The store may be a file or the Kubernetes API: read it off the event loop.
            for call in await asyncio.to_thread(plan_calls, webhook, event, secrets):
                result = await self.sender.send(call)
                answers.append(f"{call.method} {call.masked(call.url)}: HTTP {result.status_code}")
        return answers

    # --- task mode ---
    def wants(self, event: KeptnEvent) -> bool:
        return bool(self.webhooks(event))

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        webhooks = self.webhooks(ctx.event)
        if not webhooks:
            return TaskOutcome.errored(f"no webhook in {CONFIG_PATH} matches {ctx.event.type} for {ctx.key} any more")
        try:
            answers = await self.call(webhooks, ctx.event)
        except (WebhookProblem, WebhookCallError) as error:
            return TaskOutcome.errored(str(error))
        return TaskOutcome.passed("; ".join(answers))

    # --- notification mode ---
    async def notify(self, event: KeptnEvent) -> list[str]:
        """Call the webhooks for a non-task event; returns the problems (logged, not raised)."""
        problems = []
        for webhook in self.webhooks(event):
            try:
                await self.call([webhook], event)
            except (WebhookProblem, WebhookCallError) as error:
                problems.append(str(error))
                log.warning("webhook %s for %s %s failed: %s", webhook.subscriptionID, event.type, event.id, error)
        return problems

    async def follow(self, settings: Settings, stop: asyncio.Event) -> None:
        if not self.settings.notify:
            await stop.wait()
            return
        topics = TopicRegistry.from_settings(settings)
        consumer = async_consumer(
            settings, topics.events, group_id=f"{settings.topic_prefix}connector-webhook-notify",
            enable_auto_commit=False, auto_offset_reset="latest", client_id=f"webhook-{uuid.uuid4().hex[:6]}",
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=300, max_records=100)
                if not self.following.is_set() and consumer.assignment():
                    for tp in consumer.assignment():
                        await consumer.position(tp)  # fixes "latest" now, so later events are seen
                    self.following.set()
                for records in batch.values():
                    for record in records:
                        try:
                            event = decode(record.value, record.headers)
                        except DecodeError:
                            continue  # the agents send unreadable records to the DLQ
                        await self.notify(event)
                if batch:
                    with contextlib.suppress(Exception):
                        await consumer.commit()
        finally:
            await consumer.stop()
