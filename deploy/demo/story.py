"""The story `make demo` plays, act by act, with the real Tidegate doing the work.

1. the project: `tidegate create project` from examples/sockshop, the service, its files, and alert
   rules from production's SLO (`tidegate configure monitoring prometheus`);
2. 0.11.1 is delivered through dev, staging (performance test, quality gate) and production (after a
   human's approval);
3. 0.11.2, a slow build, passes dev (no quality gate there) and is stopped by staging's gate, then
   rolled back there;
4. production gets shoppers (Locust); orders slow down on one replica, Prometheus' alert fires,
   Alertmanager calls Tidegate, and Tidegate scales out until the SLOs hold and the alert resolves.
Every step is narrated from the gateway's live event stream; the acts' outcomes make the summary.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from deploy.demo.cli import Tidegate
from deploy.demo.config import EXAMPLE, REPO_ROOT, STAGES, DemoConfig
from deploy.demo.facts import (
    DeliveryOutcome,
    RemediationOutcome,
    Story,
    delivery_outcome,
    remediation_outcome,
)
from deploy.demo.feed import Feed
from deploy.demo.narrate import ESCALATED, PROBLEM, Line, Narrator, describe, split_type, state_line
from deploy.demo.stack import TIDEGATE_PROCESSES, Stack
from examples.sockshop.deploy import DeployHome
from tidegate.cli.client import Api, CliError, Connection
from tidegate.connectors.prometheus.alerting import failing_condition
from tidegate.qualitygate import Criterion, parse_criteria

FINAL_STATES = frozenset({"finished", "aborted", "timedOut"})
LOAD_REPORT_SECONDS = 5.0
POLL_SECONDS = 0.5
Events = list[dict[str, Any]]


class StoryError(RuntimeError):
    """The story did not go as told; the message says which step and where to look."""


@dataclass(frozen=True, slots=True)
class Alert:
    """Production's alert as `tidegate configure monitoring prometheus` wrote it (for the narration)."""

    name: str
    criterion: Criterion
    duration: str

    def failing(self, value: float) -> bool:
        return not math.isnan(value) and not self.criterion.compare(value, self.criterion.value)


def production_alert(rules_file: Path) -> Alert:
    groups = yaml.safe_load(rules_file.read_text()).get("groups") or []
    rules = [rule for group in groups for rule in group.get("rules") or [] if "criterion" in rule.get("annotations", {})]
    if not rules:
        raise StoryError(f"{rules_file} has no alert rule: production's SLO should have given one")
    rule = rules[0]
    return Alert(str(rule["alert"]), parse_criteria(str(rule["annotations"]["criterion"])), str(rule.get("for", "0s")))


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


def _shown(path: Path) -> str:
    """A path as short as it can be: relative to the repository (the demo's working directory) if inside it."""
    return _relative(path) if path.is_relative_to(REPO_ROOT) else str(path)


def _has(events: Events, event_type: str, **data: str) -> bool:
    return any(e.get("type") == event_type and all((e.get("data") or {}).get(k) == v for k, v in data.items())
               for e in events)


class Demo:
    def __init__(self, config: DemoConfig, narrator: Narrator, stack: Stack) -> None:
        self.config = config
        self.say = narrator
        self.stack = stack
        env: dict[str, str | None] = {**stack.settings_env(), "TIDEGATE_API_TOKEN": None}
        self.tidegate = Tidegate(env)
        self.deployments = DeployHome(config.deployments_home)

    # -- helpers --------------------------------------------------------------------------------------

    def run(self, *argv: str) -> str:
        result = self.tidegate.run(argv)
        self.say.command(result.line, result.output)
        return result.output

    def pause(self, what: str) -> None:
        if self.config.interactive and sys.stdin.isatty():
            self.say.say(Line(f"   … press Enter to {what}", "dim"))
            sys.stdin.readline()

    def follow(self, feed: Feed, done: Callable[[Events], bool], what: str,
               on_event: Callable[[dict[str, Any]], None] | None = None,
               every: Callable[[], None] | None = None) -> None:
        """Narrate the feed until `done(events)`; fail after the step timeout or when a process died."""
        deadline = time.monotonic() + self.config.step_timeout
        last_state = ""
        next_tick = time.monotonic()
        while True:
            for message in feed.poll():
                if message.kind == "event":
                    self.say.say(describe(message.data))
                    if on_event is not None:
                        on_event(message.data)
                elif message.kind == "state":
                    line = state_line(message.data)
                    if line.text != last_state:
                        last_state = line.text
                        self.say.say(line)
            if done(feed.events):
                return
            self.stack.supervisor.check(TIDEGATE_PROCESSES)
            if every is not None and time.monotonic() >= next_tick:
                every()
                next_tick = time.monotonic() + LOAD_REPORT_SECONDS
            if time.monotonic() > deadline:
                seen = ", ".join(str(e.get("type", "")).removeprefix("sh.keptn.event.") for e in feed.events[-8:])
                raise StoryError(
                    f"{what} did not happen within {self.config.step_timeout:.0f} s (last events: {seen or 'none'}); "
                    f"the processes' logs are in {self.config.logs}"
                )
            time.sleep(POLL_SECONDS)

    # -- the acts -------------------------------------------------------------------------------------

    def play(self) -> Story:
        self.create_project()
        self.pause("deliver the first build")
        good = self.deliver(self.config.good_version, good=True)
        self.pause("deliver a slow build")
        slow = self.deliver(self.config.slow_version, good=False)
        self.pause("send shoppers to production")
        remediation = self.production_under_load()
        return Story(deliveries=(good, slow), remediation=remediation, serving=self.serving(),
                     bridge_url=self.config.bridge_ui_url, service=self.config.service)

    def create_project(self) -> None:
        config = self.config
        project, service = config.project, config.service
        self.say.act("The project", "Sock Shop's files, as Keptn users have them: a shipyard with dev, staging and "
                                    "production, SLIs and SLOs, Locust tests, a remediation for production.")
        self.run("create", "project", project, "--shipyard", _relative(EXAMPLE / "shipyard.yaml"))
        self.run("create", "service", service, "--project", project)
        project_files = ["prometheus/sli.yaml", "locust/locust.conf.yaml", "locust/load.py", "locust/functional.conf",
                         "locust/performance.conf", "command/config.yaml"]
        for path in project_files:
            self.run("add-resource", "--project", project, "--resource", _relative(EXAMPLE / path),
                     "--resourceUri", path)
        self.say.say(Line("  staging's quality gate (dev has none: every build that runs passes there)", "dim"))
        self.run("add-resource", "--project", project, "--stage", "staging", "--resource", _relative(EXAMPLE / "slo.yaml"),
                 "--resourceUri", "slo.yaml")
        self.say.say(Line("  production's objectives and remediation: orders must stay fast under load", "dim"))
        for path in ("slo.yaml", "prometheus/sli.yaml", "remediation.yaml"):
            self.run("add-resource", "--project", project, "--stage", "production",
                     "--resource", _relative(EXAMPLE / "production" / path), "--resourceUri", path)
        self.run("configure", "monitoring", "prometheus", "--project", project, "--kafka", "--stage", "production",
                 "--service", service, "--for", config.alert_for, "--out", _shown(config.rules_file),
                 "--reload", config.prometheus_url)

    def deliver(self, version: str, *, good: bool) -> DeliveryOutcome:
        config = self.config
        if good:
            self.say.act(f"Delivering {version}", "A new build goes through dev (functional test), staging "
                                                  "(performance test, quality gate) and production (a human approves).")
        else:
            self.say.act(f"Delivering {version}, a slow build", "Its /carts answers in 0.6 s instead of 0.01 s. Dev has no "
                                                                 "quality gate; staging's should stop it.")
        output = self.run("trigger", "delivery", "--project", config.project, "--service", config.service,
                          "--image", config.image, "--tag", version)
        found = re.search(r"keptnContext ([0-9a-f-]{36})", output)
        if found is None:
            raise StoryError(f"`tidegate trigger delivery` did not print a keptnContext:\n{output}")
        context = found.group(1)
        feed = Feed(config.gateway_url, config.project, context)
        answered: set[str] = set()

        def on_event(event: dict[str, Any]) -> None:
            data = event.get("data") or {}
            if event.get("type") != "sh.keptn.event.approval.triggered" or event.get("id") in answered:
                return
            approval = data.get("approval") if isinstance(data.get("approval"), dict) else {}
            mode = (approval or {}).get(str(data.get("result") or "pass"), "automatic")
            if mode != "manual":
                return
            answered.add(str(event.get("id")))
            stage = str(data.get("stage"))
            verb = "approve" if good else "decline"
            self.say.say(Line(f"  {stage:<11} a human decides: the release manager will {verb} {version}", "warn"))
            self.pause(f"{verb} {version} for {stage}")
            self.run(verb, "--project", config.project, "--stage", stage, "--service", config.service,
                     "--keptn-context", context)

        def done(events: Events) -> bool:
            if _has(events, "sh.keptn.event.production.delivery.finished"):
                return True
            if good:
                # A stage that fails ends the story early: say so now rather than at the step timeout.
                return any(split_type(str(e.get("type", "")))[1:] == ("delivery", "finished")
                           and (e.get("data") or {}).get("result") == "fail" for e in events)
            return _has(events, "sh.keptn.event.staging.rollback.finished") or \
                _has(events, "sh.keptn.event.dev.delivery.finished", result="fail")

        try:
            self.follow(feed, done, f"the delivery of {version}", on_event)
        finally:
            feed.close()
        outcome = delivery_outcome(context, feed.events)
        if good and outcome.result_in("production") not in ("pass", "warning"):
            raise StoryError(f"{version} did not reach production (result {outcome.result_in('production')}); "
                             f"open {config.bridge_ui_url} to see why")
        return outcome

    def production_under_load(self) -> RemediationOutcome:
        config = self.config
        self.say.act("Production under load", f"{config.shoppers} shoppers order at once (Locust). One replica serves "
                                              "two orders at a time, so orders queue and slow down.")
        alert = production_alert(config.rules_file)
        self.say.say(Line(f"  production serves {self.serving().get('production', 'nothing')} on "
                          f"{config.stage_url('production')}; alert {alert.name}: orders P95 "
                          f"{failing_condition(alert.criterion)} s for {alert.duration}", "dim"))
        self.stack.start_shoppers()
        try:
            context = self._wait_for_problem(alert)
            feed = Feed(config.gateway_url, config.project, context)

            def done(events: Events) -> bool:
                finished = feed.state is not None and feed.state.get("state") in FINAL_STATES
                closed = _has(events, PROBLEM) or any(e.get("type") == ESCALATED for e in events)
                return finished and closed

            try:
                self.follow(feed, done, "the remediation and the alert's resolution",
                            every=lambda: self._report_load(alert))
            finally:
                feed.close()
        finally:
            self.stack.stop_shoppers()
        self.say.say(Line("  shoppers stopped", "dim"))
        return remediation_outcome(context, feed.events)

    def _wait_for_problem(self, alert: Alert) -> str:
        """The keptnContext of production's remediation, once Alertmanager has reported the problem."""
        deadline = time.monotonic() + self.config.step_timeout
        next_report = 0.0
        with Api(Connection(self.config.gateway_url, None)) as api:
            while True:
                try:
                    answer = api.get(f"/api/controlPlane/v1/sequence/{self.config.project}", name="remediation")
                except CliError as error:
                    raise StoryError(f"cannot ask the gateway for remediations: {error.message}") from None
                states = [s for s in answer.get("states", []) if s.get("service") == self.config.service]
                if states:
                    return str(states[0]["shkeptncontext"])
                self.stack.supervisor.check(TIDEGATE_PROCESSES)
                if time.monotonic() >= next_report:
                    self._report_load(alert)
                    next_report = time.monotonic() + LOAD_REPORT_SECONDS
                if time.monotonic() > deadline:
                    raise StoryError(
                        f"no remediation started within {self.config.step_timeout:.0f} s of load: see the alert at "
                        f"{self.config.prometheus_url}/alerts and the logs in {self.config.logs}")
                time.sleep(0.5)

    def _report_load(self, alert: Alert) -> None:
        """One line: production's orders P95 as Prometheus sees it, the replicas, the alert's state."""
        config = self.config
        job = f'job="{config.service}-{config.project}-production",handler="/orders"'
        query = f"histogram_quantile(0.95, sum by(le) (rate(http_request_duration_seconds_bucket{{{job}}}[20s])))"
        try:
            with httpx.Client(base_url=config.prometheus_url, timeout=5.0) as client:
                result = client.get("/api/v1/query", params={"query": query}).json()["data"]["result"]
                alerts = client.get("/api/v1/alerts").json()["data"]["alerts"]
        except (httpx.HTTPError, KeyError, ValueError):
            return
        p95 = float(result[0]["value"][1]) if result else math.nan
        states = sorted({a.get("state", "") for a in alerts if a.get("labels", {}).get("stage") == "production"})
        replicas = self._replicas("production")
        now = datetime.now(UTC).strftime("%H:%M:%S")
        latency = "no orders yet" if math.isnan(p95) else f"orders P95 {p95:.2f} s"
        self.say.say(Line(f"  {now}    {latency} · {replicas} replica{'s' if replicas != 1 else ''} · "
                          f"alert {'/'.join(states) or 'inactive'}", "bad" if alert.failing(p95) else "dim"))

    # -- what runs -------------------------------------------------------------------------------------

    def _replicas(self, stage: str) -> int:
        for state in self.deployments.states():
            if state.stage == stage and state.live is not None:
                return state.live.replicas
        return 0

    def serving(self) -> dict[str, str]:
        found: dict[str, str] = {}
        states = {state.stage: state for state in self.deployments.states()}
        for stage in STAGES:
            state = states.get(stage)
            if state is not None and state.live is not None:
                count = state.live.replicas
                found[stage] = f"{state.live.version} ({count} replica{'s' if count != 1 else ''})"
        return found
