"""What an agent reads of `events`: only the types it acts on, and those not even decoded otherwise.

`events` carries every event of the system; the evaluator and the remediator act on a few types. The
runner reads a binary-mode record's type from its `ce_type` header and lets a foreign one pass before
decoding it; a record without the header (structured mode) is decoded and then filtered the same way.
Inputs an agent checks (its task topic) are still decoded first, so a broken record goes to the DLQ.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

import tidegate.agents.kernel as kernel
from tidegate.agents.evaluator.flow import EvaluatorConfig
from tidegate.agents.evaluator.shell import AGENT as EVALUATOR
from tidegate.agents.kernel import Hosted, Read, Rejected, Runner
from tidegate.agents.remediator import RemediatorSettings
from tidegate.agents.remediator.shell import AGENT as REMEDIATOR
from tidegate.agents.remediator.shell import RemediatorConfig
from tidegate.schemas.events import KeptnEvent, task_type
from tidegate.streams.codec import KafkaRecord, encode
from tidegate.streams.logging import unbind
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

REGISTRY = TopicRegistry.from_settings(Settings(topic_prefix="inputs."))
DATA = {"project": "sockshop", "stage": "dev", "service": "carts"}


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes | None]]:
    """The values the runner decoded."""
    seen: list[bytes | None] = []
    real = kernel.decode

    def counting(value: bytes | None, *args: object, **kwargs: object) -> KeptnEvent:
        seen.append(value)
        return real(value, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(kernel, "decode", counting)
    yield seen
    unbind()  # the runner binds each event it reads to this thread's log lines


def evaluator() -> Runner:  # type: ignore[type-arg]
    config = EvaluatorConfig(slo_for=lambda key: None, sli_provider_for=lambda key: None)
    return Runner(Hosted(EVALUATOR, config), REGISTRY)


def event(kind: str, task: str = "evaluation") -> KeptnEvent:
    return KeptnEvent(type=task_type(task, kind), source="test", shkeptncontext="ctx", data=dict(DATA))


def test_a_type_the_agent_does_not_act_on_is_let_pass_without_decoding(decoded: list[bytes | None]) -> None:
    runner = evaluator()
    for foreign in (event("started"), event("finished"), event("finished", "deployment"), event("started", "get-sli")):
        assert runner.read(REGISTRY.events, encode(foreign), datetime.now(UTC)) is None
    assert decoded == []
    answer = encode(event("finished", "get-sli"))
    assert isinstance(runner.read(REGISTRY.events, answer, datetime.now(UTC)), Read)
    assert decoded == [answer.value]


def test_a_structured_record_is_decoded_and_then_filtered_by_its_type(decoded: list[bytes | None]) -> None:
    runner = evaluator()
    for kind, wanted in (("finished", False), ("invalidated", True)):
        body = json.dumps({**event(kind).to_json_dict(), "specversion": "1.0"}).encode()
        record = KafkaRecord(key=b"sockshop/dev/carts", value=body,
                             headers=(("content-type", b"application/cloudevents+json"),))
        assert isinstance(runner.read(REGISTRY.events, record, datetime.now(UTC)), Read) is wanted
    assert len(decoded) == 2


def test_a_checked_input_is_decoded_first_so_a_broken_record_goes_to_the_dlq(decoded: list[bytes | None]) -> None:
    runner = evaluator()
    broken = KafkaRecord(key=b"sockshop/dev/carts", value=b"{not json",
                         headers=(("ce_type", task_type("evaluation", "started").encode()), ("ce_id", b"1"),
                                  ("ce_source", b"x"), ("ce_specversion", b"1.0"),
                                  ("content-type", b"application/json")))
    assert isinstance(runner.read(REGISTRY.task("evaluation"), broken, datetime.now(UTC)), Rejected)
    assert runner.read(REGISTRY.events, broken, datetime.now(UTC)) is None  # on `events`: not its to check
    assert decoded == [broken.value]


def test_the_remediator_reads_of_events_only_what_it_acts_on(decoded: list[bytes | None]) -> None:
    runner = Runner(Hosted(REMEDIATOR, RemediatorConfig(RemediatorSettings(), lambda key: None)), REGISTRY)
    closed = KeptnEvent(type="sh.keptn.events.problem", source="test", shkeptncontext="ctx",
                        data={**DATA, "State": "CLOSED"})
    for foreign in (event("finished"), event("triggered", "get-action")):  # get-action comes on its task topic
        assert runner.read(REGISTRY.events, encode(foreign), datetime.now(UTC)) is None
    assert decoded == []
    assert isinstance(runner.read(REGISTRY.events, encode(closed), datetime.now(UTC)), Read)
    assert len(decoded) == 1


def test_lets_pass_answers_as_read_does_before_anything_is_decoded(decoded: list[bytes | None]) -> None:
    # `read` starts with the same check (`_refused_type`) and leaves out the rest when it says so: `lets_pass`
    # must say so only for what `read` lets pass undecoded.
    remediator = Runner(Hosted(REMEDIATOR, RemediatorConfig(RemediatorSettings(), lambda key: None)), REGISTRY)
    problem = KeptnEvent(type="sh.keptn.events.problem", source="test", shkeptncontext="ctx", data=dict(DATA))
    structured = KafkaRecord(key=b"sockshop/dev/carts", value=json.dumps({**event("finished").to_json_dict(),
                                                                            "specversion": "1.0"}).encode(),
                             headers=(("content-type", b"application/cloudevents+json"),))
    records = [encode(event(kind, task)) for kind in ("triggered", "started", "finished", "invalidated")
               for task in ("evaluation", "get-sli", "get-action", "deployment")]
    records += [encode(problem), structured, KafkaRecord(key=None, value=b"{not json", headers=())]
    for runner in (evaluator(), remediator):
        for topic in (REGISTRY.events, REGISTRY.task("evaluation"), REGISTRY.task("get-action")):
            for record in records:
                decoded.clear()
                if runner.lets_pass(topic, record):
                    assert runner.read(topic, record, datetime.now(UTC)) is None
                    assert decoded == []
                else:  # anything else is read as before: decoded (or let pass by its decoded type)
                    runner.read(topic, record, datetime.now(UTC))
                    assert decoded == [record.value]


def test_the_agents_answers_on_types_are_remembered_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def accepts(event_type: str, topic: str) -> bool:
        asked.append(event_type)
        return event_type.endswith("invalidated")

    config = EvaluatorConfig(slo_for=lambda key: None, sli_provider_for=lambda key: None)
    runner = Runner(Hosted(dataclasses.replace(EVALUATOR, accepts=accepts), config), REGISTRY)
    for _ in range(3):
        assert runner.read(REGISTRY.events, encode(event("finished")), datetime.now(UTC)) is None
        assert runner.lets_pass(REGISTRY.events, encode(event("finished")))
        assert not runner.lets_pass(REGISTRY.events, encode(event("invalidated")))
    assert asked == [task_type("evaluation", "finished"), task_type("evaluation", "invalidated")]  # once each
    # A long type is asked about each time (kept, each would cost its length); past the bound nothing new is kept.
    long_type = "sh.keptn.event." + "x" * Runner.ACCEPTS_TYPE_KEPT + ".finished"
    long_record = encode(KeptnEvent(type=long_type, source="test", shkeptncontext="ctx", data=dict(DATA)))
    assert runner.lets_pass(REGISTRY.events, long_record) and runner.lets_pass(REGISTRY.events, long_record)
    assert asked[2:] == [long_type, long_type]
    monkeypatch.setattr(Runner, "ACCEPTS_KEPT", len(runner._accepted))
    assert runner.lets_pass(REGISTRY.events, encode(event("finished", "deployment")))
    assert runner.lets_pass(REGISTRY.events, encode(event("finished", "deployment")))
    assert asked[4:] == [task_type("deployment", "finished")] * 2
    unbind()
