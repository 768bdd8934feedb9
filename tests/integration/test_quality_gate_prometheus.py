"""A quality gate end to end on real servers: the demo carts service, Prometheus scraping it every
second, the Kafka broker, a Faust worker with the sequencer and the evaluator, and the Prometheus SLI
connector on the connector runtime.

The fast release (0.11.1, about 10 ms per /carts request) runs in dev, the slow one (0.11.2, about
600 ms) in staging; both get load, then one `<stage>.evaluation.triggered` each (the built-in
evaluation sequence) with the example project's shipyard and SLI queries and one SLO for the whole
project with an absolute p95 criterion. The measured p95 must be plausible for each release, the fast
one must pass and the slow one must fail, naming the violated target and saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import StartWorker
from tests.integration.prometheus_fixtures import (  # noqa: F401
    DemoProcess,
    DemoServices,
    LocalPrometheus,
    demo_services,
    local_prometheus,
)
from tests.support.kafka import EventCollector, publish_files
from tidegate.connectors.prometheus.connector import URL_ENV, PrometheusSLIConnector
from tidegate.connectors.runtime.runner import ConnectorHost
from tidegate.schemas.events import KeptnEvent, format_time, sequence_type
from tidegate.streams.kafka import AsyncEventPublisher
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sockshop"
SERVICE = "carts"
# The same SLO for every stage: p95 under half a second, no errors (key SLI), throughput reported.
SLO = """
spec_version: "1.0"
comparison: {compare_with: single_result, include_result_with_score: pass, aggregate_function: avg}
objectives:
  - sli: response_time_p95
    displayName: Response time P95 (s)
    pass: [{criteria: ["<0.5"]}]
  - sli: error_rate
    displayName: Error rate
    key_sli: true
    pass: [{criteria: ["<=0.01"]}]
  - sli: throughput
    displayName: Throughput (requests/s)
total_score: {pass: "90%", warning: "75%"}
"""
FAST_REQUESTS = 40
SLOW_REQUESTS = 10
WAIT = 120.0  # a bound for a broken run, not an expectation: a healthy run needs a fraction of it
FINISHED = "sh.keptn.event.evaluation.finished"


def equals(expected: float) -> Callable[[float], bool]:
    return lambda value: value == expected


def count_query(job: str) -> str:
    return f'sum(http_request_duration_seconds_count{{job="{job}",handler="/carts"}})'


async def load(demo: DemoProcess, requests: int, concurrency: int) -> None:
    """`requests` GET /carts, `concurrency` at a time; every one must succeed."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30) as http:

        async def one() -> int:
            async with gate:
                return (await http.get(f"{demo.url}/carts")).status_code

        codes = await asyncio.gather(*(one() for _ in range(requests)))
    assert set(codes) == {200}, codes


@contextlib.asynccontextmanager
async def sli_connector(settings: Settings, prometheus_url: str) -> AsyncIterator[ConnectorHost]:
    """The Prometheus SLI connector in this event loop, as `tidegate connector prometheus` runs it."""
    host = ConnectorHost([PrometheusSLIConnector({URL_ENV: prometheus_url})], settings)
    running = asyncio.create_task(host.run())
    try:
        ready = asyncio.create_task(host.wait_ready(60))
        done, _ = await asyncio.wait([ready, running], return_when=asyncio.FIRST_COMPLETED)
        if running in done:
            running.result()
            raise AssertionError("the Prometheus SLI connector stopped before it was ready")
        ready.result()
        yield host
    finally:
        host.stop()
        await asyncio.wait_for(running, 60)


def evaluation_trigger(project: str, stage: str, start: datetime) -> KeptnEvent:
    return KeptnEvent(
        type=sequence_type(stage, "evaluation", "triggered"),
        source="ci",
        shkeptncontext=str(uuid.uuid4()),
        data={"project": project, "stage": stage, "service": SERVICE,
              "evaluation": {"start": format_time(start), "timeframe": "1m"}},
    )


def one_of(events: list[KeptnEvent], event_type: str, context: str) -> KeptnEvent:
    found = [e for e in events if e.type == event_type and e.shkeptncontext == context]
    assert len(found) == 1, f"expected one {event_type} in context {context}, got {len(found)}"
    return found[0]


def indicator(finished: KeptnEvent, metric: str) -> dict[str, Any]:
    results: list[dict[str, Any]] = finished.data["evaluation"]["indicatorResults"]
    return next(r for r in results if r["value"]["metric"] == metric)


async def test_the_fast_release_passes_and_the_slow_one_fails_the_same_slo(
    tidegate_settings: Settings,
    faust_worker: StartWorker,
    demo_services: DemoServices,  # noqa: F811
    local_prometheus: LocalPrometheus,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A project of its own: the session's Prometheus may hold other tests' series for sockshop's jobs.
    project = f"sockshop-{uuid.uuid4().hex[:6]}"
    publish_files(tidegate_settings, project, {
        "shipyard.yaml": (EXAMPLE / "shipyard.yaml").read_text(),
        "prometheus/sli.yaml": (EXAMPLE / "prometheus" / "sli.yaml").read_text(),
        "slo.yaml": SLO,
    })
    monkeypatch.setenv("TIDEGATE_AGENTS", "sequencer,evaluator")
    worker = faust_worker("tidegate.agents.main:app", tidegate_settings)  # boots while the load runs

    fast, slow = demo_services.start("0.11.1"), demo_services.start("0.11.2")
    jobs = {"dev": f"{SERVICE}-{project}-dev", "staging": f"{SERVICE}-{project}-staging"}
    await asyncio.to_thread(local_prometheus.scrape, {jobs["dev"]: [fast.address], jobs["staging"]: [slow.address]})
    for job in jobs.values():
        # A zero sample before the load, so rate() over the window sees all of it.
        await asyncio.to_thread(local_prometheus.wait_for, count_query(job), equals(0), f"a first scrape of {job}")
    await asyncio.gather(load(fast, FAST_REQUESTS, 1), load(slow, SLOW_REQUESTS, SLOW_REQUESTS))
    for job, requests in ((jobs["dev"], FAST_REQUESTS), (jobs["staging"], SLOW_REQUESTS)):
        await asyncio.to_thread(local_prometheus.wait_for, count_query(job), equals(requests),
                                f"{requests} requests scraped from {job}")
    # A one-minute window (Keptn's minimum) that ends now, after every request was scraped.
    start = datetime.now(UTC) - timedelta(minutes=1)
    triggers = {stage: evaluation_trigger(project, stage, start) for stage in jobs}

    topics = TopicRegistry.from_settings(tidegate_settings)
    async with EventCollector(tidegate_settings, topics.events) as events, \
            sli_connector(tidegate_settings, local_prometheus.url):
        async with AsyncEventPublisher(tidegate_settings) as publisher:
            for trigger in triggers.values():
                await publisher.publish(topics.events, trigger)

        def both_sequences_finished(seen: list[KeptnEvent]) -> bool:
            worker.assert_running()
            done = {(e.type, e.shkeptncontext) for e in seen}
            return all((sequence_type(stage, "evaluation", "finished"), t.shkeptncontext) in done
                       for stage, t in triggers.items())

        await events.wait_for(both_sequences_finished, WAIT, "dev.evaluation.finished and staging.evaluation.finished")

    seen = events.events
    verdicts = {stage: one_of(seen, FINISHED, t.shkeptncontext or "") for stage, t in triggers.items()}
    for stage, trigger in triggers.items():
        context = trigger.shkeptncontext or ""
        # The SLIs came from the Prometheus connector, asked for the SLO's indicators over the window.
        answer = one_of(seen, "sh.keptn.event.get-sli.finished", context)
        assert answer.source == "prometheus"
        assert (answer.data["status"], answer.data["result"]) == ("succeeded", "pass"), answer.data["message"]
        assert [v["metric"] for v in answer.data["get-sli"]["indicatorValues"]] == [
            "response_time_p95", "error_rate", "throughput"]
        assert answer.data["get-sli"]["start"] == format_time(start)
        assert answer.data["get-sli"]["end"] == format_time(start + timedelta(minutes=1))
        verdict = verdicts[stage]
        assert verdict.source == "tidegate-evaluator"
        assert verdict.data["status"] == "succeeded"
        assert indicator(verdict, "error_rate")["value"]["value"] == 0
        assert indicator(verdict, "error_rate")["status"] == "pass"
        assert indicator(verdict, "throughput")["value"]["value"] > 0
        assert indicator(verdict, "throughput")["status"] == "info"
        # The sequencer closed the built-in evaluation sequence with the evaluation's result.
        sequence = one_of(seen, sequence_type(stage, "evaluation", "finished"), context)
        assert sequence.data["result"] == verdict.data["result"]

    fast_p95 = indicator(verdicts["dev"], "response_time_p95")
    slow_p95 = indicator(verdicts["staging"], "response_time_p95")
    # Plausible measurements: the histogram puts ~10 ms requests well under a quarter second and
    # ~600 ms ones in the 0.5-0.75 s bucket; the slow release is many times slower either way.
    assert 0 < fast_p95["value"]["value"] < 0.25, fast_p95
    assert 0.5 <= slow_p95["value"]["value"] <= 1.0, slow_p95
    assert slow_p95["value"]["value"] > 5 * fast_p95["value"]["value"]

    assert verdicts["dev"].data["result"] == "pass", verdicts["dev"].data["message"]
    assert fast_p95["status"] == "pass"
    assert fast_p95["passTargets"] == [{"criteria": "<0.5", "targetValue": 0.5, "violated": False}]

    failed = verdicts["staging"]
    assert failed.data["result"] == "fail"
    assert failed.data["evaluation"]["score"] == 50  # error rate held (1 of 2), p95 did not
    assert slow_p95["status"] == "fail"
    assert slow_p95["passTargets"] == [{"criteria": "<0.5", "targetValue": 0.5, "violated": True}]
    assert failed.data["message"] == "Evaluation failed since the calculated score of 50 is below the warning value of 75"
    why = failed.data["evaluation"]["explanation"][-1]
    assert why.startswith("Why:") and "Failed: Response time P95 (s)" in why
