"""The gateway's HTTP API on in-memory sinks and a SQLite history: each endpoint, auth, validation."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tidegate.bridge import install as install_bridge
from tidegate.gateway import (
    Catalog,
    Gateway,
    MemoryEventSink,
    MemoryResourceSink,
    VersionedResourceStore,
    create_app,
)
from tidegate.readside.history import HistoryStore, SeenEvent
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.ids import context_from_text
from tidegate.schemas.tidegate_events import CONTROL_TYPE

REPO = Path(__file__).resolve().parents[2]
SHIPYARD = (REPO / "examples" / "sockshop" / "shipyard.yaml").read_bytes()
TOKEN = "s3cret-token"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def b64(content: bytes | str) -> str:
    return base64.b64encode(content.encode() if isinstance(content, str) else content).decode()


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.events = MemoryEventSink()
        self.store = VersionedResourceStore()
        self.history = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
        self.gateway = Gateway(
            catalog=Catalog(self.store),
            events=self.events,
            resources=MemoryResourceSink(self.store),
            history=self.history,
            clock=lambda: NOW,
        )
        self.client = TestClient(create_app(self.gateway, extensions=(install_bridge,), api_token=TOKEN, max_body=64 * 1024),
                                 headers={"x-token": TOKEN})

    def create_project(self, name: str = "sockshop") -> None:
        answer = self.client.post("/api/controlPlane/v1/project", json={"name": name, "shipyard": b64(SHIPYARD)})
        assert answer.status_code == 201, answer.text

    def create_service(self, name: str = "carts", project: str = "sockshop") -> None:
        answer = self.client.post(f"/api/controlPlane/v1/project/{project}/service", json={"serviceName": name})
        assert answer.status_code == 201, answer.text


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    made = Env(tmp_path)
    yield made
    made.history.close()


# --------------------------------------------------------------------- auth


def test_api_needs_the_token(env: Env) -> None:
    bare = TestClient(env.client.app)
    missing = bare.get("/api/controlPlane/v1/project")
    assert missing.status_code == 401 and "x-token" in missing.json()["message"]
    wrong = bare.post("/api/v1/auth", headers={"x-token": "nope"})
    assert wrong.status_code == 401
    assert TOKEN not in wrong.text
    assert env.client.post("/api/v1/auth").status_code == 200
    assert bare.get("/healthz").status_code == 200


def test_local_mode_without_token(tmp_path: Path) -> None:
    local = Env(tmp_path)
    client = TestClient(create_app(local.gateway, extensions=(install_bridge,), api_token=None),
                        base_url="http://127.0.0.1:8080")  # local mode answers loopback hosts only
    assert client.post("/api/v1/auth").status_code == 200
    local.history.close()


def test_metadata(env: Env) -> None:
    body = env.client.get("/api/v1/metadata").json()
    assert body["shipyardversion"] == "0.2.2"
    assert set(body) >= {"namespace", "keptnversion", "bridgeversion", "keptnservices", "automaticprovisioning"}


# --------------------------------------------------------------------- projects, stages, services


def test_project_lifecycle(env: Env) -> None:
    env.create_project()
    again = env.client.post("/api/controlPlane/v1/project", json={"name": "sockshop", "shipyard": b64(SHIPYARD)})
    assert again.status_code == 409
    project = env.client.get("/api/controlPlane/v1/project/sockshop").json()
    assert [s["stageName"] for s in project["stages"]] == ["dev", "staging", "production"]
    assert project["stages"][1]["parentStages"] == ["dev"]
    assert project["shipyardVersion"] == "spec.keptn.sh/0.2.2"
    listed = env.client.get("/api/controlPlane/v1/project").json()
    assert [p["projectName"] for p in listed["projects"]] == ["sockshop"]
    stages = env.client.get("/api/controlPlane/v1/project/sockshop/stage").json()
    assert stages["totalCount"] == 3
    assert env.client.get("/api/controlPlane/v1/project/sockshop/stage/qa").status_code == 404
    assert env.client.delete("/api/controlPlane/v1/project/sockshop").status_code == 200
    gone = env.client.get("/api/controlPlane/v1/project/sockshop")
    assert gone.status_code == 404 and "'sockshop'" in gone.json()["message"]


def test_project_create_refuses_a_broken_shipyard_naming_line_and_field(env: Env) -> None:
    broken = SHIPYARD.decode().replace("- name: staging", "- name: Staging.x")
    answer = env.client.post("/api/controlPlane/v1/project", json={"name": "sockshop", "shipyard": b64(broken)})
    assert answer.status_code == 400
    problems = answer.json()["problems"]
    assert any("shipyard.yaml:" in p["message"] and "spec.stages[1].name" in p["message"] for p in problems)
    assert env.client.get("/api/controlPlane/v1/project/sockshop").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Sock_Shop", "shipyard": b64(SHIPYARD)}, "projectName"),
        ({"name": "sockshop", "shipyard": "%%%not base64"}, "shipyard"),
        ({"name": "sockshop"}, "body:shipyard"),
    ],
)
def test_project_create_validation_names_the_field(env: Env, body: dict[str, str], field: str) -> None:
    answer = env.client.post("/api/controlPlane/v1/project", json=body)
    assert answer.status_code == 400
    assert [p["field"] for p in answer.json()["problems"]] == [field]


def test_services_are_created_in_every_stage_and_deleted(env: Env) -> None:
    env.create_project()
    env.create_service()
    assert env.client.post("/api/controlPlane/v1/project/sockshop/service", json={"serviceName": "carts"}).status_code == 409
    for stage in ("dev", "staging", "production"):
        services = env.client.get(f"/api/controlPlane/v1/project/sockshop/stage/{stage}/service").json()
        assert [s["serviceName"] for s in services["services"]] == ["carts"]
    assert env.client.get("/api/controlPlane/v1/project/sockshop/stage/dev/service/carts").status_code == 200
    too_long = env.client.post("/api/controlPlane/v1/project/sockshop/service", json={"serviceName": "a" * 44})
    assert too_long.status_code == 400 and "43" in too_long.json()["message"]
    assert env.client.delete("/api/controlPlane/v1/project/sockshop/service/carts").status_code == 200
    assert env.client.get("/api/controlPlane/v1/project/sockshop/stage/dev/service/carts").status_code == 404
    missing = env.client.post("/api/controlPlane/v1/project/nope/service", json={"serviceName": "carts"})
    assert missing.status_code == 404 and "'nope'" in missing.json()["message"]


# --------------------------------------------------------------------- events


def delivery(**data: object) -> dict[str, object]:
    return {
        "type": "sh.keptn.event.dev.delivery.triggered",
        "source": "ci",
        "data": {"project": "sockshop", "stage": "dev", "service": "carts",
                 "configurationChange": {"values": {"image": "carts:1"}}, **data},
    }


def test_post_event_publishes_with_server_id_time_and_context(env: Env) -> None:
    env.create_project()
    env.create_service()
    answer = env.client.post("/api/v1/event", json={**delivery(), "id": "client-id", "shkeptncontext": "build-17"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"keptnContext": context_from_text("build-17")}
    [event] = env.events.events
    assert event.id != "client-id"
    assert event.time == NOW
    assert event.source == "ci"
    assert event.shkeptncontext == context_from_text("build-17")
    assert event.data["configurationChange"] == {"values": {"image": "carts:1"}}

    fresh = env.client.post("/api/v1/event", json=delivery()).json()["keptnContext"]
    assert str(uuid.UUID(fresh)) == fresh


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"source": "ci", "data": {}}, 400, "type"),
        ({"type": "sh.keptn.event.dev.delivery.triggered", "source": "ci"}, 400, "data"),
        ({**delivery(), "type": "sh.keptn.event.dev.delivery.finished"}, 400, "type"),
        ({**delivery(), "type": "sh.keptn.event.staging.delivery.triggered"}, 400, "data.stage"),
        ({"type": "sh.keptn.event.deployment.triggered", "data": {"project": "sockshop"}}, 400, "type"),
        ({"type": "sh.keptn.event.deployment.finished",
          "data": {"project": "sockshop", "stage": "dev", "service": "carts", "result": "great"},
          "triggeredid": "x"}, 400, "data.result"),
        ({"type": "sh.keptn.event.deployment.started",
          "data": {"project": "sockshop", "stage": "dev", "service": "carts"}}, 400, "triggeredid"),
        ({"type": "sh.keptn.event.test.status.changed", "data": {"project": "sockshop"}}, 400, "type"),
        ({"type": "sh.keptn.event.monitoring.configure", "data": {"project": "sockshop"}}, 400, "data.type"),
        ({"type": "com.example.other", "data": {}}, 400, "type"),
        ({"type": "sh.keptn.event.dev.delivery.triggered", "data": [1, 2]}, 400, "body:data"),
    ],
)
def test_post_event_validation(env: Env, body: dict[str, object], status: int, field: str) -> None:
    env.create_project()
    env.create_service()
    answer = env.client.post("/api/v1/event", json=body)
    assert answer.status_code == status, answer.text
    assert field in [p["field"] for p in answer.json()["problems"]]
    assert env.events.events == []


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ({"project": "nope"}, "'nope'"),
        ({"stage": "dev", "service": "orders"}, "'orders'"),
    ],
)
def test_post_event_unknown_names_are_404(env: Env, data: dict[str, str], name: str) -> None:
    env.create_project()
    env.create_service()
    answer = env.client.post("/api/v1/event", json=delivery(**data))
    assert answer.status_code == 404 and name in answer.json()["message"]
    unknown_sequence = env.client.post("/api/v1/event", json={**delivery(), "type": "sh.keptn.event.dev.hotfix.triggered"})
    assert unknown_sequence.status_code == 404 and "hotfix" in unknown_sequence.json()["message"]
    assert env.events.events == []


def test_problem_and_log_events_pass_without_checks(env: Env) -> None:
    for body in ({"type": "sh.keptn.events.problem", "data": {"State": "OPEN"}},
                 {"type": "sh.keptn.log.error", "data": {"message": "boom"}}):
        assert env.client.post("/api/v1/event", json=body).status_code == 200
    assert len(env.events.events) == 2


def test_oversized_bodies_are_refused(env: Env) -> None:
    answer = env.client.post("/api/v1/event", content=b"{" + b" " * (70 * 1024) + b"}",
                             headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert env.events.events == []


def test_evaluation_trigger_computes_the_window(env: Env) -> None:
    env.create_project()
    env.create_service()
    url = "/api/controlPlane/v1/project/sockshop/stage/staging/service/carts/evaluation"
    answer = env.client.post(url, json={"timeframe": "10m", "labels": {"run": "1"}})
    assert answer.status_code == 200, answer.text
    event = env.events.events[-1]
    assert event.type == "sh.keptn.event.staging.evaluation.triggered"
    assert event.data["evaluation"]["start"] == "2024-05-01T11:50:00.000Z"
    assert event.data["evaluation"]["end"] == "2024-05-01T12:00:00.000Z"
    assert event.data["labels"] == {"run": "1"}
    env.client.post(url, json={"start": "2024-05-01T10:00:00Z", "timeframe": "15m"})
    assert env.events.events[-1].data["evaluation"]["end"] == "2024-05-01T10:15:00.000Z"
    both = env.client.post(url, json={"end": "2024-05-01T10:00:00Z", "timeframe": "5m"})
    assert both.status_code == 400 and both.json()["problems"][0]["field"] == "timeframe"
    short = env.client.post(url, json={"start": "2024-05-01T10:00:00Z", "end": "2024-05-01T10:00:30Z"})
    assert short.status_code == 400 and "one minute" in short.json()["message"]
    bad = env.client.post(url, json={"timeframe": "ten minutes"})
    assert bad.status_code == 400 and bad.json()["problems"][0]["field"] == "timeframe"
    assert env.client.post(url.replace("carts", "orders"), json={}).status_code == 404


# --------------------------------------------------------------------- reads from history


def seen(**fields: object) -> SeenEvent:
    return SeenEvent(KeptnEvent.model_validate({"time": NOW, **fields}))


def test_sequences_control_and_open_approvals(env: Env) -> None:
    env.create_project()
    env.create_service()
    context = str(uuid.uuid4())
    data = {"project": "sockshop", "stage": "staging", "service": "carts"}
    env.history.ingest([
        seen(id="t1", type="sh.keptn.event.staging.delivery.triggered", shkeptncontext=context, data=data),
        seen(id="a1", type="sh.keptn.event.approval.triggered", shkeptncontext=context, data=data),
    ])
    states = env.client.get("/api/controlPlane/v1/sequence/sockshop").json()
    assert states["totalCount"] == 1
    assert states["states"][0]["shkeptncontext"] == context
    assert states["states"][0]["stages"][0]["name"] == "staging"
    assert env.client.get("/api/controlPlane/v1/sequence/sockshop", params={"state": "finished"}).json()["states"] == []
    bad_time = env.client.get("/api/controlPlane/v1/sequence/sockshop", params={"fromTime": "yesterday"})
    assert bad_time.status_code == 400 and bad_time.json()["problems"][0]["field"] == "query:fromTime"

    approvals = env.client.get("/api/controlPlane/v1/event/triggered/sh.keptn.event.approval.triggered",
                               params={"project": "sockshop", "stage": "staging"}).json()
    assert [e["id"] for e in approvals["events"]] == ["a1"]

    control = env.client.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/control", json={"state": "pause"})
    assert control.status_code == 200, control.text
    [event] = env.events.events
    assert event.type == CONTROL_TYPE
    assert event.shkeptncontext == context
    assert event.data == {"project": "sockshop", "stage": "staging", "service": "carts", "state": "pause"}

    unknown = env.client.post(f"/api/controlPlane/v1/sequence/sockshop/{uuid.uuid4()}/control", json={"state": "abort"})
    assert unknown.status_code == 404
    wrong_state = env.client.post(f"/api/controlPlane/v1/sequence/sockshop/{context}/control", json={"state": "stop"})
    assert wrong_state.status_code == 400 and wrong_state.json()["problems"][0]["field"] == "body:state"


def test_datastore_queries(env: Env) -> None:
    context = str(uuid.uuid4())
    data = {"project": "sockshop", "stage": "dev", "service": "carts"}
    env.history.ingest([
        seen(id="t1", type="sh.keptn.event.dev.delivery.triggered", shkeptncontext=context, data=data),
        seen(id="e1", type="sh.keptn.event.evaluation.finished", shkeptncontext=context, triggeredid="et1",
             data={**data, "result": "pass", "evaluation": {"score": 100}}),
    ])
    page = env.client.get("/api/mongodb-datastore/event", params={"project": "sockshop", "pageSize": 1}).json()
    assert [e["id"] for e in page["events"]] == ["e1"] and page["nextPageKey"] == "1" and page["totalCount"] == 2
    roots = env.client.get("/api/mongodb-datastore/event", params={"project": "sockshop", "root": "true"}).json()
    assert [e["id"] for e in roots["events"]] == ["t1"]
    by_type = env.client.get(
        "/api/mongodb-datastore/event/type/sh.keptn.event.evaluation.finished",
        params={"filter": "data.project:sockshop AND data.stage:dev,staging AND data.result:pass"},
    ).json()
    assert [e["id"] for e in by_type["events"]] == ["e1"]
    no_scope = env.client.get("/api/mongodb-datastore/event/type/sh.keptn.event.evaluation.finished",
                              params={"filter": "data.stage:dev"})
    assert no_scope.status_code == 400 and "data.project" in no_scope.json()["message"]


# --------------------------------------------------------------------- resources


def test_resources_at_each_level_with_versions(env: Env) -> None:
    env.create_project()
    env.create_service()
    base = "/api/resource-service/v1/project/sockshop/stage/dev/service/carts/resource"
    first = env.client.post(base, json={"resources": [{"resourceURI": "helm/carts.tgz", "resourceContent": b64(b"v1")}]})
    assert first.status_code == 201, first.text
    v1 = first.json()["commitID"]
    v2 = env.client.put(base + "/helm%2Fcarts.tgz", json={"resourceContent": b64(b"v2")}).json()["commitID"]
    assert v1 != v2
    latest = env.client.get(base + "/helm%2Fcarts.tgz").json()
    assert base64.b64decode(latest["resourceContent"]) == b"v2" and latest["metadata"]["version"] == v2
    old = env.client.get(base + "/helm/carts.tgz", params={"gitCommitID": v1}).json()
    assert base64.b64decode(old["resourceContent"]) == b"v1"
    assert env.client.get(base + "/helm/carts.tgz", params={"gitCommitID": "0000"}).status_code == 404
    listed = env.client.get(base).json()
    assert [r["resourceURI"] for r in listed["resources"]] == ["helm/carts.tgz"]
    # the service's file is not visible at stage or project level
    assert env.client.get("/api/resource-service/v1/project/sockshop/stage/dev/resource/helm/carts.tgz").status_code == 404
    assert env.client.delete(base + "/helm/carts.tgz").status_code == 200
    assert env.client.get(base + "/helm/carts.tgz").status_code == 404
    assert env.client.post(base.replace("carts", "orders"),
                           json={"resources": [{"resourceURI": "a", "resourceContent": b64("x")}]}).status_code == 404


def test_known_files_are_validated_on_upload(env: Env) -> None:
    env.create_project()
    env.create_service()
    base = "/api/resource-service/v1/project/sockshop/stage/staging/service/carts/resource"
    bad_slo = "spec_version: '1.0'\nobjectives:\n  - sli: response_time_p95\n    pass:\n      - criteria: 12\n"
    answer = env.client.post(base, json={"resources": [{"resourceURI": "slo.yaml", "resourceContent": b64(bad_slo)}]})
    assert answer.status_code == 400, answer.text
    assert "slo.yaml" in answer.json()["message"]
    good_slo = (REPO / "examples" / "sockshop" / "slo.yaml").read_bytes()
    assert env.client.post(base, json={"resources": [{"resourceURI": "slo.yaml", "resourceContent": b64(good_slo)}]}).status_code == 201
    escape = env.client.post(base, json={"resources": [{"resourceURI": "../../x", "resourceContent": b64("x")}]})
    assert escape.status_code == 400
    internal = env.client.post(base, json={"resources": [{"resourceURI": ".tidegate/service.json", "resourceContent": b64("x")}]})
    assert internal.status_code == 400


def test_a_command_config_that_reaches_for_the_connector_s_secrets_or_the_host_is_refused(env: Env) -> None:
    env.create_project()
    env.create_service()
    base = "/api/resource-service/v1/project/sockshop/stage/staging/service/carts/resource"
    task = "    tasks:\n      - name: t\n        cmd: [deploy]\n"
    head = "actions:\n  - name: a\n    events: [{name: sh.keptn.event.deployment.triggered}]\n"
    for extra, problem in (
        ("        env: [{name: T, valueFrom: {secretEnv: TIDEGATE_API_TOKEN}}]\n", "TIDEGATE_SECRET_"),
        ("        workingDir: /etc\n", "workingDir"),
        ("        files: [../../../etc/passwd]\n", "files"),
    ):
        answer = env.client.post(base, json={"resources": [
            {"resourceURI": "command/config.yaml", "resourceContent": b64(head + task + extra)}]})
        assert answer.status_code == 400, answer.text
        assert problem in answer.text and "command/config.yaml" in answer.text
    good = head + task + "        env: [{name: T, valueFrom: {secretEnv: TIDEGATE_SECRET_DEPLOY_TOKEN}}]\n"
    answer = env.client.post(base, json={"resources": [{"resourceURI": "command/config.yaml", "resourceContent": b64(good)}]})
    assert answer.status_code == 201, answer.text


def test_health_ready_and_metrics(env: Env) -> None:
    assert env.client.get("/readyz").json() == {"status": "ready"}
    env.gateway.not_ready = lambda: ["still loading"]
    assert env.client.get("/readyz").status_code == 503
    env.client.get("/api/controlPlane/v1/project")
    metrics = env.client.get("/metrics").text
    assert 'tidegate_gateway_requests_total{method="GET",route="/api/controlPlane/v1/project",status="200"}' in metrics


def test_openapi_describes_the_token_and_keptn_paths(env: Env) -> None:
    document = env.client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "x-token"
    for path in ("/api/v1/event", "/api/controlPlane/v1/project", "/api/mongodb-datastore/event",
                 "/api/resource-service/v1/project/{project}/stage/{stage}/service/{service}/resource"):
        assert path in document["paths"]
