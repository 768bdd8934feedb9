"""The one agent contract: what every agent exports, and the per-event step every host runs.

An agent is a pure core and a few facts about it, bundled as `Agent`:

    decide(state, event, config, now, position) -> Decision(state, outputs)   one key's state, one event
    next_deadline(state) -> datetime | None                          when the key needs a tick
    outputs: Emit | Transition | Ignored                             one family for every agent

- `Emit`: send an event to a logical destination (`events` or `tasks.<task>`), keyed by `Emit.key`;
  sends to a task topic are audited (everything on `events` is audited by the sequencer, which reads it all).
- `Transition`: a state transition for `audit` (`sh.tidegate.audit.<agent>.<kind>`); each agent
  subclasses it with its own fields, and `to_record()` gives the audit record.
- `Ignored`: the input changed nothing; `dead_letter` (reason `invalid`) sends it to the DLQ.

`position` is where the host read the input (`Position`: topic, partition, offset), or None when it
has none (the `tidegate simulate` driver, a test). Offsets only grow within a partition, so an agent
may use it to recognise a redelivered input cheaply; an agent that does not is free to ignore it.

A worker binds an agent to its configuration (`Hosted`: the agent, its config, and the hooks that read
configuration files), and a host runs it: the loop host (`agents.hosts.loop`, on the shared
consume-decide-produce loop of `tidegate.streams.kafka.loop`) or the Faust host (`agents.hosts.faust`).
Both call the same `Runner`: `read` (decode, key check, relevance) and `step` (decide and turn the
outputs into records), so an agent behaves the same on either; which host runs which agent is one
mapping in `agents.worker` (`HOSTS`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from tidegate.schemas.events import KeptnEvent, task_type
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key, key_mismatch
from tidegate.streams.codec import CE_PREFIX, DecodeError, KafkaRecord, decode, encode
from tidegate.streams.dlq import DeadLetterReason
from tidegate.streams.logging import bind_event, unbind
from tidegate.streams.metrics import observe_consumed, observe_ignored
from tidegate.streams.topics import TopicRegistry

log = logging.getLogger(__name__)

S = TypeVar("S")
C = TypeVar("C")
ReasonT = TypeVar("ReasonT", bound=StrEnum)

# Every agent's IgnoreReason has this member: the input cannot be processed as sent and goes to the DLQ.
DEAD_LETTER_REASON = "invalid"
EVENTS = "events"
DESTINATIONS_KEPT = 1024  # logical destinations a Runner remembers the topic of
TIME_HEADER = f"{CE_PREFIX}time"
TYPE_HEADER = f"{CE_PREFIX}type"


# --------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Position:
    """Where an input was read: its topic, partition and offset."""

    topic: str
    partition: int
    offset: int


# --------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Emit:
    """Send `event` to `destination` (`events` or `tasks.<task>`, without the prefix), keyed by `key`."""

    event: KeptnEvent
    key: Key
    destination: str = EVENTS

    @property
    def task(self) -> str | None:
        """The task whose topic this goes to, or None for `events`."""
        return self.destination.removeprefix("tasks.") if self.destination != EVENTS else None


class Transition(ABC):
    """A state transition for `audit`; each agent's audit record subclasses it."""

    __slots__ = ()
    key: Key

    @abstractmethod
    def to_record(self) -> KafkaRecord:
        """The record for the audit topic (`sh.tidegate.audit.<agent>.<kind>`, keyed by `key`)."""


@dataclass(frozen=True, slots=True)
class Ignored(Generic[ReasonT]):
    """The input changed nothing; `dead_letter` says it is invalid, otherwise the host only counts `reason`.

    Each agent subclasses it with its own `IgnoreReason`, so `isinstance` still tells the agents apart.
    """

    reason: ReasonT
    detail: str

    @property
    def dead_letter(self) -> bool:
        return self.reason == DEAD_LETTER_REASON


Output = Emit | Transition | Ignored[Any]


@dataclass(frozen=True, slots=True)
class Decision(Generic[S]):
    """The key's new state (the same object when nothing changed; None: nothing stored) and the outputs, in order."""

    state: S | None
    outputs: tuple[Output, ...]

    @property
    def emitted(self) -> list[Emit]:
        return [o for o in self.outputs if isinstance(o, Emit)]

    @property
    def events(self) -> list[KeptnEvent]:
        return [o.event for o in self.outputs if isinstance(o, Emit)]

    @property
    def audit(self) -> list[Any]:
        """The transitions (each agent's own audit record type)."""
        return [o for o in self.outputs if isinstance(o, Transition)]

    @property
    def ignored(self) -> list[Any]:
        return [o for o in self.outputs if isinstance(o, Ignored)]


# --------------------------------------------------------------------- the contract


class StateCodec(Protocol[S]):
    def encode(self, state: S) -> bytes: ...

    def decode(self, value: bytes) -> S: ...


@dataclass(frozen=True, slots=True)
class ModelCodec(Generic[S]):
    """A pydantic model's JSON, as every agent stores its state."""

    model: Any  # a pydantic model class whose instances are S

    def encode(self, state: S) -> bytes:
        dumped: str = state.model_dump_json()  # type: ignore[attr-defined]
        return dumped.encode()

    def decode(self, value: bytes) -> S:
        loaded: S = self.model.model_validate_json(value)
        return loaded


def no_deadline(_state: Any) -> datetime | None:
    return None


def every_event(_type: str, _topic: str) -> bool:
    return True


@dataclass(frozen=True)
class Agent(Generic[S, C]):
    """What an agent exports: everything a host needs to run it.

    - `name`: the agent (its consumer group `<prefix><name>` on the loop host, its Faust agents' names);
    - `inputs`: the logical topics it reads (`events`, `tasks.<task>`);
    - `decide`, `next_deadline`: the pure core (`decide`'s last argument: the input's `Position` or None); `tick(key, deadline, config)`: the event a due key gets on `events`;
    - `state`: how a key's state is stored (None: stateless), in the compacted topic `state_topic`
      (app, table) -> `<prefix><app>-<table>-changelog`, the same records on either host;
    - `accepts(type, topic)`: which event types it acts on, per logical input (the rest is let pass
      before any state is read and, on inputs it does not check, before the record is decoded: a
      binary-mode record's type is its `ce_type` header; `events` carries every event of the system);
    - `checks`: the inputs whose undecodable or wrongly keyed records it dead-letters (on the others it
      skips them: `events` is the sequencer's to check, it reads every record);
    - `audits_inputs`: audit every event it reads (the sequencer does, for everyone on `events`),
      except the types in `unaudited` (its timer ticks).
    """

    name: str
    inputs: tuple[str, ...]
    decide: Callable[[S | None, KeptnEvent, C, datetime, Position | None], Decision[S]]
    state: StateCodec[S] | None = None
    state_topic: tuple[str, str] | None = None
    next_deadline: Callable[[S | None], datetime | None] = no_deadline
    tick: Callable[[Key, datetime, C], KeptnEvent] | None = None
    accepts: Callable[[str, str], bool] = every_event
    checks: frozenset[str] | None = None  # None: every input
    audits_inputs: bool = False
    unaudited: frozenset[str] = frozenset()  # event types it reads but never audits (its own timer ticks)
    scanned: Callable[[list[S]], None] | None = None  # gauges over all its keys' states, on each rescan

    def checked(self, topic: str) -> bool:
        return self.checks is None or topic in self.checks


def never(_event: KeptnEvent, _key: Key) -> bool:
    return False


def as_is(event: KeptnEvent, _key: Key) -> KeptnEvent:
    return event


@dataclass(frozen=True)
class Hosted(Generic[S, C]):
    """An agent bound to a worker: its configuration and the hooks that read configuration files.

    `stale(event, key)`: the files this event needs may not have been read yet (a trigger can follow
    its file closely); the host catches the worker's resources view up before deciding.
    `prepare(event, key)`: fill the event in from the files (e.g. a missing gitcommitid), before deciding.
    """

    agent: Agent[S, C]
    config: C
    stale: Callable[[KeptnEvent, Key], bool] = never
    prepare: Callable[[KeptnEvent, Key], KeptnEvent] = as_is


# --------------------------------------------------------------------- the step every host runs

Out = tuple[str, KafkaRecord, KeptnEvent | None]  # (topic, record, the event for the produced-events metric)


@dataclass(frozen=True, slots=True)
class Read:
    """A decoded input of this agent and its key."""

    event: KeptnEvent
    key: Key
    raw_key: bytes
    as_is: bool  # the input record is already its audit record, byte for byte
    position: Position | None = None  # where the host read it (None: a host without offsets)


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input for the DLQ: why, in words and as a code."""

    reason: str
    code: DeadLetterReason = DeadLetterReason.REJECTED


@dataclass(slots=True)
class Step(Generic[S]):
    """What one input makes the host do, as records (the loop host's `Handled`)."""

    key: bytes | None
    state: S | None
    changed: bool
    hop: list[Out] = field(default_factory=list)  # what a next hop waits for: leaves at once
    later: list[Out] = field(default_factory=list)  # audit records, in the decided order, after the batch's hops
    dead_letter: str | None = None
    code: DeadLetterReason = DeadLetterReason.REJECTED


class Runner(Generic[S, C]):
    """One agent's per-record work, the same on every host: read (decode, key, relevance) and step."""

    ACCEPTS_KEPT = 1024  # (event type, input) pairs a Runner remembers the agent's answer for
    ACCEPTS_TYPE_KEPT = 256  # longer event types are asked about each time (kept ones cost their length)

    def __init__(self, hosted: Hosted[S, C], registry: TopicRegistry) -> None:
        self.hosted = hosted
        self.agent = hosted.agent
        self.registry = registry
        self.ignored: Counter[str] = Counter()
        self._logical = {registry.destination(name): name for name in hosted.agent.inputs}
        self._audit = registry.audit
        # Logical destination -> topic, looked up for every output (the registry formats and checks the name
        # each time). Bounded: task names come from the shipyards; past the bound, names are not kept.
        self._destinations: dict[str, str] = {}
        # (event type, logical input) -> whether the agent accepts it, asked for every record read; a type as
        # its `ce_type` header's bytes (before decoding) or as text (after). `Agent.accepts` depends on these two
        # only. Bounded like the destinations, and only short types are kept.
        self._accepted: dict[tuple[bytes | str, str], bool] = {}

    def destination(self, logical: str) -> str:
        """`TopicRegistry.destination`, remembered per name."""
        topic = self._destinations.get(logical)
        if topic is None:
            topic = self.registry.destination(logical)
            if len(self._destinations) < DESTINATIONS_KEPT:
                self._destinations[logical] = topic
        return topic

    def accepts(self, event_type: bytes | str, logical: str) -> bool:
        """`Agent.accepts` for a type (text, or a `ce_type` header's bytes), remembered per (type, input)."""
        accepted = self._accepted.get((event_type, logical))
        if accepted is None:
            text = event_type if isinstance(event_type, str) else event_type.decode("utf-8", "replace")
            accepted = self.agent.accepts(text, logical)
            if len(event_type) <= self.ACCEPTS_TYPE_KEPT and len(self._accepted) < self.ACCEPTS_KEPT:
                self._accepted[(event_type, logical)] = accepted
        return accepted

    @property
    def topics(self) -> list[str]:
        return list(self._logical)

    def lets_pass(self, topic: str, record: KafkaRecord) -> bool:
        """Whether `read` lets this record pass before decoding it (an input this agent does not check,
        whose `ce_type` it does not accept): nothing else is done for it."""
        logical = self._logical.get(topic, topic)
        return not self.agent.checked(logical) and self._refused_type(record, logical)

    def _refused_type(self, record: KafkaRecord, logical: str) -> bool:
        """Whether the record's `ce_type` header names a type the agent does not accept on `logical`."""
        for name, value in record.headers:  # noqa: SIM110 (a loop: any() would set up a generator per record)
            if name == TYPE_HEADER and not self.accepts(value, logical):
                return True
        return False

    def read(self, topic: str, record: KafkaRecord, timestamp: datetime | None,
             position: Position | None = None) -> Read | Rejected | None:
        """The input's event and key; Rejected for the DLQ; None when this agent lets it pass.
        `position`: where the host read it, handed to `decide` (None: the host has no offsets)."""
        agent = self.agent
        logical = self._logical.get(topic, topic)
        checked = agent.checked(logical)
        if not checked and self._refused_type(record, logical):
            return None  # not for this agent: not even decoded (`lets_pass`)
        # A binary-mode input with its time is already its own audit record and needs no record timestamp.
        timed = False
        for name, _value in record.headers:
            if name == TIME_HEADER:
                timed = True
                break
        try:
            event = decode(record.value, record.headers, timestamp=None if timed else timestamp)
        except DecodeError as error:
            unbind()
            return Rejected(error.reason, DeadLetterReason.UNDECODABLE) if checked else None
        if not checked and not self.accepts(event.type, logical):
            return None
        bind_event(event)  # this thread's or task's log lines for the event carry its keptnContext
        key = Key.of_data(event.data)
        raw_key = key.encode()
        if record.key is not None and record.key != raw_key:
            if not checked:
                return None
            return Rejected(key_mismatch(record.key, event.data) or "record key mismatch", DeadLetterReason.WRONG_KEY)
        if checked and not self.accepts(event.type, logical):
            return None
        observe_consumed(topic, event, agent.name)
        return Read(event, key, raw_key, timed and record.key == raw_key, position)

    def stale(self, read: Read) -> bool:
        """Whether the files this input needs may not have been read yet (the host then catches up first)."""
        return self.hosted.stale(read.event, read.key)

    def prepared(self, read: Read) -> Read:
        """The input as the agent decides on it (`Hosted.prepare`: filled in from the files)."""
        event = self.hosted.prepare(read.event, read.key)
        return read if event is read.event else Read(event, read.key, read.raw_key, read.as_is, read.position)

    def step(self, state: S | None, read: Read, now: datetime, record: KafkaRecord | None = None) -> Step[S]:
        """Decide on one input (already prepared) and turn the outputs into records."""
        agent, audit = self.agent, self._audit
        event, key = read.event, read.key
        try:
            decision = agent.decide(state, event, self.hosted.config, now, read.position)
        except Exception as error:  # a bug must cost one event (kept in the DLQ), not the partition
            log.exception("%s failed on %s %s", agent.name, event.type, event.id)
            return Step(read.raw_key, state, False, dead_letter=f"{agent.name} error: {type(error).__name__}: {error}",
                        code=DeadLetterReason.AGENT_ERROR)
        step: Step[S] = Step(read.raw_key, decision.state, decision.state is not state)
        later = step.later
        if agent.audits_inputs and event.type not in agent.unaudited:
            copy = record if read.as_is and record is not None else encode(event, key)
            later.append((audit, copy, event))
        for output in decision.outputs:
            if isinstance(output, Emit):
                encoded = encode(output.event, output.key)
                destination = output.destination
                step.hop.append((self.destination(destination), encoded, output.event))
                if destination != EVENTS:  # task-topic sends are audited; `events` is audited when read
                    later.append((audit, encoded, output.event))
            elif isinstance(output, Transition):
                later.append((audit, output.to_record(), None))
            elif isinstance(output, Ignored):
                reason = output.reason.value
                self.ignored[reason] += 1
                observe_ignored(agent.name, reason)
                if output.dead_letter:
                    step.dead_letter = output.detail
                else:
                    log.debug("%s ignored %s: %s", agent.name, event.type, output.detail)
        return step

    def undeliverable(self, out: Out, reason: str, now: datetime) -> list[Out]:
        """The answer to an output the broker refused for good (the host dead-letters the record itself).

        A task's `.triggered` that cannot reach its topic is answered on the task's behalf with
        `.started` and an errored `.finished` naming the problem, on `events`: the sequence (or the
        evaluation) that waits for it ends with that error instead of waiting for its timeout.
        """
        topic, _record, event = out
        if not isinstance(event, KeptnEvent) or topic in (self.registry.events, self.registry.audit):
            return []
        parsed = event.parsed_type
        if not (parsed.is_task and parsed.kind == "triggered" and parsed.task):
            return []
        key = Key.of_data(event.data)
        data: dict[str, Any] = {name: event.data[name] for name in ("project", "stage", "service", "labels")
                                if name in event.data}
        message = (f"Tidegate could not send {event.type} to {topic}: {reason}. Create the task's topic "
                   f"(tidegate topics create --task {parsed.task}), then trigger the sequence again")
        answers: list[Out] = []
        for kind, fields in (("started", {"status": "succeeded"}),
                             ("finished", {"status": "errored", "result": "fail", "message": message})):
            answer = KeptnEvent(
                id=derived_id(event.id, f"undeliverable:{kind}"), source=f"tidegate-{self.agent.name}",
                type=task_type(parsed.task, kind), time=now, shkeptncontext=event.shkeptncontext,
                triggeredid=event.id, gitcommitid=event.gitcommitid, data={**data, **fields},
            )
            answers.append((self.registry.events, encode(answer, key), answer))
        return answers

    def tick(self, raw_key: bytes, deadline: datetime) -> Out | None:
        """The tick record for a due key (on `events`), or None if the agent has no timers."""
        make = self.agent.tick
        if make is None:
            return None
        key = Key.parse(raw_key)
        event = make(key, deadline, self.hosted.config)
        return (self.registry.events, encode(event, key), event)

