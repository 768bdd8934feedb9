"""The tests connector with real Locust against a real local HTTP service: a healthy run passes,
a slow one fails its response-time limit, an unreachable one fails its health check."""

from __future__ import annotations

from datetime import datetime

import pytest
import yaml

from tests.fakes.http_service import SlowService
from tidegate.connectors.runtime import TaskContext
from tidegate.connectors.tests import TestsConnector
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.resources import Resource, ResourceStore
from tidegate.streams.settings import Settings

pytestmark = pytest.mark.integration

LOCUSTFILE = """
from locust import HttpUser, constant, task


class Shopper(HttpUser):
    wait_time = constant(0.05)

    @task
    def carts(self):
        self.client.get("/carts")
"""


def store(limits: dict[str, object]) -> ResourceStore:
    resources = ResourceStore()
    config = {"spec_version": "0.1.0", "workloads": [
        {"teststrategy": "performance", "script": "locust/load.py", "users": 2, "spawnRate": 2, "runTime": "3s",
         **limits}]}
    resources.put(Resource.new("sockshop", "locust/locust.conf.yaml", yaml.safe_dump(config).encode(), "dev", "carts"))
    resources.put(Resource.new("sockshop", "locust/load.py", LOCUSTFILE.encode(), "dev", "carts"))
    return resources


async def run(resources: ResourceStore, url: str, connector: TestsConnector | None = None):  # type: ignore[no-untyped-def]
    event = KeptnEvent(type="sh.keptn.event.test.triggered", shkeptncontext="ctx", data={
        "project": "sockshop", "stage": "dev", "service": "carts", "test": {"teststrategy": "performance"},
        "deployment": {"deploymentURIsLocal": [url]}})
    ctx = TaskContext(event=event, task="test", connector="tests", resources=resources, settings=Settings(), timeout=120)
    return await (connector or TestsConnector(health_attempts=2, health_interval=0.2)).run(ctx)


async def test_a_healthy_service_passes_and_reports_the_test_window() -> None:
    with SlowService() as service:
        outcome = await run(store({"maxAvgResponseTime": 300}), service.url)
    assert (outcome.status.value, outcome.result.value) == ("succeeded", "pass"), outcome.message
    assert "0 failed" in outcome.message
    start = datetime.fromisoformat(outcome.data["test"]["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(outcome.data["test"]["end"].replace("Z", "+00:00"))
    assert (end - start).total_seconds() >= 3  # locust ran for its run time
    assert service.hits > 10


async def test_a_slow_service_fails_its_response_time_limit() -> None:
    with SlowService(delay=0.4) as service:
        outcome = await run(store({"maxAvgResponseTime": 200}), service.url)
    assert (outcome.status.value, outcome.result.value) == ("succeeded", "fail"), outcome.message
    assert "average response time" in outcome.message and "above 200 ms" in outcome.message


async def test_failing_requests_fail_the_test_unless_accepted() -> None:
    with SlowService(status=404) as service:
        strict = await run(store({}), service.url)
        tolerant = await run(store({"acceptedErrorRate": 1.0}), service.url)
    assert strict.result.value == "fail" and "error rate 100.0% is above the accepted 0.0%" in strict.message
    assert tolerant.result.value == "pass", tolerant.message


async def test_an_unreachable_service_fails_the_health_check_without_running_locust() -> None:
    with SlowService() as service:
        url = service.url
    outcome = await run(store({}), url, TestsConnector(health_attempts=1))
    assert (outcome.status.value, outcome.result.value) == ("succeeded", "fail")
    assert f"health check of {url} failed" in outcome.message
