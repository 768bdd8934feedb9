"""A real single-node Apache Kafka broker (KRaft) on 127.0.0.1, fetched from Maven Central. No Docker.

    python -m deploy.local.kafka up|down|status [--port N]

Needs only a JDK (17+) and Maven. `up` fetches the broker jars once (the tiny `pom.xml` beside this
file pins the version) into `$TIDEGATE_HOME/kafka/<version>/libs`, writes single-node KRaft
properties, formats the storage once, starts the broker detached (log in
`$TIDEGATE_HOME/kafka/run-<port>/kafka.log`) and waits until an admin call succeeds. A second `up`
finds it running; a pid file left by a broker that died is noticed and cleaned. `down` sends SIGTERM,
waits, then SIGKILL.

Environment: `TIDEGATE_HOME` (default `<repo>/.cache`), `TIDEGATE_KAFKA_PORT` (default 39092; the
controller listens on port + 1), `TIDEGATE_KAFKA_START_TIMEOUT` (seconds, default 120).

Python API: `ensure_kafka(port) -> bootstrap`, `stop_kafka(port)`, `kafka_status(port)`, and
`kafka_session(port)`, a context manager for test sessions: it starts the broker if needed and stops
it afterwards only if it started it and no other live session still uses it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
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

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
POM = HERE / "pom.xml"
PROPERTIES_TEMPLATE = HERE / "server.properties.template"
LOG4J_PROPERTIES = HERE / "log4j.properties"

DEFAULT_PORT = 39092
DEFAULT_START_TIMEOUT = 120.0
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
    """Where everything for one broker (a version on a port) lives."""

    home: Path
    version: str
    port: int

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
        raise KafkaLaunchError(f"TIDEGATE_KAFKA_PORT={raw!r} is not a port number; set it to e.g. 39092") from None


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


def render_properties(layout: KafkaLayout) -> str:
    """The broker's server.properties (pure: no I/O beyond reading the template)."""
    template = string.Template(PROPERTIES_TEMPLATE.read_text(encoding="utf-8"))
    return template.substitute(
        port=layout.port, controller_port=layout.controller_port, log_dirs=layout.data_dir.as_posix()
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


def _admin_ready(bootstrap: str, timeout: float = 5.0) -> bool:
    from confluent_kafka.admin import AdminClient

    # log_level 0: librdkafka's connection errors while the broker boots are expected, not news.
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000), "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:  # KafkaException while the controller is not ready yet
        return False
    return bool(metadata.brokers)


def kafka_status(port: int | None = None) -> KafkaStatus:
    layout = layout_for(port)
    return _status(layout)


def _status(layout: KafkaLayout) -> KafkaStatus:
    pid = _read_pid(layout)
    if pid is not None and _is_our_broker(pid, layout):
        return KafkaStatus(BrokerState.RUNNING, layout.bootstrap, pid, layout.log_file)
    if _port_open(layout.port):
        return KafkaStatus(BrokerState.EXTERNAL, layout.bootstrap, None, layout.log_file)
    if pid is not None:
        return KafkaStatus(BrokerState.STALE, layout.bootstrap, pid, layout.log_file)
    return KafkaStatus(BrokerState.STOPPED, layout.bootstrap, None, layout.log_file)


@contextlib.contextmanager
def _locked(layout: KafkaLayout) -> Iterator[None]:
    """One launcher at a time per port (parallel test sessions, `make kafka-up` in another shell)."""
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    with open(layout.lock_file, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _require(tool: str, what: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise KafkaLaunchError(
            f"`{tool}` was not found on PATH; the local Kafka needs {what}. "
            "Install it (Debian/Ubuntu: `apt-get install openjdk-17-jdk-headless maven`) and retry."
        )
    return path


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log written)"


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


def format_storage(layout: KafkaLayout) -> None:
    """Format the KRaft log dir once (a formatted dir has meta.properties)."""
    if (layout.data_dir / "meta.properties").exists():
        return
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    cluster_id = new_cluster_id()
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


def _wait_ready(layout: KafkaLayout, pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Liveness, not _is_our_broker: right after spawning, /proc/<pid>/cmdline can read empty
        # while the JVM execs, which would look like someone else's process.
        if not _alive(pid):
            layout.pid_file.unlink(missing_ok=True)
            raise KafkaLaunchError(
                f"the Kafka broker (pid {pid}) exited while starting; see {layout.log_file}:\n"
                f"{_tail(layout.log_file)}"
            )
        # The port opens before the controller is ready, so an admin call is the real test.
        if _port_open(layout.port) and _admin_ready(layout.bootstrap):
            return
        time.sleep(_POLL)
    _terminate(layout, pid, DEFAULT_STOP_TIMEOUT)
    raise KafkaLaunchError(
        f"the Kafka broker did not become ready on {layout.bootstrap} within {timeout:.0f} s and was "
        f"stopped; see {layout.log_file} (raise TIDEGATE_KAFKA_START_TIMEOUT on a slow machine):\n"
        f"{_tail(layout.log_file)}"
    )


def _terminate(layout: KafkaLayout, pid: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(_POLL)
    if _alive(pid):
        log.warning("Kafka (pid %s) did not stop within %.0f s of SIGTERM; killing it", pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(_POLL)
    layout.pid_file.unlink(missing_ok=True)


def _ensure_locked(layout: KafkaLayout, timeout: float) -> tuple[str, bool]:
    """Start the broker unless it runs; returns (bootstrap, started_now). Caller holds the lock."""
    status = _status(layout)
    if status.state is BrokerState.RUNNING:
        return layout.bootstrap, False
    if status.state is BrokerState.EXTERNAL:
        if _admin_ready(layout.bootstrap):
            log.info("using the Kafka broker already listening on %s", layout.bootstrap)
            return layout.bootstrap, False
        raise KafkaLaunchError(
            f"port {layout.port} on 127.0.0.1 is taken by something that is not a Kafka broker; "
            "free it or choose another port with TIDEGATE_KAFKA_PORT"
        )
    if status.state is BrokerState.STALE:
        log.info("removing the stale pid file of pid %s (the broker is gone)", status.pid)
        layout.pid_file.unlink(missing_ok=True)
    if _port_open(layout.controller_port):
        raise KafkaLaunchError(
            f"the controller port {layout.controller_port} (Kafka port + 1) is taken; "
            "free it or choose another port with TIDEGATE_KAFKA_PORT"
        )
    fetch_libs(layout)
    write_properties(layout)
    format_storage(layout)
    pid = _spawn_broker(layout)
    log.info("started Kafka %s (pid %s) on %s, log %s", layout.version, pid, layout.bootstrap, layout.log_file)
    _wait_ready(layout, pid, timeout)
    return layout.bootstrap, True


# --- public API ----------------------------------------------------------------------------------------


def ensure_kafka(port: int | None = None, *, timeout: float | None = None) -> str:
    """Start the local broker unless it runs, wait until it answers, return its bootstrap address.

    The broker then keeps running until `stop_kafka` (or `down`), even if a test session started it.
    """
    layout = layout_for(port)
    with _locked(layout):
        bootstrap, _ = _ensure_locked(layout, timeout or start_timeout())
        layout.session_owned_marker.unlink(missing_ok=True)
    return bootstrap


def stop_kafka(port: int | None = None, *, timeout: float = DEFAULT_STOP_TIMEOUT) -> bool:
    """Stop the broker this launcher started (SIGTERM, then SIGKILL after `timeout`); False if none ran."""
    layout = layout_for(port)
    with _locked(layout):
        return _stop_locked(layout, timeout)


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


def _live_leases(layout: KafkaLayout) -> list[Path]:
    live: list[Path] = []
    for lease in layout.leases_dir.glob("*"):
        try:
            alive = Path(f"/proc/{int(lease.name)}").exists()
        except ValueError:
            alive = False
        if alive:
            live.append(lease)
        else:
            lease.unlink(missing_ok=True)
    return live


@contextlib.contextmanager
def kafka_session(port: int | None = None, *, timeout: float | None = None) -> Iterator[str]:
    """The broker for one test session: started if needed, stopped at the end only if this session
    (or another one still running) started it and no other live session holds it."""
    layout = layout_for(port)
    lease = layout.leases_dir / str(os.getpid())
    with _locked(layout):
        bootstrap, started = _ensure_locked(layout, timeout or start_timeout())
        if started:
            layout.session_owned_marker.write_text(f"{os.getpid()}\n")
        layout.leases_dir.mkdir(parents=True, exist_ok=True)
        lease.write_text(f"{os.getpid()}\n")
    try:
        yield bootstrap
    finally:
        with _locked(layout):
            lease.unlink(missing_ok=True)
            if layout.session_owned_marker.exists() and not _live_leases(layout):
                _stop_locked(layout, DEFAULT_STOP_TIMEOUT)


# --- command line ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local.kafka", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--port", type=int, default=None, help="broker port (default $TIDEGATE_KAFKA_PORT or 39092)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.action == "up":
            bootstrap = ensure_kafka(args.port)
            print(f"Kafka is ready on {bootstrap}")
        elif args.action == "down":
            stopped = stop_kafka(args.port)
            print("Kafka stopped" if stopped else "Kafka was not running")
        else:
            status = kafka_status(args.port)
            print(status.describe())
            return 0 if status.state in (BrokerState.RUNNING, BrokerState.EXTERNAL) else 3
    except KafkaLaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
