"""Tidegate's own health as Prometheus metrics, with the conventional names and labels.

| metric | type | labels |
|---|---|---|
| `tidegate_events_consumed_total` | counter | agent, topic, type |
| `tidegate_events_produced_total` | counter | topic, type |
| `tidegate_dlq_total` | counter | reason (a `DeadLetterReason`: undecodable, wrong_key, agent_error, rejected), agent, topic |
| `tidegate_consumer_lag` | gauge | group, topic, partition |
| `tidegate_sequence_duration_seconds` | histogram | stage, sequence, result |
| `tidegate_task_duration_seconds` | histogram | task, result |
| `tidegate_open_sequences` | gauge | project, stage (every active sequence, queued ones included) |
| `tidegate_queued_sequences` | gauge | project, stage (waiting for the stage lock) |
| `tidegate_evaluations_total` | counter | project, stage, result |
| `tidegate_remediation_actions_total` | counter | action, result |
| `tidegate_remediation_escalations_total` | counter | reason |

Where they come from: `streams.app` reports every event an agent decodes (`observe_consumed`),
sends (`observe_produced`) or dead-letters (`observe_dead_letter`); the durations and the
remediation results are derived from those same events (a `.finished` is matched to the
`.triggered` it answers, by id, in a bounded memory; a worker that restarts does not time the runs
it did not see start). The sequencer's key states feed the sequence gauges on each rescan of its
host (`set_sequence_load`); the consumer lag is read from Faust's monitor (group `<prefix>worker`) and
from the loop host's snapshot (e.g. group `<prefix>sequencer`, `add_lag_source`) when Prometheus
scrapes.
Durations are measured between the events' own times, so they are what the events say, not when a
worker happened to read them.

A worker serves everything on `127.0.0.1:$TIDEGATE_METRICS_PORT` (`expose_worker_metrics`);
the gateway adds the same collectors to its own `/metrics`. Metrics never break event
processing: an observation that fails is logged at debug level and skipped.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tidegate.schemas.events import EventType, KeptnEvent
from tidegate.schemas.payloads import action_name
from tidegate.schemas.tidegate_events import ESCALATED_TYPE
from tidegate.streams.dlq import DeadLetter

if TYPE_CHECKING:
    import faust

log = logging.getLogger(__name__)

PORT_VARIABLE = "TIDEGATE_METRICS_PORT"
LOOPBACK = "127.0.0.1"
REMEMBERED_STARTS = 10_000  # triggered events kept to time their finish; the oldest go first
CHILDREN_KEPT = 4096  # labelled counters and histograms looked up once; past this, each time (labels are inputs')

AUDIT_TOPIC = "audit"  # `<prefix>audit` (streams.topics): it re-sends what other topics carried

# Sequences run from seconds (a quality gate) to a day (a delivery waiting for a manual approval).
SEQUENCE_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
TASK_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

class _Run(Protocol):
    @property
    def state(self) -> str: ...


class KeyLoad(Protocol):
    """What the sequence gauges read from one key's sequencer state."""

    @property
    def project(self) -> str: ...

    @property
    def stage(self) -> str: ...

    @property
    def sequences(self) -> Sequence[_Run]: ...


QUEUED_STATE = "triggered"  # agents.sequencer.model.SequenceState.TRIGGERED: waits for the stage lock


@dataclass(frozen=True, slots=True)
class _Start:
    time: float  # POSIX seconds of the .triggered event
    name: str  # the task, or the sequence
    stage: str
    action: str | None = None


class TidegateMetrics:
    """All of Tidegate's own collectors, in one registry (tests give each instance its own)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, remembered: int = REMEMBERED_STARTS) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter(
            "tidegate_events_consumed", "Events an agent decoded, by agent, topic and event type",
            ["agent", "topic", "type"], registry=r,
        )
        self.events_produced = Counter(
            "tidegate_events_produced", "Events sent, by topic and event type", ["topic", "type"], registry=r,
        )
        self.dead_letters = Counter(
            "tidegate_dlq", "Records put on the dead-letter queue, by reason, agent and source topic",
            ["reason", "agent", "topic"], registry=r,
        )
        self.ignored = Counter(
            "tidegate_ignored_events", "Events an agent read and let pass unchanged, by agent and reason "
            "(duplicate, unknown_triggeredid, unhandled_type, ...)", ["agent", "reason"], registry=r,
        )
        self.sequence_duration = Histogram(
            "tidegate_sequence_duration_seconds", "Sequence runs from .triggered to .finished (event times)",
            ["stage", "sequence", "result"], buckets=SEQUENCE_BUCKETS, registry=r,
        )
        self.task_duration = Histogram(
            "tidegate_task_duration_seconds", "Tasks from .triggered to the first .finished (event times)",
            ["task", "result"], buckets=TASK_BUCKETS, registry=r,
        )
        self.kafka_waiting = Gauge(
            "tidegate_kafka_waiting", "1 while the process waits for Kafka to answer at start (not ready), else 0",
            registry=r,
        )
        self.open_sequences = Gauge(
            "tidegate_open_sequences", "Active sequences (running, paused, waiting or queued) per stage",
            ["project", "stage"], registry=r,
        )
        self.queued_sequences = Gauge(
            "tidegate_queued_sequences", "Sequences waiting for the stage lock per stage",
            ["project", "stage"], registry=r,
        )
        self.evaluations = Counter(
            "tidegate_evaluations", "Quality-gate verdicts (evaluation.finished sent), by result",
            ["project", "stage", "result"], registry=r,
        )
        self.remediation_actions = Counter(
            "tidegate_remediation_actions", "Remediation actions that finished, by action and result",
            ["action", "result"], registry=r,
        )
        self.escalations = Counter(
            "tidegate_remediation_escalations", "Problems handed to people because automation gave up, by reason",
            ["reason"], registry=r,
        )
        self._remembered = remembered
        self._starts: OrderedDict[str, _Start] = OrderedDict()
        self._load_labels: set[tuple[str, str]] = set()
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}  # (metric, labels) -> its child
        self._lock = threading.Lock()  # agents run on one loop, but a test or a connector may use threads

    # ------------------------------------------------------------------ events

    def observe_consumed(self, topic: str, event: KeptnEvent, agent: str = "unknown") -> None:
        self._child(self.events_consumed, agent, topic, event.type).inc()
        parsed = event.parsed_type
        if parsed.is_sequence and parsed.kind == "triggered":
            self._remember(event.id, _Start(event.time.timestamp(), parsed.sequence or "", parsed.stage or ""))
        elif parsed.is_task and parsed.kind == "finished" and event.triggeredid:
            self._task_finished(event, parsed)

    def observe_ignored(self, agent: str, reason: str) -> None:
        self._child(self.ignored, agent, reason).inc()

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        # labels() validates and locks on every call, and these run for every event: look each child up once.
        # Not for gauges (set_sequence_load removes theirs). Bounded: event types and topics come with the inputs.
        child = self._children.get((metric, labels))
        if child is None:
            child = metric.labels(*labels)
            if len(self._children) < CHILDREN_KEPT:
                self._children[(metric, labels)] = child
        return child

    def observe_produced(self, topic: str, event: KeptnEvent) -> None:
        self.observe_produced_many(((topic, event),))

    def observe_produced_many(self, sent: Iterable[tuple[str, KeptnEvent]]) -> None:
        """`observe_produced` for each (topic, event) sent (a batch's), each label set's count added once."""
        counts: dict[tuple[str, str], int] = {}
        for topic, event in sent:
            try:
                labels = (topic, event.type)
                counts[labels] = counts.get(labels, 0) + 1
                if not topic.endswith(AUDIT_TOPIC):  # an audit copy is of an event counted where it was sent
                    self._time_produced(event)
            except Exception:  # one event's failure costs only its own observation, never the batch's counts
                log.debug("could not count a produced event", exc_info=True)
        for (topic, event_type), count in counts.items():
            self._child(self.events_produced, topic, event_type).inc(count)

    def _time_produced(self, event: KeptnEvent) -> None:
        """What a produced event (not an audit copy) starts or ends: task and sequence durations, verdicts."""
        parsed = event.parsed_type
        if parsed.is_task and parsed.kind == "triggered":
            action = event.data.get("action")
            name = action_name(action) if parsed.task == "action" else None
            self._remember(event.id, _Start(event.time.timestamp(), parsed.task or "", event.stage or "", name))
        elif parsed.is_task and parsed.kind == "finished":
            if parsed.task == "evaluation":
                self._child(self.evaluations, event.project or "", event.stage or "", _outcome(event)).inc()
            if event.triggeredid:
                self._task_finished(event, parsed)
        elif parsed.is_sequence and parsed.kind == "finished" and event.triggeredid:
            start = self._forget(event.triggeredid)
            if start is not None:
                self._child(self.sequence_duration, start.stage, start.name, _outcome(event)).observe(
                    max(event.time.timestamp() - start.time, 0.0)
                )
        elif event.type == ESCALATED_TYPE:
            self._child(self.escalations, str(event.data.get("reason") or "unknown")).inc()

    def observe_dead_letter(self, letter: DeadLetter) -> str:
        """Count a dead letter under its `DeadLetterReason` (the sender named it); returns the label."""
        label = letter.code.value
        self.dead_letters.labels(label, letter.agent, letter.source_topic).inc()
        return label

    def _task_finished(self, event: KeptnEvent, parsed: EventType) -> None:
        # Only the first .finished of a task is timed: more executors may answer, and every agent
        # of a worker decodes the same reply.
        start = self._forget(event.triggeredid or "")
        if start is None or start.name != parsed.task:
            return
        outcome = _outcome(event)
        self._child(self.task_duration, start.name, outcome).observe(max(event.time.timestamp() - start.time, 0.0))
        if start.name == "action":
            self._child(self.remediation_actions, start.action or "unknown", outcome).inc()

    def _remember(self, event_id: str, start: _Start) -> None:
        with self._lock:
            self._starts[event_id] = start
            self._starts.move_to_end(event_id)
            while len(self._starts) > self._remembered:
                self._starts.popitem(last=False)

    def _forget(self, event_id: str) -> _Start | None:
        with self._lock:
            return self._starts.pop(event_id, None)

    # ------------------------------------------------------------------ sequence gauges

    def set_sequence_load(self, states: Iterable[KeyLoad]) -> None:
        """Replace the sequence gauges with the counts of these key states (a full table scan)."""
        active: dict[tuple[str, str], int] = {}
        queued: dict[tuple[str, str], int] = {}
        for state in states:
            labels = (state.project, state.stage)
            active[labels] = active.get(labels, 0) + len(state.sequences)
            queued[labels] = queued.get(labels, 0) + sum(1 for run in state.sequences if run.state == QUEUED_STATE)
        with self._lock:
            for gone in self._load_labels - set(active):
                self.open_sequences.remove(*gone)
                self.queued_sequences.remove(*gone)
            for labels, count in active.items():
                self.open_sequences.labels(*labels).set(count)
                self.queued_sequences.labels(*labels).set(queued[labels])
            self._load_labels = set(active)


def _outcome(event: KeptnEvent) -> str:
    """The result label: the result when the executor succeeded, else its status (errored, aborted)."""
    status = event.data.get("status")
    if isinstance(status, str) and status and status != "succeeded":
        return status
    result = event.data.get("result")
    return result if isinstance(result, str) and result else "pass"


# --------------------------------------------------------------------- the process-wide instance

_default: TidegateMetrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> TidegateMetrics:
    """The process's collectors, registered in prometheus_client's default registry."""
    global _default
    if _default is not None:  # set once; the lock only guards its creation
        return _default
    with _default_lock:
        if _default is None:
            _default = TidegateMetrics(REGISTRY)
        return _default


def set_kafka_waiting(waiting: bool) -> None:
    """tidegate_kafka_waiting: a connector's or worker's not-ready signal while Kafka does not answer."""
    try:
        default_metrics().kafka_waiting.set(1 if waiting else 0)
    except Exception:
        log.debug("could not set tidegate_kafka_waiting", exc_info=True)


def observe_consumed(topic: str, event: KeptnEvent, agent: str = "unknown") -> None:
    try:
        default_metrics().observe_consumed(topic, event, agent)
    except Exception:  # metrics must never cost an event
        log.debug("could not count a consumed %s", event.type, exc_info=True)


def observe_produced(topic: str, event: KeptnEvent) -> None:
    try:
        default_metrics().observe_produced(topic, event)
    except Exception:
        log.debug("could not count a produced %s", event.type, exc_info=True)


def observe_produced_many(sent: Iterable[tuple[str, KeptnEvent]]) -> None:
    """`observe_produced` for many sends at once (a batch's: each label set's count is added once)."""
    try:
        default_metrics().observe_produced_many(sent)
    except Exception:
        log.debug("could not count the produced events", exc_info=True)


def observe_ignored(agent: str, reason: str) -> None:
    try:
        default_metrics().observe_ignored(agent, reason)
    except Exception:
        log.debug("could not count an ignored event", exc_info=True)


def observe_dead_letter(letter: DeadLetter) -> None:
    try:
        default_metrics().observe_dead_letter(letter)
    except Exception:
        log.debug("could not count a dead letter", exc_info=True)


def set_sequence_load(states: Iterable[KeyLoad]) -> None:
    try:
        default_metrics().set_sequence_load(states)
    except Exception:
        log.debug("could not update the sequence gauges", exc_info=True)


# --------------------------------------------------------------------- consumer lag


def consumer_lag(
    end_offsets: Mapping[Any, int], committed: Mapping[Any, int], read: Mapping[Any, int]
) -> list[tuple[str, int, int]]:
    """(topic, partition, lag) per partition: the high watermark minus the committed position.

    Before the first commit of a partition the position is the last offset read plus one; a
    partition with neither is left out (nothing is known yet). Sorted by topic and partition.
    """
    lags: list[tuple[str, int, int]] = []
    for tp, end in end_offsets.items():
        position = committed.get(tp)
        if position is None and tp in read:
            position = read[tp] + 1
        if position is None:
            continue
        lags.append((str(tp.topic), int(tp.partition), max(int(end) - int(position), 0)))
    return sorted(lags)


LagSource = Callable[[], Iterable[tuple[str, str, int, int]]]
_lag_sources: list[LagSource] = []


def add_lag_source(source: LagSource) -> None:
    """Report a non-Faust consumer's lag too: `source()` gives (group, topic, partition, lag) rows."""
    _lag_sources.append(source)


class ConsumerLagCollector(Collector):
    """`tidegate_consumer_lag{group,topic,partition}` of a Faust app (and of `add_lag_source`'s
    consumers, such as the sequencer's), read at scrape time."""

    def __init__(self, app: faust.App, group: str | None = None) -> None:
        self.app = app
        self.group = group or str(app.conf.id)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "tidegate_consumer_lag", "Records not yet processed per partition (high watermark - committed offset)",
            labels=["group", "topic", "partition"],
        )
        monitor = self.app.monitor
        # The loop thread updates these dicts while the scrape thread reads: copy, and retry once.
        for _attempt in range(2):
            try:
                ends = dict(monitor.tp_end_offsets or {})
                committed = dict(monitor.tp_committed_offsets or {})
                read = dict(monitor.tp_read_offsets or {})
                break
            except RuntimeError:
                continue
        else:
            ends, committed, read = {}, {}, {}
        for topic, partition, lag in consumer_lag(ends, committed, read):
            family.add_metric([self.group, topic, str(partition)], lag)
        for source in list(_lag_sources):
            try:
                rows = list(source())
            except Exception:  # a scrape must not fail because one consumer is between states
                log.debug("a lag source failed", exc_info=True)
                continue
            for group, topic, partition, lag in rows:
                family.add_metric([group, topic, str(partition)], lag)
        yield family


# --------------------------------------------------------------------- exposition


def metrics_port(environ: Mapping[str, str] | None = None) -> int | None:
    """TIDEGATE_METRICS_PORT as a port number, or None when it is unset or empty."""
    raw = (environ if environ is not None else os.environ).get(PORT_VARIABLE, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{PORT_VARIABLE}={raw!r} is not a TCP port; give a number from 1 to 65535, or unset it")
    return int(raw)


def serve(port: int, registry: CollectorRegistry = REGISTRY) -> None:
    """Serve `registry` on http://127.0.0.1:`port`/metrics from a daemon thread (loopback only)."""
    start_http_server(port, addr=LOOPBACK, registry=registry)
    log.info("metrics served on http://%s:%s/metrics", LOOPBACK, port)


def expose_worker_metrics(app: faust.App, environ: Mapping[str, str] | None = None) -> int | None:
    """When TIDEGATE_METRICS_PORT is set: add the app's consumer lag and serve all metrics once the
    worker starts. Returns the port (None: not exposed)."""
    port = metrics_port(environ)
    if port is None:
        return None
    default_metrics()  # registered before the first scrape, so every series is there from the start
    REGISTRY.register(ConsumerLagCollector(app))

    async def serve_metrics() -> None:
        serve(port)

    app.task(serve_metrics)
    return port


class SharedCollectors(Collector):
    """The process-wide collectors, for another registry to include (the gateway's own)."""

    def __init__(self, source: CollectorRegistry = REGISTRY) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        yield from self.source.collect()


__all__ = [
    "LOOPBACK",
    "PORT_VARIABLE",
    "ConsumerLagCollector",
    "KeyLoad",
    "SharedCollectors",
    "TidegateMetrics",
    "add_lag_source",
    "consumer_lag",
    "default_metrics",
    "expose_worker_metrics",
    "metrics_port",
    "observe_consumed",
    "observe_dead_letter",
    "observe_ignored",
    "observe_produced",
    "observe_produced_many",
    "serve",
    "set_sequence_load",
]
