"""Alert rules from SLOs (reference §5.4) and the Alertmanager routing to the bridge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml

from tidegate.connectors.prometheus.alerting import (
    AlertingError,
    AlertmanagerRouting,
    BridgeAuth,
    alert_rules,
    alertmanager_config,
    build_alert_rules,
    merge_rule_files,
)
from tidegate.schemas.slo import SLO

QUERIES = {
    "response_time_p95": 'histogram_quantile(0.95, sum by(le) (rate(x_bucket{job="$SERVICE-$PROJECT-$STAGE"}[$DURATION_SECONDS])))',
    "error_rate": 'sum(rate(e{job="$SERVICE-$PROJECT-$STAGE",d="$DEPLOYMENT"}[$DURATION_SECONDS])) or vector(0)',
    "throughput": "sum(rate(r[$DURATION_SECONDS]))",
}
P95 = 'histogram_quantile(0.95, sum by(le) (rate(x_bucket{job="carts-sockshop-production"}[180s])))'


def slo_with(*objectives: dict[str, Any], filter: dict[str, str] | None = None) -> SLO:
    return SLO.model_validate({"objectives": list(objectives), "filter": filter})


def rules_of(slo: SLO, **kwargs: Any) -> list[dict[str, Any]]:
    out = alert_rules(slo, QUERIES, "sockshop", "production", "carts", kwargs.pop("for_", "1m"), **kwargs)
    groups = out["groups"]
    assert len(groups) == 1
    assert groups[0]["name"] == "carts sockshop-production alerts"
    rules: list[dict[str, Any]] = groups[0]["rules"]
    return rules


@pytest.mark.parametrize(
    ("criterion", "condition"),
    [
        ("<600", ">= 600"),
        ("<=600", "> 600"),
        (">10", "<= 10"),
        (">=10", "< 10"),
        ("< 0.5", ">= 0.5"),
        ("<=1e3", "> 1000"),
        ("<0.000001", ">= 1e-06"),
    ],
)
def test_an_absolute_criterion_becomes_its_exact_negation(criterion: str, condition: str) -> None:
    [rule] = rules_of(slo_with({"sli": "response_time_p95", "pass": [{"criteria": [criterion]}]}))
    assert rule["expr"] == f"({P95}) {condition}"
    assert rule["alert"] == "response_time_p95"
    assert rule["annotations"]["criterion"] == criterion.strip()


@pytest.mark.parametrize("criterion", ["<=+10%", "<=10%", ">=-5%", "<=+50", ">=-5", "=100", "fast", "<abc"])
def test_relative_equality_and_invalid_criteria_make_no_rule(criterion: str) -> None:
    result = build_alert_rules(
        slo_with({"sli": "response_time_p95", "pass": [{"criteria": [criterion]}]}),
        QUERIES, "sockshop", "production", "carts",
    )
    assert result.rules == ()
    [skipped] = result.skipped
    assert skipped.sli == "response_time_p95"
    assert criterion in skipped.reason


def test_the_last_absolute_criterion_wins_across_criteria_and_sets() -> None:
    slo = slo_with({
        "sli": "response_time_p95",
        "pass": [{"criteria": ["<=+10%", "<600"]}, {"criteria": ["<=800", "<=+5%"]}],
    })
    [rule] = rules_of(slo)
    assert rule["expr"] == f"({P95}) > 800"


def test_a_later_objective_on_the_same_sli_replaces_the_rule() -> None:
    slo = slo_with(
        {"sli": "response_time_p95", "pass": [{"criteria": ["<600"]}]},
        {"sli": "response_time_p95", "pass": [{"criteria": ["<700"]}]},
    )
    [rule] = rules_of(slo)
    assert rule["expr"].endswith(">= 700")


def test_objectives_without_pass_criteria_are_informational_and_skipped() -> None:
    result = build_alert_rules(
        slo_with({"sli": "throughput"}, {"sli": "error_rate", "pass": [{"criteria": ["<=0.01"]}]}),
        QUERIES, "sockshop", "production", "carts",
    )
    assert [rule["alert"] for rule in result.rules] == ["error_rate"]
    assert [s.sli for s in result.skipped] == ["throughput"]


def test_placeholders_deployment_and_window_are_filled_and_the_query_is_parenthesised() -> None:
    [rule] = rules_of(
        slo_with({"sli": "error_rate", "pass": [{"criteria": ["<=0.01"]}]}),
        deployment="canary",
        window=timedelta(seconds=30),
    )
    # `or` binds loosest in PromQL: without the parentheses only vector(0) would be compared.
    assert rule["expr"] == '(sum(rate(e{job="carts-sockshop-production",d="canary"}[30s])) or vector(0)) > 0.01'
    assert rule["labels"]["deployment"] == "canary"
    assert rule["labels"]["pod_name"] == "carts-canary"


def test_labels_annotations_and_for_duration() -> None:
    [rule] = rules_of(slo_with({"sli": "response_time_p95", "pass": [{"criteria": ["<0.5"]}]}), for_="15s")
    assert rule["for"] == "15s"
    assert rule["labels"] == {
        "severity": "webhook",
        "pod_name": "carts-primary",
        "service": "carts",
        "project": "sockshop",
        "stage": "production",
        "deployment": "primary",
    }
    # The summary is the SLI name: it becomes the problem title remediation.yaml matches.
    assert rule["annotations"]["summary"] == "response_time_p95"
    assert "{{ $value }}" in rule["annotations"]["description"]


def test_builtin_indicators_use_the_slo_filters() -> None:
    slo = slo_with({"sli": "response_time_p90", "pass": [{"criteria": ["<1000"]}]}, filter={"handler": "/carts"})
    [rule] = rules_of(slo)
    assert "handler='/carts'" in rule["expr"]
    assert "job='carts-sockshop-production-canary'" in rule["expr"]
    assert rule["expr"].endswith(">= 1000")


def test_unknown_indicator_is_skipped_with_the_hint() -> None:
    result = build_alert_rules(
        slo_with({"sli": "memory", "pass": [{"criteria": ["<100"]}]}), QUERIES, "sockshop", "production", "carts"
    )
    assert result.rules == ()
    assert "prometheus/sli.yaml" in result.skipped[0].reason


@pytest.mark.parametrize("bad", ["10", "1 m", "", "1m30", "m"])
def test_a_bad_for_duration_is_refused(bad: str) -> None:
    with pytest.raises(AlertingError, match="Prometheus duration"):
        alert_rules(slo_with(), QUERIES, "p", "s", "v", bad)


def test_rules_survive_a_yaml_round_trip() -> None:
    out = alert_rules(
        slo_with({"sli": "response_time_p95", "pass": [{"criteria": ["<0.5"]}]}), QUERIES, "sockshop", "dev", "carts"
    )
    assert yaml.safe_load(yaml.safe_dump(out)) == out


def test_merge_replaces_our_group_and_keeps_the_others() -> None:
    mine = build_alert_rules(
        slo_with({"sli": "error_rate", "pass": [{"criteria": ["<0.1"]}]}), QUERIES, "sockshop", "production", "carts"
    )
    existing = {"groups": [
        {"name": "node alerts", "rules": [{"alert": "Down", "expr": "up == 0"}]},
        {"name": "carts sockshop-production alerts", "rules": [{"alert": "old", "expr": "1"}]},
    ]}
    merged = merge_rule_files(existing, mine)
    assert [g["name"] for g in merged["groups"]] == ["node alerts", "carts sockshop-production alerts"]
    assert merged["groups"][0]["rules"][0]["alert"] == "Down"
    assert [r["alert"] for r in merged["groups"][1]["rules"]] == ["error_rate"]
    assert merge_rule_files(None, mine) == mine.as_dict()


def test_alertmanager_routes_webhook_alerts_to_the_bridge_with_bearer_auth() -> None:
    config = alertmanager_config(
        AlertmanagerRouting("http://127.0.0.1:19180/api/alertmanager", BridgeAuth("bearer", token="s3cret"))
    )
    [route] = config["route"]["routes"]
    assert route["receiver"] == "tidegate"
    assert route["matchers"] == ['severity="webhook"']
    receiver = next(r for r in config["receivers"] if r["name"] == "tidegate")
    [webhook] = receiver["webhook_configs"]
    assert webhook["url"] == "http://127.0.0.1:19180/api/alertmanager"
    assert webhook["send_resolved"] is True
    assert webhook["http_config"] == {"authorization": {"type": "Bearer", "credentials": "s3cret"}}


def test_alertmanager_basic_auth_from_a_password_file() -> None:
    auth = BridgeAuth("basic", username="am", password_file="/etc/am/pw")
    assert auth.http_config() == {"basic_auth": {"username": "am", "password_file": "/etc/am/pw"}}
    with pytest.raises(AlertingError, match="password"):
        BridgeAuth("basic", username="am").http_config()


def test_alertmanager_config_refuses_a_url_without_scheme() -> None:
    with pytest.raises(AlertingError, match="http://"):
        alertmanager_config(AlertmanagerRouting("127.0.0.1:19180"))
