"""Waiting for a gateway process started by a test: ready when `/readyz` answers 200.

The wait ends at once when the process exits; otherwise it is bounded generously (a busy CI machine
starts a gateway and its Kafka clients slowly), and a timeout says what `/readyz` last answered, so a
failure names its reason (waiting for Kafka, loading configuration, a start being retried).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

READY_TIMEOUT = 180.0


def wait_gateway_ready(endpoint: str, process: subprocess.Popen[bytes], log: Path,
                       timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"tidegate gateway exited {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            answer = httpx.get(f"{endpoint.rstrip('/')}/readyz", timeout=5)
        except httpx.HTTPError as error:
            last = f"{type(error).__name__}: {error}"
        else:
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text}"
        time.sleep(0.3)  # readiness is only observable by asking
    raise AssertionError(f"tidegate gateway was not ready within {timeout:.0f} s; /readyz last answered {last}:\n"
                         f"{log.read_text(errors='replace')[-3000:]}")
