"""The runtime's pure parts: replies, the task memory, time limits and stop outcomes."""

from __future__ import annotations

import pytest

from tidegate.connectors.runtime import (
    TaskMemory,
    TaskOutcome,
    TaskPhase,
    TaskRecord,
    Verdict,
    task_time_limit,
)
from tidegate.connectors.runtime.policy import cancelled, lost, timed_out
from tidegate.connectors.runtime.replies import finished_event, started_event
from tidegate.connectors.runtime.state import decode_record, encode_record
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.ids import derived_id

TRIGGERED = KeptnEvent(
    id="0b3c2f7e-1111-4a5b-9c8d-000000000001",
    type="sh.keptn.event.deployment.triggered",
    source="shipyard-controller",
    shkeptncontext="ctx-1",
    gitcommitid="abc123",
    data={"project": "sockshop", "stage": "dev", "service": "carts", "labels": {"a": "b"},
          "configurationChange": {"values": {"image": "carts:1"}}},
)


def test_started_copies_context_commit_and_common_data_and_has_a_deterministic_id() -> None:
    started = started_event(TRIGGERED, "helm")
    assert started.type == "sh.keptn.event.deployment.started"
    assert started.triggeredid == TRIGGERED.id
    assert (started.shkeptncontext, started.gitcommitid, started.source) == ("ctx-1", "abc123", "helm")
    assert started.data == {"project": "sockshop", "stage": "dev", "service": "carts", "labels": {"a": "b"},
                            "status": "succeeded"}
    assert started.id == derived_id(TRIGGERED.id, "helm:started")
    assert started_event(TRIGGERED, "helm").id == started.id


def test_finished_carries_the_outcome_and_the_common_block_wins_over_result_data() -> None:
    outcome = TaskOutcome.failed("tests failed", {"test": {"start": "s", "end": "e"}, "project": "other"})
    finished = finished_event(TRIGGERED, "tests", outcome)
    assert finished.type == "sh.keptn.event.deployment.finished"
    assert finished.id == derived_id(TRIGGERED.id, "tests:finished")
    assert finished.data["project"] == "sockshop"
    assert finished.data["test"] == {"start": "s", "end": "e"}
    assert (finished.data["status"], finished.data["result"], finished.data["message"]) == (
        "succeeded", "fail", "tests failed")
    assert "configurationChange" not in finished.data


def test_replies_are_only_for_task_events() -> None:
    sequence = TRIGGERED.model_copy(update={"type": "sh.keptn.event.dev.delivery.triggered"})
    with pytest.raises(ValueError, match="not a task event"):
        started_event(sequence, "helm")


def record(state: TaskPhase) -> TaskRecord:
    return TaskRecord(state=state, task="deployment", key="sockshop/dev/carts", started_at="t0")


def test_memory_verdicts() -> None:
    memory = TaskMemory()
    assert memory.verdict("a", running=set()) is Verdict.RUN
    memory.apply("a", record(TaskPhase.STARTED))
    assert memory.verdict("a", running={"a"}) is Verdict.SKIP_RUNNING
    assert memory.verdict("a", running=set()) is Verdict.REPORT_LOST
    memory.apply("a", record(TaskPhase.FINISHED))
    assert memory.verdict("a", running=set()) is Verdict.SKIP_FINISHED


def test_a_task_accepted_here_but_not_started_yet_is_not_run_a_second_time() -> None:
    # Queued for a slot: no `started` record yet, but a duplicate delivery must not run it again.
    memory = TaskMemory()
    assert memory.verdict("a", running={"a"}) is Verdict.SKIP_RUNNING
    # After a crash nothing remembers it: it was never started, so it runs now.
    assert memory.verdict("a", running=set()) is Verdict.RUN


def test_memory_never_goes_back_from_finished_to_started() -> None:
    memory = TaskMemory()
    memory.apply("a", record(TaskPhase.FINISHED))
    memory.apply("a", record(TaskPhase.STARTED))  # our own earlier write, read back late
    assert memory.verdict("a", running=set()) is Verdict.SKIP_FINISHED


def test_state_records_round_trip_and_garbage_is_ignored() -> None:
    key, value = encode_record("id-1", record(TaskPhase.STARTED).finish("t1"))
    assert decode_record(key, value) == ("id-1", record(TaskPhase.FINISHED).model_copy(update={"finished_at": "t1"}))
    assert decode_record(b"id", None) is None
    assert decode_record(b"id", b"{not json") is None
    assert decode_record(b"id", b'{"state": "exploded"}') is None


@pytest.mark.parametrize(
    ("block", "seconds", "from_property"),
    [
        (None, 600.0, False),
        ({"timeout": "90s"}, 90.0, True),
        ({"timeout": "1h30m"}, 5400.0, True),
        ({"timeout": 45}, 45.0, True),
        ({"timeout": "soon"}, 600.0, False),
        ({"timeout": "-5s"}, 600.0, False),
        ({"timeout": True}, 600.0, False),
    ],
)
def test_task_time_limit(block: dict[str, object] | None, seconds: float, from_property: bool) -> None:
    data = {"deployment": block} if block is not None else {}
    limit = task_time_limit(data, "deployment", 600.0)
    assert limit.seconds == seconds
    assert ("deployment.timeout" in limit.source) is from_property
    if block is not None and not from_property:
        assert limit.problem is not None and "deployment.timeout" in limit.problem


def test_stop_outcomes_say_what_happened() -> None:
    limit = task_time_limit({"test": {"timeout": "2m"}}, "test", 600)
    out = timed_out("tests", "test", limit)
    assert (out.status.value, out.result.value) == ("errored", "fail")
    assert "timed out after 2m" in out.message and "test.timeout" in out.message
    gone = lost("helm")
    assert gone.message == "task lost: the helm connector stopped while running it; it may have partly run"
    aborted = cancelled("aborted")
    assert (aborted.status.value, aborted.result.value, aborted.message) == (
        "aborted", "pass", "cancelled because the sequence was aborted")
    late = cancelled("timedOut", "no finished within 10m")
    assert (late.status.value, late.result.value) == ("errored", "fail")
    assert "no finished within 10m" in late.message
