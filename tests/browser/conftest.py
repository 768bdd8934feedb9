"""The Bridge in a real browser, against a real gateway and worker on the real broker.

What runs (once per module, torn down at the end):
- Kafka (the session's broker from tests/conftest.py) with a fresh topic prefix;
- `tidegate gateway` in a subprocess on a free 127.0.0.1 port, with an API token;
- the worker (`faust -A tidegate.agents.main:app worker`: sequencer, approver, evaluator, remediator);
- per test (and per attempt of a rerun test), a fresh copy of the Sock Shop example project
  (examples/sockshop, `project` fixture: `sockshop-<hex>`) created through the gateway's API, so
  no test sees another's runs, or a failed attempt's;
- scripted executors playing helm, the load tests, Prometheus (get-sli) and the action provider; the
  label `scenario` of a trigger steers them (`slow`: the SLIs break the quality gate; `hang`: the
  deployment starts and never finishes);
- headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core through `driver.mjs`.

Nothing is installed here: `bash tests/browser/setup.sh` installs Chromium and playwright-core when
missing (the Makefile runs it before the tests). Screenshots go to test-artifacts/bridge/.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.browser import Browser
from tests.support.gateway import wait_gateway_ready
from tests.support.responder import TaskResponder
from tidegate.bridge.records import mapping
from tidegate.schemas.events import KeptnEvent, Status, format_time, task_type
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key
from tidegate.streams.app import worker_command
from tidegate.streams.kafka import delete_topics, provision_topics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "sockshop"
ARTIFACTS = REPO / "test-artifacts" / "bridge"
NODE_DIR = Path(os.environ.get("TIDEGATE_NODE_DIR") or REPO / ".cache" / "node")
CHROMIUM = os.environ.get("TIDEGATE_CHROMIUM") or "/usr/bin/chromium"
TOKEN = "bridge-browser-test-token"
SERVICE = "carts"
STAGES = ("dev", "staging", "production")
START_TIMEOUT = 90.0
# Waiting for the agents: as long as they make progress (new records on `events`), up to a cap.
STALL_TIMEOUT = 120.0  # seconds without a new event while the page still does not show what is awaited
FLOW_CAP = 900.0
WORKER_READY = "[^Worker]: Ready"  # Faust's line once recovery is done and the agents consume

# The SLI values the scripted Prometheus answers (the example SLO: p95 < 0.5 s and at most 10 % over
# the baseline, error rate <= 1 % as key SLI, throughput at most 20 % under the baseline).
GOOD_SLIS = {"response_time_p95": 0.31, "error_rate": 0.002, "throughput": 120.0, "response_time_p50": 0.12}
SLOW_SLIS = {"response_time_p95": 1.2, "error_rate": 0.08, "throughput": 55.0, "response_time_p50": 0.6}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real browser (headless Chromium via playwright-core)")


def _prerequisites() -> list[str]:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"Chromium at {CHROMIUM}")
    if shutil.which("node") is None:
        missing.append("node")
    if not (NODE_DIR / "node_modules" / "playwright-core" / "package.json").exists():
        missing.append(f"playwright-core in {NODE_DIR}")
    return missing


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


# --------------------------------------------------------------------- scripted executors


class SockShopExecutors(TaskResponder):
    """Answers every task like the Sock Shop's integrations would; approvals and evaluations are left
    to the worker's approver and evaluator, which is what the Bridge shows."""

    async def _answer(self, event: KeptnEvent, task: str) -> None:
        labels = mapping(event.data.get("labels"))
        scenario = str(labels.get("scenario", ""))
        if task in ("evaluation", "get-action"):
            return  # the worker's evaluator and remediator answer these
        if task == "get-sli":
            await self._answer_sli(event, SLOW_SLIS if scenario == "slow" else GOOD_SLIS)
            return
        if task == "deployment" and scenario == "hang":
            await self._send(event, task, "started", {"status": Status.SUCCEEDED.value})
            return
        if task == "test":
            # Like the load-test connectors: the finished event says when the test ran, which is the
            # window lighthouse evaluates when the evaluation task gives none (reference §4.1).
            now = datetime.now(UTC)
            await self._send(event, task, "started", {"status": Status.SUCCEEDED.value})
            await self._send(event, task, "finished", {
                "status": Status.SUCCEEDED.value, "result": "pass", "message": "load test done",
                "test": {"start": format_time(now - timedelta(minutes=2)), "end": format_time(now)},
            })
            return
        await super()._answer(event, task)

    async def _answer_sli(self, event: KeptnEvent, values: dict[str, float]) -> None:
        request = mapping(event.data.get("get-sli"))
        indicators = request.get("indicators") or list(values)
        await self._send(event, "get-sli", "started", {"status": Status.SUCCEEDED.value})
        await self._send(event, "get-sli", "finished", {
            "status": Status.SUCCEEDED.value,
            "result": "pass",
            "message": "scripted Prometheus",
            "get-sli": {
                "sliProvider": request.get("sliProvider", "prometheus"),
                "start": request.get("start"),
                "end": request.get("end"),
                "indicatorValues": [
                    {"metric": name, "value": values[name], "success": True} for name in indicators if name in values
                ],
            },
        })

    async def _send(self, event: KeptnEvent, task: str, kind: str, extra: dict[str, Any]) -> None:
        common = {k: event.data.get(k) for k in ("project", "stage", "service", "labels") if event.data.get(k)}
        reply = KeptnEvent(
            id=derived_id(event.id, f"{self.source}:{kind}"),
            type=task_type(task, kind),
            source=self.source,
            shkeptncontext=event.shkeptncontext,
            triggeredid=event.id,
            gitcommitid=event.gitcommitid,
            data={**common, **extra},
        )
        await self._publisher.publish(self.registry.events, reply, key=Key.of_data(event.data))


class ExecutorThread:
    """Runs the executors' asyncio loop in a thread, so the (synchronous) browser tests can run beside it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="sockshop-executors", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self.ready.wait(START_TIMEOUT):
            raise AssertionError("the scripted executors did not start within the time limit")
        if self.error is not None:
            raise AssertionError(f"the scripted executors failed to start: {self.error}")

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported to the test through `error`
            self.error = error
            self.ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with SockShopExecutors(self.settings, source="sockshop-executors"):
            self.ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


# --------------------------------------------------------------------- the environment


@dataclass
class BridgeEnv:
    base_url: str
    token: str
    settings: Settings
    api: httpx.Client
    artifacts: Path
    processes: dict[str, tuple[subprocess.Popen[bytes], Path]]
    """The gateway and the worker: (process, log)."""

    def url(self, path: str) -> str:
        return self.base_url + path

    def assert_running(self) -> None:
        for name, (process, log) in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"the {name} exited with {process.returncode}:\n{log.read_text()[-3000:]}")

    def activity(self) -> int:
        """How many records the `events` topic holds: grows while the agents and executors work."""
        from confluent_kafka import Consumer, TopicPartition

        topic = TopicRegistry.from_settings(self.settings).events
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": f"probe-{uuid.uuid4().hex}"})
        try:
            return sum(consumer.get_watermark_offsets(TopicPartition(topic, n), timeout=10)[1]
                       for n in range(self.settings.partitions))
        finally:
            consumer.close()

    def wait_while_busy(self, check: Callable[[int], bool], what: str) -> None:
        """Wait until `check(ms)` (a bounded browser wait of `ms` milliseconds) succeeds, as long as the
        gateway and worker live and the agents make progress: a busy machine only takes longer; a
        stuck run (no new event for STALL_TIMEOUT s) or a dead process fails."""
        began = last_change = time.monotonic()
        seen = -1
        while not check(10_000):
            self.assert_running()
            now, current = time.monotonic(), self.activity()
            if current != seen:
                seen, last_change = current, now
            if now - last_change > STALL_TIMEOUT:
                raise AssertionError(f"waiting for {what}: no new event for {STALL_TIMEOUT:.0f} s")
            if now - began > FLOW_CAP:
                raise AssertionError(f"waiting for {what}: still not there after {FLOW_CAP:.0f} s of activity")

    def send_event(self, body: dict[str, Any]) -> str:
        answer = self.api.post("/api/v1/event", json=body)
        assert answer.status_code == 200, answer.text
        context: str = answer.json()["keptnContext"]
        return context

    def trigger_delivery(self, project: str, image: str, labels: dict[str, str] | None = None,
                         stage: str = "dev") -> str:
        data: dict[str, Any] = {"project": project, "stage": stage, "service": SERVICE,
                                "configurationChange": {"values": {"image": image}}}
        if labels:
            data["labels"] = labels
        return self.send_event({"type": f"sh.keptn.event.{stage}.delivery.triggered", "source": "browser-test",
                                "data": data})


def dump_audit(settings: Settings, path: Path, timeout: float = 20.0) -> None:
    """Write every record of the `audit` topic (all events, tasks and agents' transitions) as one line each.

    A failed test's worker log says little about decisions (agents log them at debug); the audit trail
    says which event arrived, which answer went out and which agent transition happened, in order."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    from tidegate.streams.codec import DecodeError, decode

    topic = TopicRegistry.from_settings(settings).audit
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"dump-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    lines: list[str] = []
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in metadata.partitions])  # 0: from the start
        open_partitions = set(metadata.partitions)
        deadline = time.monotonic() + timeout
        while open_partitions and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    open_partitions.discard(message.partition())
                continue
            try:
                event = decode(message.value(), message.headers())
            except DecodeError as problem:
                lines.append(f"(undecodable record: {problem.reason})")
                continue
            data = event.data
            lines.append(" ".join(str(part) for part in (
                format_time(event.time) if event.time else "-", event.type, event.source,
                f"key={message.key()!r}", f"id={event.id}", f"triggeredid={event.triggeredid}",
                f"ctx={event.shkeptncontext}", f"status={data.get('status')}", f"result={data.get('result')}",
                f"message={str(data.get('message'))[:200]!r}",
            )))
    finally:
        consumer.close()
    lines.sort()  # by time (partitions interleave)
    path.write_text("\n".join(lines) + "\n")


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_worker_ready(worker: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until Faust says the worker is ready (group joined, tables recovered, agents consuming).

    Without it the first test's flow budget also pays for the worker's start, which on a busy
    machine takes a good part of it: the first test of a run then fails where the later ones pass."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise AssertionError(f"the worker exited with {worker.returncode}:\n{log.read_text()[-3000:]}")
        if WORKER_READY in log.read_text(errors="replace"):
            return
        time.sleep(0.25)  # the worker's readiness is only observable in its log
    raise AssertionError(f"the worker was not ready within {START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")


def _create_project(api: httpx.Client, project: str) -> None:
    shipyard = (EXAMPLE / "shipyard.yaml").read_bytes()
    answer = api.post("/api/controlPlane/v1/project", json={"name": project, "shipyard": _b64(shipyard)})
    assert answer.status_code == 201, answer.text
    answer = api.post(f"/api/controlPlane/v1/project/{project}/service", json={"serviceName": SERVICE})
    assert answer.status_code == 201, answer.text
    files = {"slo.yaml": EXAMPLE / "slo.yaml", "prometheus/sli.yaml": EXAMPLE / "prometheus" / "sli.yaml",
             "remediation.yaml": EXAMPLE / "remediation.yaml"}
    for stage in STAGES:
        resources = [{"resourceURI": uri, "resourceContent": _b64(path.read_bytes())} for uri, path in files.items()]
        answer = api.post(f"/api/resource-service/v1/project/{project}/stage/{stage}/service/{SERVICE}/resource",
                          json={"resources": resources})
        assert answer.status_code == 201, answer.text


@pytest.fixture(scope="module")
def bridge_env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeEnv]:
    missing = _prerequisites()
    if missing:
        pytest.fail(f"the browser tests need {', '.join(missing)}: run `bash tests/browser/setup.sh` (or make test)")
    tmp = tmp_path_factory.mktemp("bridge")
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"b{uuid.uuid4().hex[:10]}.",
        partitions=4,
        store="memory://",
        data_dir=tmp / "faust",
        web_enabled=False,
    )
    report = provision_topics(settings, TopicRegistry.from_settings(settings).specs())
    assert report.ok, report.problems
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # Pictures and audit dumps of an earlier run's failures would mislead.
    for stale in [*ARTIFACTS.glob("FAILED-*.png"), *ARTIFACTS.glob("FAILED-*.audit.log")]:
        stale.unlink()
    port = _free_port()
    env = {**os.environ, **settings.as_env(), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
           "TIDEGATE_HOME": str(tmp / "home"), "TIDEGATE_API_TOKEN": TOKEN}
    gateway_log, worker_log = ARTIFACTS / "gateway.log", ARTIFACTS / "worker.log"
    processes: list[subprocess.Popen[bytes]] = []
    executors = ExecutorThread(settings)
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"x-token": TOKEN}, timeout=30)
    try:
        with open(gateway_log, "wb") as log:
            processes.append(subprocess.Popen(
                [sys.executable, "-c", "from tidegate.cli.main import main; main()", "gateway", "--port", str(port),
                 "--history-url", f"sqlite:///{tmp / 'history.db'}", "--log-level", "warning"],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            ))
        with open(worker_log, "wb") as log:
            processes.append(subprocess.Popen(
                worker_command("tidegate.agents.main:app", settings), cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
            ))
        wait_gateway_ready(str(api.base_url), processes[0], gateway_log)
        _wait_worker_ready(processes[1], worker_log)
        executors.start()
        yield BridgeEnv(f"http://127.0.0.1:{port}", TOKEN, settings, api, ARTIFACTS,
                        {"gateway": (processes[0], gateway_log), "worker": (processes[1], worker_log)})
        worker = processes[1]
        assert worker.poll() is None, f"the worker exited during the tests:\n{worker_log.read_text()[-3000:]}"
    finally:
        executors.stop()
        api.close()
        for process in reversed(processes):
            _stop_process(process)
        delete_topics(settings, settings.topic_prefix)


@pytest.fixture
def project(bridge_env: BridgeEnv) -> str:
    """A fresh Sock Shop project for one test attempt (a rerun gets another)."""
    name = f"sockshop-{uuid.uuid4().hex[:8]}"
    _create_project(bridge_env.api, name)
    return name


@pytest.fixture(scope="module")
def browser(bridge_env: BridgeEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with Browser.start(NODE_DIR, CHROMIUM, profile, ARTIFACTS / "driver.log") as started:
        yield started


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.stash[_FAILED] = report.failed


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def screenshot_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failed browser test leaves a picture of the page it was on, next to the view screenshots."""
    yield
    if request.node.stash.get(_FAILED, False) and "browser" in request.fixturenames:
        found: Browser = request.getfixturevalue("browser")
        with contextlib.suppress(AssertionError):
            found.screenshot(ARTIFACTS / f"FAILED-{request.node.name}.png")
        env: BridgeEnv = request.getfixturevalue("bridge_env")
        with contextlib.suppress(Exception):  # a diagnostic must not hide the failure itself
            dump_audit(env.settings, ARTIFACTS / f"FAILED-{request.node.name}.audit.log")


def log_in(browser: Browser, env: BridgeEnv) -> None:
    """Log in through the form if the Bridge asks for it (the session cookie then lasts for the module)."""
    browser.goto(env.url("/bridge/dashboard"))
    if "/bridge/login" in browser.url():
        browser.fill("css=#token", env.token)
        browser.click("role=button[name='Log in']")
        browser.wait_url(r"/bridge/dashboard")
