"""What Keptn's own clients rely on (issue 18), on in-memory sinks: metadata without a git upstream,
merged slashes, `{code, message}` for every error, the secrets API (values write-only, a 0600 file),
creation dates as Unix nanoseconds, `fromTime` exclusive, and `deployedImage` from deployments."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tidegate.gateway import (
    Catalog,
    Gateway,
    MemoryEventSink,
    MemoryResourceSink,
    VersionedResourceStore,
    create_app,
)
from tidegate.readside.history import HistoryStore, SeenEvent
from tidegate.readside.history.deployments import deployed_image
from tidegate.readside.history.store import EventFilter
from tidegate.schemas.events import KeptnEvent
from tidegate.streams.secrets import (
    FileSecretStore,
    KubernetesSecretStore,
    SecretExists,
    SecretInvalid,
    SecretNotFound,
    lookup_secret,
    secret_store,
)

REPO = Path(__file__).resolve().parents[2]
SHIPYARD = (REPO / "examples" / "sockshop" / "shipyard.yaml").read_bytes()
TOKEN = "compat-token"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SECRET_VALUE = "value-that-must-never-come-back-4711"


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.store = VersionedResourceStore()
        self.history = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
        self.secrets = FileSecretStore(tmp_path / "home" / "secrets.json")
        self.gateway = Gateway(catalog=Catalog(self.store), events=MemoryEventSink(),
                               resources=MemoryResourceSink(self.store), history=self.history, clock=lambda: NOW,
                               secrets=self.secrets)
        self.client = TestClient(create_app(self.gateway, api_token=TOKEN), headers={"x-token": TOKEN},
                                 raise_server_exceptions=False)

    def project(self, name: str = "sockshop") -> None:
        answer = self.client.post("/api/controlPlane/v1/project", json={"name": name, "shipyard": b64(SHIPYARD)})
        assert answer.status_code == 201, answer.text
        answer = self.client.post(f"/api/controlPlane/v1/project/{name}/service", json={"serviceName": "carts"})
        assert answer.status_code == 201, answer.text


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    made = Env(tmp_path)
    yield made
    made.history.close()


def test_metadata_says_projects_need_no_git_upstream(env: Env) -> None:
    assert env.client.get("/api/v1/metadata").json()["automaticprovisioning"] is True
    # Keptn's CLI still sends git credentials when a user gives --git-* flags: accepted and ignored.
    answer = env.client.post("/api/controlPlane/v1/project", json={
        "name": "withgit", "shipyard": b64(SHIPYARD),
        "gitCredentials": {"remoteURL": "https://example.invalid/x.git", "user": "u", "token": "t"}})
    assert answer.status_code == 201, answer.text
    assert "token" not in env.client.get("/api/controlPlane/v1/project/withgit").text


def test_project_level_files_under_a_doubled_slash(env: Env) -> None:
    env.project()
    slo = (REPO / "examples" / "sockshop" / "slo.yaml").read_bytes()
    written = env.client.post("/api/resource-service/v1/project/sockshop//resource",
                              json={"resources": [{"resourceURI": "slo.yaml", "resourceContent": b64(slo)}]})
    assert written.status_code == 201, written.text
    read = env.client.get("/api/resource-service/v1/project/sockshop/resource/slo.yaml")
    assert base64.b64decode(read.json()["resourceContent"]) == slo


def test_every_error_answers_code_and_message(env: Env) -> None:
    unknown = env.client.get("/api/nothing/here")
    assert unknown.status_code == 404
    assert set(unknown.json()) == {"code", "message"} and "/api/nothing/here" in unknown.json()["message"]
    outside = env.client.get("/not-an-api")
    assert outside.json()["code"] == 404
    wrong_method = env.client.patch("/api/v1/auth")
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == 405
    invalid = env.client.post("/api/controlPlane/v1/project", json={"name": "x"})
    assert invalid.status_code == 400 and invalid.json()["code"] == 400 and invalid.json()["message"]


def test_an_unexpected_failure_answers_500_in_keptn_form(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError(f"internal detail {SECRET_VALUE}")

    monkeypatch.setattr(env.history, "events", broken)
    answer = env.client.get("/api/mongodb-datastore/event")
    assert answer.status_code == 500
    assert answer.json()["code"] == 500 and "RuntimeError" in answer.json()["message"]
    assert SECRET_VALUE not in answer.text


def test_creation_dates_are_unix_nanoseconds(env: Env) -> None:
    env.project()
    project = env.client.get("/api/controlPlane/v1/project/sockshop").json()
    expected = str(int(NOW.timestamp()) * 1_000_000_000)
    assert project["creationDate"] == expected
    services = project["stages"][0]["services"]
    assert services[0]["creationDate"] == expected
    one = env.client.get("/api/controlPlane/v1/project/sockshop/stage/dev/service/carts").json()
    assert one["creationDate"] == expected and int(one["creationDate"]) > 0


# --------------------------------------------------------------------- secrets


def test_secrets_api_never_returns_values(env: Env, tmp_path: Path) -> None:
    base = "/api/secrets/v1/secret"
    created = env.client.post(base, json={"name": "slack", "data": {"token": SECRET_VALUE, "url": "u"}})
    assert created.status_code == 201, created.text
    assert created.json() == {"name": "slack", "scope": "keptn-default", "keys": ["token", "url"]}
    again = env.client.post(base, json={"name": "slack", "data": {"token": "x"}})
    assert again.status_code == 409 and again.json()["code"] == 409
    listed = env.client.get(base)
    assert listed.json() == {"Secrets": [{"name": "slack", "scope": "keptn-default", "keys": ["token", "url"]}]}
    updated = env.client.put(base, json={"name": "slack", "scope": "keptn-default", "data": {"token": "new"}})
    assert updated.status_code == 200 and updated.json()["keys"] == ["token"]
    assert env.client.put(base, json={"name": "nope", "data": {"a": "b"}}).status_code == 404
    assert env.client.get("/api/secrets/v1/scope").json() == {"scopes": ["keptn-default"]}
    for answer in (created, listed, updated):
        assert SECRET_VALUE not in answer.text and "new" not in json.dumps(answer.json().get("keys"))
    assert lookup_secret("slack", "token", environ={}, store=env.secrets) == "new"

    # Only Tidegate's user may read the file; the folder it made is private too.
    path = tmp_path / "home" / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    deleted = env.client.delete(base, params={"name": "slack", "scope": "keptn-default"})
    assert deleted.status_code == 200
    assert env.client.delete(base, params={"name": "slack", "scope": "keptn-default"}).status_code == 404
    assert env.client.get(base).json() == {"Secrets": []}
    assert lookup_secret("slack", "token", environ={}, store=env.secrets) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Bad_Name", "data": {"a": "b"}}, "secret name"),
        ({"name": "ok", "scope": "Bad Scope", "data": {"a": "b"}}, "scope"),
        ({"name": "ok", "data": {}}, "no data"),
        ({"name": "ok", "data": {"bad key": "b"}}, "key"),
        ({"name": "ok", "data": {"a": "x" * (1024 * 1024 + 1)}}, "larger than"),
    ],
)
def test_secrets_are_checked_before_they_are_stored(env: Env, body: dict[str, Any], field: str) -> None:
    answer = env.client.post("/api/secrets/v1/secret", json=body)
    assert answer.status_code in (400, 413), answer.text
    if answer.status_code == 400:
        assert field in answer.json()["message"]
    assert env.secrets.list() == []


def test_lookup_prefers_the_store_then_the_environment(tmp_path: Path) -> None:
    store = FileSecretStore(tmp_path / "s.json")
    store.create("slack", "keptn-default", {"token": "from-store"})
    assert lookup_secret("slack", "token", environ={}, store=store) == "from-store"
    assert lookup_secret("slack", "token", environ={"TIDEGATE_SECRET_SLACK_TOKEN": "from-env"}, store=store) == "from-store"
    assert lookup_secret("slack", "other", environ={"TIDEGATE_SECRET_SLACK_OTHER": "from-env"}, store=store) == "from-env"
    assert lookup_secret("slack", "missing", environ={}, store=store) is None
    # Without a store given, the environment chooses it: TIDEGATE_HOME's secrets.json.
    home = {"TIDEGATE_HOME": str(tmp_path / "home")}
    FileSecretStore(tmp_path / "home" / "secrets.json").create("db", "keptn-default", {"password": "pw"})
    assert lookup_secret("db", "password", environ=home) == "pw"
    with pytest.raises(SecretExists):
        store.create("slack", "keptn-default", {"token": "x"})
    with pytest.raises(SecretNotFound):
        store.delete("slack", "other-scope")
    with pytest.raises(SecretInvalid):
        store.create("x", "keptn-default", {})


def test_the_backend_follows_where_tidegate_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tidegate.streams.secrets as secrets_module

    assert isinstance(secret_store({"TIDEGATE_HOME": str(tmp_path)}), FileSecretStore)
    # A pod without a service-account token cannot use the API: the file store serves it.
    monkeypatch.setattr(secrets_module, "_TOKEN_FILE", tmp_path / "no-token")
    assert isinstance(secret_store({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "TIDEGATE_HOME": str(tmp_path)}),
                      FileSecretStore)
    (tmp_path / "token").write_text("t")
    monkeypatch.setattr(secrets_module, "_TOKEN_FILE", tmp_path / "token")
    in_cluster = secret_store({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "TIDEGATE_SECRETS_NAMESPACE": "tidegate"})
    assert isinstance(in_cluster, KubernetesSecretStore) and in_cluster.namespace == "tidegate"
    forced = secret_store({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "TIDEGATE_SECRETS_BACKEND": "file",
                           "TIDEGATE_SECRETS_FILE": str(tmp_path / "x.json")})
    assert isinstance(forced, FileSecretStore) and forced.path == tmp_path / "x.json"


class _FakeCoreV1:
    """The four CoreV1Api calls the Kubernetes store makes, on a dict (status errors as the client raises)."""

    class ApiError(Exception):
        def __init__(self, status: int) -> None:
            super().__init__(f"({status})")
            self.status = status

    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, Any]] = {}

    def _obj(self, body: dict[str, Any]) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(metadata=SimpleNamespace(name=body["metadata"]["name"],
                                                        labels=body["metadata"]["labels"]), data=body["data"])

    def create_namespaced_secret(self, namespace: str, body: dict[str, Any]) -> None:
        if body["metadata"]["name"] in self.secrets:
            raise self.ApiError(409)
        self.secrets[body["metadata"]["name"]] = body

    def replace_namespaced_secret(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        self.secrets[name] = body

    def read_namespaced_secret(self, name: str, namespace: str) -> Any:
        if name not in self.secrets:
            raise self.ApiError(404)
        return self._obj(self.secrets[name])

    def delete_namespaced_secret(self, name: str, namespace: str) -> None:
        del self.secrets[name]

    def list_namespaced_secret(self, namespace: str, label_selector: str) -> Any:
        from types import SimpleNamespace

        wanted = dict(part.split("=") for part in label_selector.split(","))
        items = [self._obj(b) for b in self.secrets.values()
                 if all(b["metadata"]["labels"].get(k) == v for k, v in wanted.items())]
        return SimpleNamespace(items=items)


def test_kubernetes_store_keeps_secrets_as_labelled_secrets() -> None:
    core = _FakeCoreV1()
    store = KubernetesSecretStore("tidegate", core=core)
    store.create("slack", "keptn-webhook-service", {"token": SECRET_VALUE})
    body = core.secrets["slack"]
    assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "tidegate",
                                          "app.kubernetes.io/scope": "keptn-webhook-service"}
    assert base64.b64decode(body["data"]["token"]).decode() == SECRET_VALUE
    assert [(s.name, s.scope, s.keys) for s in store.list()] == [("slack", "keptn-webhook-service", ("token",))]
    assert store.data("slack", ["keptn-webhook-service"]) == {"token": SECRET_VALUE}
    assert store.data("slack", ["keptn-default", "sockshop"]) is None  # another scope: not there for them
    with pytest.raises(SecretExists):
        store.create("slack", "keptn-webhook-service", {"token": "x"})
    with pytest.raises(SecretNotFound):
        store.update("slack", "keptn-default", {"token": "x"})
    store.delete("slack", "keptn-webhook-service")
    assert store.list() == [] and store.data("slack", ["keptn-webhook-service"]) is None


# --------------------------------------------------------------------- the read side


def _event(type_: str, when: datetime, stage: str = "staging", context: str = "c1", **data: Any) -> KeptnEvent:
    extra = {k: data.pop(k) for k in ("id", "triggeredid") if k in data}
    return KeptnEvent(type=type_, shkeptncontext=context, time=when, source="test",
                      data={"project": "sockshop", "stage": stage, "service": "carts", **data}, **extra)


def test_from_time_is_exclusive_like_keptns_datastore(tmp_path: Path) -> None:
    history = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        first = _event("sh.keptn.event.staging.delivery.triggered", NOW)
        second = _event("sh.keptn.event.deployment.triggered", NOW + timedelta(seconds=1))
        history.ingest([SeenEvent(first), SeenEvent(second)])
        page = history.events(EventFilter(project="sockshop", from_time=NOW))
        assert [e["id"] for e in page.items] == [second.id]  # the event at fromTime is not repeated
        assert history.events(EventFilter(project="sockshop", from_time=second.time)).items == []
    finally:
        history.close()


def _deployment(history: HistoryStore, when: datetime, image: str, result: str, stage: str = "staging") -> None:
    """A delivery of `image` (its own keptnContext, named after the image) deploying to `stage`."""
    triggered = _event("sh.keptn.event.deployment.triggered", when, stage, image,
                       configurationChange={"values": {"image": image}})
    finished = _event("sh.keptn.event.deployment.finished", when + timedelta(seconds=5), stage, image,
                      triggeredid=triggered.id, result=result, status="succeeded" if result != "fail" else "errored")
    history.ingest([SeenEvent(triggered), SeenEvent(finished)])


def test_deployed_image_comes_from_successful_deployments_and_rollbacks(tmp_path: Path) -> None:
    history = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
    try:
        assert history.deployed_image("sockshop", "staging", "carts") is None
        _deployment(history, NOW, "carts:0.11.1", "pass")
        assert history.deployed_image("sockshop", "staging", "carts") == "carts:0.11.1"
        # 0.11.2 deploys, its quality gate fails, its rollback returns the stage to 0.11.1.
        _deployment(history, NOW + timedelta(minutes=1), "carts:0.11.2", "pass")
        assert history.deployed_image("sockshop", "staging", "carts") == "carts:0.11.2"
        history.ingest([SeenEvent(_event("sh.keptn.event.rollback.finished", NOW + timedelta(minutes=2),
                                         context="carts:0.11.2", result="pass", status="succeeded"))])
        assert history.deployed_image("sockshop", "staging", "carts") == "carts:0.11.1"
        # A declined delivery that never deployed here, and the rollback after it, change nothing.
        history.ingest([SeenEvent(_event("sh.keptn.event.rollback.finished", NOW + timedelta(minutes=2, seconds=30),
                                         context="declined", result="pass", status="succeeded"))])
        assert history.deployed_image("sockshop", "staging", "carts") == "carts:0.11.1"
        # A failed deployment changes nothing; a declined delivery never deploys at all.
        _deployment(history, NOW + timedelta(minutes=3), "carts:0.12.0", "fail")
        history.ingest([SeenEvent(_event("sh.keptn.event.staging.delivery.triggered", NOW + timedelta(minutes=4),
                                         configurationChange={"values": {"image": "carts:9"}}))])
        assert history.deployed_image("sockshop", "staging", "carts") == "carts:0.11.1"
        assert history.deployed_image("sockshop", "production", "carts") is None
    finally:
        history.close()


def test_deployed_image_rule_on_its_own() -> None:
    triggered = {"t1": {"configurationChange": {"values": {"image": "a:1"}}},
                 "t2": {"configurationChange": {"values": {"image": "a:2"}}}}
    changes = [
        {"type": "sh.keptn.event.deployment.finished", "shkeptncontext": "c1", "triggeredid": "t1",
         "data": {"result": "pass"}},
        {"type": "sh.keptn.event.deployment.finished", "shkeptncontext": "c2", "triggeredid": "t2",
         "data": {"result": "warning"}},
        {"type": "sh.keptn.event.rollback.finished", "shkeptncontext": "c2", "data": {"result": "fail", "status": "errored"}},
    ]
    assert deployed_image(changes, triggered.get) == "a:2"  # a failed rollback undoes nothing
    changes.append({"type": "sh.keptn.event.rollback.finished", "shkeptncontext": "c3", "data": {"result": "pass"}})
    assert deployed_image(changes, triggered.get) == "a:2"  # another delivery's rollback neither
    changes.append({"type": "sh.keptn.event.rollback.finished", "shkeptncontext": "c2", "data": {"result": "pass"}})
    assert deployed_image(changes, triggered.get) == "a:1"
