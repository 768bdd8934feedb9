"""The CLI end to end, as a team would use it from CI: a real broker, the sequencer and approver in a
`faust worker`, the gateway as `tidegate gateway`, scripted connectors, and `tidegate ...` commands in
subprocesses. A delivery goes dev -> staging -> production, waits for a human approval that
`tidegate approve` gives, and `tidegate watch` follows it and exits 0; a declined one exits 1."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.gateway import wait_gateway_ready
from tests.support.responder import TaskResponder
from tidegate.streams.settings import Settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SOCKSHOP = REPO / "examples" / "sockshop"
TOKEN = "cli-e2e-token-long-enough"
TIDEGATE = [sys.executable, "-c", "from tidegate.cli.main import main; main()"]
STEP_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Cli:
    env: dict[str, str]

    async def run(self, *args: str, timeout: float = STEP_TIMEOUT) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            *TIDEGATE, *args, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            raise AssertionError(f"`tidegate {' '.join(args)}` did not finish within {timeout:.0f} s") from None
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def ok(self, *args: str) -> str:
        code, out, err = await self.run(*args)
        assert code == 0, f"`tidegate {' '.join(args)}` exited {code}:\n{out}\n{err}"
        return out

    def start(self, *args: str) -> asyncio.Future[tuple[int, str, str]]:
        return asyncio.ensure_future(self.run(*args, timeout=STEP_TIMEOUT * 2))


@pytest.fixture
def stack(tidegate_settings: Settings, faust_worker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:  # type: ignore[no-untyped-def]
    """Worker (sequencer + approver) and gateway running; a Cli whose environment points at them."""
    monkeypatch.setenv("TIDEGATE_AGENTS", "sequencer,approver")
    worker = faust_worker("tidegate.agents.main:app", tidegate_settings)
    port = _free_port()
    base_env = {**os.environ, **tidegate_settings.as_env(), "TIDEGATE_HOME": str(tmp_path / "home"),
                "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    gateway_log = tmp_path / "gateway.log"
    with open(gateway_log, "wb") as log:
        gateway = subprocess.Popen(
            [*TIDEGATE, "gateway", "--port", str(port), "--history-url", f"sqlite:///{tmp_path / 'history.db'}"],
            cwd=REPO, env={**base_env, "TIDEGATE_API_TOKEN": TOKEN}, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_gateway_ready(f"http://127.0.0.1:{port}", gateway, gateway_log)
        yield Cli({**base_env, "TIDEGATE_ENDPOINT": f"http://127.0.0.1:{port}", "TIDEGATE_API_TOKEN": TOKEN,
                   "XDG_CONFIG_HOME": str(tmp_path / "config")})
        worker.assert_running()
        assert gateway.poll() is None, gateway_log.read_text(errors="replace")[-3000:]
    finally:
        gateway.terminate()
        try:
            gateway.wait(20)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait()


async def _wait_for_approval(cli: Cli, stage: str, context: str) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        out = await cli.ok("get", "approvals", "--project", "sockshop", "--stage", stage, "-o", "json")
        if any(a["shkeptncontext"] == context for a in json.loads(out)):
            return
        await asyncio.sleep(0.5)  # bounded poll of what a person would poll
    raise AssertionError(f"no open approval in {stage} for {context} within {STEP_TIMEOUT:.0f} s")


async def test_delivery_from_the_cli_to_production(stack: Cli, tidegate_settings: Settings, tmp_path: Path) -> None:
    cli = stack
    out = await cli.ok("auth")
    config = tmp_path / "config" / "tidegate" / "config.yaml"
    assert "authenticated" in out and config.exists()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    await cli.ok("create", "project", "sockshop", "--shipyard", str(SOCKSHOP / "shipyard.yaml"))
    code, _, err = await cli.run("create", "project", "sockshop", "--shipyard", str(SOCKSHOP / "shipyard.yaml"))
    assert code == 1 and "already exists" in err
    await cli.ok("create", "service", "carts", "--project", "sockshop")
    out = await cli.ok("add-resource", "--project", "sockshop", "--all-stages", "--service", "carts",
                       "--resource", str(SOCKSHOP / "slo.yaml"))
    assert out.count("added slo.yaml") == 3
    await cli.ok("add-resource", "--project", "sockshop", "--stage", "dev", "--service", "carts",
                 "--resource", str(SOCKSHOP / "prometheus" / "sli.yaml"), "--resourceUri", "prometheus/sli.yaml")
    stages = json.loads(await cli.ok("get", "stages", "--project", "sockshop", "-o", "json"))
    assert [s["stageName"] for s in stages] == ["dev", "staging", "production"]

    async with TaskResponder(tidegate_settings) as responder:
        responder.extra_data["evaluation"] = {"evaluation": {"score": 96.0, "result": "pass"}}
        triggered = await cli.ok("trigger", "delivery", "--project", "sockshop", "--service", "carts",
                                 "--image", "docker.io/keptnexamples/carts", "--tag", "0.13.1", "-o", "json")
        context = json.loads(triggered)["keptnContext"]
        watch = cli.start("watch", context, "--timeout", "200", "--settle", "2")

        await _wait_for_approval(cli, "production", context)
        assert not watch.done(), "watch must still be following while production waits for approval"
        approved = await cli.ok("approve", "--project", "sockshop", "--stage", "production", "--service", "carts")
        assert "approved carts in production" in approved

        code, out, err = await watch
        assert code == 0, f"watch exited {code}:\n{out}\n{err}"
        assert "passed" in out
        assert "production" in out and "deployment.finished" in out

    [state] = json.loads(await cli.ok("get", "sequences", "--project", "sockshop", "--keptn-context", context,
                                      "-o", "json"))
    assert state["state"] == "finished" and state["result"] == "pass"
    assert [(s["name"], s["state"]) for s in state["stages"]] == [
        ("dev", "succeeded"), ("staging", "succeeded"), ("production", "succeeded")]
    assert state["stages"][0]["image"] == "docker.io/keptnexamples/carts:0.13.1"
    deployments = json.loads(await cli.ok("get", "event", "deployment.finished", "--keptn-context", context))
    assert sorted(e["data"]["stage"] for e in deployments) == ["dev", "production", "staging"]
    evaluations = json.loads(await cli.ok("get", "evaluations", "--project", "sockshop", "-o", "json"))
    assert len(evaluations) == 2 and {e["data"]["stage"] for e in evaluations} == {"dev", "staging"}
    services = await cli.ok("get", "services", "--project", "sockshop", "--stage", "production")
    assert "docker.io/keptnexamples/carts:0.13.1" in services


async def test_a_declined_delivery_fails_the_watch(stack: Cli, tidegate_settings: Settings) -> None:
    cli = stack
    await cli.ok("create", "project", "sockshop", "--shipyard", str(SOCKSHOP / "shipyard.yaml"))
    await cli.ok("create", "service", "carts", "--project", "sockshop")
    async with TaskResponder(tidegate_settings):
        triggered = await cli.ok("trigger", "delivery", "--project", "sockshop", "--service", "carts",
                                 "--stage", "production", "--image", "carts:9", "-o", "json")
        context = json.loads(triggered)["keptnContext"]
        watch = cli.start("watch", context, "--timeout", "200", "--settle", "2", "-o", "json")
        await _wait_for_approval(cli, "production", context)
        await cli.ok("decline", "--project", "sockshop", "--stage", "production", "--keptn-context", context)
        code, out, err = await watch
    assert code == 1, f"watch exited {code}:\n{out}\n{err}"
    state = json.loads(out)
    assert state["result"] == "fail"
    # The decline failed production's delivery, and the rollback its selector fires ran after it.
    production = next(s for s in state["stages"] if s["name"] == "production")
    assert production["sequence"] == "rollback"
