"""The connector runtime against the real broker: replies, time limits, memory across restarts,
cancellation, errors, dead letters, and a SIGKILLed connector process that is restarted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.fakes.connectors import (
    PYTHON,
    ScriptedConnector,
    cancellation,
    hosted,
    publish_on_task_topic,
    publish_tasks,
    triggered,
)
from tests.support.kafka import EventCollector, publish_files
from tidegate.connectors.runtime import ConnectorOptions, TaskContext, TaskOutcome, state_topic
from tidegate.connectors.runtime.replies import reply_id
from tidegate.schemas.events import KeptnEvent, TaskKind
from tidegate.streams.codec import KafkaRecord
from tidegate.streams.dlq import read_dead_letter
from tidegate.streams.kafka import AsyncEventPublisher
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

WAIT = 60.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def replies_to(events: list[KeptnEvent], triggered_id: str, kind: str) -> list[KeptnEvent]:
    return [e for e in events if e.triggeredid == triggered_id and e.type.endswith(f".{kind}")]


def has_finished(triggered_id: str, count: int = 1):  # type: ignore[no-untyped-def]
    return lambda events: len(replies_to(events, triggered_id, "finished")) >= count


async def until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Wait until `condition()` holds (a runner's counters, a file the programs write), failing after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_started_then_finished_with_the_outcome_and_result_data(tidegate_settings: Settings) -> None:
    async def work(ctx: TaskContext) -> TaskOutcome:
        return TaskOutcome.warning("deployed, slowly", {"deployment": {"deploymentURIsLocal": ["http://carts:80"]}})

    connector = ScriptedConnector(work)
    event = triggered("deployment", {"deployment": {"deploymentstrategy": "direct"}})
    topics = TopicRegistry.from_settings(tidegate_settings)
    async with EventCollector(tidegate_settings, topics.events) as replies, hosted([connector], tidegate_settings):
        await publish_tasks(tidegate_settings, event)
        events = await replies.wait_for(has_finished(event.id), WAIT, "deployment.finished")

    started, finished = replies_to(events, event.id, "started"), replies_to(events, event.id, "finished")
    assert [e.type for e in (started[0], finished[0])] == ["sh.keptn.event.deployment.started",
                                                           "sh.keptn.event.deployment.finished"]
    assert events.index(started[0]) < events.index(finished[0])
    for reply in (started[0], finished[0]):
        assert reply.source == "scripted"
        assert reply.shkeptncontext == event.shkeptncontext
        assert reply.gitcommitid == "c0ffee"
        assert reply.data["project"] == "sockshop" and reply.data["service"] == "carts"
        assert reply.data["labels"] == {"team": "carts"}
    assert started[0].id == reply_id(event.id, "scripted", TaskKind.STARTED)
    assert finished[0].id == reply_id(event.id, "scripted", TaskKind.FINISHED)
    assert finished[0].data["status"] == "succeeded"
    assert finished[0].data["result"] == "warning"
    assert finished[0].data["message"] == "deployed, slowly"
    assert finished[0].data["deployment"] == {"deploymentURIsLocal": ["http://carts:80"]}
    assert connector.runs == [event.id]


async def test_a_task_over_its_timeout_property_is_stopped_and_reported_errored(tidegate_settings: Settings) -> None:
    async def work(ctx: TaskContext) -> TaskOutcome:
        result = await ctx.run_program([PYTHON, "-c", "import time; time.sleep(60)"])
        return TaskOutcome.passed(f"exit {result.exit_code}")

    connector = ScriptedConnector(work)
    event = triggered("deployment", {"deployment": {"timeout": "1s"}})
    topics = TopicRegistry.from_settings(tidegate_settings)
    async with EventCollector(tidegate_settings, topics.events) as replies, hosted([connector], tidegate_settings):
        await publish_tasks(tidegate_settings, event)
        events = await replies.wait_for(has_finished(event.id), WAIT, "deployment.finished after the timeout")

    finished = replies_to(events, event.id, "finished")[0]
    assert finished.data["status"] == "errored"
    assert finished.data["result"] == "fail"
    assert "timed out after 1s" in finished.data["message"]
    assert "deployment.timeout" in finished.data["message"]


async def test_a_redelivered_task_is_not_run_again_even_after_a_restart(tidegate_settings: Settings) -> None:
    async def work(ctx: TaskContext) -> TaskOutcome:
        return TaskOutcome.passed("done")

    connector = ScriptedConnector(work)
    event = triggered("deployment")
    topics = TopicRegistry.from_settings(tidegate_settings)
    async with EventCollector(tidegate_settings, topics.events) as replies:
        async with hosted([connector], tidegate_settings) as host:
            await publish_tasks(tidegate_settings, event)
            await replies.wait_for(has_finished(event.id), WAIT, "the first deployment.finished")
            await publish_tasks(tidegate_settings, event)  # the same event (same id) once more
            runner = host.runners[0]
            await until(lambda: runner.stats.skipped, WAIT, "the replayed event to be seen as already handled")
            assert runner.stats.skipped == 1, "the replayed event was not seen as already handled"
        # A new process: the memory comes back from the state topic, not from this object.
        fresh = ScriptedConnector(work)
        async with hosted([fresh], tidegate_settings) as host:
            await publish_tasks(tidegate_settings, event)
            runner = host.runners[0]
            await until(lambda: runner.stats.skipped, WAIT, "the restarted connector to skip the handled event")
            assert runner.stats.skipped == 1
            assert len(runner.state.memory) == 1
    assert connector.runs == [event.id]
    assert fresh.runs == []
    assert len(replies_to(replies.events, event.id, "finished")) == 1


async def test_an_aborted_sequence_cancels_the_running_program(tidegate_settings: Settings, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    async def work(ctx: TaskContext) -> TaskOutcome:
        await ctx.run_program([PYTHON, "-c", f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
                               "time.sleep(120)"])
        return TaskOutcome.passed("should not get here")

    connector = ScriptedConnector(work)
    event = triggered("deployment")
    topics = TopicRegistry.from_settings(tidegate_settings)
    async with EventCollector(tidegate_settings, topics.events) as replies, hosted([connector], tidegate_settings):
        await publish_tasks(tidegate_settings, event)
        await replies.wait_for(lambda events: bool(replies_to(events, event.id, "started")), WAIT, "deployment.started")
        await until(lambda: pid_file.exists() and pid_file.read_text(), WAIT, "the program to write its pid")
        pid = int(pid_file.read_text())
        await publish_on_task_topic(tidegate_settings, "deployment", cancellation(event))
        events = await replies.wait_for(has_finished(event.id), WAIT, "deployment.finished after the abort")

    finished = replies_to(events, event.id, "finished")[0]
    assert finished.data["status"] == "aborted"
    assert finished.data["result"] == "pass"
    assert finished.data["message"] == "cancelled because the sequence was aborted"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_an_exception_in_connector_code_becomes_an_errored_task(tidegate_settings: Settings) -> None:
    async def work(ctx: TaskContext) -> TaskOutcome:
        raise ValueError("chart helm/carts.tgz is not a gzip file")

    event = triggered("deployment")
    topics = TopicRegistry.from_settings(tidegate_settings)
    async with EventCollector(tidegate_settings, topics.events) as replies, hosted([ScriptedConnector(work)], tidegate_settings):
        await publish_tasks(tidegate_settings, event)
        events = await replies.wait_for(has_finished(event.id), WAIT, "deployment.finished")
    finished = replies_to(events, event.id, "finished")[0]
    assert (finished.data["status"], finished.data["result"]) == ("errored", "fail")
    assert "chart helm/carts.tgz is not a gzip file" in finished.data["message"]


async def test_concurrency_is_bounded_and_unwanted_events_are_left_alone(tidegate_settings: Settings) -> None:
    active = 0
    peak = 0
    release = asyncio.Event()

    async def work(ctx: TaskContext) -> TaskOutcome:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await release.wait()
        active -= 1
        return TaskOutcome.passed()

    connector = ScriptedConnector(work)
    events_in = [triggered("deployment", service=f"svc{i}") for i in range(4)]
    ignored = triggered("deployment", {"skip": True})
    topics = TopicRegistry.from_settings(tidegate_settings)
    options = ConnectorOptions(concurrency=2, timeout=60)
    async with EventCollector(tidegate_settings, topics.events) as replies, \
            hosted([connector], tidegate_settings, options):
        await publish_tasks(tidegate_settings, ignored, *events_in)
        await replies.wait_for(lambda evs: len([e for e in evs if e.type.endswith(".started")]) >= 4, WAIT,
                               "four deployment.started (sent at once, before the work)")
        assert peak == 2
        release.set()
        await replies.wait_for(lambda evs: all(replies_to(evs, e.id, "finished") for e in events_in), WAIT,
                               "four deployment.finished")
    assert peak == 2
    assert not [e for e in replies.events if e.triggeredid == ignored.id]


async def test_queued_work_of_partitions_that_move_to_a_new_instance_runs_there_and_only_there(
    tidegate_settings: Settings,
) -> None:
    release = asyncio.Event()

    async def work(ctx: TaskContext) -> TaskOutcome:
        await release.wait()
        return TaskOutcome.passed()

    first, second = ScriptedConnector(work), ScriptedConnector(work)
    events_in = [triggered("deployment", service=f"svc{i}") for i in range(12)]
    ids = {event.id for event in events_in}
    topics = TopicRegistry.from_settings(tidegate_settings)
    options = ConnectorOptions(concurrency=1, timeout=120)
    async with EventCollector(tidegate_settings, topics.events) as replies, \
            hosted([first], tidegate_settings, options):
        await publish_tasks(tidegate_settings, *events_in)
        # All twelve accepted by the first instance: one running, eleven waiting for its slot.
        await replies.wait_for(lambda evs: {e.triggeredid for e in evs if e.type.endswith(".started")} >= ids, WAIT,
                               "twelve deployment.started")
        await until(lambda: len(first.runs) == 1, WAIT, "the first task to run")
        async with hosted([second], tidegate_settings, options):
            # The rebalance gives the second instance partitions whose tasks were waiting on the first.
            await until(lambda: second.runs, WAIT, "the second instance to run a task that moved to it")
            release.set()
            await replies.wait_for(lambda evs: {e.triggeredid for e in evs if e.type.endswith(".finished")} >= ids,
                                   WAIT, "twelve deployment.finished")
    runs = Counter([*first.runs, *second.runs])
    assert set(runs) == ids, "every task ran"
    assert all(count == 1 for count in runs.values()), f"a task ran on both instances: {runs}"


async def test_several_connectors_run_in_one_process_each_in_its_own_group(tidegate_settings: Settings) -> None:
    async def deploy(ctx: TaskContext) -> TaskOutcome:
        return TaskOutcome.passed("deployed")

    async def test(ctx: TaskContext) -> TaskOutcome:
        return TaskOutcome.failed("tests failed")

    deployer = ScriptedConnector(deploy, name="deployer", tasks=("deployment",))
    tester = ScriptedConnector(test, name="tester", tasks=("test",))
    first, second = triggered("deployment"), triggered("test")
    topics = TopicRegistry.from_settings(tidegate_settings)
    async with EventCollector(tidegate_settings, topics.events) as replies, \
            hosted([deployer, tester], tidegate_settings) as host:
        await publish_tasks(tidegate_settings, first, second)
        events = await replies.wait_for(lambda evs: has_finished(first.id)(evs) and has_finished(second.id)(evs),
                                        WAIT, "both tasks finished")
        groups = sorted(runner.group for runner in host.runners)
    assert groups == [f"{tidegate_settings.topic_prefix}connector-deployer", f"{tidegate_settings.topic_prefix}connector-tester"]
    assert replies_to(events, first.id, "finished")[0].source == "deployer"
    assert replies_to(events, second.id, "finished")[0].data["result"] == "fail"
    assert (deployer.runs, tester.runs) == ([first.id], [second.id])


async def test_an_unreadable_record_goes_to_the_dead_letter_queue(tidegate_settings: Settings, kafka_reader) -> None:  # type: ignore[no-untyped-def]
    async def work(ctx: TaskContext) -> TaskOutcome:
        return TaskOutcome.passed()

    topics = TopicRegistry.from_settings(tidegate_settings)
    async with hosted([ScriptedConnector(work)], tidegate_settings):
        async with AsyncEventPublisher(tidegate_settings) as publisher:
            await publisher.publish_record(topics.task("deployment"), KafkaRecord(b"p/s/v", b"{not json"))
        letters = await asyncio.to_thread(kafka_reader, topics.dlq, 1)
    letter = read_dead_letter(letters[0])
    assert letter is not None
    assert letter.agent == "connector-scripted"
    assert "not valid JSON" in letter.reason


# --- a real connector process, killed mid-task -------------------------------------------------

SLOW_PROGRAM = """
import os, sys, time
with open(sys.argv[1], "a") as runs:
    runs.write(f"{os.getpid()} {os.environ['TIDEGATE_TRIGGERED_ID']}\\n")
time.sleep(float(sys.argv[2]))
"""


def command_config(program: Path, marker: Path, seconds: float) -> str:
    return yaml.safe_dump({"actions": [{
        "name": "slow deployment",
        "events": [{"name": "sh.keptn.event.deployment.triggered"}],
        "tasks": [{"name": "deploy", "cmd": [sys.executable, str(program), str(marker), str(seconds)]}],
    }]})


def start_connector(settings: Settings, log_file: Path, *options: str, **extra_env: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.as_env(), "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1",
           "TIDEGATE_COMMAND_ALLOW": sys.executable, **extra_env}
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", "from tidegate.cli.main import main; main()", "connector", "command",
             "--task", "deployment", *options],
            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )


async def test_a_task_running_when_the_connector_is_killed_is_reported_lost_once_and_not_rerun(
    tidegate_settings: Settings, tmp_path: Path
) -> None:
    marker = tmp_path / "runs"
    program = tmp_path / "slow.py"
    program.write_text(SLOW_PROGRAM)
    config = command_config(program, marker, 60)
    publish_files(tidegate_settings, "sockshop", {"command/config.yaml": config})
    event = triggered("deployment")
    topics = TopicRegistry.from_settings(tidegate_settings)
    log_file = tmp_path / "connector.log"
    program_pids: list[int] = []
    process = start_connector(tidegate_settings, log_file)
    try:
        async with EventCollector(tidegate_settings, topics.events) as replies:
            await publish_tasks(tidegate_settings, event)
            await replies.wait_for(lambda evs: bool(replies_to(evs, event.id, "started")), WAIT, "deployment.started")
            await until(lambda: marker.exists() and marker.read_text().strip(), WAIT, "the program to start")
            program_pids = [int(line.split()[0]) for line in marker.read_text().splitlines()]
            process.send_signal(signal.SIGKILL)
            process.wait(30)

            process = start_connector(tidegate_settings, log_file)
            events = await replies.wait_for(has_finished(event.id), WAIT, "the lost task's deployment.finished")
            # Let the restarted connector settle, then make sure nothing else came.
            await publish_tasks(tidegate_settings, probe := triggered("deployment"))
            await replies.wait_for(lambda evs: bool(replies_to(evs, probe.id, "started")), WAIT, "a later task starting")
            await until(lambda: probe.id in marker.read_text(), WAIT, "the later task's program to start")
        finished = replies_to(events, event.id, "finished")
        assert len(finished) == 1, f"expected one finished, got {len(finished)}:\n{log_file.read_text()[-3000:]}"
        assert finished[0].data["status"] == "errored"
        assert finished[0].data["message"] == (
            "task lost: the command connector stopped while running it; it may have partly run"
        )
        runs = [line.split()[1] for line in marker.read_text().splitlines()]
        assert runs == [event.id, probe.id], "the lost task ran again (only the probe may have started since)"
        assert state_topic(tidegate_settings.topic_prefix, "command") == f"{tidegate_settings.topic_prefix}connector-command.state"
    finally:
        process.kill()
        process.wait(30)
        lines = marker.read_text().splitlines() if marker.exists() else []
        for pid in program_pids + [int(line.split()[0]) for line in lines]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# A program that records its run, then blocks until the test creates the release file.
BLOCKING_PROGRAM = """
import os, pathlib, sys, time
with open(sys.argv[1], "a") as runs:
    runs.write(f"{os.getpid()} {os.environ['TIDEGATE_TRIGGERED_ID']}\\n")
release = pathlib.Path(sys.argv[2])
while not release.exists():
    time.sleep(0.05)
"""


def read_runs(marker: Path) -> list[tuple[int, str]]:
    lines = marker.read_text().splitlines() if marker.exists() else []
    return [(int(pid), triggered_id) for pid, triggered_id in (line.split() for line in lines if line.strip())]


async def test_a_killed_connector_reports_only_its_running_programs_lost_and_runs_the_queued_ones_after_a_restart(
    tidegate_settings: Settings, tmp_path: Path
) -> None:
    marker, release = tmp_path / "runs", tmp_path / "release"
    program = tmp_path / "blocking.py"
    program.write_text(BLOCKING_PROGRAM)
    config = yaml.safe_dump({"actions": [{
        "name": "blocking deployment",
        "events": [{"name": "sh.keptn.event.deployment.triggered"}],
        "tasks": [{"name": "deploy", "cmd": [sys.executable, str(program), str(marker), str(release)]}],
    }]})
    publish_files(tidegate_settings, "sockshop", {"command/config.yaml": config})
    events = [triggered("deployment") for _ in range(10)]
    ids = {event.id for event in events}
    topics = TopicRegistry.from_settings(tidegate_settings)
    log_file = tmp_path / "connector.log"
    process = start_connector(tidegate_settings, log_file, "--concurrency", "2")
    try:
        async with EventCollector(tidegate_settings, topics.events) as replies:
            await publish_tasks(tidegate_settings, *events)
            # All ten accepted (their `.started` went out), two programs running, eight waiting for a slot.
            await replies.wait_for(lambda evs: {e.triggeredid for e in evs if e.type.endswith(".started")} >= ids,
                                   WAIT, "ten deployment.started")
            await until(lambda: len(read_runs(marker)) >= 2, WAIT, "two programs running")
            running = {triggered_id for _, triggered_id in read_runs(marker)}
            assert len(running) == 2, f"concurrency 2, yet {len(running)} programs started"
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            release.touch()  # the orphaned programs end; the re-run ones will not block

            process = start_connector(tidegate_settings, log_file, "--concurrency", "2")
            finished_all = lambda evs: {e.triggeredid for e in evs if e.type.endswith(".finished")} >= ids  # noqa: E731
            await replies.wait_for(finished_all, WAIT, "all ten deployment.finished")
            # A later task runs after all of them: anything run twice would have shown up by then.
            await publish_tasks(tidegate_settings, probe := triggered("deployment"))
            collected = await replies.wait_for(has_finished(probe.id), WAIT, "a later task finishing")
        finished = {event_id: replies_to(collected, event_id, "finished") for event_id in ids}
        assert all(len(replies) == 1 for replies in finished.values()), \
            f"a task finished more than once:\n{log_file.read_text()[-3000:]}"
        lost_ids = {event_id for event_id, replies in finished.items() if replies[0].data["status"] == "errored"}
        assert lost_ids == running, "only the two programs running at the kill may be reported lost"
        for event_id in lost_ids:
            assert finished[event_id][0].data["message"] == (
                "task lost: the command connector stopped while running it; it may have partly run")
        assert all(finished[event_id][0].data["result"] == "pass" for event_id in ids - lost_ids)
        runs = [triggered_id for _, triggered_id in read_runs(marker)]
        assert sorted(runs) == sorted([*ids, probe.id]), "every task ran exactly once (the lost ones before the kill)"
    finally:
        release.touch()
        process.kill()
        process.wait(30)
        for pid, _ in read_runs(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def test_a_task_program_cannot_read_the_connector_s_secrets_through_proc(
    tidegate_settings: Settings, tmp_path: Path
) -> None:
    """The attack: a command/config.yaml whose program cats /proc/$PPID/environ (the connector's). The
    connector's secret must appear neither in the .finished event nor in its log. As root the connector
    runs programs as `nobody` (TIDEGATE_COMMAND_USER); otherwise it protects itself (non-dumpable)."""
    secret = f"s3cret-{uuid.uuid4().hex}"
    config = yaml.safe_dump({"actions": [{
        "name": "peek", "events": [{"name": "sh.keptn.event.deployment.triggered"}],
        "tasks": [{"name": "peek", "cmd": ["sh", "-c", "cat /proc/$PPID/environ && echo read it"]}],
    }]})
    publish_files(tidegate_settings, "sockshop", {"command/config.yaml": config})
    event = triggered("deployment")
    topics = TopicRegistry.from_settings(tidegate_settings)
    log_file = tmp_path / "connector.log"
    as_user = {"TIDEGATE_COMMAND_USER": "nobody"} if os.geteuid() == 0 else {}
    process = start_connector(tidegate_settings, log_file, "--log-level", "DEBUG", TIDEGATE_COMMAND_ALLOW="sh",
                              TIDEGATE_SECRET_DEPLOY_TOKEN=secret, **as_user)
    try:
        async with EventCollector(tidegate_settings, topics.events) as replies:
            await publish_tasks(tidegate_settings, event)
            events = await replies.wait_for(has_finished(event.id), WAIT, "deployment.finished of the peeking task")
    finally:
        process.kill()
        process.wait(30)
    [finished] = replies_to(events, event.id, "finished")
    message = finished.data["message"]
    assert "peek: exit 1" in message and "Permission denied" in message, message
    assert secret not in str(finished.data)
    assert secret not in log_file.read_text()
