"""The Prometheus SLI connector without Kafka: which requests it takes, which files and which Prometheus
it uses, what it answers, and that credentials only ever come from the environment."""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tidegate.connectors.prometheus.connector import (
    URL_ENV,
    ConfigProblem,
    PrometheusSLIConnector,
    TargetFile,
    parse_target_file,
    target_for,
)
from tidegate.connectors.runtime import Connector, TaskContext
from tidegate.connectors.runtime.catalog import BuildRequest, build
from tidegate.schemas.events import KeptnEvent, Result, Status, task_type
from tidegate.streams.resources import Resource, ResourceStore
from tidegate.streams.settings import Settings

PROJECT, STAGE, SERVICE = "sockshop", "staging", "carts"
SECRET = "s3cr3t-token-value"


def request_event(indicators: list[str], provider: str = "prometheus", **extra: Any) -> KeptnEvent:
    return KeptnEvent(
        id=str(uuid.uuid4()),
        type=task_type("get-sli", "triggered"),
        source="tidegate-evaluator",
        shkeptncontext=str(uuid.uuid4()),
        data={
            "project": PROJECT, "stage": STAGE, "service": SERVICE,
            "get-sli": {"sliProvider": provider, "start": "2024-05-01T11:55:00.000Z", "end": "2024-05-01T12:00:00.000Z",
                        "indicators": indicators, "customFilters": []},
            **extra,
        },
    )


class FakePrometheus:
    """Answers every query with `value`, except the ones in `empty`; records queries and headers."""

    def __init__(self, value: str = "0.25", empty: tuple[str, ...] = ()) -> None:
        self.value = value
        self.empty = empty
        self.queries: list[str] = []
        self.hosts: list[str] = []
        self.authorization: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.content.decode())["query"][0]
        self.queries.append(query)
        self.hosts.append(request.url.host)
        self.authorization.append(request.headers.get("Authorization"))
        result = [] if any(word in query for word in self.empty) else [{"metric": {}, "value": [0, self.value]}]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": result}})


def files(store: ResourceStore, path: str, content: str, stage: str = "", service: str = "") -> None:
    store.put(Resource.new(PROJECT, path, content.encode(), stage=stage, service=service))


async def run(store: ResourceStore, event: KeptnEvent, env: dict[str, str], fake: FakePrometheus) -> Any:
    connector = PrometheusSLIConnector(env, transport=httpx.MockTransport(fake), client_options={"backoff": 0})
    ctx = TaskContext(event=event, task="get-sli", connector=connector.name, resources=store,
                      settings=Settings(), timeout=30)
    return await connector.run(ctx)


# --- which requests --------------------------------------------------------------------------------


def test_it_is_a_runtime_connector_in_the_catalog_for_get_sli() -> None:
    connector = build("prometheus", BuildRequest(resources=ResourceStore(), settings=Settings()))
    assert isinstance(connector, Connector)
    assert (connector.name, list(connector.tasks)) == ("prometheus", ["get-sli"])


@pytest.mark.parametrize(("provider", "wanted"), [("prometheus", True), (" Prometheus ", True),
                                                  ("dynatrace", False), ("", False)])
def test_it_takes_only_requests_for_the_prometheus_provider(provider: str, wanted: bool) -> None:
    assert PrometheusSLIConnector({}).wants(request_event(["throughput"], provider)) is wanted


def test_a_malformed_request_for_prometheus_is_taken_and_reported() -> None:
    event = request_event(["throughput"])
    event.data["labels"] = ["not", "a", "map"]
    assert PrometheusSLIConnector({}).wants(event)


async def test_a_malformed_request_is_answered_errored() -> None:
    event = request_event(["throughput"])
    event.data["labels"] = ["not", "a", "map"]
    outcome = await run(ResourceStore(), event, {URL_ENV: "http://prometheus.test"}, FakePrometheus())
    assert outcome.status is Status.ERRORED
    assert "get-sli.triggered event cannot be used" in outcome.message and "labels" in outcome.message


# --- the answer --------------------------------------------------------------------------------------


async def test_queries_merge_project_stage_and_service_files_and_the_answer_carries_every_value() -> None:
    store = ResourceStore()
    files(store, "prometheus/sli.yaml", "indicators:\n  throughput: project_throughput\n  error_rate: project_errors\n")
    files(store, "prometheus/sli.yaml", "indicators:\n  error_rate: stage_errors{stage='$STAGE'}\n", stage=STAGE)
    files(store, "prometheus/sli.yaml", "indicators:\n  throughput: service_throughput{svc='$SERVICE'}\n",
          stage=STAGE, service=SERVICE)
    files(store, "prometheus/sli.yaml", "indicators:\n  throughput: other_service\n", stage=STAGE, service="orders")
    fake = FakePrometheus("0.25")

    outcome = await run(store, request_event(["throughput", "error_rate"]), {URL_ENV: "http://prometheus.test"}, fake)

    assert sorted(fake.queries) == ["service_throughput{svc='carts'}", "stage_errors{stage='staging'}"]
    assert (outcome.status, outcome.result, outcome.message) == (Status.SUCCEEDED, Result.PASS, "")
    assert outcome.data == {
        "get-sli": {
            "start": "2024-05-01T11:55:00.000Z",
            "end": "2024-05-01T12:00:00.000Z",
            "indicatorValues": [
                {"metric": "throughput", "value": 0.25, "success": True, "message": ""},
                {"metric": "error_rate", "value": 0.25, "success": True, "message": ""},
            ],
        }
    }


async def test_some_values_missing_is_a_warning_all_missing_a_failure() -> None:
    store = ResourceStore()
    files(store, "prometheus/sli.yaml", "indicators:\n  throughput: tp\n  error_rate: errs\n")
    env = {URL_ENV: "http://prometheus.test"}
    some = await run(store, request_event(["throughput", "error_rate"]), env, FakePrometheus(empty=("errs",)))
    assert (some.status, some.result) == (Status.SUCCEEDED, Result.WARNING)
    values = some.data["get-sli"]["indicatorValues"]
    assert [v["success"] for v in values] == [True, False]
    assert "errs" in values[1]["message"]

    none = await run(store, request_event(["throughput", "error_rate"]), env, FakePrometheus(empty=("tp", "errs")))
    assert (none.status, none.result) == (Status.SUCCEEDED, Result.FAIL)
    assert none.message.startswith("unable to retrieve metrics")


async def test_a_broken_sli_file_is_errored_naming_its_level() -> None:
    store = ResourceStore()
    files(store, "prometheus/sli.yaml", "indicators: [throughput\n", stage=STAGE)
    fake = FakePrometheus()
    outcome = await run(store, request_event(["throughput"]), {URL_ENV: "http://prometheus.test"}, fake)
    assert outcome.status is Status.ERRORED
    assert "sockshop/staging/prometheus/sli.yaml" in outcome.message
    assert fake.queries == []


async def test_without_any_prometheus_the_request_is_errored_saying_what_to_set() -> None:
    outcome = await run(ResourceStore(), request_event(["throughput"]), {}, FakePrometheus())
    assert outcome.status is Status.ERRORED
    assert URL_ENV in outcome.message and ".tidegate/prometheus.yaml" in outcome.message


# --- which Prometheus, which credentials ---------------------------------------------------------------


async def test_a_projects_own_prometheus_gets_only_the_credentials_its_file_names() -> None:
    store = ResourceStore()
    files(store, ".tidegate/prometheus.yaml", "url: http://team-a.test:9090\ntokenEnv: TEAM_A_TOKEN\n")
    env = {URL_ENV: "http://default.test", "PROMETHEUS_TOKEN": "default-token", "TEAM_A_TOKEN": SECRET}
    fake = FakePrometheus()
    outcome = await run(store, request_event(["throughput"]), env, fake)
    assert outcome.result is Result.PASS
    assert fake.hosts == ["team-a.test"]
    assert fake.authorization == [f"Bearer {SECRET}"]


def test_a_projects_url_without_credentials_never_gets_the_default_ones() -> None:
    env = {URL_ENV: "http://default.test", "PROMETHEUS_TOKEN": "default-token"}
    target = target_for(TargetFile(url="http://team-b.test"), "sockshop/.tidegate/prometheus.yaml", env)
    assert (target.url, target.auth) == ("http://team-b.test", None)


def test_credentials_alone_in_the_file_apply_to_the_default_prometheus() -> None:
    env = {URL_ENV: "http://default.test", "PROM_USER": "reader", "PROM_PASSWORD": SECRET}
    target = target_for(TargetFile(userEnv="PROM_USER", passwordEnv="PROM_PASSWORD"), "f", env)
    assert target.url == "http://default.test"
    assert isinstance(target.auth, httpx.BasicAuth)
    expected = "Basic " + base64.b64encode(f"reader:{SECRET}".encode()).decode()
    assert next(target.auth.auth_flow(httpx.Request("GET", target.url))).headers["Authorization"] == expected


def test_the_default_prometheus_uses_the_default_credentials_and_keptns_variable_name() -> None:
    target = target_for(None, URL_ENV, {"PROMETHEUS_URL": "http://keptn-style.test", "PROMETHEUS_TOKEN": SECRET})
    assert target.url == "http://keptn-style.test"
    assert target.auth is not None and SECRET not in repr(target)


async def test_a_named_variable_that_is_not_set_is_errored_naming_it() -> None:
    store = ResourceStore()
    files(store, ".tidegate/prometheus.yaml", "url: http://team-a.test\ntokenEnv: TEAM_A_TOKEN\n")
    outcome = await run(store, request_event(["throughput"]), {}, FakePrometheus())
    assert outcome.status is Status.ERRORED
    assert "TEAM_A_TOKEN" in outcome.message and "sockshop/.tidegate/prometheus.yaml" in outcome.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("url: http://user:pw@prometheus.test\n", "must not carry credentials"),
        ("url: prometheus.test\n", "is not an http(s) URL"),
        ("url: http://p.test\ntoken: abc\n", "token: Extra inputs are not permitted"),
        ("tokenEnv: A\nuserEnv: B\npasswordEnv: C\n", "either tokenEnv or userEnv"),
        ("userEnv: B\n", "needs both userEnv and passwordEnv"),
        ("url: [http://p.test\n", "not valid YAML"),
    ],
)
def test_unusable_target_files_are_rejected_saying_why(text: str, expected: str) -> None:
    with pytest.raises(ConfigProblem) as caught:
        parse_target_file(text, "sockshop/.tidegate/prometheus.yaml")
    assert expected in str(caught.value)
    assert str(caught.value).startswith("sockshop/.tidegate/prometheus.yaml")


def test_an_alias_bomb_in_a_target_file_is_refused_at_the_yaml_limits() -> None:
    levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    with pytest.raises(ConfigProblem) as caught:
        parse_target_file("\n".join(levels) + "\nurl: http://p.test\n", "sockshop/.tidegate/prometheus.yaml")
    assert "not valid YAML" in str(caught.value)
    assert "20" in str(caught.value)  # names the limit on values


async def test_secrets_never_reach_the_answer() -> None:
    store = ResourceStore()
    files(store, ".tidegate/prometheus.yaml", "url: http://team-a.test\ntokenEnv: TEAM_A_TOKEN\n")

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text="unauthorized")

    connector = PrometheusSLIConnector({"TEAM_A_TOKEN": SECRET}, transport=httpx.MockTransport(refuse),
                                       client_options={"backoff": 0})
    ctx = TaskContext(event=request_event(["throughput"]), task="get-sli", connector="prometheus", resources=store,
                      settings=Settings(), timeout=30)
    outcome = await connector.run(ctx)
    assert outcome.result is Result.FAIL
    assert "401" in outcome.message
    assert SECRET not in repr(outcome)
