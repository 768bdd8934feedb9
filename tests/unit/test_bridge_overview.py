"""The Bridge's project views (environment columns, sequence filters, tiles), its forms and remediations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tidegate.bridge.evaluations import read_evaluation
from tidegate.bridge.forms import (
    EvaluationTrigger,
    FormProblem,
    SequenceTrigger,
    approval_finished,
    parse_approval,
    parse_control,
    parse_labels,
    parse_reason,
    parse_trigger,
)
from tidegate.bridge.overview import (
    ProjectInfo,
    SequenceQuery,
    StageInfo,
    environment,
    filter_sequences,
    pending_approvals,
    project_tile,
)
from tidegate.bridge.records import EventRecord
from tidegate.bridge.remediations import remediation_run
from tidegate.gateway.rules import check_event
from tidegate.readside.history.sequences import SequenceView, StageState
from tidegate.schemas.events import KeptnEvent

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PROJECT = ProjectInfo(
    name="sockshop",
    stages=[StageInfo("dev", [], ["delivery"]), StageInfo("staging", ["dev"], ["delivery", "rollback"]),
            StageInfo("production", ["staging"], ["delivery", "remediation"])],
    services={"dev": ["carts", "orders"], "staging": ["carts", "orders"], "production": ["carts"]},
    deployed={("dev", "carts"): "carts:2", ("staging", "carts"): "carts:1"},
)


def view(context: str, service: str, stages: dict[str, tuple[str, str | None]], *, name: str = "delivery",
         minutes: int = 0, problem: str | None = None) -> SequenceView:
    when = T0 + timedelta(minutes=minutes)
    states = tuple(StageState(name=stage, sequence=name, state=state, changed=i, result=result, triggered_id=f"{context}-{stage}")
                   for i, (stage, (state, result)) in enumerate(stages.items(), start=1))
    failed = any(r == "fail" or s in ("errored", "aborted") for s, r in stages.values())
    return SequenceView(keptn_context=context, project="sockshop", service=service, name=name, time=when,
                        updated=when, stages=states, failed=failed, problem_title=problem)


def approval_event(context: str, stage: str, service: str = "carts", result: str = "pass") -> EventRecord:
    event = KeptnEvent(id=f"approval-{context}", type="sh.keptn.event.approval.triggered", time=T0,
                       shkeptncontext=context,
                       data={"project": "sockshop", "stage": stage, "service": service, "result": result,
                             "labels": {"buildId": "17"}, "evaluation": {"score": 83.5},
                             "configurationChange": {"values": {"image": "carts:3"}}})
    return EventRecord.of(event.to_json_dict())


# Newest first, as the store answers.
VIEWS = [
    view("c5", "carts", {"production": ("started", None)}, name="remediation", minutes=5, problem="error_rate high"),
    view("c4", "carts", {"dev": ("waiting", None)}, minutes=4),
    view("c3", "carts", {"dev": ("succeeded", "pass"), "staging": ("succeeded", "pass"),
                         "production": ("waitingForApproval", None)}, minutes=3),
    view("c2", "carts", {"dev": ("errored", "fail")}, minutes=2),
    view("c1", "orders", {"dev": ("succeeded", "pass"), "staging": ("errored", "fail")}, minutes=1),
    view("c0", "orders", {"dev": ("errored", "fail")}, minutes=0),
]


def test_the_environment_has_a_column_per_stage_and_a_card_per_service() -> None:
    approvals = pending_approvals([approval_event("c3", "production")], {v.keptn_context: v for v in VIEWS})
    columns = environment(PROJECT, VIEWS, approvals, [])
    assert [c.name for c in columns] == ["dev", "staging", "production"]
    assert [c.parents for c in columns] == [[], ["dev"], ["staging"]]
    dev = {card.name: card for card in columns[0].services}
    assert dev["carts"].deployed_image == "carts:2"
    assert [r.keptn_context for r in dev["carts"].queued] == ["c4"]
    # carts' latest finished run in dev (c3) passed, so the older failure (c2) is history, not shown.
    assert dev["carts"].failed == []
    # orders' latest finished run in dev passed too; in staging it failed.
    assert dev["orders"].failed == []
    staging = {card.name: card for card in columns[1].services}
    assert [r.keptn_context for r in staging["orders"].failed] == ["c1"]
    production = columns[2].services[0]
    assert [r.keptn_context for r in production.running] == ["c3"]
    assert [p.title for p in production.problems] == ["error_rate high"], "a running remediation is an open problem"
    [approval] = production.approvals
    assert (approval.image, approval.previous_result, approval.evaluation_score) == ("carts:3", "pass", 83.5)
    assert columns[2].approval_count == 1 and columns[2].problem_count == 1


def test_the_latest_valid_evaluation_of_each_service_is_its_badge() -> None:
    def evaluation(stage: str, result: str, score: float, minutes: int, invalidated: bool = False) -> Any:
        event = KeptnEvent(type="sh.keptn.event.evaluation.finished", time=T0 + timedelta(minutes=minutes),
                           data={"project": "sockshop", "stage": stage, "service": "carts", "result": result,
                                 "evaluation": {"result": result, "score": score}})
        return read_evaluation(event.to_json_dict(), invalidated=invalidated)

    newest_first = [evaluation("dev", "fail", 10, 9, invalidated=True), evaluation("dev", "warning", 80, 8),
                    evaluation("dev", "pass", 100, 7)]
    columns = environment(PROJECT, [], [], newest_first)
    badge = columns[0].services[0].last_evaluation
    assert badge is not None and (badge.result, badge.score, badge.tone) == ("warning", 80, "warning")
    assert columns[1].services[0].last_evaluation is None


def test_answered_or_ended_approvals_are_not_offered() -> None:
    ended = view("c9", "carts", {"production": ("aborted", "pass")})
    unknown = approval_event("c8", "production")  # its sequence is not among the loaded ones: still offered
    shown = pending_approvals([approval_event("c9", "production"), unknown], {"c9": ended})
    assert [a.keptn_context for a in shown] == ["c8"]


def test_sequence_filters() -> None:
    def contexts(**query: str) -> list[str]:
        return [v.keptn_context for v in filter_sequences(VIEWS, SequenceQuery(**query))]

    assert contexts() == ["c5", "c4", "c3", "c2", "c1", "c0"]
    assert contexts(service="orders") == ["c1", "c0"]
    assert contexts(stage="production") == ["c5", "c3"]
    assert contexts(name="remediation") == ["c5"]
    assert contexts(stage="dev", state="errored") == ["c2", "c0"]
    assert contexts(stage="staging", state="finished") == ["c3", "c1"], "finished covers every final stage state"
    assert contexts(state="waitingForApproval") == ["c3"]
    assert not SequenceQuery().active and SequenceQuery(stage="dev").active


def test_the_project_tile_counts_what_needs_attention() -> None:
    tile = project_tile(PROJECT, VIEWS)
    assert (tile.service_count, tile.running, tile.waiting_for_approval, tile.failed) == (2, 3, 1, 3)
    assert tile.stages == ["dev", "staging", "production"]


# --------------------------------------------------------------------- forms


def test_a_delivery_form_becomes_the_sequence_trigger_the_api_accepts() -> None:
    parsed = parse_trigger({"kind": "delivery", "stage": "dev", "service": "carts", "image": " carts:0.13.1 ",
                            "labels": "buildId=17\nowner = team-a"}, PROJECT)
    assert isinstance(parsed, SequenceTrigger)
    event = parsed.event("sockshop")
    assert check_event(event) == []
    assert event["type"] == "sh.keptn.event.dev.delivery.triggered"
    assert event["data"] == {"configurationChange": {"values": {"image": "carts:0.13.1"}}, "project": "sockshop",
                             "stage": "dev", "service": "carts", "labels": {"buildId": "17", "owner": "team-a"}}


def test_form_problems_name_the_field() -> None:
    problems = parse_trigger({"kind": "delivery", "stage": "qa", "service": "", "image": ""}, PROJECT)
    assert isinstance(problems, list)
    assert {p.field for p in problems} == {"stage", "service", "image"}
    assert "has no stage 'qa'" in next(p.message for p in problems if p.field == "stage")
    missing = parse_trigger({"kind": "delivery", "stage": "production", "service": "orders", "image": "x"}, PROJECT)
    assert missing == [FormProblem("service", "service 'orders' does not exist in stage 'production'")]
    wrong_sequence = parse_trigger({"kind": "sequence", "stage": "dev", "service": "carts", "sequence": "rollback"},
                                   PROJECT)
    assert isinstance(wrong_sequence, list) and wrong_sequence[0].field == "sequence"
    bad_data = parse_trigger({"kind": "sequence", "stage": "staging", "service": "carts", "sequence": "rollback",
                              "data": "[1, 2]"}, PROJECT)
    assert isinstance(bad_data, list) and bad_data[0].field == "data" and "JSON object" in bad_data[0].message
    assert parse_trigger({"kind": "deploy"}, PROJECT)[0].field == "kind"  # type: ignore[index]


def test_a_custom_sequence_carries_its_data_and_an_evaluation_its_window() -> None:
    custom = parse_trigger({"kind": "sequence", "stage": "staging", "service": "carts", "sequence": "rollback",
                            "data": '{"rollback": {"reason": "manual"}}'}, PROJECT)
    assert isinstance(custom, SequenceTrigger)
    assert custom.event("sockshop")["data"]["rollback"] == {"reason": "manual"}
    evaluation = parse_trigger({"kind": "evaluation", "stage": "staging", "service": "carts", "timeframe": "10m",
                                "labels": "scenario=slow"}, PROJECT)
    assert evaluation == EvaluationTrigger("staging", "carts", "10m", None, None, {"scenario": "slow"})
    both = parse_trigger({"kind": "evaluation", "stage": "staging", "service": "carts", "timeframe": "10m",
                          "end": "2024-05-01T12:00:00Z"}, PROJECT)
    assert isinstance(both, list) and both[0].field == "timeframe"


def test_labels_are_key_value_pairs() -> None:
    assert parse_labels("a=1, b = 2\n\nc=") == {"a": "1", "b": "2", "c": ""}
    assert parse_labels("oops") == FormProblem("labels", "'oops' is not key=value; write labels like buildId=17, "
                                                         "one per line")


def test_an_approval_answer_is_keptns_approval_finished() -> None:
    answer = parse_approval({"triggeredid": "a-1", "decision": "decline", "message": "not today"})
    assert not isinstance(answer, list)
    triggered = approval_event("c3", "production").body
    body = approval_finished(triggered, answer)
    assert check_event(body) == []
    assert body["triggeredid"] == triggered["id"] and body["shkeptncontext"] == "c3"
    assert (body["data"]["result"], body["data"]["status"], body["data"]["message"]) == ("fail", "succeeded",
                                                                                       "not today")
    assert body["data"]["labels"] == {"buildId": "17"}
    assert {p.field for p in parse_approval({"decision": "maybe"})} == {"triggeredid", "decision"}  # type: ignore[union-attr]


def test_controls_and_reasons() -> None:
    assert parse_control({"state": "abort", "stage": "dev"}) == parse_control({"state": "abort", "stage": " dev "})
    assert isinstance(parse_control({"state": "stop"}), list)
    assert parse_reason({"reason": "  broken load test "}) == "broken load test"
    assert isinstance(parse_reason({"reason": ""}), list)
    assert isinstance(parse_reason({"reason": "x" * 501}), list)


# --------------------------------------------------------------------- remediations


def test_a_remediation_lists_each_action_its_result_and_the_re_evaluation() -> None:
    context = "rem-1"
    clock = iter(T0 + timedelta(seconds=i) for i in range(100))

    def event(type_: str, triggeredid: str | None = None, source: str = "tidegate-sequencer", **data: Any) -> KeptnEvent:
        return KeptnEvent(type=type_, source=source, time=next(clock), shkeptncontext=context, triggeredid=triggeredid,
                          data={"project": "sockshop", "stage": "production", "service": "carts", **data})

    trigger = event("sh.keptn.event.production.remediation.triggered",
                    problem={"problemTitle": "response_time_p95", "rootCause": "slow carts", "State": "OPEN"})
    get_action = event("sh.keptn.event.get-action.triggered")
    chosen = event("sh.keptn.event.get-action.finished", get_action.id, "tidegate-remediator", result="pass",
                   status="succeeded", action={"name": "Scale up", "action": "scaling", "description": "one more",
                                               "value": "1"})
    action = event("sh.keptn.event.action.triggered")
    done = event("sh.keptn.event.action.finished", action.id, "scaler", result="pass", status="succeeded",
                 message="3 replicas")
    evaluated = event("sh.keptn.event.evaluation.finished", "e-1", "tidegate-evaluator", result="fail",
                      evaluation={"result": "fail", "score": 20})
    chosen2 = event("sh.keptn.event.get-action.finished", "g-2", "tidegate-remediator", result="pass",
                    status="succeeded", action={"name": "Promotion off", "action": "toggle-feature",
                                                "value": {"EnablePromotion": "off"}})
    escalated = event("sh.tidegate.remediation.escalated", source="tidegate-remediator",
                      message="no remediation action is left for response_time_p95")
    closed = event("sh.keptn.events.problem", source="alertmanager", State="CLOSED")
    items = [EventRecord.of(e.to_json_dict()) for e in (trigger, get_action, chosen, action, done, evaluated, chosen2,
                                                         escalated, closed)]
    sequence = view(context, "carts", {"production": ("succeeded", "fail")}, name="remediation",
                    problem="response_time_p95")

    run = remediation_run(sequence, items)
    assert (run.title, run.root_cause, run.stage) == ("response_time_p95", "slow carts", "production")
    first, second = run.steps
    assert (first.name, first.action, first.value, first.result, first.answered_by, first.message) == (
        "Scale up", "scaling", "1", "pass", "scaler", "3 replicas")
    assert (first.evaluation_result, first.evaluation_score, first.state) == ("fail", 20, "did not help")
    assert (second.name, second.value, second.state) == ("Promotion off", '{"EnablePromotion": "off"}', "running")
    assert run.escalation == "no remediation action is left for response_time_p95"
    assert not run.problem_open and run.closed_at == closed.time
    assert run.outcome == "escalated"
