"""The real Keptn v1 CLI (keptn/keptn 1.4.5, unmodified) against Tidegate, as a Keptn user drives it.

One stack per module (a real broker, the sequencer, approver and evaluator in a `faust worker`,
`tidegate gateway`, `tidegate connector prometheus`); every test uses its own project, so no state
leaks between tests. A scripted responder plays the execution plane (deployment, test, release,
rollback, get-sli), as the user's own tools would. The CLI gets its own HOME with its version and
kube-context checks off before its first run, so it talks only to the gateway on 127.0.0.1.

The binary comes from ../shared/tools/keptn (see its README; TIDEGATE_KEPTN_CLI overrides the path);
without it the module is skipped: Keptn's CLI module is not on the Go module proxy, so a machine
without the prebuilt tools cannot build it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.gateway import wait_gateway_ready
from tests.support.responder import TaskResponder
from tidegate.streams.app import worker_command
from tidegate.streams.kafka import delete_topics, provision_topics
from tidegate.streams.secrets import lookup_secret
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SOCKSHOP = REPO / "examples" / "sockshop"
KEPTN_ARCHIVE = REPO.parent / "shared" / "tools" / "keptn" / "keptn-1.4.5-linux-amd64.gz"
TOKEN = "keptn-cli-integration-token"
TIDEGATE = [sys.executable, "-c", "from tidegate.cli.main import main; main()"]
STEP_TIMEOUT = 120.0
SLI_PROVIDER = "tidegate-test"  # every evaluation asks get-sli of the responder (unless a project configures Prometheus)
SECRET_VALUE = "s3cr3t-value-never-shown-0815"
# Not docker.io/ or quay.io/: for those the CLI asks the registry on the internet whether the tag exists.
IMAGE = "registry.example/keptnexamples/carts"


def _keptn_archive() -> Path | None:
    override = os.environ.get("TIDEGATE_KEPTN_CLI")
    if override:
        return Path(override)
    return KEPTN_ARCHIVE if KEPTN_ARCHIVE.is_file() else None


if _keptn_archive() is None:
    pytest.skip(
        f"the Keptn 1.4.5 CLI binary is not at {KEPTN_ARCHIVE} (../shared/tools/keptn): Keptn's CLI module is not "
        "on the Go module proxy, so it cannot be built here; set TIDEGATE_KEPTN_CLI to a keptn binary to run these",
        allow_module_level=True,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Keptn:
    """The keptn binary with its own HOME, authenticated against the gateway."""

    binary: Path
    home: Path
    endpoint: str

    async def run(self, *args: str, stdin: str = "", timeout: float = STEP_TIMEOUT) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            str(self.binary), *args, env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"`keptn {' '.join(args)}` did not finish within {timeout:.0f} s") from None
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def ok(self, *args: str, stdin: str = "") -> str:
        code, out, err = await self.run(*args, stdin=stdin)
        assert code == 0 and "Error:" not in err, f"`keptn {' '.join(args)}` exited {code}:\n{out}\n{err}"
        return out + err

    async def dialog(self, *args: str, answers: list[tuple[str, str]], timeout: float = STEP_TIMEOUT) -> str:
        """Run an interactive command: each answer is typed once its prompt has been printed (the CLI
        reads every prompt with a fresh buffered reader, so answers sent early would be lost)."""
        process = await asyncio.create_subprocess_exec(
            str(self.binary), *args, env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO,
        )
        assert process.stdin is not None and process.stdout is not None
        seen = ""
        pending = list(answers)

        async def converse() -> None:
            nonlocal seen
            assert process.stdin is not None and process.stdout is not None
            while chunk := await process.stdout.read(4096):
                seen += chunk.decode(errors="replace")
                if pending and pending[0][0] in seen:
                    prompt, answer = pending.pop(0)
                    seen = seen.replace(prompt, f"{prompt} <{answer}>", 1)
                    process.stdin.write(f"{answer}\n".encode())
                    await process.stdin.drain()
            await process.wait()

        try:
            await asyncio.wait_for(converse(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"`keptn {' '.join(args)}` did not finish within {timeout:.0f} s:\n{seen}") from None
        assert process.returncode == 0 and not pending, f"`keptn {' '.join(args)}` exited {process.returncode}:\n{seen}"
        return seen

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.endpoint, headers={"x-token": TOKEN}, timeout=30)


@dataclass
class Stack:
    settings: Settings
    keptn: Keptn
    home: Path
    rules_file: Path


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("keptn-cli")
    archive = _keptn_archive()
    assert archive is not None
    binary = root / "keptn"
    if archive.suffix == ".gz":
        binary.write_bytes(gzip.decompress(archive.read_bytes()))
    else:
        shutil.copyfile(archive, binary)
    binary.chmod(0o755)
    keptn_home = root / "keptn-home"
    (keptn_home / ".keptn").mkdir(parents=True)
    # Written before the first run: otherwise the CLI asks get.keptn.sh for versions and looks for a kubeconfig.
    (keptn_home / ".keptn" / "config").write_text(json.dumps(
        {"automatic_version_check": False, "current-context": "", "kube_context_check": False}))

    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}.", partitions=4,
                        store="memory://", data_dir=root / "faust", web_enabled=False)
    report = provision_topics(settings, TopicRegistry.from_settings(settings).specs())
    assert report.ok, report.problems
    home = root / "home"
    rules_file = root / "prometheus" / "rules.yml"
    env = {**os.environ, **settings.as_env(), "TIDEGATE_HOME": str(home), "PYTHONPATH": str(REPO),
           "PYTHONUNBUFFERED": "1"}
    env.pop("TIDEGATE_SECRETS_BACKEND", None)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with open(root / "worker.log", "wb") as log:
            processes.append(subprocess.Popen(
                worker_command("tidegate.agents.main:app", settings), cwd=REPO, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
                env={**env, "TIDEGATE_AGENTS": "sequencer,approver,evaluator",
                     "TIDEGATE_DEFAULT_SLI_PROVIDER": SLI_PROVIDER}))
        with open(root / "connector.log", "wb") as log:
            processes.append(subprocess.Popen(
                [*TIDEGATE, "connector", "prometheus"], cwd=REPO, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env={**env, "TIDEGATE_PROMETHEUS_RULES_FILE": str(rules_file)}))
        port = _free_port()
        endpoint = f"http://127.0.0.1:{port}"
        gateway_log = root / "gateway.log"
        with open(gateway_log, "wb") as log:
            gateway = subprocess.Popen(
                [*TIDEGATE, "gateway", "--port", str(port), "--history-url", f"sqlite:///{root / 'history.db'}"],
                cwd=REPO, env={**env, "TIDEGATE_API_TOKEN": TOKEN}, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
            processes.append(gateway)
        wait_gateway_ready(endpoint, gateway, gateway_log)
        keptn = Keptn(binary, keptn_home, endpoint)
        code, out, err = asyncio.run(keptn.run("auth", "--endpoint", endpoint, "--api-token", TOKEN))
        assert code == 0 and "Successfully authenticated" in out + err, out + err
        yield Stack(settings, keptn, home, rules_file)
        for process in processes:
            assert process.poll() is None, f"{process.args} exited {process.returncode}; logs in {root}"
    finally:
        for process in reversed(processes):
            _stop(process)
        delete_topics(settings, settings.topic_prefix)


def _project() -> str:
    return f"p{uuid.uuid4().hex[:8]}"


async def _create(keptn: Keptn, project: str, service: str = "carts") -> None:
    await keptn.ok("create", "project", project, "--shipyard", str(SOCKSHOP / "shipyard.yaml"))
    await keptn.ok("create", "service", service, "--project", project)


def _context(output: str) -> str:
    found = re.search(r"[Kk]eptn\s*[Cc]ontext:?\s*([0-9a-f-]{36})", output)
    assert found, f"no keptnContext in:\n{output}"
    return found.group(1)


async def _until(what: str, probe: Any, timeout: float = STEP_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await probe()
        if found:
            return found
        await asyncio.sleep(0.5)  # bounded poll of what a user would poll
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


def _events(keptn: Keptn, **params: str) -> list[dict[str, Any]]:
    with keptn.api() as api:
        answer = api.get("/api/mongodb-datastore/event", params={"pageSize": "100", **params})
    answer.raise_for_status()
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def _deployed(keptn: Keptn, project: str) -> dict[str, str | None]:
    with keptn.api() as api:
        stages = api.get(f"/api/controlPlane/v1/project/{project}").json()["stages"]
    return {s["stageName"]: s["services"][0].get("deployedImage") for s in stages}


# --------------------------------------------------------------------- the commands that worked before


async def test_auth_status_and_metadata(stack: Stack) -> None:
    out = await stack.keptn.ok("status")
    assert "Successfully authenticated" in out
    with stack.keptn.api() as api:
        metadata = api.get("/api/v1/metadata").json()
    assert metadata["automaticprovisioning"] is True and metadata["keptnversion"].startswith("tidegate-")


async def test_projects_services_stages_and_files_without_a_git_upstream(stack: Stack) -> None:
    """Points 1, 2 and 7: no --git-* flags needed (given ones are ignored), project-level files, dates."""
    keptn, project, other = stack.keptn, _project(), _project()
    await _create(keptn, project)
    out = await keptn.ok("create", "project", other, "--shipyard", str(SOCKSHOP / "shipyard.yaml"),
                         "--git-user", "someone", "--git-token", "not-used-token", "--git-remote-url",
                         "http://127.0.0.1:9/unused.git")
    assert "Project created successfully" in out

    out = await keptn.ok("add-resource", "--project", project, "--resource", str(SOCKSHOP / "slo.yaml"),
                         "--resourceUri", "slo.yaml")
    assert "uploaded" in out.lower()
    await keptn.ok("add-resource", "--project", project, "--stage", "dev", "--resource",
                   str(SOCKSHOP / "remediation.yaml"), "--resourceUri", "remediation.yaml")
    await keptn.ok("add-resource", "--project", project, "--stage", "dev", "--service", "carts", "--resource",
                   str(SOCKSHOP / "prometheus" / "sli.yaml"), "--resourceUri", "prometheus/sli.yaml")
    with keptn.api() as api:
        base = f"/api/resource-service/v1/project/{project}"
        assert api.get(f"{base}/resource/slo.yaml").status_code == 200
        assert api.get(f"{base}/stage/dev/resource/remediation.yaml").status_code == 200
        assert api.get(f"{base}/stage/dev/service/carts/resource/prometheus%2Fsli.yaml").status_code == 200

    [shown] = json.loads(await _json_out(keptn, "get", "project", project, "-o", "json"))
    created = datetime.fromtimestamp(int(shown["creationDate"]) / 1e9, UTC)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 3600
    table = await keptn.ok("get", "project", project)
    assert "Failed to parse" not in table and created.strftime("%Y-%m-%d") in table
    services = await keptn.ok("get", "services", "carts", "--project", project)
    assert "Failed to parse" not in services and services.count(created.strftime("%Y-%m-%d")) == 3
    stages = await keptn.ok("get", "stages", "--project", project)
    assert all(stage in stages for stage in ("dev", "staging", "production"))

    await keptn.ok("delete", "service", "carts", "--project", project, stdin="y\n")
    assert "carts" not in await keptn.ok("get", "services", "--project", project)
    await keptn.ok("delete", "project", other, stdin="y\n")
    code, out, err = await keptn.run("get", "project", other)
    assert f"No project {other}" in out + err or code != 0


async def _json_out(keptn: Keptn, *args: str) -> str:
    """The JSON part of a command's standard output (the CLI prints notices before it)."""
    code, out, err = await keptn.run(*args)
    assert code == 0, f"`keptn {' '.join(args)}` exited {code}:\n{out}\n{err}"
    start = min(i for i in (out.find("["), out.find("{")) if i >= 0)
    text = out[start:]
    return text if text.lstrip().startswith("[") else f"[{text}]"


async def test_delivery_approvals_and_the_deployed_image(stack: Stack) -> None:
    """Point 6 through the commands that already worked: trigger delivery, approve and decline with
    `keptn send event approval.finished`, get event; a rollback and a declined approval leave the
    image that really runs."""
    keptn, project = stack.keptn, _project()
    await _create(keptn, project)
    async def delivery(tag: str, rules: list[str], decide: str | None) -> str:
        async with TaskResponder(stack.settings, rules) as responder:
            responder.extra_data["test"] = _test_window()
            out = await keptn.ok("trigger", "delivery", "--project", project, "--service", "carts",
                                 "--image", f"{IMAGE}:{tag}")
            context = _context(out)
            if decide == "approve":  # with --id the CLI approves at once
                approval = await _until("the production approval", lambda: _open_approval(keptn, project, context))
                await keptn.ok("send", "event", "approval.finished", "--project", project, "--stage", "production",
                               "--id", approval)
            elif decide == "decline":  # with --service it lists the open approvals and asks
                await _until("the production approval", lambda: _open_approval(keptn, project, context))
                await keptn.dialog("send", "event", "approval.finished", "--project", project, "--stage",
                                   "production", "--service", "carts",
                                   answers=[("Select the option", "1"), ("(a)pprove or (d)ecline", "d")])
            await _until(f"the end of delivery {tag}", lambda: _finished(keptn, project, context))
        return context

    first = await delivery("0.11.1", ["evaluation=silent"], "approve")
    assert _deployed(keptn, project) == {stage: f"{IMAGE}:0.11.1"
                                         for stage in ("dev", "staging", "production")}
    await delivery("0.11.2", ["evaluation=silent"], "decline")  # production declined: it keeps 0.11.1
    assert _deployed(keptn, project)["production"] == f"{IMAGE}:0.11.1"
    assert _deployed(keptn, project)["staging"] == f"{IMAGE}:0.11.2"
    # 0.11.3 fails its tests in staging: staging's rollback returns it to 0.11.2; dev runs 0.11.3.
    await delivery("0.11.3", ["evaluation=silent", "test=fail@staging"], None)
    assert _deployed(keptn, project) == {"dev": f"{IMAGE}:0.11.3",
                                         "staging": f"{IMAGE}:0.11.2",
                                         "production": f"{IMAGE}:0.11.1"}
    shown = json.loads(await _json_out(keptn, "get", "project", project, "-o", "json"))[0]
    assert {s["stageName"]: s["services"][0].get("deployedImage") for s in shown["stages"]}["production"] \
        == f"{IMAGE}:0.11.1"
    deployments = json.loads(await _json_out(keptn, "get", "event", "sh.keptn.event.deployment.finished", "--keptn-context", first,
                                              "--project", project))
    assert sorted(e["data"]["stage"] for e in deployments) == ["dev", "production", "staging"]


def _test_window() -> dict[str, Any]:
    """What a test tool reports in test.finished (Keptn's `test.start`/`test.end`): the window the
    evaluation after it scores. Tidegate, like Keptn, takes it from the execution plane."""
    end = datetime.now(UTC)
    return {"test": {"start": (end - timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
                     "end": end.isoformat().replace("+00:00", "Z")}}


async def _open_approval(keptn: Keptn, project: str, context: str) -> str | None:
    with keptn.api() as api:
        answer = api.get("/api/controlPlane/v1/event/triggered/sh.keptn.event.approval.triggered",
                         params={"project": project, "stage": "production"})
    found = [e["id"] for e in answer.json()["events"] if e["shkeptncontext"] == context]
    return found[0] if found else None


async def _finished(keptn: Keptn, project: str, context: str) -> bool:
    with keptn.api() as api:
        states = api.get(f"/api/controlPlane/v1/sequence/{project}", params={"keptnContext": context}).json()["states"]
    if not states or states[0]["state"] not in ("finished", "aborted"):
        return False
    # Follow-up sequences (a rollback) belong to the same context: wait until none is open.
    stages = states[0].get("stages") or []
    return all(stage.get("state") not in ("triggered", "started", "waiting", "paused") for stage in stages)


async def test_evaluation_send_event_and_get_event(stack: Stack) -> None:
    keptn, project = stack.keptn, _project()
    await _create(keptn, project)
    async with TaskResponder(stack.settings, ["evaluation=silent"]):
        out = await keptn.ok("trigger", "evaluation", "--project", project, "--stage", "dev", "--service", "carts",
                             "--timeframe", "5m")
        context = _context(out)
        finished = await _until("evaluation.finished", lambda: _events_async(
            keptn, keptnContext=context, type="sh.keptn.event.evaluation.finished"))
    assert finished[0]["data"]["result"] == "pass"  # no SLO: "no evaluation performed", as Keptn
    shown = json.loads(await _json_out(keptn, "get", "event", "sh.keptn.event.evaluation.finished", "--keptn-context", context,
                                       "--project", project))
    assert shown[0]["data"]["result"] == "pass"

    event = {"type": "sh.keptn.log.error", "source": "keptn-cli-test", "specversion": "1.0",
             "data": {"project": project, "message": "sent with keptn send event"}}
    event_file = stack.home.parent / f"{project}-event.json"
    event_file.write_text(json.dumps(event))
    out = await keptn.ok("send", "event", "--file", str(event_file))
    sent = _context(out)
    found = await _until("the sent event", lambda: _events_async(keptn, keptnContext=sent))
    assert found[0]["data"]["message"] == "sent with keptn send event"


async def _events_async(keptn: Keptn, **params: str) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_events, keptn, **params)


async def test_pause_resume_and_abort(stack: Stack) -> None:
    keptn, project = stack.keptn, _project()
    await _create(keptn, project)
    async with TaskResponder(stack.settings, ["evaluation=silent", "test=hang@dev"]):
        context = _context(await keptn.ok("trigger", "delivery", "--project", project, "--service", "carts",
                                          "--image", f"{IMAGE}:1"))
        await _until("the hanging test", lambda: _events_async(keptn, keptnContext=context,
                                                                type="sh.keptn.event.test.started"))
        for verb in ("pause", "resume", "abort"):
            out = await keptn.ok(verb, "sequence", "--project", project, "--keptn-context", context)
            assert "error" not in out.lower()
        await _until("the abort", lambda: _finished(keptn, project, context))
    with keptn.api() as api:
        [state] = api.get(f"/api/controlPlane/v1/sequence/{project}", params={"keptnContext": context}).json()["states"]
    assert state["state"] == "aborted"


# --------------------------------------------------------------------- what did not work before


async def test_configure_monitoring_prometheus(stack: Stack) -> None:
    """Point 3: the prometheus connector answers; the CLI prints its message; the rules are written."""
    keptn, project = stack.keptn, _project()
    await _create(keptn, project)
    for path, uri in ((SOCKSHOP / "slo.yaml", "slo.yaml"), (SOCKSHOP / "remediation.yaml", "remediation.yaml"),
                      (SOCKSHOP / "prometheus" / "sli.yaml", "prometheus/sli.yaml")):
        await keptn.ok("add-resource", "--project", project, "--stage", "production", "--service", "carts",
                       "--resource", str(path), "--resourceUri", uri)
    out = await keptn.ok("configure", "monitoring", "prometheus", "--project", project, "--service", "carts")
    assert f"Prometheus is now the SLI provider of project {project}" in out, out
    assert f"carts {project}-production alerts" in out
    groups = yaml.safe_load(stack.rules_file.read_text())["groups"]
    [group] = [g for g in groups if project in g["name"]]
    assert {rule["labels"]["project"] for rule in group["rules"]} == {project}
    replies = _events(keptn, project=project)
    assert {"sh.keptn.event.configure-monitoring.started", "sh.keptn.event.configure-monitoring.finished"} <= {
        e["type"] for e in replies}

    _code, out, err = await keptn.run("configure", "monitoring", "prometheus", "--project", "no-such-project",
                                      "--service", "carts")
    assert "no-such-project" in out + err and "does not exist" in out + err


async def test_secrets(stack: Stack) -> None:
    """Point 4: create, get, update, delete; values never shown; connectors find them in the store."""
    keptn, name = stack.keptn, f"s-{uuid.uuid4().hex[:8]}"
    out = await keptn.ok("create", "secret", name, f"--from-literal=token={SECRET_VALUE}", "--from-literal=user=me")
    assert f"Secret {name} created successfully" in out
    listed = await keptn.ok("get", "secret", "-o", "json")
    assert name in listed and SECRET_VALUE not in listed
    [entry] = [s for s in json.loads(listed[listed.index("{"):])["secrets"] if s["name"] == name]
    assert entry["keys"] == ["token", "user"] and entry["scope"] == "keptn-default"
    # The gateway's store, as a connector on the same machine resolves `secretRef: {name, key: token}`.
    environ = {"TIDEGATE_HOME": str(stack.home)}
    assert lookup_secret(name, "token", environ=environ) == SECRET_VALUE
    secrets_file = stack.home / "secrets.json"
    assert secrets_file.stat().st_mode & 0o077 == 0

    await keptn.ok("update", "secret", name, "--from-literal=token=rotated-value")
    assert lookup_secret(name, "token", environ=environ) == "rotated-value"
    assert lookup_secret(name, "user", environ=environ) is None  # update replaces the data, as Keptn
    await keptn.ok("delete", "secret", name)
    assert lookup_secret(name, "token", environ=environ) is None
    code, out, err = await keptn.run("delete", "secret", name)
    assert code != 0 and f"secret '{name}' does not exist" in out + err

    # Never in a log (the gateway's, the worker's, the connector's) nor on a topic.
    log_text = "".join(p.read_text(errors="replace") for p in stack.home.parent.glob("*.log"))
    assert SECRET_VALUE not in log_text
    from tidegate.streams.kafka import read_to_end

    topics = TopicRegistry.from_settings(stack.settings)
    for topic in (topics.events, topics.audit, topics.resources, topics.dlq):
        async for batch in read_to_end(stack.settings, topic, timeout=30):
            assert not [c for c in batch if SECRET_VALUE.encode() in (c.record.value or b"")], topic


async def test_watch_prints_each_event_once(stack: Stack) -> None:
    """Point 5: `keptn get event --watch` asks with fromTime = the newest event it printed; the
    store treats it as exclusive, so nothing is printed twice."""
    keptn, project = stack.keptn, _project()
    await _create(keptn, project)
    async with TaskResponder(stack.settings, ["evaluation=silent"]):
        context = _context(await keptn.ok("trigger", "evaluation", "--project", project, "--stage", "dev",
                                          "--service", "carts", "--timeframe", "5m"))
        await _until("evaluation.finished", lambda: _events_async(
            keptn, keptnContext=context, type="sh.keptn.event.evaluation.finished"))
    code, out, err = await keptn.run("get", "event", "sh.keptn.event.evaluation.finished", "--keptn-context", context,
                                     "--project", project, "--watch", "--watch-time", "12", timeout=60)
    assert code == 0, out + err
    ids = re.findall(r'"id":\s*"([0-9a-f-]{36})"', out)
    assert ids, out
    assert len(ids) == len(set(ids)), f"events printed more than once:\n{out}"


async def test_errors_answer_keptns_format(stack: Stack) -> None:
    """Point 8: the CLI prints the message of `{code, message}`, for unknown routes too."""
    keptn = stack.keptn
    code, out, err = await keptn.run("create", "service", "carts", "--project", "no-such-project")
    assert code != 0 and "no-such-project" in out + err and "does not exist" in out + err
    with keptn.api() as api:
        for method, path in (("GET", "/api/nothing"), ("POST", "/api/controlPlane/v1/nothing"),
                             ("GET", "/api/resource-service/v1/project/x/stage/y/service")):
            answer = api.request(method, path)
            assert answer.status_code == 404
            assert set(answer.json()) == {"code", "message"} and answer.json()["code"] == 404


async def test_a_quality_gate_without_sli_values_reports_lighthouse_targets(stack: Stack) -> None:
    """Point 9: get-sli answers without values; every target is reported with its criterion's value."""
    keptn, project = stack.keptn, _project()
    await _create(keptn, project)
    await keptn.ok("add-resource", "--project", project, "--stage", "dev", "--service", "carts",
                   "--resource", str(SOCKSHOP / "slo.yaml"), "--resourceUri", "slo.yaml")
    async with TaskResponder(stack.settings, ["evaluation=silent"]):  # get-sli: pass, no indicatorValues
        context = _context(await keptn.ok("trigger", "evaluation", "--project", project, "--stage", "dev",
                                          "--service", "carts", "--timeframe", "5m"))
        await _until("evaluation.finished", lambda: _events_async(
            keptn, keptnContext=context, type="sh.keptn.event.evaluation.finished"))
    [finished] = json.loads(await _json_out(keptn, "get", "event", "sh.keptn.event.evaluation.finished", "--keptn-context", context,
                                            "--project", project))
    assert finished["data"]["result"] == "fail"
    results = {r["value"]["metric"]: r for r in finished["data"]["evaluation"]["indicatorResults"]}
    p95 = results["response_time_p95"]
    assert p95["status"] == "fail" and p95["value"]["success"] is False
    assert [(t["criteria"], t["targetValue"], t["violated"]) for t in p95["passTargets"]] == [
        ("<=+10%", 0, True), ("<0.5", 0.5, True)]
    assert [(t["criteria"], t["targetValue"]) for t in p95["warningTargets"]] == [("<=0.8", 0.8)]
    assert [(t["criteria"], t["targetValue"]) for t in results["error_rate"]["passTargets"]] == [("<=0.01", 0.01)]
