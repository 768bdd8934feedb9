"""`make demo`, non-interactively, on a private topic prefix and free ports: the story's three outcomes.

The driver runs as `python -m deploy.demo` with the test session's broker; it leaves everything
running at the end (`--keep-running`) so the outcomes are also checked in Tidegate's own records
(gateway) and in what Prometheus measures, then `python -m deploy.demo down` must stop every process
it started.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.demo.supervisor import Supervisor
from examples.sockshop.deploy import DeployHome
from examples.sockshop.deploy.processes import is_alive

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT = 540


def down(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.demo", "down", "--home", str(home)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture
def demo_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "demo"
    yield home
    if (home / "run.json").exists():  # the test failed before its own `down`
        down(home)


def events(gateway: str, context: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{gateway}/api/mongodb-datastore/event", params={"keptnContext": context, "pageSize": 500},
                       timeout=10)
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()["events"]
    return found


def of_type(found: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [event for event in found if event["type"] == event_type]


@pytest.mark.timeout(DEMO_TIMEOUT + 240)
def test_the_demo_delivers_blocks_and_remediates(kafka_bootstrap: str, demo_home: Path, tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    played = subprocess.run(
        [sys.executable, "-m", "deploy.demo", "--non-interactive", "--keep-running", "--home", str(demo_home),
         "--kafka", kafka_bootstrap, "--prefix", f"t{uuid.uuid4().hex[:10]}.", "--free-ports",
         "--summary-json", str(summary_file)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=DEMO_TIMEOUT,
    )
    narration = played.stdout + played.stderr
    assert played.returncode == 0, f"the demo failed:\n{narration[-6000:]}"
    for headline in ("The project", "Delivering 0.11.1", "Delivering 0.11.2, a slow build", "Production under load",
                     "Summary", "/bridge"):
        assert headline in narration
    story = json.loads(summary_file.read_text())
    run = json.loads((demo_home / "run.json").read_text())
    gateway = f"http://127.0.0.1:{run['ports']['gateway']}"
    prometheus = f"http://127.0.0.1:{run['ports']['prometheus']}"

    # 1. 0.11.1 went all the way to production.
    good, slow = story["deliveries"]
    assert good["version"] == "0.11.1"
    assert [(r["stage"], r["result"]) for r in good["runs"] if r["sequence"] == "delivery"] == [
        ("dev", "pass"), ("staging", "pass"), ("production", "pass")]
    assert story["serving"]["production"].startswith("0.11.1 ")
    recorded = events(gateway, good["context"])
    [finished] = of_type(recorded, "sh.keptn.event.production.delivery.finished")
    assert finished["data"]["result"] == "pass"
    assert of_type(recorded, "sh.keptn.event.approval.finished")

    # 2. 0.11.2 was stopped by staging's quality gate and rolled back there; production never saw it.
    assert slow["version"] == "0.11.2"
    [gate] = [g for g in slow["gates"] if g["stage"] == "staging"]
    assert gate["result"] == "fail" and gate["score"] < 90
    assert any(v.startswith("Response time P95") for v in gate["violated"])
    recorded = events(gateway, slow["context"])
    [evaluation] = [e for e in of_type(recorded, "sh.keptn.event.evaluation.finished")
                    if e["data"]["stage"] == "staging"]
    assert evaluation["data"]["result"] == "fail"
    [rollback] = of_type(recorded, "sh.keptn.event.staging.rollback.finished")
    assert rollback["data"]["result"] == "pass"
    assert not of_type(recorded, "sh.keptn.event.production.delivery.triggered")
    assert story["serving"]["staging"].startswith("0.11.1 ")
    assert story["serving"]["dev"].startswith("0.11.2 ")

    # 3. Production's problem was remediated by scaling out, and the problem was closed.
    remediation = story["remediation"]
    assert remediation["problem"] == "orders_response_time_p95"
    assert remediation["replicas"] and remediation["replicas"][-1] > 1
    assert remediation["closed"] is not None
    recorded = events(gateway, remediation["context"])
    actions = [e for e in of_type(recorded, "sh.keptn.event.action.finished") if e["data"]["result"] == "pass"]
    assert actions and actions[0]["data"]["scaling"]["replicasBefore"] == 1
    [closed] = of_type(recorded, "sh.keptn.events.problem")
    assert closed["data"]["State"] == "CLOSED"
    # The scaling is real: Prometheus scrapes every replica of production's job.
    query = 'count(up{job="carts-sockshop-production"} == 1)'
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10).json()
    assert int(answer["data"]["result"][0]["value"][1]) == remediation["replicas"][-1]

    # `down` stops every process the demo started.
    processes = Supervisor(demo_home / "pids", demo_home / "logs").running()
    assert {p.name for p in processes} == {"worker", "connectors", "gateway"}
    replicas = [r for state in DeployHome(demo_home / "deployments").states() for r in state.running]
    assert len(replicas) == 1 + 1 + remediation["replicas"][-1]
    stopped = down(demo_home)
    assert stopped.returncode == 0, stopped.stderr
    assert not any(p.alive() for p in processes)
    assert not any(is_alive(r) for r in replicas)
    assert "stopped Prometheus" in stopped.stdout and "stopped Alertmanager" in stopped.stdout
    assert not (demo_home / "run.json").exists()
