"""Shared plumbing for the local daemons (Prometheus, Alertmanager): install, start, wait, stop.

The Kafka launcher (kafka.py) starts its JVM its own way but shares the process checks below
(`is_alive`, `reap`, `port_open`) and `tidegate_home`.

A daemon instance lives in one state directory (`$TIDEGATE_HOME/<name>-<port>/`) holding its config,
data, log and pid file, so several instances on different ports never share anything and `down`
finds exactly the process that `up` started. Nothing here knows about Prometheus in particular.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


class DaemonError(RuntimeError):
    """A local daemon could not be installed, started or stopped; the message says what to do."""


def tidegate_home() -> Path:
    """Where local state lives: `$TIDEGATE_HOME`, else `<repo>/.cache` (as the Makefile sets it)."""
    return Path(os.environ.get("TIDEGATE_HOME") or REPO_ROOT / ".cache")


@dataclass(frozen=True, slots=True)
class Instance:
    """One daemon instance: its name, loopback port and state directory."""

    name: str
    port: int
    state_dir: Path

    @classmethod
    def at(cls, name: str, port: int, home: Path | None = None) -> Instance:
        return cls(name, port, (home or tidegate_home()) / f"{name}-{port}")

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"


# -- installing -----------------------------------------------------------------------------------


def find_binary(binary: str) -> str | None:
    return shutil.which(binary)


def ensure_debian_package(binary: str, package: str, packaged_services: Sequence[str] = ()) -> str:
    """Path of `binary`, installing Debian `package` with apt first when it is missing.

    The packages' maintainer scripts would start their own daemons on the default ports; a
    policy-rc.d that answers 101 forbids that during the install, and `packaged_services` are
    stopped afterwards in case the machine starts services some other way.
    """
    found = find_binary(binary)
    if found:
        return found
    if os.geteuid() != 0:
        raise DaemonError(
            f"{binary} is not installed and installing Debian package {package!r} needs root: "
            f"run `sudo apt-get install -y --no-install-recommends {package}` and try again"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    created_policy = False
    if not POLICY_RC_D.exists():
        POLICY_RC_D.write_text("#!/bin/sh\n# written by tidegate deploy.local while installing packages\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
        created_policy = True
    try:
        for argv in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
        ):
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise DaemonError(
                    f"`{' '.join(argv)}` failed with exit code {done.returncode} while installing {binary}:\n"
                    f"{_tail(done.stdout + done.stderr)}\nFix the apt problem above, or install {package} by hand."
                )
    finally:
        if created_policy:
            POLICY_RC_D.unlink(missing_ok=True)
    for service in packaged_services:
        _stop_packaged_service(service)
    found = find_binary(binary)
    if not found:
        raise DaemonError(f"installed Debian package {package!r} but {binary} is still not on PATH")
    return found


def _stop_packaged_service(service: str) -> None:
    # Only the package's own init script is asked to stop its own daemon: ours run elsewhere.
    if not Path("/etc/init.d", service).exists():
        return
    for argv in (["service", service, "stop"], ["update-rc.d", service, "disable"]):
        if shutil.which(argv[0]):
            subprocess.run(argv, capture_output=True, check=False)


# -- starting and stopping ------------------------------------------------------------------------


def read_live_pid(instance: Instance, binary: str) -> int | None:
    """The pid in the instance's pid file if that process is alive and is `binary`; clears a stale file."""
    try:
        pid = int(instance.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        instance.pid_file.unlink(missing_ok=True)
        return None
    if _is_running(pid, binary):
        return pid
    # The process died or the pid was reused by something else: the file is stale.
    instance.pid_file.unlink(missing_ok=True)
    return None


def _is_running(pid: int, binary: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return is_alive(pid) and Path(binary).name.encode() in cmdline.split(b"\0")[0]


def is_alive(pid: int) -> bool:
    """True if process `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie child of ours still has a /proc entry but is not serving.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def port_open(port: int, host: str = LOOPBACK, timeout: float | None = None) -> bool:
    """True if something accepts connections on `host:port` (`timeout`: None blocks as sockets do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        return probe.connect_ex((host, port)) == 0


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    return not port_open(port, host)


def free_port() -> int:
    """A loopback port nobody listens on right now (for tests and ephemeral instances)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# Below Linux's ephemeral range (32768-60999 by default): no client's own source port lands here, so a
# client retrying against a dead server on one of these ports can never connect to itself.
FIXED_PORTS = range(20000, 32000)


def free_port_block(count: int, ports: range = FIXED_PORTS) -> int:
    """The first of `count` consecutive loopback ports in `ports` that nobody holds right now (for a
    server that must outlive restarts on the same port, such as a Kafka cluster in a test)."""
    chooser = random.Random()
    for _ in range(200):
        first = chooser.randrange(ports.start, ports.stop - count)
        if all(_bindable(port) for port in range(first, first + count)):
            return first
    raise DaemonError(f"found no {count} free consecutive ports in {ports.start}-{ports.stop - 1} on {LOOPBACK}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def start(instance: Instance, argv: Sequence[str]) -> int:
    """Start `argv` detached (own session, so it outlives this process), logging to the instance's log."""
    if not port_is_free(instance.port):
        raise DaemonError(
            f"port {instance.port} on {LOOPBACK} is already in use by another program, so {instance.name} "
            f"cannot start there: stop that program or choose another port"
        )
    instance.state_dir.mkdir(parents=True, exist_ok=True)
    with instance.log_file.open("ab") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=instance.state_dir,
            start_new_session=True,
        )
    instance.pid_file.write_text(f"{process.pid}\n")
    return process.pid


def wait_ready(instance: Instance, pid: int, binary: str, timeout: float = 60.0) -> None:
    """Wait until `GET /-/ready` answers 200, failing early (with the log's end) if the process dies."""
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not _is_running(pid, binary):
                reap(pid)
                raise DaemonError(
                    f"{instance.name} exited while starting on port {instance.port}; "
                    f"the end of {instance.log_file} says:\n{_tail(_read(instance.log_file))}"
                )
            try:
                answer = client.get(f"{instance.url}/-/ready")
                if answer.status_code == 200:
                    return
                last_error = f"HTTP {answer.status_code}"
            except httpx.TransportError as error:
                last_error = str(error) or type(error).__name__
            time.sleep(0.1)
    raise DaemonError(
        f"{instance.name} on port {instance.port} was not ready after {timeout:.0f}s ({last_error}); "
        f"see {instance.log_file}"
    )


def reload_config(url: str) -> None:
    """Ask a running daemon to re-read its config files (Prometheus and Alertmanager: POST /-/reload)."""
    try:
        answer = httpx.post(f"{url.rstrip('/')}/-/reload", timeout=30.0)
    except httpx.TransportError as error:
        raise DaemonError(f"could not reach {url} to reload its config: {error}") from error
    if answer.status_code != 200:
        raise DaemonError(
            f"{url} refused to reload its config (HTTP {answer.status_code}): {answer.text.strip()}; "
            f"the config it still runs with is unchanged, fix the file and reload again"
        )


def start_or_reload(instance: Instance, binary: str, argv: Sequence[str], timeout: float) -> str:
    """Reload the instance's rewritten config if it runs, else start `argv`; wait until ready; its URL."""
    pid = read_live_pid(instance, binary)
    if pid is not None:
        wait_ready(instance, pid, binary, timeout)
        reload_config(instance.url)
        return instance.url
    pid = start(instance, argv)
    wait_ready(instance, pid, binary, timeout)
    return instance.url


def status_line(instance: Instance, binary: str) -> str:
    """One line for `status`: whether the instance runs, and where."""
    pid = read_live_pid(instance, find_binary(binary) or binary)
    if pid is None:
        return f"{instance.name} on port {instance.port}: not running"
    return f"{instance.name} on port {instance.port}: running, pid {pid}, {instance.url}, state in {instance.state_dir}"


def stop(instance: Instance, binary: str, timeout: float = 15.0) -> bool:
    """Stop the instance's process (SIGTERM, then SIGKILL after `timeout`). False if it was not running."""
    pid = read_live_pid(instance, binary)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _is_running(pid, binary):
        reap(pid)
        time.sleep(0.05)
    if _is_running(pid, binary):
        os.kill(pid, signal.SIGKILL)
    reap(pid)
    instance.pid_file.unlink(missing_ok=True)
    return True


def reap(pid: int) -> None:
    # When this process started the daemon, collect its exit status so it does not linger as a zombie.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def log_tail(path: Path, lines: int = 20) -> str:
    """The last `lines` lines of a daemon's log file, for an error message (or a note that there is none)."""
    try:
        return _tail(path.read_text(errors="replace"), lines)
    except OSError:
        return "(no log written)"


@contextlib.contextmanager
def file_lock(lock_file: Path) -> Iterator[None]:
    """One launcher at a time per server (parallel test sessions, `make kafka-up` in another shell)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def session_lease(lock_file: Path, leases_dir: Path, owned_marker: Path,
                  start: Callable[[], tuple[str, bool]], stop: Callable[[], None]) -> Iterator[str]:
    """A test session's hold on a shared local server (a broker, a control plane).

    Under `file_lock(lock_file)`, `start()` returns (address, started-now); a session that started
    the server marks it as session-owned. This process then holds a lease (a file named by its pid).
    On exit, under the same lock, the lease goes, and the last live session of a session-owned server calls `stop()`
    (leases of dead processes are swept), so parallel sessions share one server and a developer's own
    server is never stopped."""
    lease = leases_dir / str(os.getpid())
    with file_lock(lock_file):
        address, started = start()
        if started:
            owned_marker.write_text(f"{os.getpid()}\n")
        leases_dir.mkdir(parents=True, exist_ok=True)
        lease.write_text(f"{os.getpid()}\n")
    try:
        yield address
    finally:
        with file_lock(lock_file):
            lease.unlink(missing_ok=True)
            if owned_marker.exists() and not live_leases(leases_dir):
                owned_marker.unlink(missing_ok=True)
                stop()


def live_leases(leases_dir: Path) -> list[Path]:
    """The leases whose process still lives; the others are removed."""
    live: list[Path] = []
    for lease in leases_dir.glob("*"):
        try:
            alive = is_alive(int(lease.name))
        except ValueError:
            alive = False
        if alive:
            live.append(lease)
        else:
            lease.unlink(missing_ok=True)
    return live
