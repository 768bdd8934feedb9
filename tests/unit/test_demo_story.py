"""The demo's narration and summary, read from events shaped like Tidegate's (pure)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import yaml

from deploy.demo.facts import Story, delivery_outcome, remediation_outcome, summary_lines
from deploy.demo.narrate import Line, Narrator, describe, evaluation_lines, state_line

CONTEXT = "6f1c1e0e-7c43-4a0e-9a55-3f2e1b7f4a10"


def ev(event_type: str, time: str = "2026-05-01T12:00:00.000Z", **data: Any) -> dict[str, Any]:
    return {"type": event_type, "time": time, "shkeptncontext": CONTEXT,
            "data": {"project": "sockshop", "service": "carts", **data}}


FAILED_GATE = {
    "stage": "staging", "result": "fail", "status": "succeeded",
    "evaluation": {
        "result": "fail", "score": 50,
        "indicatorResults": [
            {"displayName": "Response time P95 (s)", "status": "warning", "score": 0.5, "keySli": False,
             "value": {"metric": "response_time_p95", "value": 0.7375, "success": True},
             "passTargets": [{"criteria": "<=+10%", "targetValue": 0.02637, "violated": True},
                             {"criteria": "<0.5", "targetValue": 0.5, "violated": True}],
             "warningTargets": [{"criteria": "<=0.8", "targetValue": 0.8, "violated": False}]},
            {"displayName": "Error rate", "status": "pass", "score": 1, "keySli": True,
             "value": {"metric": "error_rate", "value": 0, "success": True},
             "passTargets": [{"criteria": "<=0.01", "targetValue": 0.01, "violated": False}]},
            {"displayName": "Response time P50 (s)", "status": "info", "score": 0,
             "value": {"metric": "response_time_p50", "value": 0.625, "success": True}, "passTargets": []},
        ],
    },
}


def slow_delivery() -> list[dict[str, Any]]:
    image = {"configurationChange": {"values": {"image": "docker.io/keptnexamples/carts:0.11.2"}}}
    return [
        ev("sh.keptn.event.dev.delivery.triggered", stage="dev", **image),
        ev("sh.keptn.event.dev.delivery.finished", stage="dev", result="pass", status="succeeded"),
        ev("sh.keptn.event.staging.delivery.triggered", stage="staging", **image),
        ev("sh.keptn.event.evaluation.finished", **FAILED_GATE),
        ev("sh.keptn.event.staging.delivery.finished", stage="staging", result="fail", status="succeeded"),
        ev("sh.keptn.event.staging.rollback.triggered", stage="staging", **image),
        ev("sh.keptn.event.rollback.finished", stage="staging", result="pass", status="succeeded",
           message="sockshop-deploy: exit 0\ncarts in sockshop/staging: rolled back"),
        ev("sh.keptn.event.staging.rollback.finished", stage="staging", result="pass", status="succeeded"),
    ]


def remediation_events() -> list[dict[str, Any]]:
    where = {"stage": "production"}
    return [
        ev("sh.keptn.event.production.remediation.triggered", "2026-05-01T12:00:00.000Z", **where,
           problem={"State": "OPEN", "problemTitle": "orders_response_time_p95"}),
        ev("sh.keptn.event.get-action.finished", "2026-05-01T12:00:02.000Z", **where, result="pass",
           status="succeeded", action={"name": "Scale out", "action": "scaling", "value": "2"}),
        ev("sh.keptn.event.action.finished", "2026-05-01T12:00:04.000Z", **where, result="pass", status="succeeded",
           scaling={"version": "0.11.1", "replicasBefore": 1, "replicas": 3}),
        ev("sh.keptn.events.problem", "2026-05-01T12:00:25.000Z", **where, State="CLOSED",
           ProblemTitle="orders_response_time_p95"),
        ev("sh.keptn.event.evaluation.finished", "2026-05-01T12:00:36.000Z", **where, result="pass",
           status="succeeded", evaluation={"result": "pass", "score": 100, "indicatorResults": []}),
        ev("sh.keptn.event.production.remediation.finished", "2026-05-01T12:00:37.000Z", **where, result="pass",
           status="succeeded"),
    ]


def test_the_slow_build_is_blocked_in_staging_with_the_violated_targets_and_rolled_back() -> None:
    outcome = delivery_outcome(CONTEXT, slow_delivery())
    assert outcome.version == "0.11.2"
    assert outcome.delivered_to == ("dev",)
    assert outcome.blocked_in == "staging"
    assert outcome.rolled_back_in == ("staging",)
    gate = outcome.gate_in("staging")
    assert gate is not None and (gate.result, gate.score) == ("fail", 50.0)
    assert gate.violated == ("Response time P95 (s) = 0.738: <=+10% (target 0.02637), <0.5 (target 0.5)",)


def test_the_remediation_outcome_counts_from_the_problem_report() -> None:
    outcome = remediation_outcome(CONTEXT, remediation_events())
    assert (outcome.stage, outcome.problem, outcome.result) == ("production", "orders_response_time_p95", "pass")
    assert outcome.actions == ("Scale out: 1 -> 3 replicas",)
    assert outcome.replicas == (3,)
    assert (outcome.seconds_to_close, outcome.seconds_to_resolve) == (25.0, 37.0)


def test_the_summary_says_what_was_delivered_blocked_and_remediated() -> None:
    good_events = [
        ev("sh.keptn.event.dev.delivery.triggered", stage="dev",
           configurationChange={"values": {"image": "carts:0.11.1"}}),
        *(ev(f"sh.keptn.event.{s}.delivery.finished", stage=s, result="pass") for s in ("dev", "staging", "production")),
    ]
    story = Story(
        deliveries=(delivery_outcome("a", good_events), delivery_outcome(CONTEXT, slow_delivery())),
        remediation=remediation_outcome(CONTEXT, remediation_events()),
        serving={"production": "0.11.1 (3 replicas)"},
        service="carts",
    )
    lines = summary_lines(story)
    assert lines[0] == "Delivered:   carts 0.11.1 through dev, staging and production"
    assert lines[1].startswith("Blocked:     carts 0.11.2 stopped in staging (passed dev): quality gate fail, score 50: ")
    assert lines[1].endswith("; rolled back in staging")
    assert lines[2] == ("Remediated:  orders_response_time_p95 in production: Scale out: 1 -> 3 replicas; the alert "
                        "resolved 25 s after it fired; the evaluation after the action passed (37 s)")
    assert lines[3] == "Now serving: production 0.11.1 (3 replicas)"
    assert story.to_json()["remediation"]["replicas"] == (3,)


def test_the_evaluation_shows_score_values_and_violated_targets() -> None:
    text = [line.text for line in evaluation_lines(FAILED_GATE)]
    assert "quality gate fail, score 50/100" in text[0]
    assert "Response time P95 (s)" in text[1] and "violated: <=+10% (target 0.02637), <0.5 (target 0.5)" in text[1]
    assert "violated" not in text[2]
    assert text[3].endswith("(reported, not scored)")


def test_events_are_described_in_the_words_of_the_story() -> None:
    events = slow_delivery()
    assert describe(events[0])[0].text == "▶ dev: delivery of carts 0.11.2"
    assert describe(events[4])[0].text == "■ staging: delivery finished, result fail"
    # The command connector's "<task>: exit 0" line is skipped for what the program said.
    assert describe(events[6])[0].text.endswith("rollback pass: carts in sockshop/staging: rolled back")
    assert describe(remediation_events()[1])[0].text.endswith("get-action: next step is 'Scale out' (scaling 2)")
    assert "closed: the alert resolved" in describe(remediation_events()[3])[0].text
    assert describe(ev("sh.keptn.event.test.started", stage="dev")) == []


def test_a_sequence_state_lists_each_stage() -> None:
    line = state_line({"state": "started", "stages": [
        {"name": "dev", "sequence": "delivery", "state": "finished", "result": "pass"},
        {"name": "staging", "sequence": "delivery", "state": "started"}]})
    assert line.text.strip() == "sequence state: started · dev delivery finished/pass · staging delivery started"


def test_colour_only_on_a_terminal() -> None:
    plain, coloured = io.StringIO(), io.StringIO()
    Narrator(plain).say(Line("ok", "good"))
    Narrator(coloured, colour=True).say(Line("ok", "good"))
    assert plain.getvalue() == "ok\n"
    assert coloured.getvalue() == "\033[32mok\033[0m\n"


def test_a_run_record_survives_its_json() -> None:
    from deploy.demo.config import Ports
    from deploy.demo.stack import RunRecord

    record = RunRecord("tidegate-demo.", "127.0.0.1:39092", Ports(gateway=1, prometheus=2, alertmanager=3, kafka=4,
                                                                  stages={"dev": 5}), started_kafka=True)
    assert RunRecord.from_json(record.to_json()) == record


def test_productions_files_make_one_alert_on_orders_latency(tmp_path: Path) -> None:
    """The rule `tidegate configure monitoring prometheus` builds from the demo's production files."""
    from deploy.demo.config import EXAMPLE
    from deploy.demo.story import production_alert
    from tidegate.connectors.prometheus.alerting import build_alert_rules
    from tidegate.schemas.files import load_file
    from tidegate.schemas.sli import SLI
    from tidegate.schemas.slo import SLO

    slo = load_file(EXAMPLE / "production" / "slo.yaml").expect(SLO)
    queries = load_file(EXAMPLE / "production" / "prometheus" / "sli.yaml").expect(SLI).indicators
    rules = build_alert_rules(slo, queries, "sockshop", "production", "carts", "30s")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules.as_dict()))
    alert = production_alert(tmp_path / "rules.yml")
    assert (alert.name, alert.criterion.text, alert.duration) == ("orders_response_time_p95", "<0.35", "30s")
    assert [skipped.sli for skipped in rules.skipped] == ["orders_throughput"]
    assert 'handler="/orders"' in rules.rules[0]["expr"]
    # What one replica and three replicas measured under the demo's load (about 0.49 s and 0.24 s).
    assert alert.failing(0.49) and not alert.failing(0.24) and not alert.failing(math.nan)
