"""The Bridge's sequence timeline: runs per stage, tasks with their replies, states, durations, notes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tidegate.bridge.records import EventRecord, TimelineItem, TransitionRecord, timeline_items
from tidegate.bridge.states import duration_text, label, tone
from tidegate.bridge.timeline import build_timeline, failed_tasks
from tidegate.readside.history.audit import SeenEvent
from tidegate.readside.history.sequences import SequenceView, apply
from tidegate.schemas.events import KeptnEvent

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CONTEXT = "6b1f3c52-0000-4000-8000-000000000001"


class Run:
    """Builds the stored events of one context, a second apart."""

    def __init__(self) -> None:
        self.events: list[KeptnEvent] = []
        self.clock = T0

    def add(self, type_: str, stage: str, *, triggeredid: str | None = None, source: str = "tidegate-sequencer",
            **data: Any) -> KeptnEvent:
        event = KeptnEvent(type=f"sh.keptn.event.{type_}", source=source, time=self.clock, shkeptncontext=CONTEXT,
                           triggeredid=triggeredid,
                           data={"project": "sockshop", "stage": stage, "service": "carts", **data})
        self.clock += timedelta(seconds=1)
        self.events.append(event)
        return event

    def task(self, name: str, stage: str, result: str = "pass", status: str = "succeeded",
             source: str = "helm") -> KeptnEvent:
        triggered = self.add(f"{name}.triggered", stage)
        self.add(f"{name}.started", stage, triggeredid=triggered.id, source=source, status="succeeded")
        self.add(f"{name}.finished", stage, triggeredid=triggered.id, source=source, result=result, status=status)
        return triggered

    def records(self) -> list[TimelineItem]:
        return [EventRecord.of(e.to_json_dict()) for e in self.events]

    def view(self) -> SequenceView | None:
        view = None
        for event in self.events:
            view = apply(view, SeenEvent(event))
        return view


def test_runs_are_grouped_by_stage_in_shipyard_order_with_their_tasks() -> None:
    run = Run()
    dev = run.add("dev.delivery.triggered", "dev", source="ci")
    run.task("deployment", "dev")
    run.task("test", "dev", source="locust")
    run.add("dev.delivery.finished", "dev", triggeredid=dev.id, result="pass", status="succeeded")
    staging = run.add("staging.delivery.triggered", "staging")
    run.task("deployment", "staging")

    timeline = build_timeline(CONTEXT, run.records(), view=run.view(), stage_order=["dev", "staging", "production"],
                              now=run.clock)

    assert [lane.stage for lane in timeline.lanes] == ["dev", "staging"]
    [dev_row] = timeline.lanes[0].runs
    assert dev_row.run.id == dev.id and dev_row.state == "succeeded" and not dev_row.is_open
    assert [t.name for t in dev_row.run.tasks] == ["deployment", "test"]
    assert dev_row.run.tasks[1].answered_by == ["locust"]
    assert dev_row.duration == timedelta(seconds=7)  # triggered at 0 s, finished at 7 s
    [staging_row] = timeline.lanes[1].runs
    assert staging_row.run.id == staging.id
    # The sequence view (here built from events alone, without the sequencer's transitions) says triggered.
    assert staging_row.state == "triggered" and staging_row.is_open
    assert timeline.event_count == len(run.events)


def test_a_task_is_finished_only_when_every_started_executor_finished_and_its_result_is_the_worst() -> None:
    run = Run()
    run.add("dev.delivery.triggered", "dev")
    triggered = run.add("test.triggered", "dev")
    run.add("test.started", "dev", triggeredid=triggered.id, source="jmeter", status="succeeded")
    run.add("test.started", "dev", triggeredid=triggered.id, source="locust", status="succeeded")
    run.add("test.finished", "dev", triggeredid=triggered.id, source="jmeter", result="warning", status="succeeded")

    half = build_timeline(CONTEXT, run.records(), view=None, now=run.clock)
    [task] = half.lanes[0].runs[0].run.tasks
    assert not task.done and task.state(run_open=True) == "running"

    run.add("test.finished", "dev", triggeredid=triggered.id, source="locust", result="fail", status="errored")
    done = build_timeline(CONTEXT, run.records(), view=None, now=run.clock)
    [task] = done.lanes[0].runs[0].run.tasks
    assert task.done
    assert (task.result, task.status) == ("fail", "errored")
    assert task.answered_by == ["jmeter", "locust"]
    assert failed_tasks(done) == [("dev", task)]


def test_a_warning_is_not_a_failure() -> None:
    run = Run()
    run.add("dev.delivery.triggered", "dev")
    run.task("evaluation", "dev", result="warning", source="tidegate-evaluator")
    timeline = build_timeline(CONTEXT, run.records(), view=None, now=run.clock)
    [task] = timeline.lanes[0].runs[0].run.tasks
    assert task.result == "warning"
    assert failed_tasks(timeline) == []


def test_abort_cancels_the_waiting_task_and_shows_the_controls_and_transitions_as_notes() -> None:
    run = Run()
    sequence = run.add("dev.delivery.triggered", "dev")
    deployment = run.add("deployment.triggered", "dev")
    run.add("deployment.started", "dev", triggeredid=deployment.id, source="helm", status="succeeded")
    control = KeptnEvent(type="sh.tidegate.sequence.control", source="tidegate", time=run.clock,
                         shkeptncontext=CONTEXT, data={"project": "sockshop", "stage": "dev", "service": "carts",
                                                       "state": "abort"})
    cancelled = KeptnEvent(type="sh.tidegate.task.cancelled", source="tidegate-sequencer",
                           time=run.clock + timedelta(seconds=1), shkeptncontext=CONTEXT, triggeredid=deployment.id,
                           data={"project": "sockshop", "stage": "dev", "service": "carts", "task": "deployment",
                                 "reason": "aborted", "message": "Sequence 'dev.delivery' was aborted"})
    run.events += [control, cancelled]
    run.clock += timedelta(seconds=2)
    run.add("dev.delivery.finished", "dev", triggeredid=sequence.id, result="pass", status="aborted")
    aborted = TransitionRecord.of({"id": "t1", "agent": "sequencer", "kind": "aborted", "time": "2024-05-01T12:00:05Z",
                                   "stage": "dev", "service": "carts", "sequenceTriggeredId": sequence.id,
                                   "message": "aborted by a person"})

    timeline = build_timeline(CONTEXT, [*run.records(), aborted], view=None, now=run.clock)
    [row] = timeline.lanes[0].runs
    assert row.state == "aborted" and not row.is_open
    [task] = row.run.tasks
    assert task.state(run_open=False) == "cancelled"
    assert task.message == "Sequence 'dev.delivery' was aborted"
    assert task.answered_by == ["helm"], "the cancellation is not an answer"
    notes = [note.text for note in row.run.notes]
    assert "abort requested (tidegate)" in notes
    assert "aborted: aborted by a person" in notes
    assert tone(row.state) == "fail" and label(row.state) == "aborted"


def test_an_open_run_takes_its_state_from_the_sequence_view() -> None:
    run = Run()
    run.add("production.delivery.triggered", "production")
    approval = run.add("approval.triggered", "production", result="pass")
    run.add("approval.started", "production", triggeredid=approval.id, source="tidegate-approver", status="succeeded")
    waiting = {"kind": "transition", "transition": {
        "id": "w1", "agent": "sequencer", "kind": "waiting_for_approval", "time": "2024-05-01T12:00:03Z",
        "shkeptncontext": CONTEXT, "project": "sockshop", "stage": "production", "service": "carts",
        "sequence": "delivery", "task": "approval"}}
    raw = [(i, {"kind": "event", "event": e.to_json_dict()}) for i, e in enumerate(run.events, start=1)]
    items = timeline_items([*raw, (99, waiting)])
    view = run.view()
    assert view is not None
    from tidegate.readside.history.audit import Transition
    from tidegate.schemas.keys import Key

    view = apply(view, Transition(id="w1", agent="sequencer", kind="waiting_for_approval", time=run.clock,
                                  keptn_context=CONTEXT, key=Key("sockshop", "production", "carts"),
                                  sequence="delivery"))
    timeline = build_timeline(CONTEXT, items, view=view, now=run.clock + timedelta(minutes=3))
    [row] = timeline.lanes[0].runs
    assert row.state == "waitingForApproval" and row.is_open
    [task] = row.run.tasks
    assert task.state(run_open=True) == "running"  # the approver started it; a person has to finish it
    assert task.duration(run.clock + timedelta(minutes=3)) > timedelta(minutes=3)
    assert label(row.state) == "waiting for approval"


def test_a_reply_without_its_triggered_event_is_shown_not_dropped() -> None:
    run = Run()
    run.add("dev.delivery.triggered", "dev")
    run.add("deployment.finished", "dev", triggeredid="unknown-id", source="helm", result="pass", status="succeeded")
    timeline = build_timeline(CONTEXT, run.records(), view=None, now=run.clock)
    [row] = timeline.lanes[0].runs
    assert row.run.tasks == []
    assert any("answers no task" in note.text for note in row.run.notes)


def test_unreadable_fields_do_not_break_the_timeline() -> None:
    items = timeline_items([(1, {"kind": "event", "event": {"type": "sh.keptn.event.dev.delivery.triggered",
                                                            "time": "yesterday", "data": "not an object"}}),
                            (2, {"kind": "mystery"})])
    timeline = build_timeline(CONTEXT, items, view=None, now=T0)
    assert timeline.event_count == 1
    assert [lane.stage for lane in timeline.lanes] == ["dev"]


def test_durations_read_like_a_person_would_say_them() -> None:
    assert [duration_text(timedelta(seconds=s)) for s in (0.25, 42, 185, 3600 * 2 + 240, 86400 * 3 + 7200)] == [
        "250 ms", "42 s", "3 min 5 s", "2 h 4 min", "3 d 2 h"]
    assert duration_text(None) == ""
