"""Real Apache Kafka brokers (KRaft) on 127.0.0.1, fetched from Maven Central. No Docker.

    python -m deploy.local.kafka up|down|status [--port N] [--brokers N]

Needs only a JDK (17+) and Maven. `up` fetches the broker jars once (the tiny `pom.xml` beside this
file pins the version) into `$TIDEGATE_HOME/kafka/<version>/libs`, writes KRaft properties, formats
the storage once, starts the broker detached (log in `$TIDEGATE_HOME/kafka/run-<port>/kafka.log`)
and waits until an admin call succeeds. A second `up` finds it running; a pid file left by a broker
that died is noticed and cleaned. `down` sends SIGTERM, waits, then SIGKILL.

`--brokers 3` starts a cluster instead: member i listens on port + 2i (its controller on port + 2i + 1),
each with its own directories; every member is broker and controller (a quorum of 3 voters), topics
get 3 replicas and min.insync.replicas 2 by default. `down` and `status` find the whole cluster from
its first port.

Starting waits while the broker lives and its log grows (after a kill -9 a broker may spend minutes
recovering its logs), with a progress line every 15 s; it gives up after
`TIDEGATE_KAFKA_START_TIMEOUT` seconds without a new log line, or 30 minutes in all, and at once if
the broker exits.

Environment: `TIDEGATE_HOME` (default `<repo>/.cache`), `TIDEGATE_KAFKA_PORT` (default 19092, below
Linux's ephemeral range 32768-60999 so that no client's own source port can take it while the broker
is down; the controller listens on port + 1), `TIDEGATE_KAFKA_START_TIMEOUT` (seconds without
progress, default 120).

Python API: `ensure_kafka(port, brokers=1) -> bootstrap`, `stop_kafka(port)`, `kafka_status(port)`;
`kafka_session(port)`, a context manager for test sessions: it starts the broker if needed and stops
it afterwards only if it started it and no other live session still uses it; `kafka_cluster(brokers,
home)`, a context manager for tests that need a cluster of their own (fresh ports, stopped at the
end, failed or not) and kill and restart its members.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import logging
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from deploy.local import _process
from tidegate.streams.settings import DEFAULT_KAFKA_PORT

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
POM = HERE / "pom.xml"
PROPERTIES_TEMPLATE = HERE / "server.properties.template"
LOG4J_PROPERTIES = HERE / "log4j.properties"

DEFAULT_PORT = DEFAULT_KAFKA_PORT
DEFAULT_START_TIMEOUT = 120.0  # seconds without progress in the broker's log
START_CAP = 1800.0  # seconds in all, however busy the log
PROGRESS_EVERY = 15.0
DEFAULT_STOP_TIMEOUT = 30.0
JVM_OPTIONS = ("-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true")
_POLL = 0.2

log = logging.getLogger("tidegate.kafka")


class KafkaLaunchError(RuntimeError):
    """The local broker could not be fetched, started or stopped; the message says what to do."""


class BrokerState(StrEnum):
    RUNNING = "running"  # started by this launcher, process alive
    EXTERNAL = "external"  # something else answers on the port (not started from this TIDEGATE_HOME)
    STALE = "stale"  # a pid file whose process is gone
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class KafkaLayout:
    """Where everything for one broker (a version on a port) lives; in a cluster, one member of it."""

    home: Path
    version: str
    port: int
    node_id: int = 1
    cluster: tuple[int, ...] = ()
    """The broker ports of every member of its cluster, in node-id order (empty: a node alone)."""

    @property
    def members(self) -> tuple[int, ...]:
        return self.cluster or (self.port,)

    @property
    def voters(self) -> str:
        return ",".join(f"{node}@127.0.0.1:{port + 1}" for node, port in enumerate(self.members, start=1))

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def libs(self) -> Path:
        return self.home / "kafka" / self.version / "libs"

    @property
    def data_dir(self) -> Path:
        return self.home / "kafka" / f"data-{self.port}"

    @property
    def run_dir(self) -> Path:
        return self.home / "kafka" / f"run-{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "kafka.log"

    @property
    def properties_file(self) -> Path:
        return self.run_dir / "server.properties"

    @property
    def lock_file(self) -> Path:
        return self.run_dir / "lock"

    @property
    def leases_dir(self) -> Path:
        return self.run_dir / "leases"

    @property
    def cluster_file(self) -> Path:
        # In the first member's run dir: the number of members, so `down` and `status` find them all.
        return self.home / "kafka" / f"run-{self.members[0]}" / "cluster"

    @property
    def session_owned_marker(self) -> Path:
        # Present while the broker was started by a test session (and may be stopped by it).
        return self.run_dir / "started-by-session"


@dataclass(frozen=True, slots=True)
class KafkaStatus:
    state: BrokerState
    bootstrap: str
    pid: int | None
    log_file: Path

    def describe(self) -> str:
        match self.state:
            case BrokerState.RUNNING:
                return f"Kafka is running on {self.bootstrap} (pid {self.pid}, log {self.log_file})"
            case BrokerState.EXTERNAL:
                return f"a broker not started from this TIDEGATE_HOME answers on {self.bootstrap}"
            case BrokerState.STALE:
                return f"Kafka is not running (stale pid file for pid {self.pid}); `up` cleans it"
            case _:
                return f"Kafka is not running on {self.bootstrap}"


# --- configuration ---------------------------------------------------------------------------------


def tidegate_home() -> Path:
    return _process.tidegate_home().resolve()


def default_port() -> int:
    raw = os.environ.get("TIDEGATE_KAFKA_PORT", str(DEFAULT_PORT))
    try:
        return int(raw)
    except ValueError:
        raise KafkaLaunchError(f"TIDEGATE_KAFKA_PORT={raw!r} is not a port number; set it to e.g. {DEFAULT_PORT}") from None


def start_timeout() -> float:
    raw = os.environ.get("TIDEGATE_KAFKA_START_TIMEOUT", str(DEFAULT_START_TIMEOUT))
    try:
        return float(raw)
    except ValueError:
        raise KafkaLaunchError(f"TIDEGATE_KAFKA_START_TIMEOUT={raw!r} is not a number of seconds") from None


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version pinned in the pom (its `kafka.version` property)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        raise KafkaLaunchError(f"{pom} has no <kafka.version> property")
    return (node.text or "").strip()


def layout_for(port: int | None = None) -> KafkaLayout:
    return KafkaLayout(home=tidegate_home(), version=kafka_version(), port=port or default_port())


def cluster_layouts(port: int | None = None, brokers: int | None = None, home: Path | None = None) -> list[KafkaLayout]:
    """The members of the cluster whose first broker listens on `port`: member i on port + 2i.
    `brokers` None: as many as were set up on that port before (its cluster file), else 1."""
    first = KafkaLayout(home=home or tidegate_home(), version=kafka_version(), port=port or default_port())
    known = _known_size(first)
    size = brokers or known or 1
    if size < 1:
        raise KafkaLaunchError(f"a cluster needs at least one broker, not {size}")
    if known is not None and known != size:
        raise KafkaLaunchError(
            f"port {first.port} holds a {known}-broker setup in {first.run_dir.parent}; use --brokers {known}, "
            f"another port, or remove its data-* and run-* directories after `down`"
        )
    if size == 1:
        return [first]
    ports = tuple(first.port + 2 * index for index in range(size))
    return [KafkaLayout(first.home, first.version, port, node_id=node, cluster=ports)
            for node, port in enumerate(ports, start=1)]


def _known_size(first: KafkaLayout) -> int | None:
    try:
        return int(first.cluster_file.read_text().strip())
    except (OSError, ValueError):
        return 1 if (first.data_dir / "meta.properties").exists() else None


def render_properties(layout: KafkaLayout) -> str:
    """The broker's server.properties (pure: no I/O beyond reading the template)."""
    template = string.Template(PROPERTIES_TEMPLATE.read_text(encoding="utf-8"))
    size = len(layout.members)
    return template.substitute(
        port=layout.port, controller_port=layout.controller_port, log_dirs=layout.data_dir.as_posix(),
        node_id=layout.node_id, voters=layout.voters,
        replication=min(size, 3), min_isr=2 if size >= 3 else 1,
    )


# --- processes ---------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """True if process `pid` exists and is not a zombie."""
    # A broker started by this process stays its child; without reaping it would linger as a zombie
    # that still "exists" for kill(pid, 0).
    _process.reap(pid)
    return _process.is_alive(pid)


def _is_our_broker(pid: int, layout: KafkaLayout) -> bool:
    """True if `pid` is alive and is the broker of this layout (not a pid reused by another program)."""
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline and str(layout.properties_file).encode() in cmdline


def _read_pid(layout: KafkaLayout) -> int | None:
    try:
        return int(layout.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _port_open(port: int, timeout: float = 0.5) -> bool:
    return _process.port_open(port, timeout=timeout)


def _admin_ready(bootstrap: str, timeout: float = 5.0, node_ids: frozenset[int] = frozenset()) -> bool:
    """True once the broker answers a metadata request (and lists every broker of `node_ids`)."""
    from confluent_kafka.admin import AdminClient

    # log_level 0: librdkafka's connection errors while the broker boots are expected, not news.
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000), "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:  # KafkaException while the controller is not ready yet
        return False
    return node_ids <= metadata.brokers.keys() if node_ids else bool(metadata.brokers)


def kafka_status(port: int | None = None) -> KafkaStatus:
    """The broker's status; for a cluster, its first member's (see `cluster_status` for all)."""
    return _status(cluster_layouts(port)[0])


def cluster_status(port: int | None = None) -> list[KafkaStatus]:
    return [_status(layout) for layout in cluster_layouts(port)]


def _status(layout: KafkaLayout) -> KafkaStatus:
    pid = _read_pid(layout)
    if pid is not None and _is_our_broker(pid, layout):
        return KafkaStatus(BrokerState.RUNNING, layout.bootstrap, pid, layout.log_file)
    if _port_open(layout.port):
        return KafkaStatus(BrokerState.EXTERNAL, layout.bootstrap, None, layout.log_file)
    if pid is not None:
        return KafkaStatus(BrokerState.STALE, layout.bootstrap, pid, layout.log_file)
    return KafkaStatus(BrokerState.STOPPED, layout.bootstrap, None, layout.log_file)


def _locked(layout: KafkaLayout) -> contextlib.AbstractContextManager[None]:
    return _process.file_lock(layout.lock_file)


def _require(tool: str, what: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise KafkaLaunchError(
            f"`{tool}` was not found on PATH; the local Kafka needs {what}. "
            "Install it (Debian/Ubuntu: `apt-get install openjdk-17-jdk-headless maven`) and retry."
        )
    return path



# --- the steps of `up` -------------------------------------------------------------------------------


def fetch_libs(layout: KafkaLayout) -> Path:
    """Copy the broker's jars from Maven Central into the cache once; later calls return at once."""
    done = layout.libs / ".complete"
    if done.exists():
        return layout.libs
    mvn = _require("mvn", "Maven to fetch the broker from Maven Central")
    staging = layout.libs.with_name(f"libs.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    log.info("fetching Apache Kafka %s from Maven Central into %s", layout.version, layout.libs)
    result = subprocess.run(
        [
            mvn, "-B", "-q", "-f", str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        raise KafkaLaunchError(
            f"Maven could not fetch Apache Kafka {layout.version} (exit {result.returncode}). "
            f"Check that Maven Central is reachable.\n{(result.stdout + result.stderr)[-3000:]}"
        )
    (staging / ".complete").write_text(layout.version)
    shutil.rmtree(layout.libs, ignore_errors=True)
    staging.rename(layout.libs)
    return layout.libs


def _java_command(layout: KafkaLayout, main_class: str, *args: str) -> list[str]:
    java = _require("java", "a Java runtime (JDK 17 or newer)")
    return [
        java, *JVM_OPTIONS,
        f"-Dlog4j.configuration={LOG4J_PROPERTIES.as_uri()}",
        f"-Dkafka.logs.dir={layout.run_dir}",
        "-cp", f"{layout.libs}/*",
        main_class, *args,
    ]  # fmt: skip


def write_properties(layout: KafkaLayout) -> Path:
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    layout.properties_file.write_text(render_properties(layout), encoding="utf-8")
    return layout.properties_file


def new_cluster_id() -> str:
    """A KRaft cluster id as `kafka-storage random-uuid` makes one (16 random bytes, URL-safe base64
    without padding, never starting with '-'), without starting a JVM for it."""
    while True:
        cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")
        if not cluster_id.startswith("-"):
            return cluster_id


def _formatted_cluster_id(layouts: list[KafkaLayout]) -> str | None:
    """The cluster id a member was formatted with already (all members must share it)."""
    for layout in layouts:
        with contextlib.suppress(OSError):
            for line in (layout.data_dir / "meta.properties").read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.split("=", 1)[1].strip()
    return None


def format_storage(layout: KafkaLayout, cluster_id: str | None = None) -> None:
    """Format the KRaft log dir once (a formatted dir has meta.properties) with `cluster_id` (new if None)."""
    if (layout.data_dir / "meta.properties").exists():
        return
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    cluster_id = cluster_id or new_cluster_id()
    formatted = subprocess.run(
        _java_command(layout, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(layout.properties_file)),
        capture_output=True,
        text=True,
        check=False,
    )
    if formatted.returncode != 0:
        raise KafkaLaunchError(
            f"Kafka's StorageTool could not format {layout.data_dir}:\n{formatted.stdout}{formatted.stderr}"[-3000:]
        )


def _spawn_broker(layout: KafkaLayout) -> int:
    command = _java_command(layout, "kafka.Kafka", str(layout.properties_file))
    log_fd = os.open(layout.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        # posix_spawn with setsid: the broker outlives this process and ignores its terminal's
        # signals, and no Popen object is left to warn about a "still running" child.
        pid = os.posix_spawn(
            command[0],
            command,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(log_fd)
    layout.pid_file.write_text(f"{pid}\n")
    return pid


def _log_size(layout: KafkaLayout) -> int:
    try:
        return layout.log_file.stat().st_size
    except OSError:
        return 0


def _wait_ready(starting: dict[KafkaLayout, int], timeout: float, cap: float = START_CAP) -> None:
    """Wait until every broker in `starting` (layout -> pid) answers. Gives up when one exits (at
    once), when their logs stay unchanged for `timeout` seconds, or after `cap` seconds; then the
    brokers started here are stopped."""
    waiting = dict(starting)
    # A broker is ready once it lists itself and every broker started with it: a member that knows
    # only itself would refuse a topic with replication factor 3 (and show a client fewer brokers).
    starting_ids = frozenset(layout.node_id for layout in starting)
    began = last_change = time.monotonic()
    next_report = began + PROGRESS_EVERY
    sizes = {layout: _log_size(layout) for layout in waiting}
    problem = ""
    while waiting:
        for layout, pid in list(waiting.items()):
            # Liveness, not _is_our_broker: right after spawning, /proc/<pid>/cmdline can read empty
            # while the JVM execs, which would look like someone else's process.
            if not _alive(pid):
                layout.pid_file.unlink(missing_ok=True)
                _terminate_all({other: other_pid for other, other_pid in starting.items() if other is not layout},
                               DEFAULT_STOP_TIMEOUT)
                raise KafkaLaunchError(
                    f"the Kafka broker (pid {pid}) exited while starting; see {layout.log_file}:\n"
                    f"{_process.log_tail(layout.log_file, 25)}"
                )
            # The port opens before the controller is ready, so an admin call is the real test.
            if _port_open(layout.port) and _admin_ready(layout.bootstrap, node_ids=starting_ids):
                del waiting[layout]
        if not waiting:
            return
        now = time.monotonic()
        current = {layout: _log_size(layout) for layout in waiting}
        if any(current[layout] != sizes.get(layout) for layout in current):
            last_change = now
        sizes = current
        if now - last_change > timeout:
            problem = f"wrote nothing to its log for {timeout:.0f} s (raise TIDEGATE_KAFKA_START_TIMEOUT on a slow machine)"
            break
        if now - began > cap:
            problem = f"was still not ready after {cap:.0f} s"
            break
        if now >= next_report:
            next_report = now + PROGRESS_EVERY
            for layout, pid in waiting.items():
                last = _process.log_tail(layout.log_file, 1)[:200]
                log.info("waiting for Kafka on %s (pid %s, alive, %.0f s so far); its log: %s",
                         layout.bootstrap, pid, now - began, last)
        time.sleep(_POLL)
    _terminate_all(starting, DEFAULT_STOP_TIMEOUT)
    stuck = next(iter(waiting))
    raise KafkaLaunchError(
        f"the Kafka broker on {stuck.bootstrap} {problem}, and was stopped; see {stuck.log_file}:\n"
        f"{_process.log_tail(stuck.log_file, 25)}"
    )


def _terminate(layout: KafkaLayout, pid: int, timeout: float) -> None:
    _terminate_all({layout: pid}, timeout)


def _terminate_all(brokers: dict[KafkaLayout, int], timeout: float) -> None:
    """SIGTERM every broker at once (the members of a cluster shut down together: one left alone
    waits for a quorum that is gone), then SIGKILL those still alive after `timeout`."""
    for pid in brokers.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in brokers.values()):
        time.sleep(_POLL)
    for layout, pid in brokers.items():
        if _alive(pid):
            log.warning("Kafka (pid %s) did not stop within %.0f s of SIGTERM; killing it", pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(_POLL)
        layout.pid_file.unlink(missing_ok=True)


def bootstrap_of(layouts: list[KafkaLayout]) -> str:
    return ",".join(layout.bootstrap for layout in layouts)


def _ensure_locked(layouts: list[KafkaLayout], timeout: float) -> tuple[str, bool]:
    """Start the members that do not run; returns (bootstrap, started_now). Caller holds the lock
    (of the first member)."""
    bootstrap = bootstrap_of(layouts)
    to_start: list[KafkaLayout] = []
    for layout in layouts:
        status = _status(layout)
        if status.state is BrokerState.RUNNING:
            continue
        if status.state is BrokerState.EXTERNAL:
            if len(layouts) == 1 and _admin_ready(layout.bootstrap):
                log.info("using the Kafka broker already listening on %s", layout.bootstrap)
                return bootstrap, False
            raise KafkaLaunchError(
                f"port {layout.port} on 127.0.0.1 is taken by something that is not a Kafka broker started "
                f"from {layout.home}; free it or choose another port with TIDEGATE_KAFKA_PORT"
            )
        if status.state is BrokerState.STALE:
            log.info("removing the stale pid file of pid %s (the broker is gone)", status.pid)
            layout.pid_file.unlink(missing_ok=True)
        if _port_open(layout.controller_port):
            raise KafkaLaunchError(
                f"the controller port {layout.controller_port} (Kafka port + 1) is taken; "
                "free it or choose another port with TIDEGATE_KAFKA_PORT"
            )
        to_start.append(layout)
    if not to_start:
        return bootstrap, False
    fetch_libs(layouts[0])
    cluster_id = _formatted_cluster_id(layouts)
    if len(layouts) > 1:
        layouts[0].run_dir.mkdir(parents=True, exist_ok=True)
        layouts[0].cluster_file.write_text(f"{len(layouts)}\n")
    starting: dict[KafkaLayout, int] = {}
    for layout in to_start:
        write_properties(layout)
        cluster_id = cluster_id or new_cluster_id()
        format_storage(layout, cluster_id)
    for layout in to_start:
        pid = _spawn_broker(layout)
        starting[layout] = pid
        log.info("started Kafka %s (pid %s) on %s, log %s", layout.version, pid, layout.bootstrap, layout.log_file)
    _wait_ready(starting, timeout)
    return bootstrap, True


# --- public API ----------------------------------------------------------------------------------------


def ensure_kafka(port: int | None = None, *, brokers: int | None = None, timeout: float | None = None) -> str:
    """Start the local broker (or the members of a `brokers`-node cluster) unless it runs, wait until
    it answers, return its bootstrap address (a list of every member's, for a cluster).

    The broker then keeps running until `stop_kafka` (or `down`), even if a test session started it.
    """
    layouts = cluster_layouts(port, brokers)
    with _locked(layouts[0]):
        bootstrap, _ = _ensure_locked(layouts, timeout or start_timeout())
        layouts[0].session_owned_marker.unlink(missing_ok=True)
    return bootstrap


def stop_kafka(port: int | None = None, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> bool:
    """Stop the broker (or every member of the cluster) this launcher started on `port` (SIGTERM,
    then SIGKILL after `timeout`); False if none ran."""
    layouts = cluster_layouts(port)
    with _locked(layouts[0]):
        if len(layouts) == 1:
            return _stop_locked(layouts[0], timeout)
        running = _running_members(layouts)
        _terminate_all(running, timeout)
        return bool(running)


def _running_members(layouts: list[KafkaLayout]) -> dict[KafkaLayout, int]:
    running: dict[KafkaLayout, int] = {}
    for layout in layouts:
        status = _status(layout)
        if status.state is BrokerState.EXTERNAL:
            raise KafkaLaunchError(
                f"the broker on {layout.bootstrap} was not started from {layout.home}; stop it where it was started"
            )
        if status.state is BrokerState.RUNNING and status.pid is not None:
            running[layout] = status.pid
        else:
            layout.pid_file.unlink(missing_ok=True)
    return running


def _stop_locked(layout: KafkaLayout, timeout: float) -> bool:
    status = _status(layout)
    layout.session_owned_marker.unlink(missing_ok=True)
    if status.state is BrokerState.EXTERNAL:
        raise KafkaLaunchError(
            f"the broker on {layout.bootstrap} was not started from {layout.home}; stop it where it was started"
        )
    if status.state is not BrokerState.RUNNING or status.pid is None:
        layout.pid_file.unlink(missing_ok=True)
        return False
    _terminate(layout, status.pid, timeout)
    return True


@contextlib.contextmanager
def kafka_session(port: int | None = None, *, timeout: float | None = None) -> Iterator[str]:
    """The broker for one test session: started if needed, stopped at the end only if this session
    (or another one still running) started it and no other live session holds it."""
    layout = layout_for(port)
    with _process.session_lease(
        layout.lock_file, layout.leases_dir, layout.session_owned_marker,
        lambda: _ensure_locked([layout], timeout or start_timeout()),
        lambda: _stop_locked(layout, DEFAULT_STOP_TIMEOUT),
    ) as bootstrap:
        yield bootstrap


class KafkaCluster:
    """A cluster of local brokers started by `kafka_cluster`: its bootstrap and members, each of
    which a test can kill (-9) and start again."""

    def __init__(self, layouts: list[KafkaLayout]) -> None:
        self.layouts = layouts
        self.bootstrap = bootstrap_of(layouts)

    def pid(self, node_id: int) -> int | None:
        layout = self.member(node_id)
        pid = _read_pid(layout)
        return pid if pid is not None and _alive(pid) else None

    def member(self, node_id: int) -> KafkaLayout:
        return next(layout for layout in self.layouts if layout.node_id == node_id)

    def kill(self, node_id: int) -> None:
        """SIGKILL the member (no clean shutdown: its logs need recovery when it starts again)."""
        layout = self.member(node_id)
        pid = _read_pid(layout)
        if pid is None or not _is_our_broker(pid, layout):
            raise KafkaLaunchError(f"broker {node_id} of the cluster on {self.bootstrap} is not running")
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(_POLL)
        layout.pid_file.unlink(missing_ok=True)

    def start(self, node_id: int, timeout: float | None = None) -> None:
        """Start a stopped member again and wait until it is back in the cluster."""
        with _locked(self.layouts[0]):
            layout = self.member(node_id)
            if _status(layout).state is BrokerState.RUNNING:
                return
            layout.pid_file.unlink(missing_ok=True)
            _wait_ready({layout: _spawn_broker(layout)}, timeout or start_timeout())

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every member (a test's cluster: its data is thrown away, so a short grace)."""
        with _locked(self.layouts[0]):
            _terminate_all(_running_members(self.layouts), timeout)


@contextlib.contextmanager
def kafka_cluster(brokers: int = 3, *, home: Path, timeout: float | None = None) -> Iterator[KafkaCluster]:
    """A cluster of `brokers` KRaft nodes of its own, for one test: fresh ports below the ephemeral
    range, its state under `home` (the broker jars shared with the usual cache), every member
    stopped at the end, failed or not."""
    libs = fetch_libs(layout_for())
    version = kafka_version()
    shared = home / "kafka" / version / "libs"
    if not shared.exists():
        shared.parent.mkdir(parents=True, exist_ok=True)
        shared.symlink_to(libs, target_is_directory=True)
    first = _process.free_port_block(2 * brokers)
    cluster = KafkaCluster(cluster_layouts(first, brokers, home))
    try:
        with _locked(cluster.layouts[0]):
            _ensure_locked(cluster.layouts, timeout or start_timeout())
        yield cluster
    finally:
        cluster.stop()


# --- command line ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.kafka", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--port", type=int, default=None,
                        help=f"(first) broker port (default $TIDEGATE_KAFKA_PORT or {DEFAULT_PORT})")
    parser.add_argument("--brokers", type=int, default=None,
                        help="`up`: start a cluster of N brokers on port, port + 2, ... (default 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.action == "up":
            bootstrap = ensure_kafka(args.port, brokers=args.brokers)
            print(f"Kafka is ready on {bootstrap}")
        elif args.action == "down":
            stopped = stop_kafka(args.port)
            print("Kafka stopped" if stopped else "Kafka was not running")
        else:
            statuses = cluster_status(args.port)
            for status in statuses:
                print(status.describe())
            running = (BrokerState.RUNNING, BrokerState.EXTERNAL)
            return 0 if all(status.state in running for status in statuses) else 3
    except KafkaLaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
