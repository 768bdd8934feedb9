"""Secrets from the gateway's secrets API reach the connectors, and nothing else (issue 18 item 4).

A secret is created through `/api/secrets/v1` (the gateway's own routes, on the file store under a
fresh TIDEGATE_HOME), in the scope named like a fresh project. Then, on the real broker:
- a webhook task of that project sends it in its request (`envFrom: secretRef`) to a local receiver;
- a command task of that project gets it in its environment (`valueFrom: secretRef`) and every key of
  a second secret (`envFrom`);
- a webhook task of another project naming the same secret ends errored naming the secret and key,
  and nothing is sent;
and the value is in no event on the `events` topic, no `.finished` message and no log line.
The connectors find the store as on one machine: from TIDEGATE_HOME in their environment."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.fakes.connectors import hosted, publish_tasks, triggered
from tests.fakes.receiver import Receiver
from tests.support.kafka import EventCollector, publish_files
from tidegate.connectors.command import CommandConnector, CommandSettings
from tidegate.connectors.runtime import ConnectorOptions
from tidegate.connectors.webhook import WebhookConnector, WebhookSettings
from tidegate.gateway import (
    Catalog,
    Gateway,
    MemoryEventSink,
    MemoryResourceSink,
    VersionedResourceStore,
    create_app,
)
from tidegate.readside.history import HistoryStore
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.resources import ResourceStore
from tidegate.streams.secrets import FileSecretStore
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

WAIT = 60.0
TOKEN = "secrets-api-token-for-the-test"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def secrets_api(home: Path, tmp_path: Path) -> Iterator[TestClient]:
    """The gateway's HTTP API with its secrets on the file store under `home` (as `tidegate gateway` keeps them)."""
    history = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    store = VersionedResourceStore()
    gateway = Gateway(catalog=Catalog(store), events=MemoryEventSink(), resources=MemoryResourceSink(store),
                      history=history, secrets=FileSecretStore(home / "secrets.json"))
    try:
        yield TestClient(create_app(gateway, api_token=TOKEN), headers={"x-token": TOKEN}, raise_server_exceptions=False)
    finally:
        history.close()


def webhook_yaml(url: str, secret: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "webhookconfig.keptn.sh/v1beta1", "kind": "WebhookConfig",
        "spec": {"webhooks": [{
            "type": "sh.keptn.event.release.triggered", "subscriptionID": "release-hook",
            "envFrom": [{"name": "token", "secretRef": {"name": secret, "key": "token"}}],
            "requests": [{"url": url + "/release/{{.data.service}}/{{.env.token}}", "method": "POST",  # as Slack's
                          "headers": [{"key": "Authorization", "value": "Bearer {{.env.token}}"}],
                          "payload": '{"service": "{{.data.service}}"}'}],
        }]},
    })


def command_yaml(secret: str, settings_secret: str, out: Path) -> str:
    script = ("import json, os, pathlib; pathlib.Path(os.environ['OUT']).write_text(json.dumps("
              "{k: os.environ[k] for k in ('TOKEN', 'REGION', 'TIER')})); print('token is', os.environ['TOKEN'])")
    return yaml.safe_dump({"actions": [{
        "name": "deploy", "events": [{"name": "sh.keptn.event.deployment.triggered"}],
        "tasks": [{"name": "show", "cmd": [sys.executable, "-c", script],
                   "envFrom": [{"secretRef": {"name": settings_secret}}],
                   "env": [{"name": "OUT", "value": str(out)},
                           {"name": "TOKEN", "valueFrom": {"secretRef": {"name": secret, "key": "token"}}}]}],
    }]})


def finished_for(events: list[KeptnEvent], triggered_event: KeptnEvent) -> KeptnEvent:
    return next(e for e in events if e.triggeredid == triggered_event.id and e.type.endswith(".finished"))


async def test_a_secret_from_the_api_reaches_webhook_and_command_tasks_of_its_project_only(
    tidegate_settings: Settings, secrets_api: TestClient, home: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    run = uuid.uuid4().hex[:8]
    project, other, secret, settings_secret = f"p{run}", f"q{run}", f"hook-{run}", f"settings-{run}"
    value = f"s3cret-{uuid.uuid4().hex}"
    created = secrets_api.post("/api/secrets/v1/secret",
                               json={"name": secret, "scope": project, "data": {"token": value}})
    assert created.status_code == 201, created.text
    created = secrets_api.post("/api/secrets/v1/secret", json={"name": settings_secret, "scope": project,
                                                               "data": {"REGION": "eu-1", "TIER": "gold"}})
    assert created.status_code == 201, created.text
    assert value not in secrets_api.get("/api/secrets/v1/secret").text

    out = tmp_path / "command-env.json"
    connector_env = {"TIDEGATE_HOME": str(home)}  # the gateway's store, found as a connector on its machine finds it
    with Receiver() as receiver:
        for name in (project, other):
            publish_files(tidegate_settings, name, {"webhook/webhook.yaml": webhook_yaml(receiver.url, secret),
                                                    "command/config.yaml": command_yaml(secret, settings_secret, out)})
        resources = ResourceStore()
        webhook = WebhookConnector(resources, tasks=["release"], environ=connector_env,
                                   settings=WebhookSettings(allow_hosts=["127.0.0.1"], notify=False))
        command = CommandConnector(resources, tasks=["deployment"], environ=connector_env,
                                   settings=CommandSettings(allow=[sys.executable]))
        release = triggered("release", project=project)
        deployment = triggered("deployment", project=project)
        stranger = triggered("release", project=other)
        wanted = {release.id, deployment.id, stranger.id}
        topics = TopicRegistry.from_settings(tidegate_settings)
        async with EventCollector(tidegate_settings, topics.events) as replies, \
                hosted([webhook, command], tidegate_settings, ConnectorOptions(timeout=60), resources=resources):
            await publish_tasks(tidegate_settings, release, deployment, stranger)
            events = await replies.wait_for(
                lambda evs: wanted <= {e.triggeredid for e in evs if e.type.endswith(".finished")},
                WAIT, "release.finished twice and deployment.finished from the connectors")
        received = list(receiver.received)

    # The webhook of the secret's project sent it; the other project's was refused by name, nothing sent.
    done = finished_for(events, release)
    assert (done.data["status"], done.data["result"]) == ("succeeded", "pass"), done.data["message"]
    [call] = received
    assert (call.method, call.path, call.headers["Authorization"]) == ("POST", f"/release/carts/{value}",
                                                                       f"Bearer {value}")
    refused = finished_for(events, stranger)
    assert refused.data["status"] == "errored"
    assert f"the secret '{secret}' with key 'token' is neither in the secret store (scopes keptn-default, " \
           f"keptn-webhook-service, {other})" in refused.data["message"]

    # The command's program had the secret in its environment, and every key of the second secret.
    ran = finished_for(events, deployment)
    assert (ran.data["status"], ran.data["result"]) == ("succeeded", "pass"), ran.data["message"]
    assert json.loads(out.read_text()) == {"TOKEN": value, "REGION": "eu-1", "TIER": "gold"}
    assert "token is ***" in ran.data["message"]

    # Never in an event, a message or a log line.
    assert not [e.type for e in events if value in json.dumps(e.to_json_dict())]
    assert any(record.name.startswith("tidegate.connector") for record in caplog.records)  # the logs were seen
    assert value not in caplog.text
