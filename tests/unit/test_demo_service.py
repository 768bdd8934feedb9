"""The demo carts service: endpoints, metrics text, versions, queueing on /orders, replicas on one port."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from examples.sockshop.service.behaviour import Behaviour, behaviour_for
from examples.sockshop.service.server import DemoService

REPO = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a metrics text, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def service() -> Iterator[DemoService]:
    running = DemoService(behaviour_for("0.11.1", latency_ms=1), seed=1).start()
    yield running
    running.stop()


def test_endpoints_answer(service: DemoService) -> None:
    with httpx.Client(base_url=service.url) as http:
        assert http.get("/").json() == {"service": "carts", "version": "0.11.1"}
        assert http.get("/carts").status_code == 200
        assert http.post("/carts").status_code == 200
        assert http.get("/orders").json()["order"] == "accepted"
        assert http.get("/health").text == "ok\n"
        assert http.get("/nope").status_code == 404


def test_metrics_count_requests_by_handler_and_status(service: DemoService) -> None:
    with httpx.Client(base_url=service.url) as http:
        before = samples(http.get("/metrics").text)
        for _ in range(3):
            http.get("/carts")
        http.get("/health")
        after = samples(http.get("/metrics").text)

    carts_ok = ("http_requests_total", (("handler", "/carts"), ("status", "200")))
    carts_count = ("http_request_duration_seconds_count", (("handler", "/carts"),))
    # Series exist with zeros before any traffic, so rate() sees the first burst.
    assert before[carts_ok] == 0
    assert before[("http_request_duration_seconds_count", (("handler", "/orders"),))] == 0
    assert after[carts_ok] == 3
    assert after[carts_count] == 3
    assert after[("http_request_duration_seconds_bucket", (("handler", "/carts"), ("le", "+Inf")))] == 3
    assert after[("http_requests_in_flight", (("handler", "/carts"),))] == 0
    assert after[("sockshop_build_info", (("service", "carts"), ("version", "0.11.1")))] == 1
    # /health and /metrics are not business traffic.
    assert not any(dict(labels).get("handler") in ("/health", "/metrics") for _, labels in after)


def test_the_slow_release_is_slower_than_the_fast_one() -> None:
    assert behaviour_for("0.11.2").carts_seconds >= 0.6
    assert behaviour_for("0.11.1").carts_seconds <= 0.01
    assert behaviour_for("0.11.2", latency_ms=5).carts_seconds == 0.005


def test_observed_latency_is_at_least_the_configured_one() -> None:
    service = DemoService(behaviour_for("0.11.1", latency_ms=100), seed=1).start()
    try:
        with httpx.Client(base_url=service.url) as http:
            http.get("/carts")
            after = samples(http.get("/metrics").text)
    finally:
        service.stop()
    # 100 ms minus the 10 % jitter is the least a request can take.
    assert after[("http_request_duration_seconds_sum", (("handler", "/carts"),))] >= 0.09


def test_failure_rate_answers_500_and_counts_it() -> None:
    service = DemoService(behaviour_for("0.11.1", latency_ms=0, failure_rate=1.0)).start()
    try:
        with httpx.Client(base_url=service.url) as http:
            assert http.get("/carts").status_code == 500
            after = samples(http.get("/metrics").text)
    finally:
        service.stop()
    assert after[("http_requests_total", (("handler", "/carts"), ("status", "500")))] == 1


def test_one_order_worker_serves_concurrent_orders_one_after_another() -> None:
    service = DemoService(Behaviour(order_workers=1, order_seconds=0.05)).start()
    try:
        with httpx.Client(base_url=service.url) as http:
            started = time.monotonic()
            threads = [threading.Thread(target=http.get, args=("/orders",)) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            after = samples(http.get("/metrics").text)
    finally:
        service.stop()
    assert after[("http_request_duration_seconds_count", (("handler", "/orders"),))] == 4
    # Four orders through one worker take at least four service times, whatever the arrival order.
    assert elapsed >= 4 * 0.05


def test_replicas_share_one_port_and_keep_their_own_metrics_ports() -> None:
    first = DemoService(behaviour_for("0.11.1", latency_ms=0), metrics_port=0).start()
    second = DemoService(behaviour_for("0.11.1", latency_ms=0), port=first.port, metrics_port=0).start()
    try:
        counted = 0.0
        with httpx.Client() as http:
            for _ in range(20):
                assert http.get(f"{first.url}/carts").status_code == 200
            for replica in (first, second):
                text = http.get(f"http://127.0.0.1:{replica.metrics_port}/metrics").text
                counted += samples(text)[("http_requests_total", (("handler", "/carts"), ("status", "200")))]
                # The metrics port serves metrics only.
                assert http.get(f"http://127.0.0.1:{replica.metrics_port}/carts").status_code == 404
    finally:
        second.stop()
        first.stop()
    assert counted == 20


def test_invalid_behaviour_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        behaviour_for("0.11.1", failure_rate=2)
    with pytest.raises(ValueError, match="at least 1"):
        behaviour_for("0.11.1", order_workers=0)


def test_runs_as_a_module_and_says_where_it_serves() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.sockshop.service.server", "--port", "0", "--version", "0.11.2"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("carts 0.11.2 serving on http://127.0.0.1:"), process.stderr.read() if process.stderr else ""
        url = line.split(" serving on ", 1)[1].strip()
        assert httpx.get(f"{url}/").json()["version"] == "0.11.2"
    finally:
        process.terminate()
        process.wait(timeout=10)
