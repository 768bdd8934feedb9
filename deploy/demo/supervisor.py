"""The demo's own background processes (worker, gateway, connectors, load), each with a pid file.

A pid file (`<home>/pids/<name>.json`) holds the pid and the process's start time in clock ticks
(`/proc/<pid>/stat` field 22), so `down` stops exactly the process the demo started, never a
program that later got the same pid. Processes run in sessions of their own with their output in
`<home>/logs/<name>.log`, so they outlive the driver (the Bridge stays open after `make demo`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STOP_TIMEOUT = 20.0


class ProcessFailed(RuntimeError):
    """A demo process exited when it should run; the message carries the end of its log."""


def _start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])  # field 22 of the whole line: starttime


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


@dataclass(frozen=True, slots=True)
class Managed:
    name: str
    pid: int
    started: int
    log: Path

    def alive(self) -> bool:
        _reap(self.pid)
        return _start_ticks(self.pid) == self.started

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Supervisor:
    def __init__(self, pids: Path, logs: Path) -> None:
        self.pids = pids
        self.logs = logs

    def _pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.json"

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Managed:
        """Start `argv` in the background (replacing a running one of the same name)."""
        self.stop(name)
        self.pids.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = _start_ticks(process.pid)
        if started is None:
            raise ProcessFailed(f"{name} exited at once; see {log}")
        managed = Managed(name, process.pid, started, log)
        self._pid_file(name).write_text(json.dumps({"pid": process.pid, "started": started, "log": str(log),
                                                    "argv": list(argv)}))
        return managed

    def get(self, name: str) -> Managed | None:
        try:
            raw = json.loads(self._pid_file(name).read_text())
            return Managed(name, int(raw["pid"]), int(raw["started"]), Path(raw["log"]))
        except (OSError, ValueError, KeyError):
            return None

    def running(self) -> list[Managed]:
        found = [self.get(path.stem) for path in sorted(self.pids.glob("*.json"))]
        return [managed for managed in found if managed is not None and managed.alive()]

    def check(self, names: Sequence[str]) -> None:
        """Raise ProcessFailed (with the log's end) if one of the named processes is gone."""
        for name in names:
            managed = self.get(name)
            if managed is not None and not managed.alive():
                raise ProcessFailed(f"{name} stopped unexpectedly; the end of {managed.log}:\n{managed.log_tail()}")

    def stop(self, name: str, timeout: float = STOP_TIMEOUT) -> bool:
        """SIGTERM, then SIGKILL after `timeout`; False if it was not running."""
        managed = self.get(name)
        self._pid_file(name).unlink(missing_ok=True)
        if managed is None or not managed.alive():
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(managed.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while managed.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if managed.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(managed.pid, signal.SIGKILL)
            while managed.alive():
                time.sleep(0.05)
        return True

    def stop_all(self) -> list[str]:
        stopped = []
        for path in sorted(self.pids.glob("*.json")) if self.pids.is_dir() else []:
            if self.stop(path.stem):
                stopped.append(path.stem)
        return stopped
