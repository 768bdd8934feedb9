"""The tests connector's JMeter path with real Apache JMeter (assembled from Maven Central by
deploy/local/jmeter.py) against the demo's carts service on 127.0.0.1.

What Keptn's jmeter-service did with `jmeter/load.jmx`: the connector runs JMeter headless with the
workload's users and loops, reads the JTL results and judges them by the accepted error rate; the
`test.finished` data carries the request counts and the `test.start`/`test.end` times the quality
gate's evaluation later uses as its time frame.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from examples.sockshop.service.behaviour import behaviour_for
from examples.sockshop.service.server import DemoService
from tidegate.connectors.runtime import TaskContext, TaskOutcome
from tidegate.connectors.tests import TestsConnector
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.resources import Resource, ResourceStore
from tidegate.streams.settings import Settings

pytestmark = pytest.mark.integration

LOAD_JMX = Path(__file__).resolve().parents[1] / "fixtures" / "jmeter" / "load.jmx"
CONF = """spec_version: '0.1.0'
workloads:
  - teststrategy: performance
    vuser: 3
    loopcount: 10
    script: jmeter/load.jmx
    acceptederrorrate: 0.1
    properties: {LOAD_PATH: /carts}
"""


@pytest.fixture(scope="module")
def jmeter() -> str:
    from deploy.local.jmeter import JMeterInstallError, ensure_jmeter

    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            pytest.fail(f"the JMeter test needs `{tool}` on PATH (apt-get install openjdk-17-jdk-headless maven)")
    try:
        return str(ensure_jmeter())
    except JMeterInstallError as error:
        pytest.fail(str(error))


@pytest.fixture
def carts() -> Iterator[DemoService]:
    service = DemoService(behaviour_for("0.11.1"), port=0, seed=1).start()
    try:
        yield service
    finally:
        service.stop()


async def run_load_test(jmeter: str, url: str) -> TaskOutcome:
    resources = ResourceStore()
    resources.put(Resource.new("sockshop", "jmeter/jmeter.conf.yaml", CONF.encode()))
    resources.put(Resource.new("sockshop", "jmeter/load.jmx", LOAD_JMX.read_bytes()))
    event = KeptnEvent(type="sh.keptn.event.test.triggered", data={
        "project": "sockshop", "stage": "staging", "service": "carts",
        "test": {"teststrategy": "performance"}, "deployment": {"deploymentURIsLocal": [url]}})
    ctx = TaskContext(event=event, task="test", connector="tests", resources=resources, settings=Settings(),
                      timeout=120)
    return await TestsConnector(jmeter=lambda: jmeter).run(ctx)


async def test_jmeter_load_test_passes_with_counts_and_the_test_window(jmeter: str, carts: DemoService) -> None:
    outcome = await run_load_test(jmeter, carts.url)
    assert (outcome.status.value, outcome.result.value) == ("succeeded", "pass"), outcome.message
    test = outcome.data["test"]
    assert (test["requests"], test["failedRequests"]) == (30, 0)  # 3 users x 10 loops, all answered
    assert test["averageResponseTimeMs"] > 0
    start, end = (datetime.fromisoformat(test[key].replace("Z", "+00:00")) for key in ("start", "end"))
    assert start < end
    assert "jmeter performance against" in outcome.message and "30 requests" in outcome.message


async def test_jmeter_load_test_fails_when_the_service_errors_more_than_accepted(jmeter: str) -> None:
    failing = dataclasses.replace(behaviour_for("0.11.1"), failure_rate=1.0)
    service = DemoService(failing, port=0, seed=1).start()
    try:
        outcome = await run_load_test(jmeter, service.url)
    finally:
        service.stop()
    assert (outcome.status.value, outcome.result.value) == ("succeeded", "fail"), outcome.message
    assert outcome.data["test"]["requests"] == 30 and outcome.data["test"]["failedRequests"] == 30
    assert outcome.data["test"]["start"] < outcome.data["test"]["end"]
