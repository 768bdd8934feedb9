"""The Alertmanager bridge: payload parsing, alert -> event, auth, per-alert rejection, Kafka outages."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tidegate.gateway.alertmanager import (
    AlertmanagerBridge,
    AuthConfigError,
    BridgeSettings,
    Credentials,
    SinkUnavailable,
    alert_context,
    create_bridge_app,
    translate,
)
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key
from tidegate.schemas.payloads import Problem
from tidegate.streams.codec import KafkaRecord
from tidegate.streams.dlq import read_dead_letter
from tidegate.streams.topics import TopicRegistry

TOKEN = "t0ken-for-the-alertmanager-tests"
SETTINGS = BridgeSettings(token=TOKEN)  # type: ignore[arg-type]
REGISTRY = TopicRegistry(prefix="test.")
STARTS = "2026-05-01T12:00:00.123456789Z"


def alert(status: str = "firing", *, drop: tuple[str, ...] = (), fingerprint: str = "8f2b1c0d9e3a4b5c",
          **labels: str) -> dict[str, Any]:
    all_labels = {"alertname": "response_time_p95", "project": "sockshop", "stage": "production",
                  "service": "carts", "deployment": "primary", "pod_name": "carts-primary", "severity": "webhook",
                  **labels}
    for name in drop:
        all_labels.pop(name)
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": "response_time_p95", "descriptions": "Pod name carts-primary"},
        "startsAt": STARTS,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-05-01T12:10:00Z",
        "generatorURL": "http://127.0.0.1:19290/graph?g0.expr=x",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any], status: str = "firing", version: str = "4") -> dict[str, Any]:
    return {
        "version": version, "groupKey": '{}:{alertname="response_time_p95"}', "truncatedAlerts": 0,
        "status": status, "receiver": "tidegate", "groupLabels": {"alertname": "response_time_p95"},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://127.0.0.1:19295",
        "alerts": list(alerts),
    }


class FakeSink:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.events: list[tuple[str, KeptnEvent, Key]] = []
        self.records: list[tuple[str, KafkaRecord]] = []

    async def publish(self, topic: str, event: KeptnEvent, key: Key) -> None:
        if self.fail:
            raise SinkUnavailable("Kafka (127.0.0.1:1) did not take event x: timed out")
        self.events.append((topic, event, key))

    async def publish_record(self, topic: str, record: KafkaRecord) -> None:
        if self.fail:
            raise SinkUnavailable("Kafka down")
        self.records.append((topic, record))

    async def close(self) -> None:
        pass


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


@pytest.fixture
def client(sink: FakeSink) -> Iterator[TestClient]:
    with TestClient(create_bridge_app(AlertmanagerBridge(SETTINGS, sink, REGISTRY))) as test_client:
        yield test_client


def post(client: TestClient, body: Any, *, auth: str | None = f"Bearer {TOKEN}", path: str = "/api/alertmanager") -> Any:
    headers = {"Authorization": auth} if auth else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers={**headers, "Content-Type": "application/json"})


# -- translation --------------------------------------------------------------------------------------


def test_a_firing_alert_becomes_a_remediation_trigger_with_keptns_problem_block() -> None:
    batch = translate(json.dumps(payload(alert())).encode(), SETTINGS)
    [accepted] = batch.accepted
    event = accepted.event
    assert event.type == "sh.keptn.event.production.remediation.triggered"
    assert accepted.key == Key("sockshop", "production", "carts")
    assert event.data["project"] == "sockshop" and event.data["service"] == "carts"
    assert event.data["deployment"] == {"deploymentNames": ["primary"]}
    assert event.data["labels"]["Problem URL"] == "http://127.0.0.1:19290/graph?g0.expr=x"
    problem = Problem.model_validate(event.data["problem"])
    assert problem.State == "OPEN"
    assert problem.problemTitle == "response_time_p95"
    assert problem.rootCause == "response_time_p95"
    assert problem.ProblemID == "8f2b1c0d9e3a4b5c"
    assert problem.ProblemURL == "http://127.0.0.1:19290/graph?g0.expr=x"
    assert problem.ImpactedEntity == "carts-primary"
    assert problem.labels is not None and problem.labels["severity"] == "webhook"


def test_the_context_is_a_uuid_of_the_sha256_of_fingerprint_and_start() -> None:
    expected = uuid.UUID(bytes=hashlib.sha256(f"8f2b1c0d9e3a4b5c{STARTS}".encode()).digest()[:16], version=4)
    [accepted] = translate(json.dumps(payload(alert())).encode(), SETTINGS).accepted
    assert accepted.event.shkeptncontext == str(expected) == alert_context("8f2b1c0d9e3a4b5c", STARTS)
    assert accepted.event.id == derived_id(str(expected), "remediation.triggered")


def test_a_repeated_alert_is_the_same_event_and_a_new_firing_is_a_new_run() -> None:
    body = json.dumps(payload(alert())).encode()
    first = translate(body, SETTINGS).accepted[0].event
    again = translate(body, SETTINGS).accepted[0].event
    assert first.to_json_dict() == again.to_json_dict()
    later = alert()
    later["startsAt"] = "2026-05-01T13:00:00Z"
    refired = translate(json.dumps(payload(later)).encode(), SETTINGS).accepted[0].event
    assert refired.shkeptncontext != first.shkeptncontext and refired.id != first.id


def test_a_resolved_alert_closes_the_problem_of_the_same_run() -> None:
    firing = translate(json.dumps(payload(alert())).encode(), SETTINGS).accepted[0].event
    [closed] = translate(json.dumps(payload(alert("resolved"), status="resolved")).encode(), SETTINGS).accepted
    assert closed.event.type == "sh.keptn.events.problem"
    assert closed.event.shkeptncontext == firing.shkeptncontext
    assert closed.event.data["State"] == "CLOSED"
    assert closed.event.data["ProblemID"] == "8f2b1c0d9e3a4b5c"
    assert closed.key == Key("sockshop", "production", "carts")
    assert closed.event.id != firing.id


def test_every_alert_of_a_batch_counts_not_only_the_first() -> None:
    batch = translate(json.dumps(payload(
        alert(fingerprint="a1"), alert(fingerprint="b2", service="orders"), alert("resolved", fingerprint="c3"),
    )).encode(), SETTINGS)
    assert [a.event.type for a in batch.accepted] == [
        "sh.keptn.event.production.remediation.triggered",
        "sh.keptn.event.production.remediation.triggered",
        "sh.keptn.events.problem",
    ]
    assert [a.key.service for a in batch.accepted] == ["carts", "orders", "carts"]


def test_label_names_and_title_annotation_are_configurable() -> None:
    settings = BridgeSettings(token=TOKEN, project_label="keptn_project", stage_label="env",  # type: ignore[arg-type]
                              service_label="app", title_annotation="title")
    raw = alert(drop=("project", "stage", "service"), keptn_project="shop", env="prod", app="cart")
    raw["annotations"]["title"] = "Slow carts"
    [accepted] = translate(json.dumps(payload(raw)).encode(), settings).accepted
    assert accepted.key == Key("shop", "prod", "cart")
    assert accepted.event.data["problem"]["problemTitle"] == "Slow carts"
    assert accepted.event.data["problem"]["rootCause"] == "response_time_p95"


def test_without_a_summary_the_alert_name_is_the_title() -> None:
    raw = alert()
    raw["annotations"] = {}
    [accepted] = translate(json.dumps(payload(raw)).encode(), SETTINGS).accepted
    assert accepted.event.data["problem"]["problemTitle"] == "response_time_p95"


# -- the HTTP endpoint ------------------------------------------------------------------------------------


def test_valid_alerts_are_published_to_events_and_reported(client: TestClient, sink: FakeSink) -> None:
    answer = post(client, payload(alert(fingerprint="a1"), alert(fingerprint="b2", service="orders")))
    assert answer.status_code == 200
    body = answer.json()
    assert [a["fingerprint"] for a in body["accepted"]] == ["a1", "b2"]
    assert body["rejected"] == []
    assert [(topic, key.service) for topic, _, key in sink.events] == [("test.events", "carts"),
                                                                       ("test.events", "orders")]
    assert body["accepted"][0]["id"] == sink.events[0][1].id


def test_alerts_without_the_needed_labels_are_reported_and_dead_lettered(client: TestClient, sink: FakeSink) -> None:
    answer = post(client, payload(alert(fingerprint="ok"), alert(fingerprint="bad", drop=("stage", "service"))))
    assert answer.status_code == 200
    body = answer.json()
    assert [a["fingerprint"] for a in body["accepted"]] == ["ok"]
    [rejected] = body["rejected"]
    assert rejected["fingerprint"] == "bad" and rejected["index"] == 1
    assert len(rejected["reasons"]) == 2
    assert "no 'stage' label" in rejected["reasons"][0] and "TIDEGATE_ALERTMANAGER_STAGE_LABEL" in rejected["reasons"][0]
    [(topic, record)] = sink.records
    assert topic == "test.dlq"
    letter = read_dead_letter(record)
    assert letter is not None and letter.agent == "alertmanager-bridge"
    assert "no 'service' label" in letter.reason
    assert json.loads(record.value or b"{}")["alert"]["fingerprint"] == "bad"
    assert len(sink.events) == 1


def test_a_batch_of_only_rejected_alerts_is_422(client: TestClient, sink: FakeSink) -> None:
    broken = alert()
    del broken["fingerprint"]
    answer = post(client, payload(alert(drop=("project",)), broken))
    assert answer.status_code == 422
    reasons = [r["reasons"] for r in answer.json()["rejected"]]
    assert "no 'project' label" in reasons[0][0]
    assert reasons[1] == ["fingerprint: Field required"]
    assert len(sink.records) == 2 and sink.events == []


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 422, "JSON list"),
        (json.dumps(payload(alert(), version="3")).encode(), 422, "version '3' is not supported"),
        (json.dumps({"version": "4", "status": "firing"}).encode(), 422, "alerts: Field required"),
        (json.dumps({**payload(alert()), "status": "exploding"}).encode(), 422, "status:"),
    ],
)
def test_bad_payloads_get_a_4xx_with_the_reasons(
    client: TestClient, sink: FakeSink, body: bytes, status: int, needle: str
) -> None:
    answer = post(client, body)
    assert answer.status_code == status
    assert any(needle in reason for reason in answer.json()["reasons"])
    assert sink.events == [] and sink.records == []


@pytest.mark.parametrize("auth", [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer", f"bearer {TOKEN}x"])
def test_calls_without_the_right_credentials_are_refused(client: TestClient, sink: FakeSink, auth: str | None) -> None:
    answer = post(client, payload(alert()), auth=auth)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert sink.events == []


def test_the_root_path_works_too(client: TestClient, sink: FakeSink) -> None:
    assert post(client, payload(alert()), path="/").status_code == 200
    assert post(client, payload(alert()), path="/api/alertmanager/").status_code == 200
    assert len(sink.events) == 2


def test_kafka_unavailable_answers_503_so_alertmanager_retries() -> None:
    failing = FakeSink(fail=True)
    with TestClient(create_bridge_app(AlertmanagerBridge(SETTINGS, failing, REGISTRY))) as test_client:
        answer = post(test_client, payload(alert()))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert "will retry" in answer.json()["error"]


# -- credentials ----------------------------------------------------------------------------------------


def test_basic_auth_is_checked_on_user_and_password() -> None:
    credentials = Credentials.from_settings(BridgeSettings(user="am", password="pw-of-sixteen-chars"))  # type: ignore[arg-type]
    good = base64.b64encode(b"am:pw-of-sixteen-chars").decode()
    assert credentials.allows(f"Basic {good}")
    assert not credentials.allows(f"Basic {base64.b64encode(b'am:nope').decode()}")
    assert not credentials.allows(f"Basic {base64.b64encode(b'amp:w-of-sixteen-chars').decode()}")
    assert not credentials.allows("Basic !!!not-base64")
    assert not credentials.allows(f"Bearer {good}")
    assert credentials.challenge.startswith("Basic")


def test_the_bridge_refuses_to_run_without_credentials() -> None:
    with pytest.raises(AuthConfigError, match="TIDEGATE_ALERTMANAGER_TOKEN"):
        AlertmanagerBridge(BridgeSettings(), FakeSink())
    with pytest.raises(AuthConfigError, match="both"):
        Credentials.from_settings(BridgeSettings(user="am"))


def test_credentials_never_show_in_the_settings_repr() -> None:
    assert TOKEN not in repr(SETTINGS)
