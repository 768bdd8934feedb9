"""The Sock Shop example project is a complete, valid Keptn-format project."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidegate.qualitygate import QualityGate
from tidegate.schemas.files import FileKind, load_file
from tidegate.schemas.remediation import Remediation
from tidegate.schemas.shipyard import Shipyard
from tidegate.schemas.sli import SLI
from tidegate.schemas.slo import SLO
from tidegate.schemas.testconfigs import LocustConfig

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "sockshop"


@pytest.mark.parametrize(("name", "kind"), [
    ("shipyard.yaml", FileKind.SHIPYARD),
    ("slo.yaml", FileKind.SLO),
    ("prometheus/sli.yaml", FileKind.SLI),
    ("remediation.yaml", FileKind.REMEDIATION),
    ("locust/locust.conf.yaml", FileKind.LOCUST),
])
def test_each_file_loads_as_its_kind_without_warnings(name: str, kind: FileKind) -> None:
    loaded = load_file(PROJECT / name)
    assert loaded.kind is kind
    assert loaded.warnings == ()


def _tasks(shipyard: Shipyard, stage: str, sequence: str) -> list[tuple[str, dict[str, object] | None]]:
    found = shipyard.stage(stage)
    assert found is not None
    seq = found.sequence(sequence)
    assert seq is not None
    return [(task.name, task.properties) for task in seq.tasks]


def test_the_shipyard_promotes_dev_staging_production() -> None:
    shipyard = load_file(PROJECT / "shipyard.yaml").expect(Shipyard)
    assert shipyard.stage_names == ["dev", "staging", "production"]
    assert _tasks(shipyard, "dev", "delivery")[0] == ("deployment", {"deploymentstrategy": "direct"})
    staging = dict(_tasks(shipyard, "staging", "delivery"))
    assert staging["deployment"] == {"deploymentstrategy": "blue_green_service"}
    assert staging["test"] == {"teststrategy": "performance"}
    assert "evaluation" in staging and "release" in staging
    assert staging["approval"] == {"pass": "automatic", "warning": "manual"}
    assert dict(_tasks(shipyard, "production", "delivery"))["approval"] == {"pass": "manual", "warning": "manual"}
    for stage in ("staging", "production"):
        found = shipyard.stage(stage)
        assert found is not None
        delivery = found.sequence("delivery")
        rollback = found.sequence("rollback")
        assert delivery is not None and rollback is not None
        assert [t.event for t in rollback.triggeredOn] == [f"{stage}.delivery.finished"]
        assert rollback.triggeredOn[0].selector is not None
        assert rollback.triggeredOn[0].selector.match == {"result": "fail"}
    staging_stage = shipyard.stage("staging")
    assert staging_stage is not None
    staging_delivery = staging_stage.sequence("delivery")
    assert staging_delivery is not None
    assert [t.event for t in staging_delivery.triggeredOn] == ["dev.delivery.finished"]


def test_the_remediation_sequence_retriggers_itself_while_the_evaluation_fails() -> None:
    shipyard = load_file(PROJECT / "shipyard.yaml").expect(Shipyard)
    production = shipyard.stage("production")
    assert production is not None
    remediation = production.sequence("remediation")
    assert remediation is not None
    assert [t.name for t in remediation.tasks] == ["get-action", "action", "evaluation"]
    evaluation = remediation.tasks[2]
    assert evaluation.triggeredAfter == "30s"
    assert evaluation.properties == {"timeframe": "1m"}
    [trigger] = remediation.triggeredOn
    assert trigger.event == "production.remediation.finished"
    assert trigger.selector is not None and trigger.selector.match == {"evaluation.result": "fail"}


def test_the_slo_uses_relative_and_absolute_criteria_a_key_sli_and_weights() -> None:
    slo = load_file(PROJECT / "slo.yaml").expect(SLO)
    criteria = [c for o in slo.objectives for s in o.pass_ for c in s.criteria]
    assert any(c.endswith("%") for c in criteria) and any(not c.endswith("%") for c in criteria)
    assert [o.sli for o in slo.objectives if o.key_sli] == ["error_rate"]
    assert {o.weight for o in slo.objectives} == {1, 2}
    assert slo.total_score is not None and (slo.total_score.pass_, slo.total_score.warning) == ("90%", "75%")
    assert QualityGate(slo).problems == []


def test_every_objective_has_a_prometheus_query_for_the_demo_metrics() -> None:
    sli = load_file(PROJECT / "prometheus" / "sli.yaml").expect(SLI)
    slo = load_file(PROJECT / "slo.yaml").expect(SLO)
    assert {o.sli for o in slo.objectives} <= set(sli.indicators)
    for query in sli.indicators.values():
        assert 'job="$SERVICE-$PROJECT-$STAGE"' in query
        assert "[$DURATION_SECONDS]" in query
        assert "http_request_duration_seconds_bucket" in query or "http_requests_total" in query


def test_remediation_scales_then_toggles_and_escalates_anything_else() -> None:
    remediation = load_file(PROJECT / "remediation.yaml").expect(Remediation)
    slow = remediation.actions_for(None, "response_time_p95")
    assert [(a.action, a.value) for a in slow] == [("scaling", "1"), ("toggle-feature", {"EnablePromotion": "off"})]
    assert [a.action for a in remediation.actions_for(None, "disk full")] == ["escalate"]


def test_locust_workloads_name_files_that_exist() -> None:
    config = load_file(PROJECT / "locust" / "locust.conf.yaml").expect(LocustConfig)
    for strategy in ("functional", "performance"):
        workload = config.workload(strategy)
        assert workload is not None and workload.script is not None and workload.conf is not None
        assert (PROJECT / workload.script).is_file()
        assert (PROJECT / workload.conf).is_file()
    locustfile = (PROJECT / "locust" / "load.py").read_text()
    compile(locustfile, "load.py", "exec")  # valid Python (locust itself is not installed here)
    assert 'self.client.get("/")' in locustfile and 'self.client.get("/carts")' in locustfile
