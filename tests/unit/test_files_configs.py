"""SLI files, load-test configurations, job-executor configurations and webhook configurations."""

from __future__ import annotations

from textwrap import dedent

import pytest

from tidegate.schemas.errors import FileValidationError
from tidegate.schemas.files import FileKind, load_text
from tidegate.schemas.jobconfig import JobConfig
from tidegate.schemas.sli import SLI
from tidegate.schemas.testconfigs import DEFAULT_JMETER_WORKLOADS, JMeterConfig, LocustConfig
from tidegate.schemas.webhook import WebhookConfig, WebhookRequest


def errors_of(text: str, path: str, kind: str | None = None) -> list[str]:
    with pytest.raises(FileValidationError) as caught:
        load_text(text, path, kind)
    return [str(p) for p in caught.value.problems]


# -- SLI ------------------------------------------------------------------------------------------


def test_an_sli_file_maps_indicator_names_to_queries() -> None:
    text = 'spec_version: "1.0"\nindicators:\n  throughput: sum(rate(http_requests_total{job="$SERVICE"}[$DURATION_SECONDS]))\n'
    sli = load_text(text, "sli.yaml").expect(SLI)
    assert sli.spec_version == "1.0"
    assert sli.query("throughput") == 'sum(rate(http_requests_total{job="$SERVICE"}[$DURATION_SECONDS]))'
    assert sli.query("error_rate") is None


def test_spec_version_is_optional_and_an_unquoted_number_is_read_as_text() -> None:
    assert load_text("indicators:\n  a: up\n", "sli.yaml").expect(SLI).spec_version is None
    assert load_text("spec_version: 1.0\nindicators:\n  a: up\n", "sli.yaml").expect(SLI).spec_version == "1.0"


def test_an_sli_file_without_indicators_is_rejected() -> None:
    assert errors_of('spec_version: "1.0"\n', "sli.yaml") == ["sli.yaml:1: indicators: missing required field"]
    assert errors_of('spec_version: "1.0"\nindicators:\n', "sli.yaml") == [
        "sli.yaml:2: indicators: missing required field: no indicators are defined; add `<name>: <query>` lines"
    ]


def test_an_indicator_without_a_query_is_pointed_at() -> None:
    assert errors_of("indicators:\n  a: up\n  b:\n", "sli.yaml") == [
        "sli.yaml:3: indicators.b: expected text, got nothing (the value is empty)"
    ]


def test_more_specific_sli_files_override_queries() -> None:
    project = SLI(indicators={"a": "project-a", "b": "project-b"})
    service = SLI(indicators={"b": "service-b"})
    assert project.merged_with(service).indicators == {"a": "project-a", "b": "service-b"}


# -- JMeter and Locust ----------------------------------------------------------------------------

JMETER = dedent("""\
    ---
    spec_version: '0.1.0'
    workloads:
      - teststrategy: performance
        vuser: 30
        loopcount: 150
        script: jmeter/load.jmx
        acceptederrorrate: 1.0
    """)


def test_jmeter_workloads_fall_back_to_keptns_defaults() -> None:
    config = load_text(JMETER, "jmeter/jmeter.conf.yaml").expect(JMeterConfig)
    performance = config.workload("performance")
    assert performance is not None
    assert (performance.vuser, performance.loopcount, performance.thinktime) == (30, 150, 0)
    assert performance.acceptederrorrate == 1.0
    healthcheck = config.workload("healthcheck")
    assert healthcheck is DEFAULT_JMETER_WORKLOADS[0]
    assert (healthcheck.vuser, healthcheck.script, healthcheck.acceptederrorrate) == (1, "jmeter/basiccheck.jmx", 0.0)
    functional = config.workload("functional")
    assert functional is not None and functional.acceptederrorrate == 0.1
    assert config.workload("real-user") is None


def test_jmeter_workload_numbers_are_checked() -> None:
    assert errors_of(JMETER.replace("vuser: 30", "vuser: many"), "jmeter.conf.yaml") == [
        "jmeter.conf.yaml:5: workloads[0].vuser: expected a whole number, got 'many'"
    ]
    assert errors_of(JMETER.replace("vuser: 30", "vuser: 0"), "jmeter.conf.yaml") == [
        "jmeter.conf.yaml:5: workloads[0].vuser: must be at least 1, got the number 0"
    ]


LOCUST = dedent("""\
    spec_version: '0.1.0'
    workloads:
      - teststrategy: functional
        script: locust/basic.py
        conf: locust/locust.conf
      - teststrategy: performance_light
        script: locust/basic.py
      - teststrategy: functional
        script: locust/other.py
    """)


def test_locust_workloads_pick_the_last_match_like_locust_service() -> None:
    config = load_text(LOCUST, "locust/locust.conf.yaml").expect(LocustConfig)
    functional = config.workload("functional")
    assert functional is not None and (functional.script, functional.conf) == ("locust/other.py", None)
    light = config.workload("performance_light")
    assert light is not None and light.conf is None
    assert config.workload("performance") is None


def test_workloads_tell_jmeter_from_locust_by_content_when_the_name_does_not() -> None:
    assert load_text(JMETER, "load.yaml").kind is FileKind.JMETER
    assert load_text(LOCUST, "load.yaml").kind is FileKind.LOCUST
    assert load_text(LOCUST, "locust.conf.yaml").kind is FileKind.LOCUST


# -- job executor ---------------------------------------------------------------------------------

JOB = dedent("""\
    apiVersion: v2
    actions:
      - name: "Run locust"
        events:
          - name: "sh.keptn.event.test.triggered"
            jsonpath:
              property: "$.data.test.teststrategy"
              match: "locust"
        tasks:
          - name: "Run locust smoke tests"
            image: "locustio/locust"
            files: [locust/basic.py]
            cmd: [locust]
            args: ["-f", "/keptn/locust/basic.py", "--host", "$(HOST)"]
            maxPollDuration: 360
            env:
              - name: HOST
                value: "$.data.deployment.deploymentURIsLocal[0]"
                valueFrom: event
              - name: EVENT
                value: "$"
                valueFrom: event
                as: json
    """)


def test_a_job_executor_config_loads_actions_events_and_tasks() -> None:
    config = load_text(JOB, "job/config.yaml").expect(JobConfig)
    action = config.actions[0]
    assert action.events[0].jsonpath is not None
    assert (action.events[0].jsonpath.property, action.events[0].jsonpath.match) == ("$.data.test.teststrategy", "locust")
    task = action.tasks[0]
    assert (task.cmd, task.args[-1], task.maxPollDuration) == (["locust"], "$(HOST)", 360)
    assert [(e.name, e.valueFrom, e.as_) for e in task.env] == [("HOST", "event", None), ("EVENT", "event", "json")]


def test_the_first_job_executor_form_is_converted() -> None:
    text = dedent("""\
        actions:
          - name: "Run Bash"
            event: "sh.keptn.event.action.triggered"
            jsonpath:
              property: "$.data.action.action"
              match: "hello"
            tasks:
              - name: "Run hello world"
                image: "bash"
                cmd: "cat /keptn/hello/hello-world.txt | echo"
        """)
    config = load_text(text, "config.yaml").expect(JobConfig)
    assert config.apiVersion is None
    action = config.actions[0]
    assert [e.name for e in action.events] == ["sh.keptn.event.action.triggered"]
    assert action.events[0].jsonpath is not None and action.events[0].jsonpath.match == "hello"
    assert action.tasks[0].cmd == ["sh", "-c", "cat /keptn/hello/hello-world.txt | echo"]


def test_job_executor_problems() -> None:
    assert errors_of("apiVersion: v3\nactions: []\n", "config.yaml") == [
        "config.yaml:1: apiVersion: 'v3' is not allowed here; use one of 'v1' or 'v2'"
    ]
    assert errors_of(JOB.replace('        image: "locustio/locust"\n', ""), "config.yaml") == [
        "config.yaml:10: actions[0].tasks[0].image: missing required field"
    ]
    assert errors_of(JOB.replace("valueFrom: event\n          - name: EVENT", "valueFrom: events\n          - name: EVENT"),
                     "config.yaml") == [
        "config.yaml:19: actions[0].tasks[0].env[0].valueFrom: 'events' is not allowed here; use one of 'event', "
        "'secret' or 'string'"
    ]


def test_actions_that_can_never_run_are_warnings() -> None:
    text = "actions:\n  - name: idle\n    tasks:\n      - name: t\n        image: alpine\n  - name: empty\n    events:\n      - name: x\n"
    assert [str(w) for w in load_text(text, "config.yaml").warnings] == [
        "config.yaml:2: actions[0].name: action 'idle' lists no events, so it never runs",
        "config.yaml:6: actions[1].name: action 'empty' has no tasks, so it does nothing",
    ]


# -- webhooks -------------------------------------------------------------------------------------

WEBHOOK_BETA = dedent("""\
    apiVersion: webhookconfig.keptn.sh/v1beta1
    kind: WebhookConfig
    metadata:
      name: webhook-configuration
    spec:
      webhooks:
        - type: sh.keptn.event.evaluation.triggered
          subscriptionID: 0a1b2c
          sendFinished: yes
          envFrom:
            - name: token
              secretRef: {name: slack, key: token}
          requests:
            - url: https://hooks.example.com/{{.env.token}}
              method: POST
              headers:
                - key: Content-Type
                  value: application/json
              payload: '{"text": "{{.data.project}}"}'
    """)


def test_a_v1beta1_webhook_has_structured_requests() -> None:
    loaded = load_text(WEBHOOK_BETA, "webhook.yaml")
    config = loaded.expect(WebhookConfig)
    webhook = config.webhooks_for("sh.keptn.event.evaluation.triggered")[0]
    # `yes` reaches a yes/no setting, so it means true here, without a warning.
    assert (webhook.sendFinished, webhook.sendStarted) == (True, True)
    assert loaded.warnings == ()
    request = webhook.requests[0]
    assert isinstance(request, WebhookRequest)
    assert (request.method, request.headers[0].value) == ("POST", "application/json")
    assert webhook.envFrom[0].secretRef.key == "token"


def test_a_v1alpha1_webhook_has_curl_requests_and_versions_do_not_mix() -> None:
    alpha = WEBHOOK_BETA.replace("v1beta1", "v1alpha1")
    assert errors_of(alpha, "webhook.yaml") == [
        "webhook.yaml:14: spec.webhooks[0].requests[0]: webhookconfig.keptn.sh/v1alpha1 does not take a url/method "
        "mapping: write the request as one curl command line"
    ]
    curl = alpha[: alpha.index("    - url:")] + "        - curl --request POST https://hooks.example.com/x\n"
    config = load_text(curl, "webhook.yaml").expect(WebhookConfig)
    assert config.spec.webhooks[0].requests == ["curl --request POST https://hooks.example.com/x"]
    beta_with_curl = curl.replace("v1alpha1", "v1beta1")
    assert errors_of(beta_with_curl, "webhook.yaml")[0].endswith(
        "does not take a curl command line: write the request with url, method, headers, payload")


def test_a_webhook_needs_type_subscription_and_requests() -> None:
    text = WEBHOOK_BETA.replace("    - type: sh.keptn.event.evaluation.triggered\n", "    - type: ''\n")
    text = text[: text.index("      requests:")] + "      requests: []\n"
    assert errors_of(text, "webhook.yaml") == [
        "webhook.yaml:7: spec.webhooks[0].type: must not be empty",
        "webhook.yaml:13: spec.webhooks[0].requests: must not be empty",
    ]


def test_an_unquoted_template_placeholder_is_explained() -> None:
    text = WEBHOOK_BETA.replace("type: sh.keptn.event.evaluation.triggered", "type: [[ .context.event ]]")
    assert errors_of(text, "webhook.yaml") == [
        "webhook.yaml:7: spec.webhooks[0].type: expected text, got a list (an unquoted value that starts with [ or "
        "{ is YAML for a list or mapping; quote it)"
    ]
