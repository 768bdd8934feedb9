"""The remediation loop on the real broker: the real sequencer and remediator in one Faust worker.

Alerts (as the Alertmanager bridge turns them into events) start `remediation` sequences; a test
action provider answers `action.triggered` and a scripted evaluation stands in for the evaluator:
- carts: the first action does not help, the second does -> two actions, the run ends pass; the
  second action waits for the service's cooldown (ticks on the real broker) and every action needs a
  grant from the project's quota (a round trip through the project key);
- orders: nothing helps -> both actions, then get-action fails and the problem is escalated;
- users: the alert resolves while the action runs -> the run is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from tests.support.kafka import EventCollector, publish_files
from tidegate.gateway.alertmanager import BridgeSettings, translate_alert
from tidegate.schemas.events import KeptnEvent, Status, sequence_type, task_type
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key
from tidegate.schemas.tidegate_events import CONTROL_TYPE, ESCALATED_TYPE, QUOTA_GRANTED_TYPE
from tidegate.streams.kafka import AsyncEventPublisher
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry

pytestmark = pytest.mark.integration

SHIPYARD = """
apiVersion: spec.keptn.sh/0.2.2
kind: Shipyard
metadata: {name: shipyard-sockshop}
spec:
  stages:
    - name: production
      sequences:
        - name: remediation
          triggeredOn:
            - event: production.remediation.finished
              selector: {match: {evaluation.result: fail}}
          tasks:
            - {name: get-action}
            - {name: action}
            - {name: evaluation, triggeredAfter: "1s"}
"""
REMEDIATION = """
apiVersion: spec.keptn.sh/0.1.4
kind: Remediation
metadata: {name: remediation}
spec:
  remediations:
    - problemType: response_time_p95
      actionsOnOpen:
        - {name: Scale up, action: scaling, value: "1"}
        - {name: Promotion off, action: toggle-feature, value: {EnablePromotion: "off"}}
"""
TIMEOUT = 150.0
BRIDGE = BridgeSettings(token="unused")  # type: ignore[arg-type]
FINISHED = sequence_type("production", "remediation", "finished")


def alert_event(service: str, fingerprint: str, status: str = "firing") -> tuple[KeptnEvent, Key]:
    raw = {
        "status": status,
        "labels": {"alertname": "response_time_p95", "project": "sockshop", "stage": "production",
                   "service": service, "severity": "webhook"},
        "annotations": {"summary": "response_time_p95"},
        "startsAt": "2026-05-01T12:00:00Z",
        "endsAt": "2026-05-01T12:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:19290/graph",
        "fingerprint": fingerprint,
    }
    accepted = translate_alert(0, raw, BRIDGE)
    assert not hasattr(accepted, "reasons"), accepted
    return accepted.event, accepted.key  # type: ignore[union-attr]


class Providers:
    """The action provider and the evaluation stand-in: consume tasks.action and tasks.evaluation."""

    def __init__(
        self,
        settings: Settings,
        evaluations: dict[str, list[str]],
        silent_actions: set[str] = frozenset(),  # type: ignore[assignment]
        on_action: Callable[[KeptnEvent], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_action = on_action
        self.registry = TopicRegistry.from_settings(settings)
        self.evaluations = evaluations
        self.silent_actions = silent_actions
        self.actions: dict[str, list[str]] = defaultdict(list)
        self.evaluated: dict[str, list[str]] = defaultdict(list)
        self._publisher = AsyncEventPublisher(settings)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Providers:
        await self._publisher.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._publisher.stop()

    async def _run(self) -> None:
        from tidegate.streams.codec import decode

        consumer = AIOKafkaConsumer(
            self.registry.task("action"), self.registry.task("evaluation"),
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=f"{self.settings.topic_prefix}test-providers",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            async for record in consumer:
                event = decode(record.value, record.headers)
                if event.type == task_type("action", "triggered"):
                    await self._action(event)
                elif event.type == task_type("evaluation", "triggered"):
                    await self._evaluation(event)
        finally:
            await consumer.stop()

    async def _reply(self, event: KeptnEvent, task: str, result: str | None, extra: dict[str, Any]) -> None:
        key = Key.of_data(event.data)
        common = {"project": key.project, "stage": key.stage, "service": key.service}
        await self._publisher.publish(self.registry.events, KeptnEvent(
            id=derived_id(event.id, "test:started"), type=task_type(task, "started"), source="test-provider",
            shkeptncontext=event.shkeptncontext, triggeredid=event.id, data={**common, "status": "succeeded"},
        ), key=key)
        if result is None:
            return  # keeps working: the run waits for its finished
        await self._publisher.publish(self.registry.events, KeptnEvent(
            id=derived_id(event.id, "test:finished"), type=task_type(task, "finished"), source="test-provider",
            shkeptncontext=event.shkeptncontext, triggeredid=event.id,
            data={**common, "status": Status.SUCCEEDED.value, "result": result, **extra},
        ), key=key)

    async def _action(self, event: KeptnEvent) -> None:
        service = str(event.service)
        # The problem reached the provider through the sequence payload, next to the action.
        assert event.data["problem"]["problemTitle"] == "response_time_p95"
        self.actions[service].append(event.data["action"]["action"])
        if self.on_action is not None:
            self.on_action(event)
        await self._reply(event, "action", None if service in self.silent_actions else "pass", {})

    async def _evaluation(self, event: KeptnEvent) -> None:
        service = str(event.service)
        script = self.evaluations[service]
        result = script[min(len(self.evaluated[service]), len(script) - 1)]
        self.evaluated[service].append(result)
        await self._reply(event, "evaluation", result, {"evaluation": {"result": result, "score": 0}})


@pytest.fixture
def worker(tidegate_settings: Settings, faust_worker, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    publish_files(tidegate_settings, "sockshop", {"shipyard.yaml": SHIPYARD, "remediation.yaml": REMEDIATION})
    monkeypatch.setenv("TIDEGATE_AGENTS", "sequencer,remediator")
    monkeypatch.setenv("TIDEGATE_REMEDIATION_COOLDOWN", "3s")
    monkeypatch.setenv("TIDEGATE_REMEDIATION_MAX_ACTIONS_PER_HOUR", "20")
    started = faust_worker("tidegate.agents.main:app", tidegate_settings)
    yield started
    started.assert_running()


@contextlib.asynccontextmanager
async def worker_log_on_failure(worker: Any) -> AsyncIterator[None]:
    """A failed wait shows what the worker logged: most failures here are the worker's, not the test's."""
    try:
        yield
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- worker log (last lines) ---\n{worker.log_tail(60)}") from None


def _finished(events: list[KeptnEvent], context: str) -> list[KeptnEvent]:
    return [e for e in events if e.type == FINISHED and e.shkeptncontext == context]


async def test_remediation_runs_actions_until_healthy_escalates_when_nothing_helps_and_stops_when_closed(
    tidegate_settings: Settings, worker: Any
) -> None:
    registry = TopicRegistry.from_settings(tidegate_settings)
    carts, carts_key = alert_event("carts", "fp-carts")
    orders, orders_key = alert_event("orders", "fp-orders")
    users, users_key = alert_event("users", "fp-users")
    closed, _ = alert_event("users", "fp-users", "resolved")
    contexts = {name: str(e.shkeptncontext) for name, e in (("carts", carts), ("orders", orders), ("users", users))}
    evaluations = {"carts": ["fail", "pass"], "orders": ["fail"], "users": ["fail"]}

    async with EventCollector(tidegate_settings, registry.events) as events, \
            EventCollector(tidegate_settings, registry.audit) as audit, \
            Providers(tidegate_settings, evaluations, silent_actions={"users"}) as providers, \
            AsyncEventPublisher(tidegate_settings) as publisher, worker_log_on_failure(worker):
        for event, key in ((carts, carts_key), (orders, orders_key), (users, users_key)):
            await publisher.publish(registry.events, event, key=key)
        # Alertmanager repeats a firing alert: the same event again starts nothing new.
        await publisher.publish(registry.events, carts, key=carts_key)

        await events.wait_for(lambda _: bool(providers.actions["users"]), TIMEOUT, "the action for users")
        await publisher.publish(registry.events, closed, key=users_key)

        def done(evs: list[KeptnEvent]) -> bool:
            carts_done = any(e.data.get("result") == "pass" for e in _finished(evs, contexts["carts"]))
            orders_done = any(e.type == ESCALATED_TYPE for e in evs) and len(_finished(evs, contexts["orders"])) >= 3
            users_done = any(e.data.get("status") == "aborted" for e in _finished(evs, contexts["users"]))
            return carts_done and orders_done and users_done

        await events.wait_for(done, TIMEOUT, "carts healed, orders escalated, users aborted")
        await audit.wait_for(lambda evs: any(e.type.endswith("remediator.deferred") for e in evs), 30,
                             "the cooldown's audit record")

    # carts: the first action did not help, the second did; the run ended pass on its second iteration.
    assert providers.actions["carts"] == ["scaling", "toggle-feature"]
    carts_runs = _finished(events.events, contexts["carts"])
    assert [e.data["result"] for e in carts_runs] == ["fail", "pass"]
    get_actions = [e for e in events.events if e.type == task_type("get-action", "finished")
                   and e.shkeptncontext == contexts["carts"]]
    assert [e.data["get-action"]["actionIndex"] for e in get_actions] == [1, 2]
    assert all(e.source == "tidegate-remediator" for e in get_actions)
    # The second action waited for the service's cooldown, and each action had a grant from the project.
    deferred = [e for e in audit.events if e.type.endswith("remediator.deferred")]
    assert {e.shkeptncontext for e in deferred} >= {contexts["carts"]}
    grants = [e for e in events.events if e.type == QUOTA_GRANTED_TYPE]
    assert len(grants) == 5  # carts 2, orders 2, users 1

    # orders: both actions tried, then the loop ended with an escalation naming them.
    assert providers.actions["orders"] == ["scaling", "toggle-feature"]
    [escalation] = [e for e in events.events if e.type == ESCALATED_TYPE]
    assert escalation.shkeptncontext == contexts["orders"]
    assert escalation.data["reason"] == "exhausted"
    assert [a["action"] for a in escalation.data["actionsTried"]] == ["scaling", "toggle-feature"]
    assert [e.data["result"] for e in _finished(events.events, contexts["orders"])] == ["fail", "fail", "fail"]

    # users: the resolved alert closed the problem, the remediator aborted the run.
    assert providers.actions["users"] == ["scaling"]
    aborts = [e for e in events.events if e.type == CONTROL_TYPE and e.shkeptncontext == contexts["users"]]
    assert [a.data["state"] for a in aborts] == ["abort"]
    assert [e.data["status"] for e in _finished(events.events, contexts["users"])] == ["aborted"]

    # The repeated alert started no second run of carts.
    triggered = [e for e in events.events if e.type == sequence_type("production", "remediation", "triggered")
                 and e.shkeptncontext == contexts["carts"] and e.source == BRIDGE.source]
    assert len({e.id for e in triggered}) == 1
