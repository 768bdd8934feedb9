"""The demo's stack on this machine: Kafka, topics, Prometheus, Alertmanager, and Tidegate's processes.

    stack = Stack(config)
    stack.up(say)        # fresh topics and state, servers, worker, connectors, gateway (with Alertmanager's webhook)
    stack.down()         # stops everything `up` started (also from another process: `python -m deploy.demo down`)

What a run started is recorded in `<home>/run.json` (ports, topic prefix, broker, whether the demo
started the broker), so `down` stops exactly that run's processes and deletes its topics.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import httpx

from deploy.demo.config import REPO_ROOT, STAGES, DemoConfig, Ports
from deploy.demo.supervisor import Supervisor
from deploy.local import alertmanager as local_alertmanager
from deploy.local import kafka as local_kafka
from deploy.local import prometheus as local_prometheus
from deploy.local._process import DaemonError, port_is_free
from examples.sockshop.deploy import DeployHome, Environment, job_name
from examples.sockshop.deploy import down as stop_deployments

WORKER, CONNECTORS, GATEWAY, SHOPPERS = "worker", "connectors", "gateway", "shoppers"
TIDEGATE_PROCESSES = (WORKER, CONNECTORS, GATEWAY)
# The command connector runs the demo's deployment program for these tasks (command/config.yaml).
COMMAND_TASKS = ("deployment", "release", "rollback", "action")
READY_TIMEOUT = 120.0
TOPICS_GONE_TIMEOUT = 60.0

Say = Callable[[str], None]


class StackError(RuntimeError):
    """A part of the demo's stack could not be brought up or down; the message says what to do."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What `up` started, for a later `down` (written to `<home>/run.json`)."""

    prefix: str
    bootstrap: str
    ports: Ports
    started_kafka: bool

    def to_json(self) -> str:
        return json.dumps({"prefix": self.prefix, "bootstrap": self.bootstrap, "started_kafka": self.started_kafka,
                           "ports": {**{k: getattr(self.ports, k) for k in
                                        ("gateway", "prometheus", "alertmanager", "kafka")},
                                     "stages": self.ports.stages}}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        raw = json.loads(text)
        known = {f.name for f in fields(Ports)}
        ports = Ports(**{name: value for name, value in raw["ports"].items() if name in known})
        return cls(raw["prefix"], raw["bootstrap"], ports, bool(raw["started_kafka"]))


def _launcher(python: str, home: Path) -> str:
    return (
        "#!/bin/sh\n"
        "# Written by `python -m deploy.demo`: the demo's deployment program, which the command connector\n"
        "# finds on its PATH (examples/sockshop/command/config.yaml runs `sockshop-deploy run`).\n"
        f"cd {shlex.quote(str(REPO_ROOT))} || exit 2\n"
        f"exec {shlex.quote(python)} -m examples.sockshop.deploy --home {shlex.quote(str(home))} \"$@\"\n"
    )


class Stack:
    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.supervisor = Supervisor(config.pids, config.logs)
        self.bridge_token = ""

    # -- environment ---------------------------------------------------------------------------------

    def settings_env(self) -> dict[str, str]:
        """The TIDEGATE_* settings every Tidegate process of the demo shares."""
        config = self.config
        return {
            "TIDEGATE_KAFKA_BOOTSTRAP": config.bootstrap,
            "TIDEGATE_TOPIC_PREFIX": config.prefix,
            "TIDEGATE_PARTITIONS": str(config.partitions),
            "TIDEGATE_HOME": str(config.home),
            "TIDEGATE_DATA_DIR": str(config.home / "faust"),
            "TIDEGATE_ENDPOINT": config.gateway_url,
        }

    def _child_env(self, **extra: str) -> dict[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        path = os.pathsep.join([str(self.config.bin), venv_bin, os.environ.get("PATH", "")])
        # The user's own gateway token would be refused by the demo's gateway, which runs without one.
        inherited = {k: v for k, v in os.environ.items() if k not in ("TIDEGATE_API_TOKEN",)}
        return {**inherited, **self.settings_env(), "PATH": path, "PYTHONUNBUFFERED": "1", **extra}

    def _tidegate(self, *args: str) -> list[str]:
        # The installed console script; `python -m tidegate.cli.main` would build a second, empty app.
        script = Path(sys.executable).with_name("tidegate")
        if script.exists():
            return [str(script), *args]
        return [sys.executable, "-c", "from tidegate.cli.main import main; main()", *args]

    # -- up --------------------------------------------------------------------------------------------

    def up(self, say: Say) -> None:
        config = self.config
        previous = self._record()
        if previous is not None:
            say("a previous demo run is recorded: stopping it first")
            self.down(stop_kafka=False)
        self._check_ports()
        self._fresh_home()
        # A broker an earlier run started (and left running) is still the demo's to stop.
        inherited = previous is not None and previous.started_kafka and previous.ports.kafka == config.ports.kafka
        started_kafka = self._kafka(say) or (inherited and not config.kafka)
        (config.home / "run.json").write_text(
            RunRecord(config.prefix, config.bootstrap, config.ports, started_kafka).to_json())
        self._topics(say)
        self._deployment_program()
        self._monitoring(say)
        self._tidegate_processes(say)

    def _check_ports(self) -> None:
        ports = self.config.ports
        wanted = {"the gateway": ports.gateway, "Prometheus": ports.prometheus, "Alertmanager": ports.alertmanager,
                  **{f"carts in {stage}": port for stage, port in ports.stages.items()}}
        taken = [f"{port} ({what})" for what, port in wanted.items() if not port_is_free(port)]
        if taken:
            raise StackError(f"these ports on 127.0.0.1 are in use by other programs: {', '.join(taken)}; stop them, "
                             "or run `python -m deploy.demo --free-ports` to use free ones")

    def _fresh_home(self) -> None:
        home = self.config.home
        for leftover in ("faust", "logs", "pids", "deployments", "bin"):
            shutil.rmtree(home / leftover, ignore_errors=True)
        for path in home.glob("history.db*"):
            path.unlink()
        self.config.rules_file.unlink(missing_ok=True)
        home.mkdir(parents=True, exist_ok=True)

    def _kafka(self, say: Say) -> bool:
        config = self.config
        if config.kafka:
            say(f"Kafka: using the broker at {config.kafka}")
            return False
        before = local_kafka.kafka_status(config.ports.kafka).state
        say(f"Kafka: {'already running' if before in (local_kafka.BrokerState.RUNNING, local_kafka.BrokerState.EXTERNAL) else 'starting a local broker (fetched from Maven Central the first time)'} on {config.bootstrap}")
        try:
            local_kafka.ensure_kafka(config.ports.kafka)
        except local_kafka.KafkaLaunchError as error:
            raise StackError(str(error)) from error
        return before not in (local_kafka.BrokerState.RUNNING, local_kafka.BrokerState.EXTERNAL)

    def _streams_settings(self) -> Any:
        from tidegate.streams.settings import Settings

        return Settings(kafka_bootstrap=self.config.bootstrap, topic_prefix=self.config.prefix,
                        partitions=self.config.partitions)

    def _topics(self, say: Say) -> None:
        from tidegate.streams.kafka import delete_topics, describe_topics, provision_topics
        from tidegate.streams.topics import TopicRegistry

        settings = self._streams_settings()
        old = delete_topics(settings, settings.topic_prefix)
        if old:
            say(f"topics: deleted {len(old)} topics of an earlier demo under {settings.topic_prefix}")
            deadline = time.monotonic() + TOPICS_GONE_TIMEOUT
            while describe_topics(settings, prefix=settings.topic_prefix):
                if time.monotonic() > deadline:
                    raise StackError(f"the old topics under {settings.topic_prefix} were not deleted within "
                                     f"{TOPICS_GONE_TIMEOUT:.0f} s; delete them by hand and try again")
                time.sleep(0.5)
        report = provision_topics(settings, TopicRegistry.from_settings(settings).specs())
        if not report.ok:
            raise StackError("could not create the demo's topics: " + "; ".join(str(p) for p in report.problems))
        say(f"topics: created {len(report.created)} topics under {settings.topic_prefix} "
            f"({settings.partitions} partitions)")

    def _deployment_program(self) -> None:
        config = self.config
        home = DeployHome(config.deployments_home)
        home.write_environment(Environment(ports=dict(config.ports.stages)))
        for stage in STAGES:
            target = home.target_file(config.project, stage, config.service)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("[]\n")
        config.bin.mkdir(parents=True, exist_ok=True)
        launcher = config.bin / "sockshop-deploy"
        launcher.write_text(_launcher(sys.executable, config.deployments_home))
        launcher.chmod(0o755)

    def _monitoring(self, say: Say) -> None:
        from tidegate.connectors.prometheus.alerting import (
            AlertmanagerRouting,
            BridgeAuth,
            alertmanager_config,
        )

        config = self.config
        home = DeployHome(config.deployments_home)
        jobs = [
            local_prometheus.ScrapeJob(
                job_name(config.project, stage, config.service),
                target_files=[str(home.target_file(config.project, stage, config.service))],
            )
            for stage in STAGES
        ]
        # Rules come later from the project's SLOs (tidegate configure monitoring); start with none.
        config.rules_file.write_text("groups: []\n")
        self.bridge_token = secrets.token_urlsafe(32)
        descriptor = os.open(config.bridge_token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self.bridge_token)
        # Resolved alerts reach Tidegate at the next group_interval: a minute after the alert was sent, long
        # enough for the remediation's evaluation to judge the action first.
        routing = AlertmanagerRouting(
            config.alert_webhook_url, BridgeAuth("bearer", token_file=str(config.bridge_token_file)),
            group_wait="5s", group_interval="1m", repeat_interval="5m",
        )
        try:
            alertmanager_url = local_alertmanager.ensure_alertmanager(
                config.ports.alertmanager, alertmanager_config(routing), home=config.home)
            local_prometheus.ensure_prometheus(
                config.ports.prometheus, jobs, rule_files=[config.rules_file], alertmanager_url=alertmanager_url,
                home=config.home)
        except DaemonError as error:
            raise StackError(str(error)) from error
        say(f"Prometheus on {config.prometheus_url} (scrapes every second), Alertmanager on {alertmanager_url} "
            f"(severity=webhook alerts go to Tidegate)")

    def _tidegate_processes(self, say: Say) -> None:
        config = self.config
        start = self.supervisor.start
        start(WORKER, self._tidegate("worker", "--loglevel", "warning"),
              self._child_env(TIDEGATE_REMEDIATION_COOLDOWN=config.remediation_cooldown), REPO_ROOT)
        tasks = [part for task in COMMAND_TASKS for part in ("--task", task)]
        start(CONNECTORS, self._tidegate("connector", "command", "tests", "prometheus", *tasks, "--concurrency", "2",
                                         "--log-level", "WARNING"),
              # The command connector runs only the Sock Shop deployment program (on PATH from config.bin).
              self._child_env(TIDEGATE_PROMETHEUS_URL=config.prometheus_url, TIDEGATE_COMMAND_ALLOW="sockshop-deploy"),
              REPO_ROOT)
        # Local mode (no API token, loopback only): the Bridge needs no login. Alertmanager's webhook on the
        # gateway takes its own token.
        start(GATEWAY, self._tidegate("gateway", "--port", str(config.ports.gateway), "--no-token",
                                      "--log-level", "warning"),
              self._child_env(TIDEGATE_ALERTMANAGER_TOKEN=self.bridge_token), REPO_ROOT)
        say("Tidegate: worker (sequencer, approver, evaluator, remediator), connectors (command, tests with "
            "Locust, prometheus), gateway with the Bridge and Alertmanager's webhook")
        self._wait_http(f"{config.gateway_url}/readyz", GATEWAY)
        self.supervisor.check(TIDEGATE_PROCESSES)

    def _wait_http(self, url: str, name: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                self.supervisor.check([name])
                try:
                    answer = client.get(url)
                    if answer.status_code == 200:
                        return
                    last = f"HTTP {answer.status_code}: {answer.text[:200]}"
                except httpx.TransportError as error:
                    last = str(error) or type(error).__name__
                time.sleep(0.3)
        raise StackError(f"{name} was not ready at {url} within {READY_TIMEOUT:.0f} s ({last}); "
                         f"see {self.config.logs / (name + '.log')}")

    # -- the production load -----------------------------------------------------------------------------

    def start_shoppers(self) -> None:
        from tidegate.connectors.tests.connector import locust_executable

        config = self.config
        users = str(config.shoppers)
        argv = [locust_executable(), "--headless", "--only-summary", "-u", users, "-r", users, "-t", "15m",
                "--host", config.stage_url("production"), "-f", str(Path(__file__).with_name("shoppers.py"))]
        self.supervisor.start(SHOPPERS, argv, self._child_env(), config.home)

    def stop_shoppers(self) -> None:
        self.supervisor.stop(SHOPPERS)

    # -- down ------------------------------------------------------------------------------------------

    def down(self, *, stop_kafka: bool = True) -> list[str]:
        """Stop what the recorded run started; what was stopped, for the user."""
        config = self.config
        record_file = config.home / "run.json"
        record = self._record()
        report = [f"stopped {name}" for name in self.supervisor.stop_all()]
        report += stop_deployments(DeployHome(config.deployments_home))
        ports = record.ports if record else config.ports
        if local_prometheus.stop_prometheus(ports.prometheus, home=config.home):
            report.append("stopped Prometheus")
        if local_alertmanager.stop_alertmanager(ports.alertmanager, home=config.home):
            report.append("stopped Alertmanager")
        if record is not None:
            report += self._delete_topics(record)
            if stop_kafka and record.started_kafka and local_kafka.stop_kafka(record.ports.kafka):
                report.append("stopped the local Kafka broker the demo had started")
            record_file.unlink(missing_ok=True)
        return report

    def _record(self) -> RunRecord | None:
        record_file = self.config.home / "run.json"
        try:
            return RunRecord.from_json(record_file.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as error:
            raise StackError(f"{record_file} is damaged ({error}); stop the demo's processes by hand and delete it") \
                from None

    def _delete_topics(self, record: RunRecord) -> list[str]:
        from confluent_kafka.admin import AdminClient

        from tidegate.streams.kafka import delete_topics
        from tidegate.streams.settings import Settings

        # A broker that is gone (stopped by hand) would make the admin calls wait their full timeout.
        admin = AdminClient({"bootstrap.servers": record.bootstrap, "log_level": 0})
        try:
            admin.list_topics(timeout=3)
            deleted = delete_topics(Settings(kafka_bootstrap=record.bootstrap), record.prefix)
        except Exception as error:  # KafkaException, ProvisionError: the topics stay, say so
            return [f"the topics under {record.prefix} were not deleted ({error})"]
        return [f"deleted {len(deleted)} topics under {record.prefix}"] if deleted else []
