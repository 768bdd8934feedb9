"""Start without Kafka (issue 17.2): the gateway, a connector host and the worker started while no broker
answers wait (not ready, one log line per attempt) and start working once the broker answers.

Each part is pointed at a fresh local port where nothing listens; once the part has retried at least
once, the port starts forwarding to the session's broker (tests.support.forward)."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.fakes.connectors import ScriptedConnector, publish_tasks, triggered
from tests.integration.test_sequencer_worker import SHIPYARD as WORKER_SHIPYARD
from tests.integration.test_sequencer_worker import trigger
from tests.support.forward import forwarding_port
from tests.support.kafka import EventCollector, publish_files
from tidegate.connectors.runtime import ConnectorHost, ConnectorOptions, TaskContext, TaskOutcome
from tidegate.gateway.kafka import create_kafka_app
from tidegate.gateway.settings import GatewaySettings
from tidegate.streams.kafka import AsyncEventPublisher
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

TOKEN = "integration-token"
WAIT = 120.0
SHIPYARD = (Path(__file__).resolve().parents[2] / "examples" / "sockshop" / "shipyard.yaml").read_bytes()


def _readyz_until(client: TestClient, condition, what: str) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while True:
        answer = client.get("/readyz")
        body = answer.json()
        if condition(answer.status_code, body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {WAIT:.0f} s; last /readyz: {answer.text}")
        time.sleep(0.2)


def test_the_gateway_waits_for_kafka_then_becomes_ready(tidegate_settings: Settings, tmp_path: Path) -> None:
    with forwarding_port(tidegate_settings.kafka_bootstrap) as port:
        settings = tidegate_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port.port}"})
        gateway_settings = GatewaySettings(api_token=TOKEN, history_url=f"sqlite:///{tmp_path / 'history.db'}")
        with TestClient(create_kafka_app(settings, gateway_settings), headers={"x-token": TOKEN}) as client:
            assert client.get("/healthz").status_code == 200  # the process serves while Kafka is away
            waiting = _readyz_until(
                client,
                lambda status, body: status == 503 and any("attempt" in r for r in body.get("reasons", [])),
                "a failed attempt to reach Kafka",
            )
            assert any(r.startswith(f"waiting for Kafka at 127.0.0.1:{port.port}") for r in waiting["reasons"])

            port.open()
            _readyz_until(client, lambda status, body: status == 200, "readiness once Kafka answers")
            created = client.post("/api/controlPlane/v1/project",
                                  json={"name": "sockshop", "shipyard": base64.b64encode(SHIPYARD).decode()})
            assert created.status_code == 201, created.text
        assert port.connections > 0


async def test_a_connector_host_waits_for_kafka_then_runs_tasks(tidegate_settings: Settings) -> None:
    async def work(ctx: TaskContext) -> TaskOutcome:
        return TaskOutcome.passed("deployed")

    connector = ScriptedConnector(work)
    event = triggered("deployment", {"deployment": {"deploymentstrategy": "direct"}})
    topics = TopicRegistry.from_settings(tidegate_settings)
    with forwarding_port(tidegate_settings.kafka_bootstrap) as port:
        settings = tidegate_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port.port}"})
        host = ConnectorHost([connector], settings, {connector.name: ConnectorOptions()})
        running = asyncio.create_task(host.run())
        try:
            deadline = asyncio.get_running_loop().time() + WAIT
            while host.kafka.attempts < 1:
                assert not running.done(), f"the host stopped instead of waiting: {running}"
                assert asyncio.get_running_loop().time() < deadline, "no attempt to reach Kafka was made"
                await asyncio.sleep(0.1)
            assert host.kafka.reason() is not None and not host.runners

            port.open()
            await host.wait_ready(WAIT)
            assert host.kafka.reason() is None
            async with EventCollector(tidegate_settings, topics.events) as replies:
                await publish_tasks(tidegate_settings, event)
                await replies.wait_for(
                    lambda events: any(e.type == "sh.keptn.event.deployment.finished" and e.triggeredid == event.id
                                       for e in events), WAIT, "deployment.finished")
            assert connector.runs == [event.id]
        finally:
            host.stop()
            await asyncio.wait_for(running, WAIT)


async def test_the_worker_waits_for_kafka_then_runs_a_delivery(tidegate_settings: Settings, faust_worker) -> None:  # type: ignore[no-untyped-def]
    publish_files(tidegate_settings, "sockshop", {"shipyard.yaml": WORKER_SHIPYARD})
    registry = TopicRegistry.from_settings(tidegate_settings)
    event = trigger("carts")
    with forwarding_port(tidegate_settings.kafka_bootstrap) as port:
        settings = tidegate_settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port.port}"})
        worker = faust_worker("tidegate.agents.main:app", settings)
        try:
            deadline = time.monotonic() + WAIT
            while "does not answer" not in worker.log_tail(200):
                worker.assert_running()  # it waits instead of exiting with a traceback
                assert time.monotonic() < deadline, f"no retry was logged:\n{worker.log_tail()}"
                await asyncio.sleep(0.2)

            port.open()
            async with EventCollector(tidegate_settings, registry.task("deployment")) as tasks:
                async with AsyncEventPublisher(tidegate_settings) as publisher:
                    await publisher.publish(registry.events, event)
                # The sequencer answers the trigger with the sequence's first task.
                await tasks.wait_for(lambda evs: any(e.shkeptncontext == event.shkeptncontext for e in evs),
                                     WAIT, "the sequencer's deployment.triggered")
            worker.assert_running()
        finally:
            worker.stop()
