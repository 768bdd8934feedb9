"""The gateway wired to the real broker: events reach `events` keyed and validated, files reach the
compacted `resources` topic and survive a restart, auth and validation refuse before Kafka."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tidegate.gateway.kafka import create_kafka_app
from tidegate.gateway.settings import GatewaySettings
from tidegate.schemas.ids import context_from_text
from tidegate.streams.codec import decode_record
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SHIPYARD = (REPO / "examples" / "sockshop" / "shipyard.yaml").read_bytes()
TOKEN = "integration-token"
READY_TIMEOUT = 60.0


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


GatewayClient = Callable[..., TestClient]


@pytest.fixture
def start_gateway(tidegate_settings: Settings, tmp_path: Path) -> Iterator[GatewayClient]:
    """`start()` -> a TestClient running the Kafka-wired app (lifespan started); stopped after the test."""
    clients: list[TestClient] = []

    def start(**overrides: Any) -> TestClient:
        gateway_settings = GatewaySettings(api_token=TOKEN, history_url=f"sqlite:///{tmp_path / 'history.db'}",
                                           **overrides)
        client = TestClient(create_kafka_app(tidegate_settings, gateway_settings), headers={"x-token": TOKEN})
        client.__enter__()
        clients.append(client)
        wait_ready(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def wait_ready(client: TestClient) -> None:
    import time

    deadline = time.monotonic() + READY_TIMEOUT
    answer = client.get("/readyz")
    while answer.status_code != 200:
        if time.monotonic() > deadline:
            raise AssertionError(f"the gateway was not ready within {READY_TIMEOUT:.0f} s: {answer.text}")
        time.sleep(0.2)  # readiness is polled: the resources view reports no event to await
        answer = client.get("/readyz")


def test_events_reach_kafka_keyed_and_invalid_ones_do_not(
    tidegate_settings: Settings, start_gateway: GatewayClient, kafka_reader: Callable[..., list]
) -> None:
    client = start_gateway()
    assert client.post("/api/controlPlane/v1/project", json={"name": "sockshop", "shipyard": b64(SHIPYARD)}).status_code == 201
    assert client.post("/api/controlPlane/v1/project/sockshop/service", json={"serviceName": "carts"}).status_code == 201

    refused = [
        {"type": "sh.keptn.event.dev.delivery.triggered", "data": {"project": "sockshop", "stage": "dev"}},
        {"type": "sh.keptn.event.dev.delivery.finished",
         "data": {"project": "sockshop", "stage": "dev", "service": "carts"}},
        {"type": "sh.keptn.event.dev.delivery.triggered",
         "data": {"project": "sockshop", "stage": "dev", "service": "orders"}},
    ]
    assert [client.post("/api/v1/event", json=body).status_code for body in refused] == [400, 400, 404]
    bare = TestClient(client.app)
    assert bare.post("/api/v1/event", json={"type": "sh.keptn.log.error", "data": {}}).status_code == 401

    accepted = client.post("/api/v1/event", json={
        "type": "sh.keptn.event.dev.delivery.triggered", "source": "ci", "shkeptncontext": "build-42",
        "data": {"project": "sockshop", "stage": "dev", "service": "carts",
                 "configurationChange": {"values": {"image": "carts:0.13.1"}}},
    })
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["keptnContext"] == context_from_text("build-42")

    events_topic = TopicRegistry.from_settings(tidegate_settings).events
    [record] = kafka_reader(events_topic, 1)
    assert record.key == b"sockshop/dev/carts"
    event = decode_record(record)
    assert event.type == "sh.keptn.event.dev.delivery.triggered"
    assert event.shkeptncontext == context_from_text("build-42")
    assert event.data["configurationChange"]["values"]["image"] == "carts:0.13.1"
    # Only the accepted event is there: read one more with a short wait and expect none.
    with pytest.raises(AssertionError, match="expected 2 record"):
        kafka_reader(events_topic, 2, timeout=3)


def test_configuration_survives_a_gateway_restart(
    tidegate_settings: Settings, start_gateway: GatewayClient
) -> None:
    first = start_gateway()
    assert first.post("/api/controlPlane/v1/project", json={"name": "sockshop", "shipyard": b64(SHIPYARD)}).status_code == 201
    assert first.post("/api/controlPlane/v1/project/sockshop/service", json={"serviceName": "carts"}).status_code == 201
    slo = (REPO / "examples" / "sockshop" / "slo.yaml").read_bytes()
    base = "/api/resource-service/v1/project/sockshop/stage/staging/service/carts/resource"
    written = first.post(base, json={"resources": [{"resourceURI": "slo.yaml", "resourceContent": b64(slo)}]})
    assert written.status_code == 201, written.text
    version = written.json()["commitID"]

    second = start_gateway()  # a new process would see the same: everything comes back from the topic
    project = second.get("/api/controlPlane/v1/project/sockshop")
    assert project.status_code == 200
    assert [s["serviceName"] for s in project.json()["stages"][0]["services"]] == ["carts"]
    read = second.get(base + "/slo.yaml").json()
    assert base64.b64decode(read["resourceContent"]) == slo
    assert read["metadata"]["version"] == version

    assert second.delete("/api/controlPlane/v1/project/sockshop").status_code == 200
    third = start_gateway()
    assert third.get("/api/controlPlane/v1/project/sockshop").status_code == 404


def test_sequence_control_goes_to_every_key_the_context_touched(
    tidegate_settings: Settings, start_gateway: GatewayClient, kafka_reader: Callable[..., list]
) -> None:
    from tidegate.readside.history import SeenEvent
    from tidegate.schemas.events import KeptnEvent

    client = start_gateway()
    assert client.post("/api/controlPlane/v1/project", json={"name": "sockshop", "shipyard": b64(SHIPYARD)}).status_code == 201
    context = str(uuid.uuid4())
    gateway = client.app.state.gateway  # type: ignore[attr-defined]
    gateway.history.ingest([
        SeenEvent(KeptnEvent(type=f"sh.keptn.event.{stage}.delivery.triggered", shkeptncontext=context,
                             data={"project": "sockshop", "stage": stage, "service": "carts"}))
        for stage in ("dev", "staging")
    ])
    answer = client.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/control", json={"state": "abort"})
    assert answer.status_code == 200, answer.text
    records = kafka_reader(TopicRegistry.from_settings(tidegate_settings).events, 2)
    assert sorted(r.key for r in records) == [b"sockshop/dev/carts", b"sockshop/staging/carts"]
    assert {decode_record(r).data["state"] for r in records} == {"abort"}


def test_an_accepted_shipyard_gets_its_task_topics(tidegate_settings: Settings, start_gateway: GatewayClient) -> None:
    """A shipyard naming a task without a topic (issue 16, item 5): the gateway creates the topic when it
    accepts the shipyard, so the sequencer never produces to a missing topic."""
    from tidegate.streams.kafka import topic_partitions

    registry = TopicRegistry.from_settings(tidegate_settings)
    created_task, uploaded_task = f"smoke{uuid.uuid4().hex[:8]}", f"load{uuid.uuid4().hex[:8]}"
    wanted = [registry.task(created_task), registry.task(uploaded_task)]
    assert topic_partitions(tidegate_settings, wanted) == {}, "fresh task names have no topic yet"
    client = start_gateway()

    def shipyard(task: str) -> bytes:
        return SHIPYARD.replace(b"          tasks:\n", f"          tasks:\n            - name: {task}\n".encode(), 1)

    assert created_task.encode() in shipyard(created_task), "the example shipyard changed; adapt the test"
    created = client.post("/api/controlPlane/v1/project", json={"name": "tasks", "shipyard": b64(shipyard(created_task))})
    assert created.status_code == 201, created.text
    assert created.json().get("warnings") is None
    uploaded = client.put("/api/resource-service/v1/project/tasks/resource/shipyard.yaml",
                          json={"resourceContent": b64(shipyard(uploaded_task))})
    assert uploaded.status_code == 200, uploaded.text
    assert topic_partitions(tidegate_settings, wanted) == dict.fromkeys(wanted, tidegate_settings.partitions)


def test_an_event_at_the_largest_event_limit_fits_a_kafka_record(
    tidegate_settings: Settings, start_gateway: GatewayClient, kafka_reader: Callable[..., list]
) -> None:
    """TIDEGATE_GATEWAY_MAX_EVENT at its ceiling: an event just under it is taken by the broker (default
    1 MiB limits), one over it is refused with 413 before Kafka (issue 16, item 4)."""
    from tidegate.gateway.settings import MAX_EVENT_CEILING

    client = start_gateway(max_event=MAX_EVENT_CEILING)
    assert client.post("/api/controlPlane/v1/project", json={"name": "big", "shipyard": b64(SHIPYARD)}).status_code == 201
    assert client.post("/api/controlPlane/v1/project/big/service", json={"serviceName": "carts"}).status_code == 201

    def event(note_size: int) -> dict[str, Any]:
        return {"type": "sh.keptn.event.dev.delivery.triggered", "source": "ci",
                "data": {"project": "big", "stage": "dev", "service": "carts", "note": "x" * note_size,
                         "configurationChange": {"values": {"image": "carts:1"}}}}

    over = client.post("/api/v1/event", json=event(MAX_EVENT_CEILING))
    assert over.status_code == 413 and f"limited to {MAX_EVENT_CEILING} bytes" in over.json()["message"]
    accepted = client.post("/api/v1/event", json=event(MAX_EVENT_CEILING - 2000))
    assert accepted.status_code == 200, accepted.text
    [record] = kafka_reader(TopicRegistry.from_settings(tidegate_settings).events, 1)
    assert len(record.value) > MAX_EVENT_CEILING - 2000
