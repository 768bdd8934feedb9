"""The demo's deployment program with real processes: one port per stage, replicas sharing it, rollback, down.

It runs as the command connector runs it: a subprocess with the triggered event in a file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local._process import free_port
from examples.sockshop.deploy import DeployHome, Environment
from examples.sockshop.deploy.processes import is_alive

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[DeployHome]:
    deploy_home = DeployHome(tmp_path / "deployments")
    deploy_home.write_environment(Environment(ports={"staging": free_port()}))
    yield deploy_home
    run(deploy_home, "down")


def run(home: DeployHome, command: str, event: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "examples.sockshop.deploy", "--home", str(home.path), command]
    if event is not None:
        event_file = home.path / "event.json"
        event_file.write_text(json.dumps(event))
        argv += ["--event", str(event_file)]
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def task(name: str, **data: Any) -> dict[str, Any]:
    return {"type": f"sh.keptn.event.{name}.triggered",
            "data": {"project": "sockshop", "stage": "staging", "service": "carts", **data}}


def deployment(version: str) -> dict[str, Any]:
    return task("deployment", configurationChange={"values": {"image": f"docker.io/keptnexamples/carts:{version}"}},
                deployment={"deploymentstrategy": "blue_green_service"})


def result_line(output: str) -> dict[str, Any]:
    found = [json.loads(line) for line in output.splitlines() if line.startswith('{"tidegate"')]
    assert len(found) == 1, output
    block: dict[str, Any] = found[0]["tidegate"]
    return block


def targets(home: DeployHome) -> list[str]:
    groups = json.loads(home.target_file("sockshop", "staging", "carts").read_text())
    return [target for group in groups for target in group["targets"]]


def served_version(url: str) -> str:
    version: str = httpx.get(url, timeout=5).json()["version"]
    return version


def test_blue_green_rollback_and_scaling_with_real_replicas(home: DeployHome) -> None:
    first = run(home, "run", deployment("0.11.1"))
    assert first.returncode == 0, first.stderr
    url = result_line(first.stdout)["deployment"]["deploymentURIsLocal"][0]
    assert served_version(url) == "0.11.1"
    assert run(home, "run", task("release")).returncode == 0

    slow = run(home, "run", deployment("0.11.2"))
    assert slow.returncode == 0, slow.stderr
    assert served_version(url) == "0.11.2"  # the canary alone serves the stage's port during tests
    back = run(home, "run", task("rollback"))
    assert back.returncode == 0, back.stderr
    assert "0.11.1 serves" in back.stdout
    assert served_version(url) == "0.11.1"

    scaled = run(home, "run", task("action", action={"action": "scaling", "value": "2"}))
    assert scaled.returncode == 0, scaled.stderr
    assert result_line(scaled.stdout)["scaling"] == {"version": "0.11.1", "replicasBefore": 1, "replicas": 3}
    metrics_ports = targets(home)
    assert len(metrics_ports) == 3

    # Replicas share the port: new connections spread over them, so scaling adds capacity for real.
    with httpx.Client(timeout=5) as client:
        for _ in range(60):
            assert client.get(f"{url}/orders", headers={"Connection": "close"}).status_code == 200
        counts = []
        for target in metrics_ports:
            text = client.get(f"http://{target}/metrics").text
            found = re.search(r'http_requests_total\{handler="/orders",status="200"\} ([0-9.]+)', text)
            counts.append(float(found.group(1)) if found else 0.0)
    assert sum(counts) == 60
    assert sum(1 for count in counts if count > 0) >= 2, counts

    refused = run(home, "run", task("action", action={"action": "scaling", "value": 1}))
    assert refused.returncode == 1
    assert "not a string integer" in refused.stderr + refused.stdout

    [state] = home.states()
    pids = [replica for replica in state.running]
    assert all(is_alive(replica) for replica in pids)
    stopped = run(home, "down")
    assert "stopped 3 replicas" in stopped.stdout
    assert not any(is_alive(replica) for replica in pids)
    assert targets(home) == []


def test_the_demo_supervisor_stops_exactly_what_it_started(tmp_path: Path) -> None:
    from deploy.demo.supervisor import ProcessFailed, Supervisor

    supervisor = Supervisor(tmp_path / "pids", tmp_path / "logs")
    sleeper = supervisor.start("sleeper", ["sleep", "60"], {"PATH": "/usr/bin:/bin"}, tmp_path)
    supervisor.start("quitter", ["sh", "-c", "echo bye; sleep 0.5; exit 3"], {"PATH": "/usr/bin:/bin"}, tmp_path)
    # A process that exits is reported with the end of its log (bounded wait for it to go).
    with pytest.raises(ProcessFailed, match="bye"):
        for _ in range(100):
            supervisor.check(["quitter"])
            time.sleep(0.1)
    assert [managed.name for managed in supervisor.running()] == ["sleeper"]
    # A pid file whose process is gone (or whose pid was reused) stops nothing.
    (tmp_path / "pids" / "ghost.json").write_text(json.dumps({"pid": sleeper.pid, "started": sleeper.started + 1,
                                                              "log": str(tmp_path / "ghost.log")}))
    assert not supervisor.stop("ghost")
    assert sleeper.alive()
    assert supervisor.stop_all() == ["sleeper"]
    assert not sleeper.alive()
    assert list((tmp_path / "pids").glob("*.json")) == []
