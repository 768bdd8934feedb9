"""The gateway under attack (issue 16): each test performs the attack and asserts it fails, and that
ordinary use keeps working."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

import tidegate.gateway.files as gateway_files
from tests.unit.test_alertmanager_bridge import REGISTRY as AM_REGISTRY
from tests.unit.test_alertmanager_bridge import SETTINGS as AM_SETTINGS
from tests.unit.test_alertmanager_bridge import FakeSink, alert, payload, post
from tests.unit.test_files_limits import alias_bomb
from tests.unit.test_gateway_api import SHIPYARD, Env, b64, delivery
from tidegate.bridge import install as install_bridge
from tidegate.bridge.evaluations import slo_summary
from tidegate.gateway import GatewaySettings, MemoryTaskTopics, create_app
from tidegate.gateway.alertmanager.app import AlertmanagerBridge, create_bridge_app
from tidegate.gateway.alertmanager.auth import AuthConfigError, Credentials
from tidegate.gateway.alertmanager.settings import BridgeSettings
from tidegate.gateway.routes.stream import parse_cursor
from tidegate.gateway.settings import DEFAULT_MAX_EVENT, MAX_EVENT_CEILING
from tidegate.readside.analytics.service import AnalyticsInputError, parse_slo
from tidegate.schemas.errors import FileValidationError
from tidegate.schemas.files import MAX_NODES, load_text

RESOURCES = "/api/resource-service/v1/project/sockshop/resource"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    made = Env(tmp_path)
    made.create_project()
    yield made
    made.history.close()


# --------------------------------------------------------------------- YAML alias bomb


def test_an_uploaded_alias_bomb_is_refused_with_its_line_and_the_limit(env: Env) -> None:
    for uri in ("slo.yaml", "shipyard.yaml"):
        answer = env.client.post(RESOURCES, json={"resources": [{"resourceURI": uri, "resourceContent": b64(alias_bomb())}]})
        assert answer.status_code == 400, answer.text
        assert f"{uri}:5: the document has more than {MAX_NODES} values" in answer.json()["message"]
    created = env.client.post("/api/controlPlane/v1/project", json={"name": "bombed", "shipyard": b64(alias_bomb())})
    assert created.status_code == 400 and f"more than {MAX_NODES} values" in created.json()["message"]
    assert env.client.get("/healthz").status_code == 200


def test_files_are_checked_off_the_event_loop(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check waits until /healthz has answered: were it on the event loop, /healthz could not."""
    healthz_answered = threading.Event()
    real_load_text = gateway_files.load_text

    def slow_load_text(*args: Any) -> Any:
        if not healthz_answered.wait(timeout=60):  # a guard against a hang, not a measurement
            raise AssertionError("/healthz did not answer while the file was being checked")
        return real_load_text(*args)

    monkeypatch.setattr(gateway_files, "load_text", slow_load_text)
    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(env.client.post, RESOURCES,
                             json={"resources": [{"resourceURI": "slo.yaml", "resourceContent": b64(alias_bomb())}]})
        assert env.client.get("/healthz").status_code == 200
        healthz_answered.set()
        answer = upload.result()
    assert answer.status_code == 400 and f"more than {MAX_NODES} values" in answer.json()["message"]


def test_a_check_that_takes_too_long_is_refused(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def stuck_load_text(*args: Any) -> Any:
        release.wait(timeout=120)
        raise AssertionError("not reached in time")

    monkeypatch.setattr(gateway_files, "load_text", stuck_load_text)
    monkeypatch.setattr(gateway_files, "CHECK_SECONDS", 0.2)
    try:
        answer = env.client.post(RESOURCES, json={"resources": [{"resourceURI": "slo.yaml", "resourceContent": b64("x: 1\n")}]})
    finally:
        release.set()
    assert answer.status_code == 400
    assert "slo.yaml: checking the file took longer than 0.2 s" in answer.json()["message"]


# --------------------------------------------------------------------- event size


def test_an_event_over_the_limit_is_refused_with_413_and_the_limit(env: Env) -> None:
    env.create_service()
    env.gateway.max_event = 4096
    big = env.client.post("/api/v1/event", json=delivery(note="x" * 5000))
    assert big.status_code == 413
    assert big.json()["code"] == 413
    assert "limited to 4096 bytes (TIDEGATE_GATEWAY_MAX_EVENT)" in big.json()["message"]
    assert env.events.events == [], "nothing reached the event sink"
    assert env.client.post("/api/v1/event", json=delivery(note="x" * 2000)).status_code == 200


def test_the_event_limit_always_fits_a_kafka_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEGATE_API_TOKEN", "a-token-that-is-long-enough")
    assert GatewaySettings().max_event == DEFAULT_MAX_EVENT <= MAX_EVENT_CEILING < 1024 * 1024 - 1024
    with pytest.raises(ValidationError, match="max_event"):
        GatewaySettings(max_event=2 * 1024 * 1024)


# --------------------------------------------------------------------- task topics of accepted shipyards


CUSTOM_TASK_SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: custom}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment}, {name: smoke-check}]
"""


def test_accepting_a_shipyard_provisions_its_task_topics_and_reports_problems_as_warnings(env: Env) -> None:
    topics = MemoryTaskTopics()
    env.gateway.task_topics = topics
    created = env.client.post("/api/controlPlane/v1/project", json={"name": "custom", "shipyard": b64(CUSTOM_TASK_SHIPYARD)})
    assert created.status_code == 201 and created.json().get("warnings") is None
    assert topics.tasks == {"deployment", "smoke-check"}
    topics.problems = ["could not create topic tidegate.tasks.smoke-check: broker down"]
    uploaded = env.client.put("/api/resource-service/v1/project/custom/resource/shipyard.yaml",
                              json={"resourceContent": b64(CUSTOM_TASK_SHIPYARD.replace("smoke-check", "load"))})
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["warnings"] == topics.problems
    assert "load" in topics.tasks
    updated = env.client.put("/api/controlPlane/v1/project", json={"name": "custom", "shipyard": b64(CUSTOM_TASK_SHIPYARD)})
    assert updated.status_code == 200 and updated.json()["warnings"] == topics.problems


# --------------------------------------------------------------------- /metrics


def test_made_up_methods_add_no_metric_series(env: Env) -> None:
    env.client.get("/healthz")
    before = env.client.get("/metrics").text.count("tidegate_gateway_requests_total{")
    for n in range(300):
        env.client.request(f"MADEUP{n}", "/api/v1/auth")
    after = env.client.get("/metrics").text
    assert after.count("tidegate_gateway_requests_total{") <= before + 2  # method="other" (405) and GET /metrics
    assert "MADEUP" not in after
    assert 'method="other"' in after


# --------------------------------------------------------------------- local mode and DNS rebinding


def test_local_mode_refuses_foreign_host_names_on_every_route(tmp_path: Path) -> None:
    local = Env(tmp_path)
    app = create_app(local.gateway, extensions=(install_bridge,), api_token=None)
    try:
        rebound = TestClient(app, base_url="http://evil.example:8080")
        for path in ("/api/controlPlane/v1/project", "/api/v1/metadata", "/healthz", "/metrics", "/bridge/dashboard"):
            answer = rebound.get(path)
            assert answer.status_code == 403, path
            assert answer.json()["code"] == 403 and "loopback" in answer.json()["message"]
        assert rebound.post("/api/controlPlane/v1/project", json={"name": "x", "shipyard": b64(SHIPYARD)}).status_code == 403
        assert local.store.projects() == []
        assert TestClient(app, headers={"host": "evil.example"}).get("/healthz").status_code == 403
        for base in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"):
            assert TestClient(app, base_url=base).get("/api/controlPlane/v1/project").status_code == 200, base
    finally:
        local.history.close()


def test_a_token_gateway_answers_any_host(env: Env) -> None:
    assert env.client.get("/api/v1/metadata", headers={"host": "tidegate.example.com"}).status_code == 200


# --------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["evil\n", "evil\r\n", "evil-", "Evil"])
def test_entity_names_with_a_trailing_newline_are_refused(env: Env, name: str) -> None:
    project = env.client.post("/api/controlPlane/v1/project", json={"name": name, "shipyard": b64(SHIPYARD)})
    assert project.status_code == 400, name
    service = env.client.post("/api/controlPlane/v1/project/sockshop/service", json={"serviceName": name})
    assert service.status_code == 400, name
    assert all(p.strip() == p for p in env.gateway.catalog.projects())


def test_a_stage_name_with_a_trailing_newline_is_refused_in_the_shipyard() -> None:
    text = CUSTOM_TASK_SHIPYARD.replace("- name: dev", '- name: "dev\\n"')
    with pytest.raises(FileValidationError, match="stage 'dev\\n'"):
        load_text(text, "shipyard.yaml")


# --------------------------------------------------------------------- page keys


@pytest.mark.parametrize("key", ["²", "12345678901234567890123", "-1", "1e3", " 1"])
def test_bad_page_keys_answer_400_in_keptns_format(env: Env, key: str) -> None:
    for path in ("/api/mongodb-datastore/event?project=sockshop", "/api/controlPlane/v1/project",
                 "/api/controlPlane/v1/sequence/sockshop", "/api/resource-service/v1/project/sockshop/resource",
                 "/api/controlPlane/v1/project/sockshop/stage"):
        answer = env.client.get(path, params={"nextPageKey": key})
        assert answer.status_code == 400, (path, answer.text)
        body = answer.json()
        assert body["code"] == 400 and "nextPageKey" in body["message"], path
    assert env.client.get("/api/controlPlane/v1/project", params={"nextPageKey": "0"}).status_code == 200


def test_a_bad_stream_cursor_starts_from_the_beginning() -> None:
    assert parse_cursor("²-1") == (0, 0)
    assert parse_cursor("12345678901234567890123-1") == (0, 0)
    assert parse_cursor("3-4") == (3, 4)


# --------------------------------------------------------------------- token length


def test_short_api_tokens_are_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDEGATE_GATEWAY_NO_TOKEN", raising=False)
    monkeypatch.setenv("TIDEGATE_API_TOKEN", "short-token")
    with pytest.raises(ValidationError) as caught:
        GatewaySettings()
    assert "TIDEGATE_API_TOKEN is 11 characters long; use at least 16" in str(caught.value)
    assert "short-token" not in str(caught.value)
    monkeypatch.setenv("TIDEGATE_API_TOKEN", "x" * 16)
    assert GatewaySettings().api_token is not None


def test_short_alertmanager_secrets_are_refused_naming_the_variable() -> None:
    with pytest.raises(AuthConfigError, match="TIDEGATE_ALERTMANAGER_TOKEN is 6 characters long"):
        Credentials.from_settings(BridgeSettings(token="s3cret"))  # type: ignore[arg-type]
    with pytest.raises(AuthConfigError, match="TIDEGATE_ALERTMANAGER_PASSWORD is 2 characters long"):
        Credentials.from_settings(BridgeSettings(user="am", password="pw"))  # type: ignore[arg-type]


def slo_bomb() -> str:
    """An SLO whose unknown sections are alias bombs: walking them (pydantic's errors) took minutes."""
    lines = ["x0: &a0 [a, a, a, a, a, a, a, a]"]
    lines += [f"x{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 8) + "]" for i in range(1, 9)]
    return "\n".join([*lines, "filter: {x: *a8}", "comparison: *a8"]) + "\n"


def test_an_slo_bomb_in_an_evaluation_event_does_not_stall_the_bridge() -> None:
    summary = slo_summary(base64.b64encode(slo_bomb().encode()).decode())
    assert summary.problem is not None and f"more than {MAX_NODES} values" in summary.problem


def test_an_slo_bomb_sent_for_a_replay_is_refused() -> None:
    with pytest.raises(AnalyticsInputError, match=f"more than {MAX_NODES} values"):
        parse_slo(slo_bomb(), "slo.yaml")


def test_an_oversized_alert_is_rejected_and_its_dead_letter_fits_a_record() -> None:
    sink = FakeSink()
    with TestClient(create_bridge_app(AlertmanagerBridge(AM_SETTINGS, sink, AM_REGISTRY))) as client:
        huge = alert()
        huge["annotations"]["descriptions"] = "x" * (DEFAULT_MAX_EVENT + 1)
        answer = post(client, payload(huge, alert(fingerprint="0123456789abcdef")))
    assert answer.status_code == 200, answer.text
    [rejected] = answer.json()["rejected"]
    assert "over the limit of 524288 (TIDEGATE_ALERTMANAGER_MAX_EVENT)" in " ".join(rejected["reasons"])
    assert len(sink.events) == 1, "the other alert of the batch still became its event"
    [(topic, letter)] = sink.records
    assert topic == AM_REGISTRY.dlq
    assert len(letter.value or b"") + sum(len(v) for _, v in letter.headers) < DEFAULT_MAX_EVENT
