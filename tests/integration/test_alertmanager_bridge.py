"""End to end with a real Prometheus, a real Alertmanager, the bridge, Kafka and the worker.

The demo carts service runs slow (0.11.2: about 600 ms per request). Prometheus evaluates the alert
rules generated from the sockshop SLO, fires `response_time_p95`, Alertmanager calls the bridge with
the bearer token from the generated config, and the bridge publishes the remediation trigger. The real
sequencer and remediator run the remediation: the remediator picks "Scale up", the test action
provider "heals" the service (stops the slow traffic), the evaluation passes, and when the alert
resolves the bridge closes the problem of the same run.

Ports: free loopback ports, so a running demo (which takes 19290/19295) does not get in the way.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from deploy.local._process import free_port
from deploy.local.alertmanager import ensure_alertmanager, stop_alertmanager
from deploy.local.prometheus import ensure_prometheus, stop_prometheus
from examples.sockshop.service.behaviour import behaviour_for
from examples.sockshop.service.server import DemoService
from tests.integration.test_remediation_loop import REMEDIATION, SHIPYARD, Providers, worker_log_on_failure
from tests.support.kafka import EventCollector, publish_files
from tidegate.connectors.prometheus.alerting import (
    AlertmanagerRouting,
    BridgeAuth,
    alert_rules,
    alertmanager_config,
)
from tidegate.gateway.alertmanager import (
    AlertmanagerBridge,
    BridgeSettings,
    KafkaSink,
    alert_context,
    create_bridge_app,
)
from tidegate.schemas.events import PROBLEM_TYPE, KeptnEvent, sequence_type, task_type
from tidegate.schemas.files import load_file
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

TOKEN = "integration-token"
SOCKSHOP = Path(__file__).resolve().parents[2] / "examples" / "sockshop"
TIMEOUT = 120.0
TRIGGERED = sequence_type("production", "remediation", "triggered")
FINISHED = sequence_type("production", "remediation", "finished")


class SlowTraffic:
    """Keeps the slow /carts endpoint busy until stopped (the 'fix' the action provider applies)."""

    def __init__(self, url: str, workers: int = 4) -> None:
        self.url = url
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopped.is_set():
                try:
                    client.get(f"{self.url}/carts")
                except httpx.HTTPError:
                    time.sleep(0.1)

    def start(self) -> SlowTraffic:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()


class BridgeServer:
    """The bridge app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, bridge: AlertmanagerBridge) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_bridge_app(bridge), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/alertmanager"

    def __enter__(self) -> BridgeServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the bridge did not start within 30 s"
            assert self.thread.is_alive(), "the bridge's server thread died while starting"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def slow_carts() -> Iterator[DemoService]:
    service = DemoService(behaviour_for("0.11.2"), port=0, seed=1).start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def worker(tidegate_settings: Settings, faust_worker, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    publish_files(tidegate_settings, "sockshop", {"shipyard.yaml": SHIPYARD, "remediation.yaml": REMEDIATION})
    monkeypatch.setenv("TIDEGATE_AGENTS", "sequencer,remediator")
    monkeypatch.setenv("TIDEGATE_REMEDIATION_COOLDOWN", "0s")
    started = faust_worker("tidegate.agents.main:app", tidegate_settings)
    yield started
    started.assert_running()


@pytest.fixture
def alertmanager_port(tmp_path: Path) -> Iterator[int]:
    """A port for the test's Alertmanager, stopped afterwards whatever happened (also when its start
    failed half-way: the stop is in place before the start)."""
    port = free_port()
    try:
        yield port
    finally:
        stop_alertmanager(port, tmp_path)


@pytest.fixture
def prometheus_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    try:
        yield port
    finally:
        stop_prometheus(port, tmp_path)


@pytest.fixture
def slow_traffic(slow_carts: DemoService) -> Iterator[SlowTraffic]:
    traffic = SlowTraffic(slow_carts.url)
    try:
        yield traffic.start()
    finally:
        traffic.stop()


def generated_rules(path: Path) -> Path:
    slo = load_file(SOCKSHOP / "slo.yaml", "slo").model
    sli = load_file(SOCKSHOP / "prometheus" / "sli.yaml", "sli").model
    # A 10 s window and `for: 1s` so the alert fires and resolves within seconds of the latency changing.
    rules = alert_rules(slo, sli.indicators, "sockshop", "production", "carts", "1s", window=timedelta(seconds=10))
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


async def test_a_slow_service_is_remediated_through_prometheus_alertmanager_and_the_bridge(
    tidegate_settings: Settings, worker: Any, slow_carts: DemoService, slow_traffic: SlowTraffic,
    alertmanager_port: int, prometheus_port: int, tmp_path: Path,
) -> None:
    registry = TopicRegistry.from_settings(tidegate_settings)
    traffic = slow_traffic
    bridge = AlertmanagerBridge(
        BridgeSettings(token=TOKEN), KafkaSink(tidegate_settings, timeout=10), registry  # type: ignore[arg-type]
    )
    with BridgeServer(bridge) as server:
        am_config = alertmanager_config(AlertmanagerRouting(
            server.url, BridgeAuth("bearer", token=TOKEN), group_wait="1s", group_interval="1s", repeat_interval="1h",
        ))
        am_url = ensure_alertmanager(alertmanager_port, am_config, home=tmp_path)
        prometheus_url = ensure_prometheus(
            prometheus_port,
            {"carts-sockshop-production": [f"127.0.0.1:{slow_carts.port}"]},
            rule_files=[generated_rules(tmp_path / "rules.yml")],
            alertmanager_url=am_url,
            home=tmp_path,
        )
        # Without the token the bridge answers 401 and publishes nothing.
        assert httpx.post(server.url, json={"version": "4"}).status_code == 401

        async with EventCollector(tidegate_settings, registry.events) as events, \
                EventCollector(tidegate_settings, registry.audit) as audit, \
                Providers(tidegate_settings, {"carts": ["pass"]}, on_action=lambda _: traffic.stop()) as providers, \
                worker_log_on_failure(worker):
            await events.wait_for(lambda evs: any(e.type == TRIGGERED for e in evs), TIMEOUT,
                                  "the remediation trigger from Alertmanager")
            trigger = next(e for e in events.events if e.type == TRIGGERED)
            context = str(trigger.shkeptncontext)

            # The context is derived from the alert Alertmanager holds: its fingerprint and start.
            [firing] = [a for a in httpx.get(f"{am_url}/api/v2/alerts").json()
                        if a["labels"]["alertname"] == "response_time_p95"]
            problem = trigger.data["problem"]
            assert problem["ProblemID"] == firing["fingerprint"]
            assert context == alert_context(firing["fingerprint"], problem["ProblemDetails"]["startsAt"])
            assert problem["problemTitle"] == "response_time_p95"
            assert problem["State"] == "OPEN"
            assert (trigger.data["project"], trigger.data["stage"], trigger.data["service"]) == (
                "sockshop", "production", "carts")
            assert trigger.data["deployment"] == {"deploymentNames": ["primary"]}

            def closed(evs: list[KeptnEvent]) -> bool:
                return any(e.type == PROBLEM_TYPE and e.shkeptncontext == context for e in evs)

            await events.wait_for(closed, TIMEOUT, "the problem to close once the service is fast again")
            await audit.wait_for(lambda evs: any(e.type.endswith("remediator.problem_closed") for e in evs), TIMEOUT,
                                 "the remediator to record the closed problem")
    assert prometheus_url.endswith(str(prometheus_port))

    # The remediator chose the first action for the problem, the provider ran it, the evaluation passed.
    [answer] = [e for e in events.events if e.type == task_type("get-action", "finished") and e.shkeptncontext == context]
    assert answer.data["action"]["name"] == "Scale up"
    assert providers.actions["carts"] == ["scaling"]
    assert [e.data["result"] for e in events.events if e.type == FINISHED and e.shkeptncontext == context] == ["pass"]
    [closing] = [e for e in events.events if e.type == PROBLEM_TYPE]
    assert closing.data["State"] == "CLOSED" and closing.data["ProblemID"] == problem["ProblemID"]
    # Alertmanager may call again (group changes); every call for this firing is the same event.
    assert len({e.id for e in events.events if e.type == TRIGGERED and e.source == bridge.settings.source}) == 1


async def test_the_bridge_answers_503_while_kafka_is_unreachable() -> None:
    # Port 1 on loopback: nothing listens, so the producer cannot connect within the bounded timeout.
    settings = Settings(kafka_bootstrap="127.0.0.1:1")
    bridge = AlertmanagerBridge(BridgeSettings(token=TOKEN), KafkaSink(settings, timeout=2))  # type: ignore[arg-type]
    alert = {
        "status": "firing", "fingerprint": "f", "startsAt": "2026-05-01T12:00:00Z",
        "labels": {"alertname": "a", "project": "p", "stage": "s", "service": "v"},
    }
    body = {"version": "4", "status": "firing", "alerts": [alert]}
    status, answer = await bridge.handle(f"Bearer {TOKEN}", json.dumps(body).encode())
    await bridge.sink.close()
    assert status == 503
    assert "127.0.0.1:1" in answer["error"] and "retry" in answer["error"]
