"""Fixtures for tests that need a real Prometheus, Alertmanager or the demo carts service.

Import the fixtures you use into the test module (or list this module in the root conftest's
`pytest_plugins`):

    from tests.integration.prometheus_fixtures import demo_services, local_prometheus  # noqa: F401

- `demo_services` (session): `demo_services.start("0.11.2")` runs the demo service in its own process on
  a free loopback port and returns a `DemoProcess` (url, `address` for a scrape target); every process
  is stopped at the end of the session.
- `local_prometheus` (session): one real Prometheus (Debian package, installed on first use) on a free
  port, state in a session tmp dir, stopped at the end. `local_prometheus.scrape({job: [address]})`
  adds scrape jobs and reloads it; `local_prometheus.wait_for(query, check, what)` polls a query until
  its value passes `check` (bounded, with a message saying what was awaited and what was last seen).
- `local_alertmanager` (session): a real Alertmanager on a free port with the silent config; its URL.

All of them bind 127.0.0.1 only and never touch the default ports (19190/19195) a demo may be using.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local._process import free_port
from deploy.local.alertmanager import ensure_alertmanager, stop_alertmanager
from deploy.local.prometheus import ensure_prometheus, stop_prometheus

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60.0


@dataclass
class DemoProcess:
    version: str
    url: str
    process: subprocess.Popen[str]

    @property
    def address(self) -> str:
        """`host:port`, as a Prometheus scrape target."""
        return self.url.removeprefix("http://")


@dataclass
class DemoServices:
    log_dir: Path
    processes: list[DemoProcess] = field(default_factory=list)

    def start(self, version: str, *extra_args: str) -> DemoProcess:
        # stderr goes to a file, not a pipe: nobody reads it while the service runs, and a full pipe would block it.
        log = self.log_dir / f"demo-{len(self.processes)}-{version}.log"
        with log.open("wb") as errors:
            process = subprocess.Popen(
                [sys.executable, "-m", "examples.sockshop.service.server", "--port", "0", "--version", version, *extra_args],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        assert process.stdout is not None
        # The service prints where it serves once its socket is bound: that line is the readiness signal.
        line = process.stdout.readline()
        if " serving on " not in line:
            process.kill()
            process.wait(timeout=10)
            raise RuntimeError(f"demo service {version} did not start: {line}{log.read_text(errors='replace')}")
        demo = DemoProcess(version, line.split(" serving on ", 1)[1].split(",")[0].strip(), process)
        self.processes.append(demo)
        return demo

    def stop_all(self) -> None:
        for demo in self.processes:
            demo.process.terminate()
        for demo in self.processes:
            try:
                demo.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                demo.process.kill()
                demo.process.wait()
        self.processes.clear()


@dataclass
class LocalPrometheus:
    url: str
    port: int
    home: Path
    jobs: dict[str, list[str]] = field(default_factory=dict)

    def scrape(self, targets: Mapping[str, Sequence[str]]) -> None:
        """Add scrape jobs (keeping the ones added before) and reload."""
        for job, addresses in targets.items():
            self.jobs[job] = list(addresses)
        ensure_prometheus(self.port, self.jobs, home=self.home)

    def query(self, query: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=10).json()
        assert answer["status"] == "success", f"query {query!r} failed: {answer}"
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def wait_for(self, query: str, check: Callable[[float], bool], what: str, timeout: float = WAIT_SECONDS) -> float:
        """Poll `query` (one series) until `check(value)` holds; fail saying what was awaited and what was seen."""
        deadline = time.monotonic() + timeout
        seen: object = "no series"
        while time.monotonic() < deadline:
            result = self.query(query)
            if len(result) == 1:
                value = float(result[0]["value"][1])
                if check(value):
                    return value
                seen = value
            elif result:
                seen = f"{len(result)} series"
            time.sleep(0.2)
        raise AssertionError(f"waited {timeout:.0f}s for {what} ({query}); last seen: {seen}")


@pytest.fixture(scope="session")
def demo_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServices]:
    services = DemoServices(tmp_path_factory.mktemp("demo-services"))
    try:
        yield services
    finally:
        services.stop_all()


@pytest.fixture(scope="session")
def local_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    home = tmp_path_factory.mktemp("prometheus-home")
    port = free_port()
    try:  # stopped even when its start fails half-way
        yield LocalPrometheus(ensure_prometheus(port, {}, home=home), port, home)
    finally:
        stop_prometheus(port, home)


@pytest.fixture(scope="session")
def local_alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("alertmanager-home")
    port = free_port()
    try:  # stopped even when its start fails half-way
        yield ensure_alertmanager(port, home=home)
    finally:
        stop_alertmanager(port, home)
