"""The tests connector's rules without running a tool: skips, engine choice, argv and verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidegate.connectors.runtime import TaskContext
from tidegate.connectors.tests import (
    LoadStats,
    LocustLimits,
    TestsConnector,
    jmeter_stats,
    judge_jmeter,
    judge_locust,
    locust_argv,
    locust_stats,
    target_url,
)
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.resources import Resource, ResourceStore
from tidegate.streams.settings import Settings

STATS = """Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
GET,/carts,95,5,12,14.5,3,80,12,31.6,1.6,12,14,15,16,20,30,50,70,80,80,80
,Aggregated,100,5,12,15.0,3,80,12,33.2,1.6,12,14,15,16,20,31,50,70,80,80,80
"""


def context(resources: ResourceStore, **data: object) -> TaskContext:
    event = KeptnEvent(type="sh.keptn.event.test.triggered",
                       data={"project": "p", "stage": "s", "service": "v", **data})
    return TaskContext(event=event, task="test", connector="tests", resources=resources, settings=Settings(), timeout=60)


def test_locust_stats_and_limits() -> None:
    stats = locust_stats(STATS)
    assert stats == LoadStats(requests=100, failures=5, average_ms=15.0, p95_ms=31.0)
    assert not judge_locust(stats, LocustLimits()).passed
    assert judge_locust(stats, LocustLimits(acceptedErrorRate=0.05, maxAvgResponseTime=20)).passed
    slow = judge_locust(stats, LocustLimits(acceptedErrorRate=0.1, maxP95ResponseTime=30))
    assert slow.reasons == ("p95 response time 31 ms is above 30 ms",)
    assert judge_locust(LoadStats(0, 0, 0.0), LocustLimits()).reasons[0].startswith("no request was made")


def test_jmeter_results_and_keptns_rule() -> None:
    jtl = "timeStamp,elapsed,label,responseCode,success\n1,100,a,200,true\n2,300,a,500,false\n"
    stats = jmeter_stats(jtl)
    assert (stats.requests, stats.failures, stats.average_ms) == (2, 1, 200.0)
    assert judge_jmeter(stats, 0.5, 0).passed
    assert not judge_jmeter(stats, 0.1, 0).passed
    assert judge_jmeter(stats, 1.0, 150).reasons == ("average response time 200 ms is above 150 ms",)


def test_locust_argv_uses_defaults_only_without_a_conf_file(tmp_path: Path) -> None:
    plain = locust_argv("locust", "http://x:1", tmp_path / "f.py", tmp_path / "r", None, LocustLimits())
    assert plain[:5] == ["locust", "--headless", "--only-summary", "--host", "http://x:1"]
    assert plain[-6:] == ["-u", "10", "-r", "10", "-t", "2m"]
    with_conf = locust_argv("locust", "http://x:1", tmp_path / "f.py", tmp_path / "r", tmp_path / "c", LocustLimits())
    assert "-u" not in with_conf and "-t" not in with_conf and "--config" in with_conf


def test_target_url_prefers_public_as_locust_service_did() -> None:
    assert target_url({"deployment": {"deploymentURIsLocal": ["l"], "deploymentURIsPublic": ["p"]}}) == "p"
    assert target_url({"deployment": {"deploymentURIsLocal": ["l"], "deploymentURIsPublic": []}}) == "l"
    assert target_url({}) is None


@pytest.mark.parametrize(("data", "message"), [
    ({}, "no teststrategy given"),
    ({"test": {"teststrategy": "real-user"}}, "real-user"),
    ({"test": {"teststrategy": "performance"}, "deployment": {"deploymentURIsLocal": ["http://127.0.0.1:9"]}},
     "skipped"),
])
async def test_nothing_to_run_passes(data: dict[str, object], message: str) -> None:
    outcome = await TestsConnector().run(context(ResourceStore(), **data))
    assert outcome.result.value == "pass" and message in outcome.message


async def test_no_url_is_errored_and_a_missing_jmeter_says_so() -> None:
    resources = ResourceStore()
    outcome = await TestsConnector().run(context(resources, test={"teststrategy": "performance"}))
    assert outcome.status.value == "errored" and "no URL to test" in outcome.message
    resources.put(Resource.new("p", "jmeter/jmeter.conf.yaml", b"spec_version: '0.1.0'\nworkloads: []\n"))
    resources.put(Resource.new("p", "jmeter/load.jmx", b"<jmeterTestPlan/>"))
    outcome = await TestsConnector(jmeter=lambda: None).run(context(
        resources, test={"teststrategy": "performance"}, deployment={"deploymentURIsLocal": ["http://127.0.0.1:9"]}))
    assert outcome.status.value == "errored" and outcome.message.startswith("jmeter is not installed")


async def test_a_broken_locust_config_is_errored_with_its_problem() -> None:
    resources = ResourceStore()
    resources.put(Resource.new("p", "locust/locust.conf.yaml", b"workloads: [{script: x.py}]\n"))
    outcome = await TestsConnector().run(context(
        resources, test={"teststrategy": "performance"}, deployment={"deploymentURIsLocal": ["http://127.0.0.1:9"]}))
    assert outcome.status.value == "errored" and "teststrategy" in outcome.message
