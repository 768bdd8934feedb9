"""The tests connector: `test.triggered` with Locust or JMeter (Keptn's locust- and jmeter-service).

1. No `teststrategy` ⇒ pass, nothing run (jmeter-service's rule); `real-user` ⇒ pass (not a load test).
2. The URL under test: `deployment.deploymentURIsPublic[0]`, else `deploymentURIsLocal[0]`.
3. The engine: JMeter when `jmeter/jmeter.conf.yaml` exists (its workloads fall back to Keptn's
   defaults; a missing script ⇒ pass, skipped), else Locust: `locust/locust.conf.yaml` picks
   script/conf by strategy; without that file, `locust/locustfile.py` with 10 users for 2m; with
   neither ⇒ pass, skipped. Files are looked up service → stage → project.
4. A health check first (HTTP GET of the URL, a few tries): unreachable ⇒ fail.
5. The tool runs as a subprocess (argument list); its result file decides pass/fail (verdicts.py);
   a tool that crashes or cannot start ⇒ errored. `test: {start, end}` (RFC 3339) is in the data,
   the evaluation's time frame later; a JMeter run adds `requests`, `failedRequests` and
   `averageResponseTimeMs` beside them.

JMeter is `$TIDEGATE_JMETER_BINARY`, else `jmeter` on PATH (`python -m deploy.local.jmeter install`
assembles Apache JMeter from Maven Central and prints the path to set).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from pydantic import ValidationError

from tidegate.connectors.runtime import ProgramStartError, TaskContext, TaskOutcome
from tidegate.connectors.tests.verdicts import (
    LoadStats,
    LocustLimits,
    ResultFileError,
    jmeter_stats,
    judge_jmeter,
    judge_locust,
    locust_stats,
)
from tidegate.schemas.errors import FileError
from tidegate.schemas.events import KeptnEvent, format_time
from tidegate.schemas.files import load_text
from tidegate.schemas.testconfigs import (
    DEFAULT_LOCUST_RUN_TIME,
    DEFAULT_LOCUST_SCRIPT,
    DEFAULT_LOCUST_USERS,
    JMeterConfig,
    LocustConfig,
    LocustWorkload,
)

LOCUST_CONFIG = "locust/locust.conf.yaml"
JMETER_CONFIG = "jmeter/jmeter.conf.yaml"
REAL_USER = "real-user"


def locust_executable() -> str:
    beside = Path(sys.executable).parent / "locust"
    return str(beside) if beside.exists() else (shutil.which("locust") or "locust")


def target_url(data: dict[str, Any]) -> str | None:
    block = data.get("deployment")
    if not isinstance(block, dict):
        return None
    for field in ("deploymentURIsPublic", "deploymentURIsLocal"):
        uris = block.get(field)
        if isinstance(uris, list) and uris and isinstance(uris[0], str) and uris[0]:
            return uris[0]
    return None


def locust_argv(executable: str, url: str, script: Path, csv_prefix: Path, conf: Path | None,
                limits: LocustLimits) -> list[str]:
    argv = [executable, "--headless", "--only-summary", "--host", url, "-f", str(script), "--csv", str(csv_prefix),
            # Failed requests are judged from the stats below, not by the exit code.
            "--exit-code-on-error", "0"]
    if conf is not None:
        argv += ["--config", str(conf)]
    users = limits.users or (None if conf is not None else DEFAULT_LOCUST_USERS)
    if users is not None:
        argv += ["-u", str(users), "-r", str(limits.spawnRate or users)]
    run_time = limits.runTime or (None if conf is not None else DEFAULT_LOCUST_RUN_TIME)
    if run_time is not None:
        argv += ["-t", run_time]
    return argv


class TestsConnector:
    name = "tests"
    tasks = ["test"]
    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, health_attempts: int = 3, health_interval: float = 2.0,
                 jmeter: Callable[[], str | None] = lambda: os.environ.get("TIDEGATE_JMETER_BINARY") or shutil.which("jmeter"),
                 ) -> None:
        self.health_attempts = health_attempts
        self.health_interval = health_interval
        self._jmeter = jmeter

    def wants(self, event: KeptnEvent) -> bool:
        return event.parsed_type.task == "test"

    async def run(self, ctx: TaskContext) -> TaskOutcome:
        strategy = str(ctx.payload("test").get("teststrategy") or "")
        if not strategy:
            return TaskOutcome.passed("no teststrategy given: no tests run")
        if strategy == REAL_USER:
            return TaskOutcome.passed("teststrategy real-user: no load test run")
        url = target_url(ctx.data)
        if url is None:
            return TaskOutcome.errored("no URL to test: the event has neither deployment.deploymentURIsPublic nor "
                                       "deployment.deploymentURIsLocal (did the deployment report them?)")
        try:
            if ctx.resource(JMETER_CONFIG) is not None:
                return await self._jmeter_test(ctx, strategy, url)
            return await self._locust_test(ctx, strategy, url)
        except FileError as error:
            return TaskOutcome.errored(str(error))

    async def _healthy(self, url: str) -> str | None:
        """None when the service answers; else why not."""
        problem = "no answer"
        async with httpx.AsyncClient(timeout=5.0, follow_redirects=True) as client:
            for attempt in range(self.health_attempts):
                try:
                    response = await client.get(url)
                except httpx.HTTPError as error:
                    problem = f"{type(error).__name__}: {error}"
                else:
                    if response.status_code < 500:
                        return None
                    problem = f"HTTP {response.status_code}"
                if attempt + 1 < self.health_attempts:
                    await asyncio.sleep(self.health_interval)
        return f"health check of {url} failed after {self.health_attempts} tries ({problem})"

    @staticmethod
    def _times(start: datetime) -> dict[str, Any]:
        return {"test": {"start": format_time(start), "end": format_time(datetime.now(UTC))}}

    # --- Locust ---
    async def _locust_test(self, ctx: TaskContext, strategy: str, url: str) -> TaskOutcome:
        config_file = ctx.resource(LOCUST_CONFIG)
        workload: LocustWorkload | None
        if config_file is not None:
            config = load_text(config_file.text, LOCUST_CONFIG, kind="locust").expect(LocustConfig)
            workload = config.workload(strategy)
            if workload is None:
                return TaskOutcome.passed(f"{LOCUST_CONFIG} has no workload for teststrategy {strategy}: no tests run")
        else:
            workload = LocustWorkload(teststrategy=strategy, script=DEFAULT_LOCUST_SCRIPT)
        script = ctx.resource(workload.script.lstrip("/")) if workload.script else None
        conf = ctx.resource(workload.conf.lstrip("/")) if workload.conf else None
        if script is None and conf is None:
            return TaskOutcome.passed(f"no locust script or conf for teststrategy {strategy} "
                                      f"({workload.script or workload.conf or DEFAULT_LOCUST_SCRIPT} not found): skipped")
        try:
            limits = LocustLimits.of(workload.model_extra)
        except ValidationError as error:
            return TaskOutcome.errored(f"{LOCUST_CONFIG}: workload {strategy}: {error}")
        start = datetime.now(UTC)
        unhealthy = await self._healthy(url)
        if unhealthy:
            return TaskOutcome.failed(unhealthy, self._times(start))
        with tempfile.TemporaryDirectory(prefix="tidegate-locust-") as directory:
            workdir = Path(directory)
            script_path = workdir / "locustfile.py"
            if script is not None:
                script_path.write_bytes(script.content)
            conf_path = None
            if conf is not None:
                conf_path = workdir / "locust.conf"
                conf_path.write_bytes(conf.content)
            argv = locust_argv(locust_executable(), url, script_path, workdir / "result", conf_path, limits)
            start = datetime.now(UTC)
            try:
                result = await ctx.run_program(argv, cwd=workdir)
            except ProgramStartError as error:
                return TaskOutcome.errored(f"locust cannot run: {error}", self._times(start))
            times = self._times(start)
            if result.timed_out:
                return TaskOutcome.errored("locust did not finish in time and was stopped", times)
            stats_file = workdir / "result_stats.csv"
            if result.exit_code != 0 or not stats_file.exists():
                return TaskOutcome.errored(f"locust exited with {result.exit_code}: {result.tail(1500)}", times)
            try:
                stats = locust_stats(stats_file.read_text())
            except ResultFileError as error:
                return TaskOutcome.errored(str(error), times)
        verdict = judge_locust(stats, limits)
        message = f"locust {strategy} against {url}: " + verdict.message(stats)
        return TaskOutcome.passed(message, times) if verdict.passed else TaskOutcome.failed(message, times)

    # --- JMeter ---
    async def _jmeter_test(self, ctx: TaskContext, strategy: str, url: str) -> TaskOutcome:
        config_file = ctx.resource(JMETER_CONFIG)
        assert config_file is not None
        config = load_text(config_file.text, JMETER_CONFIG, kind="jmeter").expect(JMeterConfig)
        workload = config.workload(strategy)
        if workload is None:
            return TaskOutcome.passed(f"no JMeter workload for teststrategy {strategy}: no tests run")
        script = ctx.resource(workload.script.lstrip("/"))
        if script is None:
            return TaskOutcome.passed(f"JMeter script {workload.script} not found: skipped")
        jmeter = self._jmeter()
        if jmeter is None:
            return TaskOutcome.errored("jmeter is not installed: install Apache JMeter (the `jmeter` command on PATH) "
                                       f"where the tests connector runs, or remove {JMETER_CONFIG} to use Locust")
        start = datetime.now(UTC)
        unhealthy = await self._healthy(url)
        if unhealthy:
            return TaskOutcome.failed(unhealthy, self._times(start))
        parsed = urlparse(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        properties = {
            "PROTOCOL": parsed.scheme or "http", "SERVER_URL": parsed.hostname or "", "SERVER_PORT": str(port),
            "CHECK_PATH": "/health", "DT_LTN": f"{ctx.project}-{ctx.stage}-{ctx.service}-{strategy}",
            "VUCount": str(workload.vuser), "LoopCount": str(workload.loopcount), "ThinkTime": str(workload.thinktime),
            "KEPTN_PROJECT": ctx.project, "KEPTN_STAGE": ctx.stage, "KEPTN_SERVICE": ctx.service,
            "KEPTN_TESTSTRATEGY": strategy, **workload.properties,
        }
        with tempfile.TemporaryDirectory(prefix="tidegate-jmeter-") as directory:
            workdir = Path(directory)
            (workdir / "test.jmx").write_bytes(script.content)
            argv = [jmeter, "-n", "-t", str(workdir / "test.jmx"), "-l", str(workdir / "results.jtl"),
                    "-Jjmeter.save.saveservice.output_format=csv", "-Jjmeter.save.saveservice.print_field_names=true",
                    # No shutdown listener on UDP 4445+: tasks in parallel would race for those ports.
                    "-Jjmeterengine.nongui.port=0",
                    *(f"-J{key}={value}" for key, value in properties.items())]
            start = datetime.now(UTC)
            try:
                result = await ctx.run_program(argv, cwd=workdir)
            except ProgramStartError as error:
                return TaskOutcome.errored(f"jmeter cannot run: {error}", self._times(start))
            times = self._times(start)
            results = workdir / "results.jtl"
            if result.exit_code != 0 or not results.exists():
                return TaskOutcome.errored(f"jmeter exited with {result.exit_code}: {result.tail(1500)}", times)
            try:
                stats: LoadStats = jmeter_stats(results.read_text())
            except ResultFileError as error:
                return TaskOutcome.errored(str(error), times)
        verdict = judge_jmeter(stats, workload.acceptederrorrate, workload.avgrtvalidation)
        message = f"jmeter {strategy} against {url}: " + verdict.message(stats)
        data = {"test": {**times["test"], "requests": stats.requests, "failedRequests": stats.failures,
                         "averageResponseTimeMs": round(stats.average_ms, 1)}}
        return TaskOutcome.passed(message, data) if verdict.passed else TaskOutcome.failed(message, data)
