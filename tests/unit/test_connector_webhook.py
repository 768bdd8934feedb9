"""Webhook templates, secrets, filters, curl requests and retries, without Kafka."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import yaml

from tidegate.connectors.runtime import TaskContext
from tidegate.connectors.webhook import (
    ALLOW_VARIABLE,
    CONFIG_PATH,
    WEBHOOK_SCOPE,
    AddressPolicy,
    HttpSender,
    PlannedCall,
    TemplateProblem,
    WebhookCallError,
    WebhookConnector,
    WebhookProblem,
    matching,
    parse_curl,
    plan_calls,
    render,
    secret_variable,
    to_jinja,
)
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.webhook import WebhookConfig
from tidegate.streams.resources import Resource, ResourceStore
from tidegate.streams.secrets import FileSecretStore, SecretReader, task_scopes
from tidegate.streams.settings import Settings


def env_only(**variables: str) -> SecretReader:
    """The secrets of a connector without a secret store: its TIDEGATE_SECRET_* variables."""
    return SecretReader(environ=variables)

EVENT = KeptnEvent(id="e1", type="sh.keptn.event.evaluation.finished", shkeptncontext="ctx-1", data={
    "project": "sockshop", "stage": "production", "service": "carts", "result": "fail",
    "evaluation": {"score": 42.5}, "get-sli": {"provider": "prometheus"}})


def config(*webhooks: dict[str, object], version: str = "v1beta1") -> WebhookConfig:
    return WebhookConfig.model_validate(yaml.safe_load(yaml.safe_dump({
        "apiVersion": f"webhookconfig.keptn.sh/{version}", "kind": "WebhookConfig",
        "spec": {"webhooks": list(webhooks)}})))


def hook(**extra: object) -> dict[str, object]:
    return {"type": "sh.keptn.event.evaluation.finished", "subscriptionID": "s1",
            "requests": [{"url": "http://hooks.local/{{.env.token}}", "method": "POST",
                          "headers": [{"key": "Authorization", "value": "Bearer {{.env.token}}"}],
                          "payload": '{"text": "{{.data.project}}/{{.data.stage}}: {{.data.evaluation.score}} ({{.shkeptncontext}})"}'}],
            "envFrom": [{"name": "token", "secretRef": {"name": "slack", "key": "token"}}], **extra}


def test_keptn_references_become_jinja_and_render() -> None:
    assert to_jinja("{{.data.project}} {{ .id }} {{.data.get-sli.provider}}") == (
        "{{ data.project }} {{ id }} {{ data['get-sli'].provider }}")
    assert render("{{.data.evaluation.score}} {{ data.result | upper }}", EVENT.to_json_dict()) == "42.5 FAIL"


def test_missing_fields_go_actions_and_escapes_are_refused() -> None:
    with pytest.raises(TemplateProblem, match="no such field"):
        render("{{.data.nothing}}", EVENT.to_json_dict())
    with pytest.raises(TemplateProblem, match="not supported"):
        render("{{if .data.result}}x{{end}}", EVENT.to_json_dict())
    with pytest.raises(TemplateProblem):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", EVENT.to_json_dict())


def test_secrets_come_from_the_environment_and_are_masked() -> None:
    assert secret_variable("slack", "token") == "TIDEGATE_SECRET_SLACK_TOKEN"
    [webhook] = config(hook()).spec.webhooks
    [call] = plan_calls(webhook, EVENT, env_only(TIDEGATE_SECRET_SLACK_TOKEN="xoxb-1"))
    assert call.url == "http://hooks.local/xoxb-1"
    assert call.headers == {"Authorization": "Bearer xoxb-1"}
    assert call.body == '{"text": "sockshop/production: 42.5 (ctx-1)"}'
    assert call.masked(call.url) == "http://hooks.local/***"
    with pytest.raises(WebhookProblem, match=r"webhook s1: \{\{\.env\.token\}\}: the secret 'slack' with key 'token' is "
                                             "neither in the connector's environment variable TIDEGATE_SECRET_SLACK_TOKEN"):
        plan_calls(webhook, EVENT, env_only())


def test_type_wildcards_and_filters_choose_the_webhooks() -> None:
    cfg = config(
        hook(subscriptionID="failed-prod", type="sh.keptn.event.*.finished",
             filter={"stages": ["production"], "results": ["fail"]}),
        hook(subscriptionID="dev-only", filter={"stages": ["dev"]}),
        hook(subscriptionID="other-type", type="sh.keptn.event.deployment.finished"),
    )
    assert [w.subscriptionID for w in matching(cfg, EVENT)] == ["failed-prod"]
    passed = EVENT.model_copy(update={"data": {**EVENT.data, "result": "pass"}})
    assert matching(cfg, passed) == []


def test_curl_requests_are_split_not_run() -> None:
    request = parse_curl("curl -X PUT -H 'Content-Type: application/json' --data '{\"a\": 1}' https://x.test/p")
    assert (request.method, request.url, request.payload) == ("PUT", "https://x.test/p", '{"a": 1}')
    assert [(h.key, h.value) for h in request.headers] == [("Content-Type", "application/json")]
    with pytest.raises(WebhookProblem, match="not supported"):
        parse_curl("curl --upload-file /etc/passwd https://x.test")
    with pytest.raises(WebhookProblem, match="must be a curl command"):
        parse_curl("wget https://x.test")
    [webhook] = config({"type": "sh.keptn.event.evaluation.finished", "subscriptionID": "c",
                        "requests": ["curl -d '{{.data.result}}' http://r.local/{{.data.service}}"]},
                       version="v1alpha1").spec.webhooks
    [call] = plan_calls(webhook, EVENT, env_only())
    assert (call.method, call.url, call.body) == ("POST", "http://r.local/carts", "fail")


async def public(host: str, port: int) -> list[str]:
    """A resolver that answers a public address (never contacted: the tests use MockTransport)."""
    return ["93.184.215.14"]


async def test_retries_on_5xx_then_gives_up_with_the_status_alone() -> None:
    answers = iter([503, 502, 200])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(answers), text="busy")

    sender = HttpSender(transport=httpx.MockTransport(handler), attempts=3, backoff=0.01, resolver=public)
    result = await sender.send(PlannedCall("POST", "https://x.test/a", {"Host": "evil.test"}, "{}"))
    assert result.status_code == 200
    # The connection goes to the checked address; the name stays in Host and in the TLS server name.
    assert {(r.url.host, r.headers["Host"], r.extensions["sni_hostname"]) for r in seen} == {
        ("93.184.215.14", "x.test", "x.test")}
    always = HttpSender(transport=httpx.MockTransport(
        lambda r: httpx.Response(503, text="down, password=hunter2 s3cret")), attempts=2, backoff=0.01, resolver=public)
    with pytest.raises(WebhookCallError) as failed:
        await always.send(PlannedCall("POST", "http://x.test/a", {}, "{}", secrets=("s3cret",)))
    assert str(failed.value) == "POST http://x.test/a answered HTTP 503 after 2 tries"
    refused = HttpSender(transport=httpx.MockTransport(lambda r: httpx.Response(404, text="hunter2")), attempts=3,
                         backoff=0.01, resolver=public)
    with pytest.raises(WebhookCallError, match=r"HTTP 404$"):
        await refused.send(PlannedCall("GET", "http://x.test/a", {}, ""))


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254", "0.0.0.0",
    "::1", "fd00::1", "fe80::1", "::", "::ffff:127.0.0.1", "224.0.0.1",
])
async def test_non_public_addresses_are_refused_after_resolution(address: str) -> None:
    calls: list[httpx.Request] = []

    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", address]  # one bad answer is enough to refuse

    sender = HttpSender(transport=httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200)),
                        attempts=1, resolver=resolver)
    with pytest.raises(WebhookCallError, match=rf"refused: .*is a [a-z-]+ address.*{ALLOW_VARIABLE}"):
        await sender.send(PlannedCall("GET", "http://hooks.test/a", {}, ""))
    with pytest.raises(WebhookCallError, match="refused"):
        await sender.send(PlannedCall("GET", f"http://{'[' + address + ']' if ':' in address else address}/a", {}, ""))
    assert calls == []


async def test_the_allow_list_names_hosts_addresses_and_networks() -> None:
    async def internal(host: str, port: int) -> list[str]:
        return ["10.20.30.40"]

    policy = AddressPolicy.of(["hooks.internal", "10.20.0.0/16", "127.0.0.1"])
    assert policy.refusal("hooks.internal", "10.9.9.9") is None
    assert policy.refusal("other", "10.20.1.1") is None
    assert policy.refusal("127.0.0.1", "127.0.0.1") is None
    assert policy.refusal("other", "127.0.0.2") is not None
    assert policy.refusal("other", "8.8.8.8") is None
    with pytest.raises(ValueError, match="neither a host name"):
        AddressPolicy.of(["10.0.0.0/99"])
    ok = HttpSender(transport=httpx.MockTransport(lambda r: httpx.Response(204)), attempts=1, resolver=internal,
                    allow=["10.20.0.0/16"])
    assert (await ok.send(PlannedCall("GET", "http://svc.cluster.test/a", {}, ""))).status_code == 204


def test_a_curl_line_is_split_before_it_is_rendered() -> None:
    attack = "x' http://127.0.0.1:9/steal -d 'y"
    event = EVENT.model_copy(update={"data": {**EVENT.data, "labels": {"note": attack}}})
    [webhook] = config({"type": "sh.keptn.event.evaluation.finished", "subscriptionID": "c",
                        "envFrom": [{"name": "token", "secretRef": {"name": "hook", "key": "token"}}],
                        "requests": ["curl -X POST -H 'Authorization: Bearer {{.env.token}}' "
                                     "https://hooks.test/{{ data.service }} -d '{\"note\": \"{{.data.labels.note}}\"}'"]},
                       version="v1alpha1").spec.webhooks
    [call] = plan_calls(webhook, event, env_only(TIDEGATE_SECRET_HOOK_TOKEN="tok-1"))
    assert call.url == "https://hooks.test/carts"
    assert call.body == '{"note": "' + attack + '"}'
    assert call.headers == {"Authorization": "Bearer tok-1"}
    [header] = config({"type": "sh.keptn.event.evaluation.finished", "subscriptionID": "h",
                       "requests": [{"url": "https://hooks.test/", "method": "GET",
                                     "headers": [{"key": "X-Note", "value": "{{.data.labels.note}}"}]}]}).spec.webhooks
    split = event.model_copy(update={"data": {**event.data, "labels": {"note": "a\r\nX-Evil: 1"}}})
    with pytest.raises(WebhookProblem, match="header X-Note would hold a line break"):
        plan_calls(header, split, env_only())


def test_event_values_in_a_url_are_encoded_and_cannot_choose_the_host() -> None:
    event = EVENT.model_copy(update={"data": {**EVENT.data, "service": "a/../b?c#d@evil.test:1"}})
    [webhook] = config({"type": "sh.keptn.event.evaluation.finished", "subscriptionID": "u",
                        "requests": [{"url": "https://hooks.test/s/{{.data.service}}?p={{.data.project}}",
                                      "method": "GET"}]}).spec.webhooks
    [call] = plan_calls(webhook, event, env_only())
    assert call.url == "https://hooks.test/s/a%2F..%2Fb%3Fc%23d%40evil.test%3A1?p=sockshop"
    for url in ("https://{{.data.service}}/x", "{{.data.project}}", "https://hooks.test:{{.data.project}}/",
                "http{{.data.project}}://hooks.test/"):
        [hooked] = config({"type": "sh.keptn.event.evaluation.finished", "subscriptionID": "h",
                           "requests": [{"url": url, "method": "GET"}]}).spec.webhooks
        with pytest.raises(WebhookProblem, match=r"scheme, host and port|is not http\(s\)"):
            plan_calls(hooked, EVENT, env_only())


@pytest.mark.parametrize("template", [
    '{{ "a" * 10**10 }}', '{{ 10 ** 100000 }}', '{{ "a" | center(10**9) }}', '{{ "a".ljust(10**9) }}',
    '{{ "%999999999s" % "a" }}', '{{ "{:999999999}".format(1) }}', '{% for i in range(10**9) %}{% endfor %}',
    '{% for i in range(100000) %}{{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" }}{% endfor %}',
    '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}',
])
def test_template_bombs_are_refused_with_a_clear_error(template: str) -> None:
    with pytest.raises(TemplateProblem, match=r"refused|more than"):
        render(template, EVENT.to_json_dict(), "payload")
    assert render('{{ "ab" * 3 }} {{ 2 ** 10 }} {{ "%5s" % "x" }} {{ "-" | center(5) }}', {}) == "ababab 1024     x   -  "
    # The budget of range() is per rendering.
    assert render("{% for i in range(3) %}{% for j in range(2) %}.{% endfor %}{% endfor %}", {}) == "......"
    for _ in range(2):
        assert render("{% for i in range(99999) %}{% endfor %}ok", {}) == "ok"


def test_envfrom_reads_the_secret_store_first_in_the_projects_scopes_only(tmp_path: Path) -> None:
    store = FileSecretStore(tmp_path / "secrets.json")
    store.create("slack", "sockshop", {"token": "xoxb-from-store"})
    [webhook] = config(hook()).spec.webhooks
    environ = {"TIDEGATE_SECRET_SLACK_TOKEN": "xoxb-from-env"}
    [call] = plan_calls(webhook, EVENT, SecretReader(task_scopes("sockshop", WEBHOOK_SCOPE), environ, store))
    assert call.headers == {"Authorization": "Bearer xoxb-from-store"}
    assert call.masked(call.url) == "http://hooks.local/***"
    # Another project's webhook naming the same secret does not get sockshop's value (nor says it).
    with pytest.raises(WebhookProblem) as refused:
        plan_calls(webhook, EVENT, SecretReader(task_scopes("bank", WEBHOOK_SCOPE), {}, store))
    assert "the secret 'slack' with key 'token' is neither in the secret store (scopes keptn-default, " \
           "keptn-webhook-service, bank)" in str(refused.value)
    assert "xoxb" not in str(refused.value)
    # Secrets of Keptn's webhook scope serve every project's webhooks, as Keptn's webhook-service read them.
    store.create("teams", WEBHOOK_SCOPE, {"token": "teams-1"})
    teams = config(hook(envFrom=[{"name": "token", "secretRef": {"name": "teams", "key": "token"}}])).spec.webhooks[0]
    [call] = plan_calls(teams, EVENT, SecretReader(task_scopes("bank", WEBHOOK_SCOPE), {}, store))
    assert call.headers == {"Authorization": "Bearer teams-1"}


async def test_a_webhook_task_with_a_missing_secret_ends_errored_naming_it(tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every line a connector could write, httpx's request lines too
    store = FileSecretStore(tmp_path / "secrets.json")
    store.create("slack", "other-project", {"token": "xoxb-not-yours"})
    resources = ResourceStore()
    resources.put(Resource.new("sockshop", CONFIG_PATH, yaml.safe_dump({
        "apiVersion": "webhookconfig.keptn.sh/v1beta1", "kind": "WebhookConfig",
        "spec": {"webhooks": [hook(type="sh.keptn.event.release.triggered")]}}).encode()))
    sent: list[httpx.Request] = []
    connector = WebhookConnector(resources, tasks=["release"], environ={}, secrets=store, sender=HttpSender(
        transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)), resolver=public))
    event = KeptnEvent(type="sh.keptn.event.release.triggered", shkeptncontext="c",
                       data={"project": "sockshop", "stage": "production", "service": "carts",
                             "evaluation": {"score": 90}})
    outcome = await connector.run(TaskContext(event=event, task="release", connector="webhook", resources=resources,
                                              settings=Settings(), timeout=30))
    assert outcome.status.value == "errored"
    assert "the secret 'slack' with key 'token'" in outcome.message and "TIDEGATE_SECRET_SLACK_TOKEN" in outcome.message
    assert "xoxb" not in outcome.message and "xoxb" not in caplog.text
    assert sent == []
    # Created in the project's scope, the same task calls with it.
    store.delete("slack", "other-project")
    store.create("slack", "sockshop", {"token": "xoxb-yours"})
    outcome = await connector.run(TaskContext(event=event, task="release", connector="webhook", resources=resources,
                                              settings=Settings(), timeout=30))
    assert outcome.status.value == "succeeded", outcome.message
    assert [r.headers["Authorization"] for r in sent] == ["Bearer xoxb-yours"]
    assert "xoxb" not in outcome.message and "xoxb" not in caplog.text
