"""Fixtures shared by every test.

How tests get Kafka
-------------------
- `kafka_bootstrap` (session): the value of `TIDEGATE_KAFKA_BOOTSTRAP` if it is set (a broker you run
  yourself); otherwise the local broker of `deploy/local/kafka.py` on `TIDEGATE_KAFKA_PORT` (19092),
  started on first use (a JDK 17+ and Maven are needed; the jars are cached in `$TIDEGATE_HOME`).
  At the end of the session it is stopped, unless it was running before the session started (e.g.
  `make kafka-up`) or another test session still uses it. Only tests that ask for Kafka, directly or
  through the fixtures below, start it: unit tests never do. A missing Java fails loudly; nothing
  is skipped.
- `tidegate_settings`: `Settings` for one test: a unique topic prefix `t<hex>.` (so tests never see
  each other's records, consumer groups or changelogs), 4 partitions, the `memory://` store, a tmp
  data dir and the web server off. Tidegate's standard topics are created under the prefix before
  the test, and every topic under it is deleted afterwards.
- `kafka_reader`: reads records from a topic from the beginning, waiting a bounded time.
- `faust_worker`: starts `faust -A <module:app> worker` in a subprocess with the test's settings in
  its environment, and stops it after the test.

How tests get Kubernetes
------------------------
- `kube_cluster` (session): the real control plane of `deploy/local/kubernetes.py` (etcd, API server,
  controller-manager, scheduler and kwok on 127.0.0.1, `TIDEGATE_KUBERNETES_PORT`, default 16443),
  started on first use and stopped at the end of the session unless it ran before or another session
  holds a lease on it. Without the prebuilt binaries in ../shared/tools/kubernetes the tests that ask
  for it skip, saying why. `kube_cluster.namespace()` makes a fresh namespace, deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import AdminClient

from tidegate.streams.app import worker_command
from tidegate.streams.codec import KafkaRecord
from tidegate.streams.kafka import delete_topics, provision_topics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_PARTITIONS = 4
READ_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a running broker for the whole session (see the module docstring)."""
    external = os.environ.get("TIDEGATE_KAFKA_BOOTSTRAP")
    if external:
        admin = AdminClient({"bootstrap.servers": external, "log_level": 0})
        try:
            admin.list_topics(timeout=15)
        except Exception as error:
            pytest.fail(f"TIDEGATE_KAFKA_BOOTSTRAP={external} does not answer ({error}); start it or unset the variable")
        yield external
        return

    from deploy.local.kafka import KafkaLaunchError, kafka_session

    if shutil.which("java") is None:
        pytest.fail(
            "Kafka tests need Java (JDK 17+) on PATH to run the local broker "
            "(Debian/Ubuntu: apt-get install openjdk-17-jdk-headless maven), or set "
            "TIDEGATE_KAFKA_BOOTSTRAP to a running broker"
        )
    try:
        with kafka_session() as bootstrap:
            yield bootstrap
    except KafkaLaunchError as error:
        pytest.fail(f"the local Kafka broker failed: {error}")


@pytest.fixture
def tidegate_settings(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings with a unique topic prefix whose standard topics exist; all of them deleted afterwards."""
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        partitions=TEST_PARTITIONS,
        store="memory://",
        data_dir=tmp_path / "faust",
        web_enabled=False,
    )
    report = provision_topics(settings, TopicRegistry.from_settings(settings).specs())
    assert report.ok, report.problems
    yield settings
    delete_topics(settings, settings.topic_prefix)


@dataclass
class KubeCluster:
    """The session's local Kubernetes control plane: its admin kubeconfig and a kubectl."""

    kubeconfig: Path
    namespaces: list[str] = field(default_factory=list)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        from deploy.local.kubernetes import kubectl, layout_for

        done = kubectl(layout_for(), *args, input=input)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def namespace(self, prefix: str = "t") -> str:
        """A fresh namespace name (not created: Helm's --create-namespace or the test does that)."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.namespaces.append(name)
        return name

    def cleanup(self) -> None:
        for name in self.namespaces:
            self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
        self.namespaces.clear()


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """The local Kubernetes control plane for the whole session (see the module docstring)."""
    from deploy.local.kubernetes import KubernetesLaunchError, binaries_available, kubernetes_session

    reason = binaries_available()
    if reason:
        pytest.skip(reason)
    try:
        with kubernetes_session() as kubeconfig:
            cluster = KubeCluster(Path(kubeconfig))
            try:
                yield cluster
            finally:
                cluster.cleanup()
    except KubernetesLaunchError as error:
        pytest.fail(f"the local Kubernetes control plane failed: {error}")


ReadRecords = Callable[..., list[KafkaRecord]]


def _header(item: Any) -> tuple[str, bytes]:
    name, raw = item  # confluent-kafka: (str, bytes | None)
    return str(name), raw.encode() if isinstance(raw, str) else bytes(raw or b"")


@pytest.fixture
def kafka_reader(kafka_bootstrap: str) -> ReadRecords:
    """`read(topic, count, timeout=60, check=None) -> [KafkaRecord]`: the first `count` records of
    `topic` (all partitions, from the beginning), failing with a clear message if they do not arrive
    in time. `check` is called while waiting and may raise to stop early (e.g. `worker.assert_running`)."""

    def read(
        topic: str, count: int, timeout: float = READ_TIMEOUT, check: Callable[[], None] | None = None
    ) -> list[KafkaRecord]:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": f"test-reader-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        records: list[KafkaRecord] = []
        try:
            consumer.subscribe([topic])
            deadline = time.monotonic() + timeout
            while len(records) < count and time.monotonic() < deadline:
                if check is not None:
                    check()
                message = consumer.poll(0.5)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"reading {topic} failed: {error}")
                key, value = message.key(), message.value()
                records.append(
                    KafkaRecord(
                        key=key.encode() if isinstance(key, str) else key,
                        value=value.encode() if isinstance(value, str) else value,
                        headers=tuple(_header(item) for item in message.headers() or []),
                    )
                )
        finally:
            consumer.close()
        if len(records) < count:
            raise AssertionError(f"expected {count} record(s) on {topic} within {timeout:.0f} s, got {len(records)}")
        return records

    return read


@dataclass
class FaustWorker:
    """A `faust worker` subprocess; its output goes to `log_file`."""

    process: subprocess.Popen[bytes]
    log_file: Path
    app_spec: str = ""
    _stopped: bool = field(default=False, repr=False)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def assert_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"faust worker {self.app_spec} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 30.0) -> int:
        if self._stopped:
            return self.process.returncode
        self._stopped = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


StartWorker = Callable[[str, Settings], FaustWorker]


@pytest.fixture
def faust_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """`start(app_spec, settings) -> FaustWorker`: run `faust -A app_spec worker` with `settings`
    in its environment (`app_spec` is `module:attribute`, e.g. `agents.sequencer.shell:app`)."""
    workers: list[FaustWorker] = []

    def start(app_spec: str, settings: Settings) -> FaustWorker:
        log_file = tmp_path / f"faust-worker-{len(workers)}.log"
        env = {**os.environ, **settings.as_env(), "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
        with open(log_file, "wb") as log:
            process = subprocess.Popen(
                worker_command(app_spec, settings),
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = FaustWorker(process, log_file, app_spec)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests against real servers (Kafka, Prometheus, Alertmanager, PostgreSQL, a browser) get one rerun.

    On a loaded 2-core machine a real server can miss a bounded wait now and then; a second failure
    still fails the suite, and every rerun is listed in the summary (`RERUN`) so flakiness stays
    visible. Unit tests of the pure cores never rerun.
    """
    for item in items:
        if item.get_closest_marker("integration") is not None or item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))
