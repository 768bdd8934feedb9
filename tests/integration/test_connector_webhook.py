"""The webhook connector on the real broker: filtered notifications from `events` to a local HTTP
receiver (templated body, secret from the environment), and a webhook that answers a task."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from tests.fakes.connectors import hosted, publish_tasks, triggered
from tests.fakes.receiver import Receiver
from tests.support.kafka import EventCollector, publish_files
from tidegate.connectors.runtime import ConnectorOptions
from tidegate.connectors.webhook import HttpSender, WebhookConnector
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.producer import AsyncEventPublisher
from tidegate.streams.resources import ResourceStore
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

WAIT = 60.0


def webhook_yaml(url: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "webhookconfig.keptn.sh/v1beta1", "kind": "WebhookConfig",
        "metadata": {"name": "webhook-configuration"},
        "spec": {"webhooks": [
            {"type": "sh.keptn.event.evaluation.finished", "subscriptionID": "failed-production",
             "filter": {"stages": ["production"], "results": ["fail"]},
             "envFrom": [{"name": "token", "secretRef": {"name": "slack", "key": "token"}}],
             "requests": [{"url": url + "/services/{{.env.token}}", "method": "POST",
                           "headers": [{"key": "Content-Type", "value": "application/json"}],
                           "payload": '{"text": "{{.data.service}} failed its quality gate in {{.data.stage}} '
                                      '(score {{.data.evaluation.score}})"}'}]},
            {"type": "sh.keptn.event.release.triggered", "subscriptionID": "release-hook",
             "requests": [{"url": url + "/release/{{.data.service}}", "method": "PUT", "payload": "{{.data.result}}"}]},
        ]},
    })


def evaluation_finished(stage: str, result: str) -> KeptnEvent:
    return KeptnEvent(type="sh.keptn.event.evaluation.finished", source="lighthouse", shkeptncontext="ctx",
                      triggeredid="t1", data={"project": "sockshop", "stage": stage, "service": "carts",
                                              "result": result, "status": "succeeded", "evaluation": {"score": 33}})


async def test_notifications_are_filtered_templated_and_retried(tidegate_settings: Settings) -> None:
    with Receiver(fail_first=1) as receiver:
        publish_files(tidegate_settings, "sockshop", {"webhook/webhook.yaml": webhook_yaml(receiver.url)})
        resources = ResourceStore()
        connector = WebhookConnector(resources, sender=HttpSender(attempts=3, backoff=0.05),
                                     environ={"TIDEGATE_SECRET_SLACK_TOKEN": "T0/B1/xyz"})
        async with hosted([connector], tidegate_settings, resources=resources):
            await asyncio.wait_for(connector.following.wait(), WAIT)
            events = TopicRegistry.from_settings(tidegate_settings).events
            async with AsyncEventPublisher(tidegate_settings) as publisher:
                for stage, result in (("production", "pass"), ("staging", "fail"), ("production", "fail")):
                    await publisher.publish(events, evaluation_finished(stage, result))
            received = await asyncio.to_thread(receiver.wait_for, 2, WAIT)
    # One matching event; its first try got a 503 and was retried.
    assert [(r.method, r.path) for r in received] == [("POST", "/services/T0/B1/xyz")] * 2
    assert received[-1].body == '{"text": "carts failed its quality gate in production (score 33)"}'
    assert received[-1].headers["Content-Type"] == "application/json"
    assert len(receiver.received) == 2


async def test_a_webhook_answers_a_task_with_started_and_finished(tidegate_settings: Settings) -> None:
    with Receiver() as receiver:
        publish_files(tidegate_settings, "sockshop", {"webhook/webhook.yaml": webhook_yaml(receiver.url)})
        resources = ResourceStore()
        connector = WebhookConnector(resources, tasks=["release"], environ={})
        event = triggered("release", {"result": "pass"})
        topics = TopicRegistry.from_settings(tidegate_settings)
        async with EventCollector(tidegate_settings, topics.events) as replies, \
                hosted([connector], tidegate_settings, ConnectorOptions(timeout=30), resources=resources):
            await publish_tasks(tidegate_settings, event)
            events = await replies.wait_for(
                lambda evs: any(e.triggeredid == event.id and e.type.endswith(".finished") for e in evs),
                WAIT, "release.finished from the webhook connector")
        kinds = [e.type for e in events if e.triggeredid == event.id]
        finished = next(e for e in events if e.triggeredid == event.id and e.type.endswith(".finished"))
    assert kinds == ["sh.keptn.event.release.started", "sh.keptn.event.release.finished"]
    assert (finished.data["status"], finished.data["result"]) == ("succeeded", "pass"), finished.data["message"]
    assert [(r.method, r.path, r.body) for r in receiver.received] == [("PUT", "/release/carts", "pass")]
