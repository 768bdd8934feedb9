"""The history store on SQLite: idempotent ingestion, sequence states, event queries, open triggers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tidegate.readside.history import EventFilter, HistoryStore, SeenEvent, SequenceFilter, Transition
from tidegate.readside.history.audit import entry_of_event
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.keys import Key
from tidegate.streams.audit import transition_event

CONTEXT = "0b8e3a8e-6a4b-4c55-9d3c-7f1c2b9a0d11"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(type_: str, seconds: int, *, stage: str = "dev", triggeredid: str | None = None, id_: str | None = None,
          context: str = CONTEXT, **data: object) -> SeenEvent:
    body = {"project": "sockshop", "stage": stage, "service": "carts", **data}
    fields: dict[str, object] = {"type": type_, "time": at(seconds), "shkeptncontext": context, "data": body}
    if triggeredid:
        fields["triggeredid"] = triggeredid
    if id_:
        fields["id"] = id_
    return SeenEvent(KeptnEvent.model_validate(fields))


def transition(kind: str, seconds: int, *, stage: str = "dev", sequence: str = "delivery", triggered_id: str,
               context: str = CONTEXT, **fields: str) -> Transition:
    key = Key("sockshop", stage, "carts")
    audit = transition_event(
        agent="sequencer", kind=kind, id=f"{kind}-{stage}-{seconds}", time=at(seconds), keptn_context=context,
        data={"key": str(key), "sequence": sequence, "sequence_triggered_id": triggered_id, **fields},
    )
    entry = entry_of_event(audit)
    assert isinstance(entry, Transition)
    return entry


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")


def delivery_run() -> list[SeenEvent | Transition]:
    """dev delivery (deployment passes), then staging delivery whose test fails."""
    trig = event("sh.keptn.event.dev.delivery.triggered", 0, id_="seq-dev",
                 configurationChange={"values": {"image": "carts:0.13.1"}})
    deploy = event("sh.keptn.event.deployment.triggered", 2, id_="task-deploy")
    return [
        trig,
        transition("queued", 1, triggered_id="seq-dev"),
        transition("started", 1, triggered_id="seq-dev"),
        deploy,
        event("sh.keptn.event.deployment.started", 3, triggeredid="task-deploy"),
        event("sh.keptn.event.deployment.finished", 4, triggeredid="task-deploy", result="pass", status="succeeded"),
        event("sh.keptn.event.dev.delivery.finished", 5, triggeredid="seq-dev", result="pass", status="succeeded"),
        transition("finished", 5, triggered_id="seq-dev", result="pass", status="succeeded"),
        event("sh.keptn.event.staging.delivery.triggered", 6, stage="staging", id_="seq-staging",
              configurationChange={"values": {"image": "carts:0.13.1"}}),
        transition("started", 6, stage="staging", triggered_id="seq-staging"),
    ]


def test_ingesting_twice_stores_once(store: HistoryStore) -> None:
    entries = delivery_run()
    assert len(store.ingest(entries)) == len(entries)
    assert store.ingest(entries) == []
    assert store.ingest(entries[:3]) == []
    page = store.events(EventFilter(project="sockshop"), page_size=100)
    assert page.total_count == sum(isinstance(e, SeenEvent) for e in entries)


def test_sequence_state_follows_the_run_across_stages(store: HistoryStore) -> None:
    entries = delivery_run()
    store.ingest(entries[:4])
    view = store.sequence(CONTEXT)
    assert view is not None
    assert (view.name, view.service, view.state) == ("delivery", "carts", "started")
    assert view.stage("dev") is not None and view.stage("dev").image == "carts:0.13.1"  # type: ignore[union-attr]

    store.ingest(entries[4:8])
    view = store.sequence(CONTEXT)
    assert view is not None and view.state == "finished" and view.result == "pass"

    store.ingest(entries[8:])
    view = store.sequence(CONTEXT)
    assert view is not None and view.state == "started"
    assert [s.name for s in view.stages] == ["dev", "staging"]
    assert view.stage("dev").state == "succeeded"  # type: ignore[union-attr]


def test_a_failed_stage_fails_the_whole_sequence_even_after_a_rollback(store: HistoryStore) -> None:
    store.ingest(delivery_run())
    store.ingest([
        event("sh.keptn.event.staging.delivery.finished", 20, stage="staging", triggeredid="seq-staging",
              result="fail", status="succeeded"),
        event("sh.keptn.event.staging.rollback.triggered", 21, stage="staging", id_="seq-rollback"),
        transition("finished", 20, stage="staging", triggered_id="seq-staging", result="fail", status="succeeded"),
        transition("started", 22, stage="staging", sequence="rollback", triggered_id="seq-rollback"),
        event("sh.keptn.event.staging.rollback.finished", 30, stage="staging", triggeredid="seq-rollback",
              result="pass", status="succeeded"),
        transition("finished", 30, stage="staging", sequence="rollback", triggered_id="seq-rollback",
                   result="pass", status="succeeded"),
    ])
    view = store.sequence(CONTEXT)
    assert view is not None
    assert view.state == "finished"
    assert view.result == "fail"
    staging = view.stage("staging")
    assert staging is not None and staging.sequence == "rollback" and staging.state == "succeeded"


def test_pause_and_abort_show_in_the_state(store: HistoryStore) -> None:
    store.ingest(delivery_run()[:4])
    store.ingest([transition("paused", 10, triggered_id="seq-dev")])
    assert store.sequence(CONTEXT).state == "paused"  # type: ignore[union-attr]
    store.ingest([transition("resumed", 11, triggered_id="seq-dev")])
    assert store.sequence(CONTEXT).state == "started"  # type: ignore[union-attr]
    store.ingest([transition("aborted", 12, triggered_id="seq-dev", status="aborted", result="pass")])
    view = store.sequence(CONTEXT)
    assert view is not None and view.state == "aborted" and view.done


def test_sequences_filter_and_page(store: HistoryStore) -> None:
    contexts = [f"00000000-0000-4000-8000-{n:012d}" for n in range(5)]
    for n, context in enumerate(contexts):
        store.ingest([event("sh.keptn.event.dev.delivery.triggered", n * 10, id_=f"t{n}", context=context)])
    store.ingest([transition("started", 100, triggered_id="t4", context=contexts[4])])
    first = store.sequences("sockshop", page_size=2)
    assert [v.keptn_context for v in first.items] == [contexts[4], contexts[3]]
    assert first.total_count == 5 and first.next_page_key == "2"
    rest = store.sequences("sockshop", page_size=10, next_page_key=first.next_page_key)
    assert [v.keptn_context for v in rest.items] == [contexts[2], contexts[1], contexts[0]]
    assert rest.next_page_key is None
    started = store.sequences("sockshop", SequenceFilter(state="started"))
    assert [v.keptn_context for v in started.items] == [contexts[4]]
    assert store.sequences("other").total_count == 0


def test_events_newest_first_with_filters_and_roots(store: HistoryStore) -> None:
    store.ingest(delivery_run())
    page = store.events(EventFilter(project="sockshop", stage="dev"), page_size=3)
    assert [e["type"] for e in page.items] == [
        "sh.keptn.event.dev.delivery.finished",
        "sh.keptn.event.deployment.finished",
        "sh.keptn.event.deployment.started",
    ]
    roots = store.events(EventFilter(project="sockshop", root=True))
    assert [e["id"] for e in roots.items] == ["seq-dev"]
    matched = store.events_matching(
        EventFilter(type="sh.keptn.event.deployment.finished", keptn_context=CONTEXT), {"data.result": ["pass"]}
    )
    assert len(matched.items) == 1
    assert store.events_matching(
        EventFilter(type="sh.keptn.event.deployment.finished", keptn_context=CONTEXT), {"data.result": ["fail"]}
    ).items == []


def test_open_triggered_events_close_when_finished(store: HistoryStore) -> None:
    store.ingest([event("sh.keptn.event.approval.triggered", 0, id_="approve-1")])
    assert [e["id"] for e in store.open_triggered("sh.keptn.event.approval.triggered", project="sockshop")] == [
        "approve-1"
    ]
    store.ingest([event("sh.keptn.event.approval.finished", 1, triggeredid="approve-1", result="pass",
                        status="succeeded")])
    assert store.open_triggered("sh.keptn.event.approval.triggered", project="sockshop") == []


def test_context_keys_and_timeline(store: HistoryStore) -> None:
    store.ingest(delivery_run())
    keys = store.context_keys("sockshop", CONTEXT)
    assert [str(k) for k in keys] == ["sockshop/dev/carts", "sockshop/staging/carts"]
    timeline = store.timeline(CONTEXT)
    assert len(timeline) == len(delivery_run())
    assert timeline[0][1]["kind"] == "event" and timeline[0][1]["event"]["id"] == "seq-dev"
    assert store.timeline(CONTEXT, after=len(timeline) - 1)[0][0] == len(timeline)


def test_evaluations_and_invalidation(store: HistoryStore) -> None:
    store.ingest([
        event("sh.keptn.event.evaluation.finished", 5, triggeredid="eval-t1", id_="eval-1", result="pass",
              status="succeeded", evaluation={"score": 100, "result": "pass"}),
        event("sh.keptn.event.evaluation.finished", 9, triggeredid="eval-t2", id_="eval-2", result="fail",
              status="succeeded", evaluation={"score": 20.5, "result": "fail"}),
    ])
    assert [e["id"] for e in store.evaluations("sockshop", stage="dev").items] == ["eval-2", "eval-1"]
    store.ingest([event("sh.keptn.event.evaluation.invalidated", 10, triggeredid="eval-t2")])
    assert [e["id"] for e in store.evaluations("sockshop").items] == ["eval-1"]
    assert len(store.evaluations("sockshop", include_invalidated=True).items) == 2
    kept = store.events(EventFilter(type="sh.keptn.event.evaluation.finished", exclude_invalidated=True))
    assert [e["id"] for e in kept.items] == ["eval-1"]


def test_a_bad_page_key_is_explained(store: HistoryStore) -> None:
    from tidegate.readside.history import QueryError

    with pytest.raises(QueryError, match="nextPageKey"):
        store.events(EventFilter(), next_page_key="abc")
