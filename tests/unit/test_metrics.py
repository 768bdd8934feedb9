"""Tidegate's own Prometheus metrics (streams.metrics), each instance in a registry of its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest

import tidegate.streams.metrics as metrics_module
from tidegate.schemas.events import KeptnEvent, sequence_type, task_type
from tidegate.streams.dlq import DeadLetter, DeadLetterReason
from tidegate.streams.metrics import (
    ConsumerLagCollector,
    SharedCollectors,
    TidegateMetrics,
    add_lag_source,
    consumer_lag,
    metrics_port,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DATA = {"project": "shop", "stage": "dev", "service": "carts"}


def event(type_: str, *, at: datetime = T0, ident: str | None = None, triggeredid: str | None = None,
          **data: Any) -> KeptnEvent:
    kwargs: dict[str, Any] = {"id": ident} if ident else {}
    return KeptnEvent(type=type_, time=at, triggeredid=triggeredid, shkeptncontext="ctx", data={**DATA, **data},
                      **kwargs)


@pytest.fixture
def metrics() -> TidegateMetrics:
    return TidegateMetrics(CollectorRegistry())


def value(m: TidegateMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_events_are_counted_per_topic_and_type(metrics: TidegateMetrics) -> None:
    triggered = event(sequence_type("dev", "delivery", "triggered"))
    metrics.observe_consumed("tidegate.events", triggered, "sequencer")
    metrics.observe_consumed("tidegate.events", triggered, "remediator")
    metrics.observe_produced("tidegate.tasks.deployment", event(task_type("deployment", "triggered")))
    assert value(metrics, "tidegate_events_consumed_total", agent="sequencer", topic="tidegate.events",
                 type=triggered.type) == 1
    assert value(metrics, "tidegate_events_consumed_total", agent="remediator", topic="tidegate.events",
                 type=triggered.type) == 1
    assert value(metrics, "tidegate_events_produced_total", topic="tidegate.tasks.deployment",
                 type="sh.keptn.event.deployment.triggered") == 1


def test_a_sequence_is_timed_from_its_trigger_to_its_finish(metrics: TidegateMetrics) -> None:
    trigger = event(sequence_type("dev", "delivery", "triggered"), ident="seq-1")
    metrics.observe_consumed("tidegate.events", trigger, "sequencer")
    finished = event(sequence_type("dev", "delivery", "finished"), at=T0 + timedelta(seconds=90),
                     triggeredid="seq-1", result="pass", status="succeeded")
    metrics.observe_produced("tidegate.events", finished)
    metrics.observe_produced("tidegate.events", finished)  # a repeat is not timed twice
    labels = {"stage": "dev", "sequence": "delivery", "result": "pass"}
    assert value(metrics, "tidegate_sequence_duration_seconds_count", **labels) == 1
    assert value(metrics, "tidegate_sequence_duration_seconds_sum", **labels) == 90
    assert value(metrics, "tidegate_sequence_duration_seconds_bucket", le="120.0", **labels) == 1
    assert value(metrics, "tidegate_sequence_duration_seconds_bucket", le="60.0", **labels) == 0


def test_a_task_is_timed_once_and_a_remediation_action_counted_by_name_and_result(metrics: TidegateMetrics) -> None:
    metrics.observe_produced("tidegate.tasks.action", event(task_type("action", "triggered"), ident="act-1",
                                                             action={"name": "scale up", "action": "scaling"}))
    answer = event(task_type("action", "finished"), at=T0 + timedelta(seconds=5), triggeredid="act-1",
                   result="fail", status="succeeded")
    metrics.observe_consumed("tidegate.events", answer, "sequencer")
    metrics.observe_consumed("tidegate.events", answer, "remediator")  # every agent decodes the same reply
    assert value(metrics, "tidegate_task_duration_seconds_count", task="action", result="fail") == 1
    assert value(metrics, "tidegate_task_duration_seconds_sum", task="action", result="fail") == 5
    assert value(metrics, "tidegate_remediation_actions_total", action="scaling", result="fail") == 1


def test_errored_tasks_are_labelled_with_their_status(metrics: TidegateMetrics) -> None:
    metrics.observe_produced("t", event(task_type("test", "triggered"), ident="test-1"))
    metrics.observe_consumed("t", event(task_type("test", "finished"), triggeredid="test-1", status="errored",
                                        result="fail"))
    assert value(metrics, "tidegate_task_duration_seconds_count", task="test", result="errored") == 1


def test_verdicts_and_escalations_are_counted(metrics: TidegateMetrics) -> None:
    finished = task_type("evaluation", "finished")
    metrics.observe_produced("tidegate.events", event(finished, triggeredid="e1", result="pass", status="succeeded"))
    metrics.observe_produced("tidegate.events", event(finished, triggeredid="e2", result="warning"))
    metrics.observe_produced("tidegate.events", event(finished, triggeredid="e3", result="fail"))
    metrics.observe_produced("tidegate.events", event("sh.tidegate.remediation.escalated", reason="exhausted"))
    # The audit topic carries copies of what was sent elsewhere: counted as produced, not as verdicts again.
    metrics.observe_produced("tidegate.audit", event(finished, triggeredid="e1", result="pass"))
    metrics.observe_produced("tidegate.audit", event("sh.tidegate.remediation.escalated", reason="exhausted"))
    for result in ("pass", "warning", "fail"):
        assert value(metrics, "tidegate_evaluations_total", project="shop", stage="dev", result=result) == 1
    assert value(metrics, "tidegate_events_produced_total", topic="tidegate.audit", type=finished) == 1
    assert value(metrics, "tidegate_remediation_escalations_total", reason="exhausted") == 1


def samples(m: TidegateMetrics) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return sorted((sample.name, tuple(sorted(sample.labels.items())), sample.value)
                  for family in m.registry.collect() for sample in family.samples
                  if not sample.name.endswith("_created"))


def test_a_batch_of_produced_events_counts_what_observing_each_counts() -> None:
    # The loop host tells the metric once per round what it sent (each label set's count added once).
    finished = task_type("evaluation", "finished")
    sent = [
        ("tidegate.tasks.action", event(task_type("action", "triggered"), ident="act-1",
                                        action={"name": "scale up", "action": "scaling"})),
        ("tidegate.audit", event(task_type("action", "triggered"), ident="act-1")),
        ("tidegate.events", event(task_type("action", "finished"), at=T0 + timedelta(seconds=5), triggeredid="act-1",
                                  result="fail", status="succeeded")),
        ("tidegate.events", event(finished, triggeredid="e1", result="pass", status="succeeded")),
        ("tidegate.events", event(finished, triggeredid="e2", result="warning")),
        ("tidegate.events", event(sequence_type("dev", "delivery", "finished"), at=T0 + timedelta(seconds=90),
                                  triggeredid="seq-1", result="pass", status="succeeded")),
        ("tidegate.events", event("sh.tidegate.remediation.escalated", reason="exhausted")),
        ("tidegate.audit", event("sh.tidegate.remediation.escalated", reason="exhausted")),
        ("tidegate.audit", event(finished, triggeredid="e1", result="pass")),
    ]
    one_by_one, batched = TidegateMetrics(CollectorRegistry()), TidegateMetrics(CollectorRegistry())
    trigger = event(sequence_type("dev", "delivery", "triggered"), ident="seq-1")
    for m in (one_by_one, batched):
        m.observe_consumed("tidegate.events", trigger, "sequencer")
    for topic, produced in sent:
        one_by_one.observe_produced(topic, produced)
    batched.observe_produced_many(sent)
    assert samples(batched) == samples(one_by_one)
    assert value(batched, "tidegate_events_produced_total", topic="tidegate.audit", type=finished) == 1
    assert value(batched, "tidegate_sequence_duration_seconds_count", stage="dev", sequence="delivery",
                 result="pass") == 1


def test_the_labelled_children_looked_up_once_are_bounded(monkeypatch: pytest.MonkeyPatch,
                                                          metrics: TidegateMetrics) -> None:
    monkeypatch.setattr(metrics_module, "CHILDREN_KEPT", 2)
    for number in range(4):
        metrics.observe_produced("t", event(f"sh.keptn.event.test{number}.started"))
        metrics.observe_produced("t", event(f"sh.keptn.event.test{number}.started"))
    assert len(metrics._children) == 2
    for number in range(4):  # every one counted all the same
        assert value(metrics, "tidegate_events_produced_total", topic="t", type=f"sh.keptn.event.test{number}.started") == 2


def test_the_start_memory_is_bounded() -> None:
    metrics = TidegateMetrics(CollectorRegistry(), remembered=2)
    for number in range(3):
        metrics.observe_produced("t", event(task_type("test", "triggered"), ident=f"test-{number}"))
    for number in range(3):
        metrics.observe_consumed("t", event(task_type("test", "finished"), triggeredid=f"test-{number}"))
    assert value(metrics, "tidegate_task_duration_seconds_count", task="test", result="pass") == 2  # test-0 forgotten


@pytest.mark.parametrize("code", list(DeadLetterReason))
def test_the_dead_letter_label_is_the_code_the_sender_named_whatever_the_words(
    metrics: TidegateMetrics, code: DeadLetterReason
) -> None:
    # Words that read like another kind (the labels were once guessed from them) do not change the label.
    letter = DeadLetter(reason="record key 'a/b/c' is not the event's project/stage/service; sequencer error: x",
                        source_topic="tidegate.events", source_partition=0, source_offset=4, agent="sequencer",
                        code=code)
    assert metrics.observe_dead_letter(letter) == code.value
    assert value(metrics, "tidegate_dlq_total", reason=code.value, agent="sequencer", topic="tidegate.events") == 1


def test_dead_letters_are_counted_by_reason_agent_and_topic(metrics: TidegateMetrics) -> None:
    undecodable = DeadLetter(reason="not JSON", source_topic="tidegate.events", source_partition=0, source_offset=4,
                             agent="sequencer", code=DeadLetterReason.UNDECODABLE)
    rejected = DeadLetter(reason="no project", source_topic="tidegate.events", source_partition=0, source_offset=5,
                          agent="sequencer")
    assert metrics.observe_dead_letter(undecodable) == "undecodable"
    assert metrics.observe_dead_letter(rejected) == "rejected"  # the default kind
    assert value(metrics, "tidegate_dlq_total", reason="undecodable", agent="sequencer", topic="tidegate.events") == 1
    assert value(metrics, "tidegate_dlq_total", reason="rejected", agent="sequencer", topic="tidegate.events") == 1


@dataclass
class Run:
    state: str


@dataclass
class KeyState:
    project: str
    stage: str
    sequences: list[Run] = field(default_factory=list)


def test_sequence_gauges_follow_the_table_and_drop_stages_that_emptied(metrics: TidegateMetrics) -> None:
    metrics.set_sequence_load([
        KeyState("shop", "dev", [Run("started"), Run("triggered"), Run("triggered")]),
        KeyState("shop", "dev", [Run("paused")]),
        KeyState("shop", "staging", [Run("waiting")]),
    ])
    assert value(metrics, "tidegate_open_sequences", project="shop", stage="dev") == 4
    assert value(metrics, "tidegate_queued_sequences", project="shop", stage="dev") == 2
    assert value(metrics, "tidegate_open_sequences", project="shop", stage="staging") == 1
    metrics.set_sequence_load([KeyState("shop", "dev", [])])
    assert value(metrics, "tidegate_open_sequences", project="shop", stage="dev") == 0
    assert value(metrics, "tidegate_open_sequences", project="shop", stage="staging") is None


def test_consumer_lag_is_the_high_watermark_minus_the_committed_offset() -> None:
    a0, a1, b0 = TP("a", 0), TP("a", 1), TP("b", 0)
    ends = {a0: 10, a1: 7, b0: 3}
    lags = consumer_lag(ends, committed={a0: 4}, read={a1: 6})
    assert lags == [("a", 0, 6), ("a", 1, 0)]  # a1: read up to 6, so next is 7; b0: nothing known yet


def test_the_lag_collector_reads_the_faust_monitor_at_scrape_time() -> None:
    tp = TP("tidegate.events", 2)
    monitor = SimpleNamespace(tp_end_offsets={tp: 50}, tp_committed_offsets={tp: 45}, tp_read_offsets={})
    app: Any = SimpleNamespace(monitor=monitor, conf=SimpleNamespace(id="tidegate.worker"))
    registry = CollectorRegistry()
    registry.register(ConsumerLagCollector(app))
    labels = {"group": "tidegate.worker", "topic": "tidegate.events", "partition": "2"}
    assert registry.get_sample_value("tidegate_consumer_lag", labels) == 5
    monitor.tp_committed_offsets[tp] = 50
    assert registry.get_sample_value("tidegate_consumer_lag", labels) == 0


def test_the_lag_collector_also_reports_added_sources_and_skips_a_failing_one() -> None:
    import tidegate.streams.metrics as metrics_module

    monitor = SimpleNamespace(tp_end_offsets={}, tp_committed_offsets={}, tp_read_offsets={})
    app: Any = SimpleNamespace(monitor=monitor, conf=SimpleNamespace(id="tidegate.worker"))

    def sequencer_lags() -> list[tuple[str, str, int, int]]:
        return [("tidegate.sequencer", "tidegate.events", 3, 12)]

    def broken() -> list[tuple[str, str, int, int]]:
        raise RuntimeError("between sessions")

    add_lag_source(broken)
    add_lag_source(sequencer_lags)
    try:
        registry = CollectorRegistry()
        registry.register(ConsumerLagCollector(app))
        labels = {"group": "tidegate.sequencer", "topic": "tidegate.events", "partition": "3"}
        assert registry.get_sample_value("tidegate_consumer_lag", labels) == 12
    finally:
        metrics_module._lag_sources.remove(broken)
        metrics_module._lag_sources.remove(sequencer_lags)


def test_shared_collectors_show_in_another_registry(metrics: TidegateMetrics) -> None:
    metrics.observe_produced("tidegate.events", event("sh.keptn.event.dev.delivery.triggered"))
    gateway_registry = CollectorRegistry()
    gateway_registry.register(SharedCollectors(metrics.registry))
    assert b'tidegate_events_produced_total{topic="tidegate.events"' in generate_latest(gateway_registry)


def test_the_metrics_port_comes_from_the_environment() -> None:
    assert metrics_port({}) is None
    assert metrics_port({"TIDEGATE_METRICS_PORT": " 9464 "}) == 9464
    with pytest.raises(ValueError, match="1 to 65535"):
        metrics_port({"TIDEGATE_METRICS_PORT": "http"})
