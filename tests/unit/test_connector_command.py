"""The command connector without Kafka: configuration, matching, environment, programs and outcomes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection
from pathlib import Path

import pytest
import yaml

from tidegate.connectors.command import (
    CommandConnector,
    CommandSettings,
    ConfigProblem,
    PlanError,
    matching_actions,
    parse_config,
    plan_task,
    program_allowed,
)
from tidegate.connectors.runtime import TaskContext
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.resources import Resource, ResourceStore
from tidegate.streams.secrets import FileSecretStore, SecretReader, task_scopes
from tidegate.streams.settings import Settings

PY = sys.executable
ALLOWED = CommandSettings(allow=[PY, "prog", "/nonexistent/deploy"])


def event(task: str = "deployment", **data: object) -> KeptnEvent:
    return KeptnEvent(
        id="trig-1", type=f"sh.keptn.event.{task}.triggered", shkeptncontext="ctx-9",
        data={"project": "sockshop", "stage": "dev", "service": "carts", **data},
    )


def store_with(files: dict[str, str], stage: str = "dev", service: str = "carts") -> ResourceStore:
    store = ResourceStore()
    for path, text in files.items():
        store.put(Resource.new("sockshop", path, text.encode(), stage=stage, service=service))
    return store


def config(*tasks: dict[str, object], events: list[dict[str, object]] | None = None) -> str:
    return yaml.safe_dump({"actions": [{
        "name": "act", "events": events or [{"name": "sh.keptn.event.deployment.triggered"}], "tasks": list(tasks),
    }]})


def context(store: ResourceStore, triggered: KeptnEvent, timeout: float = 30.0) -> TaskContext:
    return TaskContext(event=triggered, task="deployment", connector="command", resources=store,
                       settings=Settings(), timeout=timeout)


def test_events_match_by_regex_and_jsonpath() -> None:
    cfg = parse_config(Resource.new("p", "command/config.yaml", config(
        {"name": "t", "cmd": ["true"]},
        events=[{"name": r"sh\.keptn\.event\.(deployment|test)\.triggered",
                 "jsonpath": {"property": "$.data.deployment.deploymentstrategy", "match": "direct"}}],
    ).encode()))
    assert matching_actions(cfg, event(deployment={"deploymentstrategy": "direct"}))
    assert not matching_actions(cfg, event(deployment={"deploymentstrategy": "user_managed"}))
    assert not matching_actions(cfg, event("release", deployment={"deploymentstrategy": "direct"}))


def test_environment_comes_from_literals_the_event_and_secret_variables() -> None:
    cfg = parse_config(Resource.new("p", "command/config.yaml", config({
        "name": "t", "cmd": ["prog"], "args": ["--x"],
        "env": [{"name": "MODE", "value": "fast"},
                {"name": "IMAGE", "valueFrom": {"event": "$.data.configurationChange.values.image"}},
                {"name": "TOKEN", "valueFrom": {"secretEnv": "TIDEGATE_SECRET_DEMO_TOKEN"}}],
    }).encode()))
    triggered = event(configurationChange={"values": {"image": "carts:2"}})
    planned = plan_task(cfg.actions[0].tasks[0], triggered, "deployment",
                        SecretReader(environ={"TIDEGATE_SECRET_DEMO_TOKEN": "s3cret"}), "/tmp/x", ALLOWED.allow)
    assert planned.argv == ("prog", "--x")
    assert planned.env["MODE"] == "fast" and planned.env["IMAGE"] == "carts:2" and planned.env["TOKEN"] == "s3cret"
    assert planned.env["TIDEGATE_PROJECT"] == "sockshop" and planned.env["TIDEGATE_TRIGGERED_ID"] == "trig-1"
    assert planned.secrets == ("s3cret",)
    with pytest.raises(PlanError, match="TIDEGATE_SECRET_DEMO_TOKEN, which is not set"):
        plan_task(cfg.actions[0].tasks[0], triggered, "deployment", SecretReader(), "/tmp/x", ALLOWED.allow)
    with pytest.raises(PlanError, match=r"matches nothing"):
        plan_task(cfg.actions[0].tasks[0], event(), "deployment", SecretReader(environ={"TIDEGATE_SECRET_DEMO_TOKEN": "s"}),
                  "/tmp/x", ALLOWED.allow)


def test_a_bad_config_names_the_field() -> None:
    with pytest.raises(ConfigProblem, match=r"actions\[0\]\.tasks\[0\]\.cmd"):
        parse_config(Resource.new("p", "command/config.yaml", config({"name": "t", "cmd": []}).encode()))
    with pytest.raises(ConfigProblem, match="either `value` or `valueFrom`"):
        parse_config(Resource.new("p", "command/config.yaml", config(
            {"name": "t", "cmd": ["x"], "env": [{"name": "A"}]}).encode()))


def test_a_job_executor_config_is_converted() -> None:
    job = """
apiVersion: v2
actions:
  - name: Run locust
    events:
      - name: sh.keptn.event.test.triggered
        jsonpath: {property: $.data.test.teststrategy, match: locust}
    tasks:
      - name: Run locust smoke tests
        image: locustio/locust
        files: [locust/basic.py]
        cmd: [locust]
        args: [-f, /keptn/locust/basic.py]
        env:
          - {name: HOST, value: "$.data.deployment.deploymentURIsLocal[0]", valueFrom: event}
        maxPollDuration: 120
"""
    cfg = parse_config(Resource.new("p", "job/config.yaml", job.encode()))
    triggered = event("test", test={"teststrategy": "locust"}, deployment={"deploymentURIsLocal": ["http://carts:80"]})
    assert matching_actions(cfg, triggered)
    planned = plan_task(cfg.actions[0].tasks[0], triggered, "test", SecretReader(), "/tmp/task", ["locust"])
    assert planned.argv == ("locust", "-f", "/tmp/task/locust/basic.py")
    assert planned.env["HOST"] == "http://carts:80"
    assert planned.timeout == 120.0
    assert planned.files == ("locust/basic.py",)


async def test_exit_zero_passes_with_output_and_result_data(tmp_path: Path) -> None:
    script = ("import json, os; e = json.load(open(os.environ['TIDEGATE_EVENT_FILE']));"
              "print('deployed', e['data']['service'], os.environ['GREETING']);"
              "print(json.dumps({'tidegate': {'deployment': {'deploymentURIsLocal': ['http://127.0.0.1:8080']}}}))")
    store = store_with({"command/config.yaml": config(
        {"name": "deploy", "cmd": [PY, "-c", script], "env": [{"name": "GREETING", "value": "hello"}]})})
    connector = CommandConnector(store, tasks=["deployment"], settings=ALLOWED, environ={})
    triggered = event()
    assert connector.wants(triggered)
    outcome = await connector.run(context(store, triggered))
    assert (outcome.status.value, outcome.result.value) == ("succeeded", "pass")
    assert "deployed carts hello" in outcome.message
    assert outcome.data == {"deployment": {"deploymentURIsLocal": ["http://127.0.0.1:8080"]}}


async def test_non_zero_exit_fails_and_stops_the_next_task() -> None:
    store = store_with({"command/config.yaml": config(
        {"name": "first", "cmd": [PY, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(4)"]},
        {"name": "second", "cmd": [PY, "-c", "print('should not run')"]},
    )})
    outcome = await CommandConnector(store, settings=ALLOWED, environ={}).run(context(store, event()))
    assert (outcome.status.value, outcome.result.value) == ("succeeded", "fail")
    assert "first: exit 4" in outcome.message and "boom" in outcome.message
    assert "should not run" not in outcome.message


async def test_a_program_that_cannot_start_is_errored_and_secrets_are_masked() -> None:
    store = store_with({"command/config.yaml": config({"name": "t", "cmd": ["/nonexistent/deploy"]})})
    outcome = await CommandConnector(store, settings=ALLOWED, environ={}).run(context(store, event()))
    assert outcome.status.value == "errored"
    assert "/nonexistent/deploy" in outcome.message
    leaky = store_with({"command/config.yaml": config({
        "name": "t", "cmd": [PY, "-c", "import os; print('token is', os.environ['T'])"],
        "env": [{"name": "T", "valueFrom": {"secretEnv": "TIDEGATE_SECRET_TOK"}}]})})
    masked = await CommandConnector(leaky, settings=ALLOWED, environ={"TIDEGATE_SECRET_TOK": "hunter2"}).run(context(leaky, event()))
    assert "hunter2" not in masked.message and "token is ***" in masked.message


async def test_files_are_copied_from_resources_into_the_working_directory() -> None:
    store = store_with({
        "command/config.yaml": config({"name": "t", "cmd": [PY, "command/hello.py"], "files": ["command/hello.py"]}),
        "command/hello.py": "print('hello from a resource')",
    })
    outcome = await CommandConnector(store, settings=ALLOWED, environ={}).run(context(store, event()))
    assert outcome.result.value == "pass" and "hello from a resource" in outcome.message
    missing = store_with({"command/config.yaml": config({"name": "t", "cmd": [PY, "x.py"], "files": ["x.py"]})})
    outcome = await CommandConnector(missing, settings=ALLOWED, environ={}).run(context(missing, event()))
    assert outcome.status.value == "errored" and "needs the file x.py" in outcome.message


def test_without_config_or_with_a_broken_one_the_connector_leaves_the_task_alone() -> None:
    assert not CommandConnector(ResourceStore(), settings=ALLOWED, environ={}).wants(event())
    broken = store_with({"command/config.yaml": "actions: [{name: x}]"})
    assert not CommandConnector(broken, settings=ALLOWED, environ={}).wants(event())


async def test_a_program_timeout_is_errored() -> None:
    store = store_with({"command/config.yaml": config(
        {"name": "slow", "cmd": [PY, "-c", "import time; time.sleep(30)"], "timeout": "1s"})})
    outcome = await CommandConnector(store, settings=ALLOWED, environ={}).run(context(store, event()))
    assert outcome.status.value == "errored" and "timed out after 1 s" in outcome.message


def test_result_lines_must_be_json_objects() -> None:
    from tidegate.connectors.command import result_data

    data, problems = result_data(['{"tidegate": {"a": {"b": 1}}}', '{"tidegate": {"a": {"c": 2}}}',
                                  '{"tidegate": [1]}', '{"tidegate": nope'])
    assert data == {"a": {"b": 1, "c": 2}}
    assert len(problems) == 2
    assert json.dumps(data)


# --- what a resource author cannot make the connector do (issue 16) ---------------------------------


async def test_programs_are_refused_unless_the_operator_allows_them(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = f"open({str(marker)!r}, 'w').write('ran')"
    for allow, cmd in (([], [PY, "-c", script]), ([PY], ["sh", "-c", f"touch {marker}"]),
                       ([PY], ["/bin/sh", "-c", f"touch {marker}"]), (["python3"], ["./python3", "-c", script])):
        store = store_with({"command/config.yaml": config({"name": "t", "cmd": cmd})})
        outcome = await CommandConnector(store, settings=CommandSettings(allow=allow), environ={}).run(
            context(store, event()))
        assert outcome.status.value == "errored", outcome.message
        assert "TIDEGATE_COMMAND_ALLOW" in outcome.message and repr(cmd[0]) in outcome.message
    assert not marker.exists()
    assert "it is empty, so nothing runs" in outcome.message or "it lists python3" in outcome.message
    assert program_allowed("/usr/bin/../bin/sh", ["/usr/bin/sh"]) and not program_allowed("sh", ["/usr/bin/sh"])
    with pytest.raises(ValueError, match="neither a program name nor an absolute path"):
        CommandSettings(allow=["bin/sh"])


def test_secret_env_reads_only_tidegate_secret_variables() -> None:
    for variable in ("TIDEGATE_API_TOKEN", "TIDEGATE_KAFKA_SASL_PASSWORD", "HOME", "TIDEGATE_SECRET_"):
        text = config({"name": "t", "cmd": ["prog"], "env": [{"name": "T", "valueFrom": {"secretEnv": variable}}]})
        with pytest.raises(ConfigProblem, match="must name a variable starting with TIDEGATE_SECRET_"):
            parse_config(Resource.new("p", "command/config.yaml", text.encode()))


def test_the_working_directory_and_files_stay_inside_the_task_directory() -> None:
    for task in ({"name": "t", "cmd": ["prog"], "workingDir": "/etc"},
                 {"name": "t", "cmd": ["prog"], "workingDir": "a/../../.."},
                 {"name": "t", "cmd": ["prog"], "files": ["../../etc/passwd"]}):
        with pytest.raises(ConfigProblem, match="must be a relative path inside the task's directory"):
            parse_config(Resource.new("p", "command/config.yaml", config(task).encode()))
    job = ("actions:\n  - name: a\n    events: [{name: sh.keptn.event.test.triggered}]\n    tasks:\n"
           "      - {name: t, image: x, cmd: [prog], workingDir: /keptn/sub}\n")
    assert parse_config(Resource.new("p", "job/config.yaml", job.encode())).actions[0].tasks[0].workingDir == "sub"
    with pytest.raises(ConfigProblem, match="workingDir '/tmp' must be a relative path"):
        parse_config(Resource.new("p", "job/config.yaml", job.replace("/keptn/sub", "/tmp").encode()))


async def test_a_symlink_cannot_lead_the_working_directory_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store = store_with({"command/config.yaml": config(
        {"name": "link", "cmd": [PY, "-c", f"import os; os.symlink({str(outside)!r}, 'out')"]},
        {"name": "escape", "cmd": [PY, "-c", "open('pwned', 'w').write('x')"], "workingDir": "out"},
    )})
    outcome = await CommandConnector(store, settings=ALLOWED, environ={}).run(context(store, event()))
    assert outcome.status.value == "errored"
    assert "workingDir 'out' leads outside the task's directory" in outcome.message
    assert list(outside.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root (the non-root case: test_connector_program)")
async def test_programs_run_as_the_operator_s_user_cannot_read_the_connector_s_environment() -> None:
    store = store_with({"command/config.yaml": config({
        "name": "peek", "cmd": ["cat", f"/proc/{os.getpid()}/environ", "/proc/self/status"],
    })})
    settings = CommandSettings(allow=["cat"], user="nobody")
    outcome = await CommandConnector(store, settings=settings, environ={}).run(context(store, event()))
    assert (outcome.status.value, outcome.result.value) == ("succeeded", "fail")
    assert "Permission denied" in outcome.message
    assert "PATH=" not in outcome.message  # nothing of the parent's environment came through


STORED = "st0red-secret-value-7"


def _secret_store(tmp_path: Path) -> FileSecretStore:
    secrets = FileSecretStore(tmp_path / "secrets.json")
    secrets.create("demo", "sockshop", {"token": STORED})
    secrets.create("locust-secret", "keptn-default", {"HOST": "http://carts:8080", "FILE": "basic.py"})
    secrets.create("bank-db", "bank", {"password": "bank-" + STORED})
    return secrets


async def test_secret_refs_and_env_from_come_from_the_store_and_are_masked(tmp_path: Path) -> None:
    script = ("import os; print('token', os.environ['TOKEN'], 'port', os.environ['PORT'], 'host', os.environ['HOST'],"
              " 'file', os.environ['FILE'], 'project', os.environ['TIDEGATE_PROJECT'])")
    store = store_with({"command/config.yaml": config({
        "name": "t", "cmd": [PY, "-c", script],
        "envFrom": [{"secretRef": {"name": "locust-secret"}}],
        "env": [{"name": "TOKEN", "valueFrom": {"secretRef": {"name": "demo", "key": "token"}}},
                {"name": "PORT", "valueFrom": {"secretRef": {"name": "demo", "key": "port"}}}]})})
    environ = {"TIDEGATE_SECRET_DEMO_TOKEN": "from-env", "TIDEGATE_SECRET_DEMO_PORT": "8443"}
    connector = CommandConnector(store, settings=ALLOWED, environ=environ, secrets=_secret_store(tmp_path))
    outcome = await connector.run(context(store, event()))
    assert outcome.result.value == "pass", outcome.message
    # The store's value first, the operator's variable for a key the store lacks; all masked in the output.
    assert "token *** port *** host *** file *** project sockshop" in outcome.message
    assert STORED not in outcome.message and "8443" not in outcome.message


async def test_another_projects_secret_is_an_errored_task_naming_the_secret_and_key(tmp_path: Path) -> None:
    store = store_with({"command/config.yaml": config({
        "name": "t", "cmd": [PY, "-c", "print('ran')"],
        "env": [{"name": "PW", "valueFrom": {"secretRef": {"name": "bank-db", "key": "password"}}}]})})
    secrets = _secret_store(tmp_path)
    outcome = await CommandConnector(store, settings=ALLOWED, environ={}, secrets=secrets).run(context(store, event()))
    assert outcome.status.value == "errored"
    assert "env PW: the secret 'bank-db' with key 'password' is neither in the secret store (scopes keptn-default, " \
           "sockshop)" in outcome.message
    assert STORED not in outcome.message and "ran" not in outcome.message
    whole = store_with({"command/config.yaml": config({
        "name": "t", "cmd": [PY, "-c", "print('ran')"], "envFrom": [{"secretRef": {"name": "bank-db"}}]})})
    outcome = await CommandConnector(whole, settings=ALLOWED, environ={}, secrets=secrets).run(context(whole, event()))
    assert outcome.status.value == "errored" and "envFrom: the secret 'bank-db' is not in the secret store" in outcome.message


def test_a_job_executor_secret_becomes_every_key_of_the_stored_secret(tmp_path: Path) -> None:
    job = """
actions:
  - name: Run locust
    events: [{name: sh.keptn.event.test.triggered}]
    tasks:
      - name: locust
        image: locustio/locust
        cmd: [locust]
        args: [--host, $(HOST)]
        env:
          - {name: locust-secret, valueFrom: secret}
"""
    cfg = parse_config(Resource.new("p", "job/config.yaml", job.encode()))
    reader = SecretReader(task_scopes("sockshop"), {}, _secret_store(tmp_path))
    planned = plan_task(cfg.actions[0].tasks[0], event("test"), "test", reader, "/tmp/task", ["locust"])
    assert (planned.env["HOST"], planned.env["FILE"]) == ("http://carts:8080", "basic.py")
    assert set(planned.secrets) == {"http://carts:8080", "basic.py"}


def test_a_refused_program_reads_no_secret(tmp_path: Path) -> None:
    cfg = parse_config(Resource.new("p", "command/config.yaml", config({
        "name": "t", "cmd": ["not-allowed"],
        "env": [{"name": "T", "valueFrom": {"secretRef": {"name": "demo", "key": "token"}}}]}).encode()))
    read: list[str] = []

    class Watched(FileSecretStore):
        def data(self, name: str, scopes: Collection[str]) -> dict[str, str] | None:
            read.append(name)
            return super().data(name, scopes)

    watched = Watched(_secret_store(tmp_path).path)
    with pytest.raises(PlanError, match="is not allowed"):
        plan_task(cfg.actions[0].tasks[0], event(), "deployment", SecretReader(task_scopes("sockshop"), {}, watched),
                  "/tmp/x", ALLOWED.allow)
    assert read == []


async def test_a_secret_printed_in_a_result_line_never_reaches_the_event(tmp_path: Path) -> None:
    # Result lines go into the .finished data: a program echoing its secret there (or in a broken
    # result line, quoted in the message) must not publish it.
    script = ("import json, os; t = os.environ['TOKEN'];"
              "print(json.dumps({'tidegate': {'leak': t, 'nested': [{t: 'x ' + t}]}})); print('{\"tidegate\": ' + t)")
    store = store_with({"command/config.yaml": config({
        "name": "t", "cmd": [PY, "-c", script],
        "env": [{"name": "TOKEN", "valueFrom": {"secretRef": {"name": "demo", "key": "token"}}}]})})
    outcome = await CommandConnector(store, settings=ALLOWED, environ={}, secrets=_secret_store(tmp_path)).run(
        context(store, event()))
    assert outcome.result.value == "pass", outcome.message
    assert outcome.data == {"leak": "***", "nested": [{"***": "x ***"}]}
    assert STORED not in outcome.message and "tidegate result line" in outcome.message
