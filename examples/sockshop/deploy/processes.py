"""The deployment program's edges: demo-service processes, state files and Prometheus target files.

Everything lives in one home folder (the demo's `.cache/demo/deployments` or a test's tmp dir):

    environment.json                         ports per stage and the service's tuning (written by the driver)
    stages/<project>-<stage>-<service>.json  StageState: what serves the stage, what to roll back to, pids
    targets/<service>-<project>-<stage>.json Prometheus file_sd targets: one metrics port per replica
    logs/<service>-<project>-<stage>-<metrics port>.log   each replica's output

Replicas start in sessions of their own with their output in log files, so they outlive the
program (and the command connector's task) that started them, as a deployment outlives `helm`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from examples.sockshop.deploy.model import Environment, ReleaseSpec, Replica, StageState
from examples.sockshop.deploy.plan import Outcome, Request, decide, reconcile

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVICE_MODULE = "examples.sockshop.service.server"
HEALTH_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


class DeployError(RuntimeError):
    """The processes could not be brought to the wanted state; the message says what to look at."""


def job_name(project: str, stage: str, service: str) -> str:
    """Keptn's scrape job name, which the SLI queries select on: `carts-sockshop-staging`."""
    return f"{service}-{project}-{stage}"


@dataclass(frozen=True, slots=True)
class DeployHome:
    path: Path

    @property
    def environment_file(self) -> Path:
        return self.path / "environment.json"

    def state_file(self, project: str, stage: str, service: str) -> Path:
        return self.path / "stages" / f"{project}-{stage}-{service}.json"

    def target_file(self, project: str, stage: str, service: str) -> Path:
        return self.path / "targets" / f"{job_name(project, stage, service)}.json"

    def log_file(self, project: str, stage: str, service: str, metrics_port: int) -> Path:
        return self.path / "logs" / f"{job_name(project, stage, service)}-{metrics_port}.log"

    def write_environment(self, environment: Environment) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.environment_file, environment.model_dump_json(indent=2))

    def environment(self) -> Environment:
        try:
            return Environment.model_validate_json(self.environment_file.read_text())
        except FileNotFoundError:
            raise DeployError(
                f"{self.environment_file} does not exist: the demo driver writes it (python -m deploy.demo); "
                "without it the stages have no ports"
            ) from None

    def states(self) -> list[StageState]:
        return [StageState.model_validate_json(path.read_text()) for path in sorted((self.path / "stages").glob("*.json"))]

    def load_state(self, environment: Environment, request: Request) -> StageState:
        path = self.state_file(request.project, request.stage, request.service)
        if path.exists():
            return StageState.model_validate_json(path.read_text())
        port = environment.ports.get(request.stage)
        if port is None:
            raise DeployError(
                f"stage {request.stage!r} has no port in {self.environment_file} (it has "
                f"{', '.join(environment.ports) or 'none'}); add one"
            )
        return StageState(project=request.project, stage=request.stage, service=request.service, port=port)

    def save_state(self, state: StageState) -> None:
        _write_atomically(self.state_file(state.project, state.stage, state.service), state.model_dump_json(indent=2))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One deployment change at a time per home (tasks of different stages may run at once)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "deploy.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomically(path: Path, text: str) -> None:
    # Prometheus re-reads target files on its own: it must never see a half-written one.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    partial.replace(path)


# -- processes ----------------------------------------------------------------------------------------


def is_alive(replica: Replica) -> bool:
    """Whether the replica's process still runs (and its pid was not reused by another program)."""
    try:
        cmdline = Path(f"/proc/{replica.pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{replica.pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return SERVICE_MODULE.encode() in cmdline and str(replica.metrics_port).encode() in cmdline


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_replica(home: DeployHome, environment: Environment, state: StageState, version: str) -> Replica:
    metrics_port = _free_port()
    log_path = home.log_file(state.project, state.stage, state.service, metrics_port)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", SERVICE_MODULE,
        "--port", str(state.port),
        "--metrics-port", str(metrics_port),
        "--version", version,
        "--service", state.service,
        "--order-ms", str(environment.order_ms),
        "--order-workers", str(environment.order_workers),
    ]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Replica(pid=process.pid, version=version, metrics_port=metrics_port)


def wait_healthy(home: DeployHome, state: StageState, replicas: list[Replica], timeout: float = HEALTH_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(replicas)
    with httpx.Client(timeout=1.0) as client:
        while waiting:
            replica = waiting[0]
            if not is_alive(replica):
                log = home.log_file(state.project, state.stage, state.service, replica.metrics_port)
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:]) if log.exists() else ""
                raise DeployError(f"{state.service} {replica.version} exited while starting on port {state.port}; "
                                  f"the end of {log} says:\n{tail}")
            try:
                if client.get(f"http://127.0.0.1:{replica.metrics_port}/health").status_code == 200:
                    waiting.pop(0)
                    continue
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise DeployError(f"{state.service} {replica.version} (pid {replica.pid}) did not answer /health "
                                  f"within {timeout:.0f} s")
            time.sleep(0.05)


def stop_replica(replica: Replica, timeout: float = STOP_TIMEOUT) -> None:
    if not is_alive(replica):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(replica.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_alive(replica) and time.monotonic() < deadline:
        _reap(replica.pid)
        time.sleep(0.05)
    if is_alive(replica):
        with contextlib.suppress(ProcessLookupError):
            os.kill(replica.pid, signal.SIGKILL)
    _reap(replica.pid)


def _reap(pid: int) -> None:
    # Only when this process started the replica (the driver's `down` after a test); otherwise a no-op.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def write_targets(home: DeployHome, state: StageState, live: ReleaseSpec | None) -> None:
    targets = [f"127.0.0.1:{replica.metrics_port}" for replica in state.running]
    groups = [{"targets": targets, "labels": {"deployment": live.role.value}}] if targets and live else []
    _write_atomically(home.target_file(state.project, state.stage, state.service), json.dumps(groups, indent=2))


# -- the two things the program does -------------------------------------------------------------------


def apply(home: DeployHome, request: Request) -> Outcome:
    """Carry out one task: decide, then start the new replicas before stopping the old ones."""
    with home.locked():
        environment = home.environment()
        state = home.load_state(environment, request)
        decision = decide(state, request)
        if not decision.outcome.passed:
            return decision.outcome
        alive = [replica for replica in state.running if is_alive(replica)]
        work = reconcile(alive, decision.live)
        started = [start_replica(home, environment, state, work.version) for _ in range(work.start) if work.version]
        try:
            wait_healthy(home, state, started)
        except DeployError:
            for replica in started:
                stop_replica(replica)
            raise
        for replica in work.stop:
            stop_replica(replica)
        stopped = {replica.pid for replica in work.stop}
        state.running = [replica for replica in alive if replica.pid not in stopped] + started
        state.live, state.previous = decision.live, decision.previous
        home.save_state(state)
        write_targets(home, state, decision.live)
        return decision.outcome


def down(home: DeployHome) -> list[str]:
    """Stop every replica the program started under `home`; what was stopped, for the user."""
    report: list[str] = []
    if not (home.path / "stages").is_dir():
        return report
    with home.locked():
        for state in home.states():
            alive = [replica for replica in state.running if is_alive(replica)]
            for replica in alive:
                stop_replica(replica)
            if alive:
                report.append(f"{state.service} in {state.project}/{state.stage}: stopped "
                              f"{len(alive)} replica{'s' if len(alive) != 1 else ''} on port {state.port}")
            state.running = []
            home.save_state(state)
            write_targets(home, state, None)
    return report
