"""Smoke test of the local Alertmanager: an alert posted to the API can be read back."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.integration.prometheus_fixtures import local_alertmanager  # noqa: F401

pytestmark = pytest.mark.integration


def test_a_posted_alert_is_listed(local_alertmanager: str) -> None:  # noqa: F811
    labels = {
        "alertname": "response_time_p95",
        "severity": "webhook",
        "project": "sockshop",
        "stage": "production",
        "service": "carts",
        "deployment": "primary",
    }
    alert = {
        "labels": labels,
        "annotations": {"summary": "response_time_p95", "descriptions": "Pod name carts-primary"},
        "startsAt": datetime.now(UTC).isoformat(),
        "generatorURL": "http://127.0.0.1:19190/graph",
    }
    posted = httpx.post(f"{local_alertmanager}/api/v2/alerts", json=[alert], timeout=10)
    assert posted.status_code == 200, posted.text

    deadline = time.monotonic() + 30
    listed: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        answer = httpx.get(
            f"{local_alertmanager}/api/v2/alerts", params={"filter": 'alertname="response_time_p95"'}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        listed = answer.json()
        if listed:
            break
        time.sleep(0.1)
    assert len(listed) == 1, f"the posted alert was not listed within 30s: {listed}"
    (found,) = listed
    assert found["labels"] == labels
    assert found["annotations"] == alert["annotations"]
    assert found["status"]["state"] == "active"  # type: ignore[index]
