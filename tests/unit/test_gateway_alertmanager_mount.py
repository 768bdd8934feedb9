"""The gateway serves the Alertmanager webhook at /api/alertmanager when the bridge's credentials are set."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tidegate.gateway.kafka import create_kafka_app
from tidegate.gateway.settings import GatewaySettings
from tidegate.streams.settings import Settings


def _app() -> TestClient:
    # No `with`: the lifespan (which connects to Kafka) does not run; the bridge answers before Kafka.
    settings = Settings(kafka_bootstrap="127.0.0.1:1", topic_prefix="unit.")
    return TestClient(create_kafka_app(settings, GatewaySettings(api_token=SecretStr("api-token-of-the-unit-test"))))


def test_the_webhook_is_mounted_with_its_own_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEGATE_ALERTMANAGER_TOKEN", "am-secret-of-the-unit-test")
    client = _app()
    # The API token is not what Alertmanager sends: the bridge checks its own bearer token.
    assert client.post("/api/alertmanager", content=b"{}", headers={"x-token": "api-token-of-the-unit-test"}).status_code == 401
    answer = client.post("/api/alertmanager", content=b"not json", headers={"authorization": "Bearer am-secret-of-the-unit-test"})
    assert answer.status_code == 400
    assert "not an Alertmanager webhook payload" in answer.json()["error"]


def test_without_bridge_credentials_there_is_no_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TIDEGATE_ALERTMANAGER_TOKEN", "TIDEGATE_ALERTMANAGER_USER", "TIDEGATE_ALERTMANAGER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    client = _app()
    assert client.post("/api/alertmanager", content=b"{}", headers={"authorization": "Bearer x"}).status_code == 404
