"""What the delivery fault tests share (a killed worker, a killed broker, a second worker, repeated faults).

- `delivery_trigger`: a `<stage>.<sequence>.triggered` for one service under a fresh context;
- `wait_until`: poll a condition while the processes under test are alive (their death fails at once);
- `Ledger`: which deliveries finished and which tasks were triggered, read from the collected topics,
  with the invariants every such test asserts: no task triggered twice under different ids, and
  at-least-once repeats under the same id counted (they are allowed and reported).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import pytest

from tidegate.schemas.events import KeptnEvent, sequence_type


class Alive(Protocol):
    def assert_running(self) -> None: ...


def delivery_trigger(project: str, service: str, *, stage: str = "dev", sequence: str = "delivery") -> KeptnEvent:
    return KeptnEvent(
        type=sequence_type(stage, sequence, "triggered"),
        source="ci",
        shkeptncontext=str(uuid.uuid4()),
        data={"project": project, "stage": stage, "service": service,
              "configurationChange": {"values": {"image": f"{service}:1.0.0"}}},
    )


async def wait_until(condition: Callable[[], bool], timeout: float, what: str, *alive: Alive) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for process in alive:
            process.assert_running()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.25)


Where = tuple[str, str, str]  # (context, stage, task)


@dataclass
class Ledger:
    finals: dict[str, list[KeptnEvent]] = field(default_factory=lambda: defaultdict(list))
    """context -> its final `.finished` records (repeats included)."""
    triggered: dict[Where, set[str]] = field(default_factory=lambda: defaultdict(set))
    """(context, stage, task) -> the ids it was triggered under."""
    order: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    """context -> (stage, task) in the order their first records were read."""
    task_records: int = 0
    by_id: dict[str, KeptnEvent] = field(default_factory=dict)

    @classmethod
    def read(cls, events: Iterable[KeptnEvent], task_events: Iterable[KeptnEvent], expected: Collection[str],
             is_final: Callable[[KeptnEvent], bool]) -> Ledger:
        """`events`: the events topic; `task_events`: the task topics; only contexts in `expected` count."""
        ledger = cls()
        for event in events:
            if event.shkeptncontext in expected and is_final(event):
                ledger.finals[event.shkeptncontext or ""].append(event)
        for event in task_events:
            if not event.type.endswith(".triggered") or event.shkeptncontext not in expected:
                continue
            ledger.task_records += 1
            where = (event.shkeptncontext or "", str(event.data["stage"]), event.type.split(".")[3])
            if event.id not in ledger.triggered[where]:
                ledger.order[where[0]].append(where[1:])
            ledger.triggered[where].add(event.id)
            ledger.by_id[event.id] = event
        return ledger

    def assert_finished_once(self, expected: Collection[str]) -> None:
        """Every expected delivery finished, each under one id (repeats of that id are at-least-once)."""
        assert set(self.finals) == set(expected), f"unfinished: {sorted(set(expected) - set(self.finals))}"
        twice = {context: {e.id for e in finals} for context, finals in self.finals.items()
                 if len({e.id for e in finals}) > 1}
        assert not twice, f"deliveries finished twice under different ids: {twice}"

    def assert_no_task_twice(self) -> None:
        twice = {where: ids for where, ids in self.triggered.items() if len(ids) > 1}
        assert not twice, f"tasks triggered twice under different ids (double execution): {twice}"

    def tasks_of(self, context: str) -> list[tuple[str, str]]:
        return sorted(self.order[context])

    @property
    def repeated_tasks(self) -> int:
        return self.task_records - len(self.triggered)

    @property
    def repeated_finals(self) -> int:
        return sum(len(finals) for finals in self.finals.values()) - len(self.finals)


def sequencer_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Environment of a worker that runs only the sequencer and the approver, with short Faust sessions.

    The evaluator would answer evaluation tasks itself. Faust's own group (the approver's) drops a
    killed member only when its session expires (60 s by default); a short one lets a restarted worker
    take over within seconds. The sequencer's group has its own 10 s session (streams.kafka.loop).
    """
    monkeypatch.setenv("TIDEGATE_AGENTS", "sequencer,approver")
    monkeypatch.setenv("BROKER_SESSION_TIMEOUT", "8")
    monkeypatch.setenv("BROKER_HEARTBEAT_INTERVAL", "1")
