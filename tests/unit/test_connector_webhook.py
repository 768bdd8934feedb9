"""Webhook templates, secrets, filters, curl requests and retries, without Kafka."""

from __future__ import annotations

import httpx
import pytest
import yaml

from tidegate.connectors.webhook import (
    HttpSender,
    PlannedCall,
    TemplateProblem,
    WebhookCallError,
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
    [call] = plan_calls(webhook, EVENT, {"TIDEGATE_SECRET_SLACK_TOKEN": "xoxb-1"})
    assert call.url == "http://hooks.local/xoxb-1"
    assert call.headers == {"Authorization": "Bearer xoxb-1"}
    assert call.body == '{"text": "sockshop/production: 42.5 (ctx-1)"}'
    assert call.masked(call.url) == "http://hooks.local/***"
    with pytest.raises(WebhookProblem, match="TIDEGATE_SECRET_SLACK_TOKEN, which is not set"):
        plan_calls(webhook, EVENT, {})


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
    [call] = plan_calls(webhook, EVENT, {})
    assert (call.method, call.url, call.body) == ("POST", "http://r.local/carts", "fail")


async def test_retries_on_5xx_then_gives_up_with_the_answer() -> None:
    answers = iter([503, 502, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), text="busy")

    sender = HttpSender(transport=httpx.MockTransport(handler), attempts=3, backoff=0.01)
    result = await sender.send(PlannedCall("POST", "http://x.test/a", {}, "{}"))
    assert result.status_code == 200
    always = HttpSender(transport=httpx.MockTransport(lambda r: httpx.Response(503, text="down s3cret")),
                        attempts=2, backoff=0.01)
    with pytest.raises(WebhookCallError, match=r"HTTP 503 after 2 tries: down \*\*\*"):
        await always.send(PlannedCall("POST", "http://x.test/a", {}, "{}", secrets=("s3cret",)))
    refused = HttpSender(transport=httpx.MockTransport(lambda r: httpx.Response(404)), attempts=3, backoff=0.01)
    with pytest.raises(WebhookCallError, match="HTTP 404"):
        await refused.send(PlannedCall("GET", "http://x.test/a", {}, ""))
