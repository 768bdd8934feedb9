"""`keptn configure monitoring prometheus` handled as Keptn's prometheus-service did: the decision
(`configure`) and one handled event (`handle_configure`) against in-memory stand-ins for the view and
the publisher."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from tidegate.connectors.prometheus.monitoring import (
    SLI_PROVIDER_FILE,
    MonitoringSettings,
    configure,
    handle_configure,
    wants,
)
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.ids import derived_id
from tidegate.streams.codec import KafkaRecord
from tidegate.streams.resources import Resource, ResourceStore
from tidegate.streams.topics import TopicRegistry

SOCKSHOP = Path(__file__).resolve().parents[2] / "examples" / "sockshop"


def _store(*, remediation: bool = True) -> ResourceStore:
    store = ResourceStore()
    store.put(Resource.new("sockshop", "shipyard.yaml", (SOCKSHOP / "shipyard.yaml").read_bytes()))
    for stage in ("dev", "staging", "production"):
        store.put(Resource.new("sockshop", ".tidegate/service.json", b"{}", stage=stage, service="carts"))
    store.put(Resource.new("sockshop", "slo.yaml", (SOCKSHOP / "slo.yaml").read_bytes(), stage="production",
                           service="carts"))
    store.put(Resource.new("sockshop", "prometheus/sli.yaml", (SOCKSHOP / "prometheus" / "sli.yaml").read_bytes()))
    if remediation:
        store.put(Resource.new("sockshop", "remediation.yaml", (SOCKSHOP / "remediation.yaml").read_bytes(),
                               stage="production", service="carts"))
    return store


def _event(kind: str = "prometheus", project: str = "sockshop") -> KeptnEvent:
    return KeptnEvent(type="sh.keptn.event.monitoring.configure", source="https://github.com/keptn/keptn/cli",
                      shkeptncontext="ctx-1", data={"project": project, "service": "carts", "type": kind})


def test_only_prometheus_configurations_are_answered() -> None:
    assert wants(_event())
    assert not wants(_event("dynatrace"))
    assert not wants(KeptnEvent(type="sh.keptn.event.dev.delivery.triggered", data={"type": "prometheus"}))


def test_without_a_rules_file_prometheus_becomes_the_sli_provider() -> None:
    decided = configure(_event(), _store(), MonitoringSettings())
    assert (decided.status, decided.result) == ("succeeded", "pass")
    [provider] = decided.resources
    assert (provider.project, provider.stage, provider.path, provider.text) == ("sockshop", "", SLI_PROVIDER_FILE,
                                                                                  "prometheus")
    assert "no alert rules written" in decided.message and "TIDEGATE_PROMETHEUS_RULES_FILE" in decided.message


def test_an_unknown_project_is_an_error_the_cli_prints() -> None:
    decided = configure(_event(project="nope"), _store(), MonitoringSettings())
    assert (decided.status, decided.result, decided.resources) == ("errored", "fail", [])
    assert "project 'nope' does not exist" in decided.message


def test_rules_only_where_slo_and_remediation_exist() -> None:
    settings = MonitoringSettings(rules_file=Path("/nonexistent/rules.yml"))
    decided = configure(_event(), _store(), settings)
    assert decided.plan is not None
    assert [rules.group for rules in decided.plan.rule_sets] == ["carts sockshop-production alerts"]
    assert all(rule["for"] == "10m" for rules in decided.plan.rule_sets for rule in rules.rules)  # Keptn's
    without = configure(_event(), _store(remediation=False), settings)
    assert without.plan is not None and without.plan.rule_sets == []
    assert "no remediation.yaml" in without.message


class _View:
    def __init__(self, store: ResourceStore) -> None:
        self.store = store
        self.synced = 0

    async def sync(self, timeout: float = 10.0) -> bool:
        self.synced += 1
        return True


class _Publisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, KeptnEvent]] = []
        self.records: list[tuple[str, KafkaRecord]] = []

    async def publish(self, topic: str, event: KeptnEvent, **_: Any) -> None:
        self.events.append((topic, event))

    async def publish_record(self, topic: str, record: KafkaRecord, **_: Any) -> None:
        self.records.append((topic, record))


def test_one_event_is_answered_started_then_finished_and_the_rules_are_merged(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "node", "rules": []}]}))
    topics = TopicRegistry(prefix="t.")
    view, publisher, event = _View(_store()), _Publisher(), _event()
    outcome = asyncio.run(handle_configure(event, view, publisher, topics,  # type: ignore[arg-type]
                                           MonitoringSettings(rules_file=rules_file)))
    assert outcome.status == "succeeded"
    started, finished = (e for _topic, e in publisher.events)
    assert [topic for topic, _ in publisher.events] == [topics.events, topics.events]
    assert (started.type, finished.type) == ("sh.keptn.event.configure-monitoring.started",
                                             "sh.keptn.event.configure-monitoring.finished")
    assert started.id == derived_id(event.id, "configure-monitoring.started")  # the same on a replay
    assert {started.triggeredid, finished.triggeredid} == {event.id}
    assert {started.shkeptncontext, finished.shkeptncontext} == {"ctx-1"}
    assert (finished.data["status"], finished.data["result"]) == ("succeeded", "pass")
    assert "carts sockshop-production alerts" in finished.data["message"]
    [(topic, record)] = publisher.records
    assert topic == topics.resources and b".tidegate/sli-provider" in record.key
    assert view.store.get("sockshop", SLI_PROVIDER_FILE) is not None and view.synced == 1
    groups = [g["name"] for g in yaml.safe_load(rules_file.read_text())["groups"]]
    assert groups == ["node", "carts sockshop-production alerts"]
