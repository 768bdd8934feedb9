"""The demo's deployment program decides like Keptn's helm-service, on one port per stage (pure core)."""

from __future__ import annotations

from typing import Any

import pytest

from examples.sockshop.deploy import (
    ReleaseSpec,
    Replica,
    RequestError,
    Role,
    StageState,
    decide,
    reconcile,
    request_from_event,
)
from examples.sockshop.deploy.plan import Request, version_of


def event(task: str, **data: Any) -> dict[str, Any]:
    return {"type": f"sh.keptn.event.{task}.triggered",
            "data": {"project": "sockshop", "stage": "staging", "service": "carts", **data}}


def stage(live: ReleaseSpec | None = None, previous: ReleaseSpec | None = None) -> StageState:
    return StageState(project="sockshop", stage="staging", service="carts", port=41000, live=live, previous=previous)


def deploy(version: str, strategy: str = "blue_green_service") -> Request:
    return request_from_event(event("deployment", configurationChange={"values": {"image": f"carts:{version}"}},
                                    deployment={"deploymentstrategy": strategy}))


PRIMARY = ReleaseSpec(version="0.11.1", role=Role.PRIMARY, replicas=2)


@pytest.mark.parametrize(("image", "version"), [
    ("docker.io/keptnexamples/carts:0.11.2", "0.11.2"),
    ("carts:1.0", "1.0"),
    ("registry.local:5000/carts:2", "2"),
])
def test_the_version_is_the_image_tag(image: str, version: str) -> None:
    assert version_of(image) == version


@pytest.mark.parametrize("image", ["carts", "registry.local:5000/carts"])
def test_an_image_without_a_tag_is_refused_with_the_fix(image: str) -> None:
    with pytest.raises(RequestError, match="--tag"):
        version_of(image)


def test_a_request_is_read_from_the_triggered_event() -> None:
    request = request_from_event(event("action", action={"action": "scaling", "value": "1"}))
    assert (request.task, request.stage, request.action, request.value) == ("action", "staging", "scaling", "1")


@pytest.mark.parametrize(("raw", "problem"), [
    ({"type": "sh.keptn.event.test.triggered", "data": {}}, "does not handle the task 'test'"),
    ({"type": "sh.keptn.event.deployment.finished", "data": {}}, "not a task's triggered event"),
    ({"type": "sh.keptn.event.deployment.triggered", "data": {"project": "p"}}, "no stage, service"),
])
def test_events_it_cannot_act_on_are_refused(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(RequestError, match=problem):
        request_from_event(raw)


def test_blue_green_starts_the_canary_with_the_primarys_replicas_and_remembers_the_primary() -> None:
    decision = decide(stage(live=PRIMARY), deploy("0.11.2"))
    assert decision.live == ReleaseSpec(version="0.11.2", role=Role.CANARY, replicas=2)
    assert decision.previous == PRIMARY
    assert decision.outcome.passed
    block = decision.outcome.data["deployment"]
    assert block["deploymentURIsLocal"] == ["http://127.0.0.1:41000"]
    assert block["deploymentNames"] == ["canary"]


def test_a_second_canary_keeps_the_primary_to_roll_back_to() -> None:
    canary = ReleaseSpec(version="0.11.2", role=Role.CANARY, replicas=1)
    decision = decide(stage(live=canary, previous=PRIMARY), deploy("0.11.3"))
    assert decision.previous == PRIMARY


def test_direct_replaces_the_release() -> None:
    decision = decide(stage(live=PRIMARY), deploy("0.11.2", "direct"))
    assert decision.live == ReleaseSpec(version="0.11.2", role=Role.DIRECT, replicas=2)


def test_an_unknown_strategy_fails_and_names_the_known_ones() -> None:
    decision = decide(stage(live=PRIMARY), deploy("0.11.2", "canary_magic"))
    assert not decision.outcome.passed
    assert "blue_green_service" in decision.outcome.message
    assert decision.live == PRIMARY


def test_release_promotes_the_canary_and_forgets_the_old_primary() -> None:
    canary = ReleaseSpec(version="0.11.2", role=Role.CANARY, replicas=1)
    decision = decide(stage(live=canary, previous=PRIMARY), request_from_event(event("release")))
    assert decision.live == ReleaseSpec(version="0.11.2", role=Role.PRIMARY, replicas=1)
    assert decision.previous is None


def test_rollback_restores_the_primary() -> None:
    canary = ReleaseSpec(version="0.11.2", role=Role.CANARY, replicas=2)
    decision = decide(stage(live=canary, previous=PRIMARY), request_from_event(event("rollback")))
    assert decision.live == PRIMARY
    assert decision.previous is None
    assert "0.11.1 serves" in decision.outcome.message


def test_rollback_of_a_first_canary_stops_it() -> None:
    canary = ReleaseSpec(version="0.11.2", role=Role.CANARY, replicas=1)
    decision = decide(stage(live=canary), request_from_event(event("rollback")))
    assert decision.live is None and decision.outcome.passed


@pytest.mark.parametrize(("value", "replicas"), [("1", 3), ("2", 4), ("-1", 1)])
def test_scaling_adds_the_string_integer_value(value: str, replicas: int) -> None:
    decision = decide(stage(live=PRIMARY), request_from_event(event("action", action={"action": "scaling",
                                                                                         "value": value})))
    assert decision.live is not None and decision.live.replicas == replicas
    assert decision.outcome.data["scaling"] == {"version": "0.11.1", "replicasBefore": 2, "replicas": replicas}


@pytest.mark.parametrize(("action", "problem"), [
    ({"action": "scaling", "value": 1}, "not a string integer"),
    ({"action": "scaling", "value": "many"}, "not a string integer"),
    ({"action": "scaling", "value": "-2"}, "at least one must run"),
    ({"action": "toggle-feature", "value": {"x": "on"}}, "only performs the 'scaling' action"),
])
def test_scaling_that_cannot_be_done_fails_and_changes_nothing(action: dict[str, Any], problem: str) -> None:
    decision = decide(stage(live=PRIMARY), request_from_event(event("action", action=action)))
    assert not decision.outcome.passed
    assert problem in decision.outcome.message
    assert decision.live == PRIMARY


def test_nothing_deployed_cannot_be_released_or_scaled() -> None:
    assert not decide(stage(), request_from_event(event("release"))).outcome.passed
    assert not decide(stage(), request_from_event(event("action", action={"action": "scaling", "value": "1"}))
                      ).outcome.passed


def replica(pid: int, version: str) -> Replica:
    return Replica(pid=pid, version=version, metrics_port=50000 + pid)


def test_reconcile_starts_the_new_version_and_stops_the_old() -> None:
    work = reconcile([replica(1, "0.11.1"), replica(2, "0.11.1")],
                     ReleaseSpec(version="0.11.2", role=Role.CANARY, replicas=2))
    assert (work.start, work.version) == (2, "0.11.2")
    assert [r.pid for r in work.stop] == [1, 2]


def test_reconcile_scales_by_the_difference_and_stops_the_newest_first() -> None:
    alive = [replica(1, "0.11.1"), replica(2, "0.11.1"), replica(3, "0.11.1")]
    assert reconcile(alive[:1], ReleaseSpec(version="0.11.1", role=Role.PRIMARY, replicas=3)).start == 2
    down = reconcile(alive, ReleaseSpec(version="0.11.1", role=Role.PRIMARY, replicas=1))
    assert (down.start, [r.pid for r in down.stop]) == (0, [2, 3])


def test_reconcile_to_nothing_stops_everything() -> None:
    work = reconcile([replica(1, "0.11.1")], None)
    assert (work.start, [r.pid for r in work.stop]) == (0, [1])
