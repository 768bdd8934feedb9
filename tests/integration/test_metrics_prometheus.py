"""Tidegate's own metrics scraped by a real Prometheus, the dashboard's queries, and analytics on real audit.

A worker (all agents) serves 127.0.0.1:$TIDEGATE_METRICS_PORT and a gateway serves /metrics; a real
Prometheus scrapes both. Then real work happens on the real broker: a delivery with a quality gate
(the evaluator asks for SLIs, a scripted provider answers), a remediation whose action runs, one for
a problem remediation.yaml has no action for (escalated), and a record that is not an event (DLQ).
Every query of deploy/grafana/tidegate-dashboard.json must then return data, the counters must say
what happened, and the audit topic, stored in the gateway's history, must give the analytics figures.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from confluent_kafka import Producer
from typer.testing import CliRunner

from deploy.local._process import free_port
from tests.integration.prometheus_fixtures import LocalPrometheus, local_prometheus  # noqa: F401
from tests.support.kafka import EventCollector, publish_files
from tests.support.responder import TaskResponder
from tidegate.bridge import install as install_bridge
from tidegate.cli.main import app as cli
from tidegate.gateway import (
    Catalog,
    Gateway,
    MemoryEventSink,
    MemoryResourceSink,
    VersionedResourceStore,
    create_app,
)
from tidegate.gateway.alertmanager import BridgeSettings, translate_alert
from tidegate.readside.history import HistoryStore, entry_of_event
from tidegate.schemas.events import KeptnEvent, sequence_type
from tidegate.schemas.keys import Key
from tidegate.streams.kafka import AsyncEventPublisher
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "tidegate-dashboard.json"
PROJECT = "shop"
STAGE = "production"
TIMEOUT = 120.0
SHIPYARD = f"""
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {{name: shipyard-{PROJECT}}}
spec:
  stages:
    - name: {STAGE}
      sequences:
        - name: delivery
          tasks: [{{name: deployment}}, {{name: evaluation, properties: {{timeframe: 5m}}}}]
        - name: remediation
          tasks: [{{name: get-action}}, {{name: action}}]
"""
SLO = """
objectives:
  - sli: response_time_p95
    pass: [{criteria: ["<0.5"]}]
total_score: {pass: "90%"}
"""
REMEDIATION = """
apiVersion: spec.keptn.sh/0.1.4
kind: Remediation
metadata: {name: remediation}
spec:
  remediations:
    - problemType: response_time_p95
      actionsOnOpen:
        - {name: Scale up, action: scaling, value: "1"}
"""


MISROUTED = KeptnEvent(type=sequence_type(STAGE, "delivery", "triggered"), source="ci", shkeptncontext="ctx-misrouted",
                       data={"project": PROJECT, "stage": STAGE, "service": "carts"})


class ServedGateway:
    """The gateway app on a free loopback port, in a thread of this process (uvicorn)."""

    def __init__(self, tmp_path: Path) -> None:
        self.history = HistoryStore(f"sqlite:///{tmp_path / 'gateway-history.db'}")
        store = VersionedResourceStore()
        self.gateway = Gateway(catalog=Catalog(store), events=MemoryEventSink(), resources=MemoryResourceSink(store),
                               history=self.history)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(self.gateway, extensions=(install_bridge,), api_token="test-token"), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedGateway:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the gateway did not start within 30 s"
            assert self.thread.is_alive(), "the gateway thread ended before it served"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.history.close()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"x-token": "test-token"}, timeout=30)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[ServedGateway]:
    with ServedGateway(tmp_path) as served:
        yield served


@pytest.fixture
def worker(tidegate_settings: Settings, faust_worker, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    publish_files(tidegate_settings, PROJECT, {"shipyard.yaml": SHIPYARD, "remediation.yaml": REMEDIATION,
                                               ".tidegate/sli-provider": "prometheus"})
    publish_files(tidegate_settings, PROJECT, {"slo.yaml": SLO}, stage=STAGE, service="carts")
    port = free_port()
    monkeypatch.setenv("TIDEGATE_METRICS_PORT", str(port))
    monkeypatch.setenv("TIDEGATE_LOG_FORMAT", "json")
    started = faust_worker("tidegate.agents.main:app", tidegate_settings)
    started.metrics_address = f"127.0.0.1:{port}"
    yield started
    started.assert_running()


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    # Grafana fills its variables in; Prometheus gets what Grafana would send.
    return [target["expr"].replace("$__rate_interval", "30s").replace("$job", "tidegate.*")
            for panel in panels for target in panel.get("targets", [])]


def wait_until_all_return_data(prometheus: LocalPrometheus, queries: list[str], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    missing = list(queries)
    while missing and time.monotonic() < deadline:
        missing = [query for query in missing if not prometheus.query(query)]
        if missing:
            time.sleep(0.5)
    assert not missing, "these dashboard queries returned no data within {:.0f} s:\n  {}".format(
        timeout, "\n  ".join(missing))


def alert(service: str, name: str) -> tuple[KeptnEvent, Key]:
    raw = {
        "status": "firing",
        "labels": {"alertname": name, "project": PROJECT, "stage": STAGE, "service": service, "severity": "webhook"},
        "annotations": {"summary": name},
        "startsAt": "2026-05-01T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:19290/graph",
        "fingerprint": f"fp-{service}",
    }
    accepted = translate_alert(0, raw, BridgeSettings(token="unused"))  # type: ignore[arg-type]
    assert not hasattr(accepted, "reasons"), accepted
    return accepted.event, accepted.key  # type: ignore[union-attr]


def worker_value(prometheus: LocalPrometheus, query: str) -> float:
    result = prometheus.query(query)
    if len(result) != 1:
        metric = query.split("(", 1)[-1].split("{", 1)[0].rstrip(")")
        seen = [(r["metric"], r["value"][1]) for r in prometheus.query(metric)]
        raise AssertionError(f"{query}: expected one series, got {result}; all {metric} series: {seen}")
    return float(result[0]["value"][1])


async def test_prometheus_scrapes_worker_and_gateway_and_every_dashboard_query_returns_data(
    tidegate_settings: Settings, worker: Any, gateway: ServedGateway, local_prometheus: LocalPrometheus,  # noqa: F811
) -> None:
    local_prometheus.scrape({"tidegate-worker": [worker.metrics_address], "tidegate-gateway": [gateway.url[7:]]})
    for job in ("tidegate-worker", "tidegate-gateway"):
        local_prometheus.wait_for(f'up{{job="{job}"}}', lambda up: up == 1, f"Prometheus scraping {job}")

    registry = TopicRegistry.from_settings(tidegate_settings)
    delivery = KeptnEvent(type=sequence_type(STAGE, "delivery", "triggered"), source="ci", shkeptncontext="ctx-delivery",
                          data={"project": PROJECT, "stage": STAGE, "service": "carts",
                                "configurationChange": {"values": {"image": "carts:1"}}})
    slow_carts, carts_key = alert("carts", "response_time_p95")
    orders_errors, orders_key = alert("orders", "error_rate")  # remediation.yaml has no action for it
    responder = TaskResponder(tidegate_settings, ["get-action=silent", "evaluation=silent"])
    responder.extra_data["get-sli"] = {"get-sli": {"indicatorValues": [
        {"metric": "response_time_p95", "value": 0.2, "success": True}]}}
    finished = {sequence_type(STAGE, "delivery", "finished"), sequence_type(STAGE, "remediation", "finished")}
    async with responder, EventCollector(tidegate_settings, registry.audit) as audit:
        async with AsyncEventPublisher(tidegate_settings) as publisher:
            await publisher.publish(registry.events, delivery, key=Key(PROJECT, STAGE, "carts"))
            await publisher.publish(registry.events, slow_carts, key=carts_key)
            await publisher.publish(registry.events, orders_errors, key=orders_key)
            # Keyed for another service than its data names: refused (DLQ) after it was read, so the
            # warning about it is a line of work for its keptnContext.
            await publisher.publish(registry.events, MISROUTED, key=Key(PROJECT, STAGE, "orders"))
        not_an_event = Producer({"bootstrap.servers": tidegate_settings.kafka_bootstrap})
        not_an_event.produce(registry.events, key=b"shop/production/carts", value=b"this is not a CloudEvent")
        assert not_an_event.flush(30) == 0

        def all_finished(events: list[KeptnEvent]) -> bool:
            return sum(1 for e in events if e.type in finished) >= 3

        try:
            await audit.wait_for(all_finished, TIMEOUT, "the delivery and both remediations to finish on audit")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- worker log ---\n{worker.log_tail(60)}") from None
        audited = list(audit.events)

    with gateway.client() as client:  # some gateway traffic, including an event it publishes
        shipyard = base64.b64encode(SHIPYARD.encode()).decode()
        assert client.post("/api/controlPlane/v1/project", json={"name": PROJECT, "shipyard": shipyard}).status_code == 201
        created = client.post(f"/api/controlPlane/v1/project/{PROJECT}/service", json={"serviceName": "carts"})
        assert created.status_code == 201, created.text
        sent = client.post("/api/v1/event", json={"type": sequence_type(STAGE, "delivery", "triggered"),
                                                  "source": "ci", "data": {"project": PROJECT, "stage": STAGE,
                                                                           "service": "carts"}})
        assert sent.status_code == 200, sent.text

    await asyncio.to_thread(wait_until_all_return_data, local_prometheus, dashboard_queries())

    # The counters say what happened.
    assert worker_value(local_prometheus, 'sum(tidegate_evaluations_total{project="shop",result="pass"})') == 1
    assert worker_value(local_prometheus, 'sum(tidegate_remediation_actions_total{action="scaling",result="pass"})') == 1
    assert worker_value(local_prometheus, "sum(tidegate_remediation_escalations_total)") >= 1
    assert worker_value(local_prometheus, 'sum(tidegate_dlq_total{reason="undecodable"})') >= 1
    assert worker_value(local_prometheus,
                        'sum(tidegate_sequence_duration_seconds_count{sequence="delivery",result="pass"})') == 1
    assert worker_value(local_prometheus, 'sum(tidegate_gateway_events_published_total{category="sequence"})') == 1

    assert worker_value(local_prometheus, 'sum(tidegate_dlq_total{reason="wrong_key"})') >= 1

    # The worker logs JSON lines; a line of work for an event carries its keptnContext.
    lines = [json.loads(line) for line in worker.log_file.read_text().splitlines() if line.startswith("{")]
    assert lines, f"no JSON log lines:\n{worker.log_tail(20)}"
    refused = [line for line in lines if line.get("keptnContext") == "ctx-misrouted"]
    assert refused and "DLQ" in refused[0]["message"] and refused[0]["eventType"] == MISROUTED.type

    # Analytics on the real audit stream, through the gateway's API and the CLI.
    gateway.history.ingest(entry_of_event(e) for e in audited)
    shown = CliRunner().invoke(cli, ["get", "metrics", "--project", PROJECT, "--since", "1d", "--output", "json",
                                     "--endpoint", gateway.url, "--api-token", "test-token"])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert (report["productionStage"], report["productionStageFrom"]) == (STAGE, "shipyard")
    assert report["dora"]["deployments"] == 1 and report["dora"]["changes"] == 1
    assert report["qualityGates"]["results"] == {"pass": 1, "warning": 0, "fail": 0}
    remediation = report["remediation"]
    assert (remediation["actions"], remediation["succeeded"], remediation["escalations"]) == (1, 1, 1)
