"""The analytics routes on the gateway (in-memory sinks, SQLite history holding the recorded stream)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.unit.test_analytics import PROJECT, recorded_stream
from tests.unit.test_whatif import LOOSER
from tests.unit.test_whatif import history as evaluation_history
from tidegate.bridge import install as install_bridge
from tidegate.gateway import (
    Catalog,
    Gateway,
    MemoryEventSink,
    MemoryResourceSink,
    VersionedResourceStore,
    create_app,
)
from tidegate.readside.history import HistoryStore, entry_of_event

REPO = Path(__file__).resolve().parents[2]
SHIPYARD = (REPO / "examples" / "sockshop" / "shipyard.yaml").read_bytes()
TOKEN = "t0ken"
NOW = datetime(2026, 1, 11, tzinfo=UTC)
WHATIF = "whatif"


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.store = VersionedResourceStore()
        self.history = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
        self.gateway = Gateway(catalog=Catalog(self.store), events=MemoryEventSink(),
                               resources=MemoryResourceSink(self.store), history=self.history, clock=lambda: NOW)
        self.client = TestClient(create_app(self.gateway, extensions=(install_bridge,), api_token=TOKEN), headers={"x-token": TOKEN})

    def create_project(self, name: str) -> None:
        shipyard = base64.b64encode(SHIPYARD).decode()
        answer = self.client.post("/api/controlPlane/v1/project", json={"name": name, "shipyard": shipyard})
        assert answer.status_code == 201, answer.text


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    made = Env(tmp_path)
    # The what-if history goes into a project of its own, so the two recorded streams do not mix.
    whatif = [e.model_copy(update={"data": {**e.data, "project": WHATIF}}) for e in evaluation_history()]
    made.history.ingest(entry_of_event(e) for e in [*recorded_stream(), *whatif])
    yield made
    made.history.close()


def test_metrics_of_a_project_with_history(env: Env) -> None:
    answer = env.client.get("/api/analytics/v1/metrics", params={"project": PROJECT, "since": "10d"})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    # No shipyard stored for it (only history): production is inferred, the figures are the recorded ones.
    assert (report["productionStage"], report["productionStageFrom"]) == ("production", "inferred")
    assert report["since"] == "2026-01-01T00:00:00Z"
    assert (report["dora"]["deployments"], report["dora"]["changeFailureRate"]) == (4, 0.4)
    assert report["qualityGates"]["evaluations"] == 6


def test_the_shipyard_names_production_and_orders_the_stages(env: Env) -> None:
    env.create_project(PROJECT)
    report = env.client.get("/api/analytics/v1/metrics", params={"project": PROJECT, "since": "10d"}).json()
    assert (report["productionStage"], report["productionStageFrom"]) == ("production", "shipyard")
    assert [s["stage"] for s in report["stages"]] == ["dev", "staging", "production"]
    chosen = env.client.get("/api/analytics/v1/metrics",
                            params={"project": PROJECT, "since": "10d", "productionStage": "staging"}).json()
    assert (chosen["productionStage"], chosen["dora"]["deployments"]) == ("staging", 1)


def test_unknown_projects_and_bad_windows_are_refused_with_what_to_do(env: Env) -> None:
    missing = env.client.get("/api/analytics/v1/metrics", params={"project": "nope"})
    assert missing.status_code == 404 and "tidegate create project" in missing.json()["message"]
    bad = env.client.get("/api/analytics/v1/metrics", params={"project": PROJECT, "since": "a month"})
    assert bad.status_code == 400
    assert bad.json()["problems"] == [{"field": "query:since",
                                       "message": "--since 'a month' is not a duration; write it like 30d, 2w, 12h or 90m"}]
    window = env.client.get("/api/analytics/v1/metrics", params={"project": PROJECT, "failureWindow": "soon"})
    assert window.status_code == 400 and window.json()["problems"][0]["field"] == "query:failureWindow"


def test_metrics_need_the_token(env: Env) -> None:
    assert TestClient(env.client.app).get("/api/analytics/v1/metrics", params={"project": PROJECT}).status_code == 401


def test_replay_reports_the_verdicts_an_slo_would_change(env: Env) -> None:
    answer = env.client.post("/api/analytics/v1/evaluations/replay", json={
        "project": WHATIF, "stage": "staging", "service": "carts", "slo": LOOSER, "since": "30d",
    })
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert [(c["id"], c["wasResult"], c["nowResult"]) for c in report["changed"]] == [
        ("e2", "pass", "warning"), ("e3", "fail", "warning")
    ]
    assert report["transitions"] == {"fail->warning": 1, "pass->warning": 1}


def test_replay_refuses_an_unusable_slo(env: Env) -> None:
    answer = env.client.post("/api/analytics/v1/evaluations/replay", json={
        "project": WHATIF, "stage": "staging", "service": "carts", "slo": "objectives: [",
    })
    assert answer.status_code == 400
    assert answer.json()["problems"][0]["field"] == "body:slo"
    assert "not valid YAML at line 1" in answer.json()["problems"][0]["message"]
    invalid = env.client.post("/api/analytics/v1/evaluations/replay", json={
        "project": WHATIF, "stage": "staging", "service": "carts",
        "slo": "objectives: [{sli: rt, pass: [{criteria: ['<<5']}]}]\ntotal_score: {pass: '90%'}",
    })
    assert invalid.status_code == 400 and "invalid criterion" in invalid.json()["message"]


def test_the_gateway_metrics_include_tidegates_shared_collectors(env: Env) -> None:
    text = env.client.get("/metrics").text
    assert "tidegate_gateway_requests_total" in text  # the gateway's own
    assert "# TYPE tidegate_events_produced_total counter" in text  # streams.metrics, shared
