"""The evaluator's lighthouse flow (agents/evaluator/flow.py): reference §4.1-4.3 and §4.7, without Kafka.

Each test drives `decide` with the events the evaluator sees on Kafka (`evaluation.triggered` from
the sequencer, `get-sli.finished` from an SLI provider, `evaluation.invalidated`) and checks what it
would send and remember. Expected numbers are worked out by hand from Keptn's rules.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tidegate.agents.evaluator.flow import (
    MAX_PENDING,
    EvaluatorConfig,
    EvaluatorState,
    SLOFile,
    WindowError,
    decide,
    evaluation_window,
)
from tidegate.agents.kernel import Decision, Emit
from tidegate.schemas.events import KeptnEvent, task_type
from tidegate.schemas.keys import Key

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
PROJECT, STAGE, SERVICE = "sockshop", "staging", "carts"

# Worked example A of the reference (§4.6): relative and absolute pass criteria, a warning criterion.
SLO_A = """
comparison: {compare_with: single_result, include_result_with_score: all}
filter: {handler: /carts}
objectives:
  - sli: response_time_p95
    displayName: Response Time P95
    pass: [{criteria: ["<=+10%", "<600"]}]
    warning: [{criteria: ["<=800"]}]
  - sli: throughput
total_score: {pass: "90%", warning: "75%"}
"""
SLO_PASS_ONLY = SLO_A.replace("include_result_with_score: all", "include_result_with_score: pass")
SLO_BROKEN = "objectives:\n  - sli: response_time_p95\n    weight: heavy\n"


# --- a tiny harness: the state of one key, carried from decision to decision -------------------------


@dataclass
class Lighthouse:
    """One key's evaluator: resources as the shell would resolve them, and the state it keeps."""

    slo: str | None = SLO_A
    provider: str | None = "prometheus"
    history_size: int = 50
    state: EvaluatorState | None = None
    sent: list[Emit] = field(default_factory=list)

    def config(self) -> EvaluatorConfig:
        slo = None if self.slo is None else SLOFile(self.slo, "v1", f"{PROJECT}/{STAGE}/{SERVICE}/slo.yaml")
        return EvaluatorConfig(
            slo_for=lambda key: slo, sli_provider_for=lambda key: self.provider, history_size=self.history_size
        )

    def handle(self, event: KeptnEvent) -> Decision:
        decision = decide(self.state, event, self.config(), NOW)
        self.state = decision.state
        self.sent.extend(decision.emitted)
        return decision

    def evaluate(self, values: Mapping[str, float | None], **evaluation: Any) -> KeptnEvent:
        """A full round trip: trigger, answer the get-sli request with `values`; the evaluation.finished."""
        trigger = triggered(evaluation=evaluation or {"timeframe": "5m"})
        request = only(self.handle(trigger), "tasks.get-sli")
        return only(self.handle(sli_finished(request, values)), "events")


def triggered(
    *, evaluation: dict[str, Any] | None = None, time: datetime = NOW, **data: Any
) -> KeptnEvent:
    """`evaluation.triggered` as the sequencer sends it to tasks.evaluation."""
    body: dict[str, Any] = {"project": PROJECT, "stage": STAGE, "service": SERVICE, **data}
    if evaluation is not None:
        body["evaluation"] = evaluation
    return KeptnEvent(
        type=task_type("evaluation", "triggered"),
        source="shipyard-controller",
        time=time,
        shkeptncontext=str(uuid.uuid4()),
        gitcommitid="slo-v1",
        data=body,
    )


def sli_finished(
    request: KeptnEvent,
    values: Mapping[str, float | None],
    *,
    status: str = "succeeded",
    result: str = "pass",
    message: str = "",
) -> KeptnEvent:
    """The SLI provider's answer; a None value is an indicator it could not measure."""
    indicator_values = [
        {"metric": metric, "value": value or 0.0, "success": value is not None,
         "message": "" if value is not None else f"no data for {metric}"}
        for metric, value in values.items()
    ]
    return KeptnEvent(
        type=task_type("get-sli", "finished"),
        source="prometheus",
        time=NOW + timedelta(seconds=1),
        shkeptncontext=request.shkeptncontext,
        triggeredid=request.id,
        data={
            "project": PROJECT, "stage": STAGE, "service": SERVICE,
            "status": status, "result": result, "message": message,
            "get-sli": {"start": request.data["get-sli"]["start"], "end": request.data["get-sli"]["end"],
                        "indicatorValues": indicator_values},
        },
    )


def invalidated(trigger_id: str) -> KeptnEvent:
    return KeptnEvent(
        type=task_type("evaluation", "invalidated"),
        source="tidegate-gateway",
        triggeredid=trigger_id,
        data={"project": PROJECT, "stage": STAGE, "service": SERVICE},
    )


def only(decision: Decision, destination: str) -> KeptnEvent:
    """The one event sent to `destination` that is not evaluation.started."""
    found = [s.event for s in decision.emitted
             if s.destination == destination and s.event.type != task_type("evaluation", "started")]
    assert len(found) == 1, [(s.destination, s.event.type) for s in decision.emitted]
    return found[0]


def finished_of(decision: Decision) -> KeptnEvent:
    return only(decision, "events")


def p95(finished: KeptnEvent) -> dict[str, Any]:
    results: list[dict[str, Any]] = finished.data["evaluation"]["indicatorResults"]
    return next(r for r in results if r["value"]["metric"] == "response_time_p95")


# --- the evaluation window (§4.1 step 2) -------------------------------------------------------------


def test_a_timeframe_alone_ends_at_the_trigger_time() -> None:
    assert evaluation_window({"evaluation": {"timeframe": "10m"}}, NOW) == (NOW - timedelta(minutes=10), NOW)


def test_start_and_timeframe_end_a_timeframe_after_the_start() -> None:
    start = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    window = evaluation_window({"evaluation": {"start": "2024-05-01T09:00:00.000Z", "timeframe": "1h30m"}}, NOW)
    assert window == (start, datetime(2024, 5, 1, 10, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-05-01T09:00:00.000Z", "2024-05-01T09:05:00.000Z"),  # Keptn's own format
        ("2024-05-01T11:00:00+02:00", "2024-05-01T11:05:00+02:00"),  # RFC 3339 with an offset
        ("2024-05-01T09:00:00", "2024-05-01T09:05:00"),  # no zone: UTC
    ],
)
def test_start_and_end_are_taken_as_given_in_keptns_time_formats(start: str, end: str) -> None:
    window = evaluation_window({"evaluation": {"start": start, "end": end}}, NOW)
    assert window == (datetime(2024, 5, 1, 9, 0, tzinfo=UTC), datetime(2024, 5, 1, 9, 5, tzinfo=UTC))


def test_a_window_sent_with_the_timeframe_it_came_from_is_taken() -> None:
    # What Tidegate's gateway and CLI send for `--timeframe 10m`: the computed window and the timeframe.
    data = {"evaluation": {"start": "2024-05-01T09:00:00.000Z", "end": "2024-05-01T09:10:00.000Z", "timeframe": "10m"}}
    assert evaluation_window(data, NOW) == (datetime(2024, 5, 1, 9, 0, tzinfo=UTC), datetime(2024, 5, 1, 9, 10, tzinfo=UTC))


def test_the_tests_window_is_used_when_the_evaluation_gives_none() -> None:
    data = {"test": {"start": "2024-05-01T08:00:00.000Z", "end": "2024-05-01T08:20:00.000Z"}}
    assert evaluation_window(data, NOW) == (datetime(2024, 5, 1, 8, 0, tzinfo=UTC), datetime(2024, 5, 1, 8, 20, tzinfo=UTC))


@pytest.mark.parametrize(
    ("evaluation", "expected"),
    [
        ({"start": "2024-05-01T09:00:00.000Z", "end": "2024-05-01T09:10:00.000Z", "timeframe": "5m"},
         "'end' and 'timeframe' are mutually exclusive"),  # they disagree: which one was meant?
        ({"end": "2024-05-01T09:10:00.000Z", "timeframe": "5m"}, "'end' and 'timeframe' are mutually exclusive"),
        ({"start": "2024-05-01T09:00:00.000Z", "end": "2024-05-01T09:00:30.000Z"},
         "end date must be at least 1 minute after start date"),
        ({"start": "2024-05-01T09:10:00.000Z", "end": "2024-05-01T09:00:00.000Z"},
         "end date must be at least 1 minute after start date"),
        ({"timeframe": "30s"}, "end date must be at least 1 minute after start date"),
        ({"timeframe": "five minutes"}, "could not parse provided timeframe"),
        ({"start": "yesterday", "end": "2024-05-01T09:00:00.000Z"}, "'yesterday' is not a timestamp"),
    ],
)
def test_unusable_windows_fail_the_evaluation_as_errored(evaluation: dict[str, str], expected: str) -> None:
    lighthouse = Lighthouse()
    decision = lighthouse.handle(triggered(evaluation=evaluation))
    finished = finished_of(decision)
    assert finished.data["status"] == "errored"
    assert finished.data["result"] == "fail"
    assert expected in finished.data["message"]
    assert not [s for s in decision.emitted if s.destination == "tasks.get-sli"]


@pytest.mark.parametrize(
    "data",
    [{}, {"evaluation": {}}, {"evaluation": {"start": "2024-05-01T09:00:00.000Z"}},
     {"evaluation": {"end": "2024-05-01T09:00:00.000Z"}}, {"test": {"start": "2024-05-01T09:00:00.000Z"}}],
)
def test_an_evaluation_without_a_window_gets_keptns_message(data: dict[str, Any]) -> None:
    finished = finished_of(Lighthouse().handle(triggered(**data)))
    assert (finished.data["status"], finished.data["result"]) == ("errored", "fail")
    assert finished.data["message"] == "evaluation.triggered event does not contain evaluation timeframe"


def test_a_window_error_is_a_value_error_naming_the_fields() -> None:
    with pytest.raises(WindowError, match=r"evaluation\.end .* evaluation\.timeframe"):
        evaluation_window({"evaluation": {"end": "2024-05-01T09:00:00.000Z", "timeframe": "5m"}}, NOW)


# --- the trigger: started, then the SLI request or an immediate answer ------------------------------


def test_a_trigger_is_started_then_asks_the_sli_provider_for_the_slos_indicators() -> None:
    lighthouse = Lighthouse()
    trigger = triggered(evaluation={"timeframe": "5m"}, labels={"buildId": "42"},
                        deployment={"deploymentNames": ["canary"]})
    decision = lighthouse.handle(trigger)

    assert [(s.destination, s.event.type) for s in decision.emitted] == [
        ("events", "sh.keptn.event.evaluation.started"),
        ("tasks.get-sli", "sh.keptn.event.get-sli.triggered"),
    ]
    started, request = (s.event for s in decision.emitted)
    assert started.triggeredid == trigger.id
    assert started.shkeptncontext == trigger.shkeptncontext
    assert started.data["status"] == "succeeded"
    # Like lighthouse: no triggeredid on the SLI request, the same context and the window as times.
    assert request.triggeredid is None
    assert request.shkeptncontext == trigger.shkeptncontext
    assert request.gitcommitid == "slo-v1"
    assert request.data["get-sli"] == {
        "sliProvider": "prometheus",
        "start": "2024-05-01T11:55:00.000Z",
        "end": "2024-05-01T12:00:00.000Z",
        "indicators": ["response_time_p95", "throughput"],
        "customFilters": [{"key": "handler", "value": "/carts"}],
    }
    assert request.data["deployment"] == "canary"
    assert request.data["labels"] == {"buildId": "42"}
    assert (request.data["project"], request.data["stage"], request.data["service"]) == (PROJECT, STAGE, SERVICE)
    assert lighthouse.state is not None and [p.get_sli_id for p in lighthouse.state.pending] == [request.id]


def test_no_sli_provider_passes_without_evaluating() -> None:
    decision = Lighthouse(provider=None).handle(triggered(evaluation={"timeframe": "5m"}))
    finished = finished_of(decision)
    assert (finished.data["status"], finished.data["result"]) == ("succeeded", "pass")
    assert finished.data["message"] == (
        "no evaluation performed by lighthouse because no SLI-provider configured for project sockshop"
    )
    assert decision.emitted[0].event.type == "sh.keptn.event.evaluation.started"


def test_no_slo_file_passes_without_asking_for_slis() -> None:
    decision = Lighthouse(slo=None).handle(triggered(evaluation={"timeframe": "5m"}))
    finished = finished_of(decision)
    assert (finished.data["status"], finished.data["result"]) == ("succeeded", "pass")
    assert finished.data["message"] == (
        "no evaluation performed by lighthouse because no SLO file configured for project sockshop"
    )
    assert [s.destination for s in decision.emitted] == ["events", "events"]


def test_without_provider_and_slo_the_provider_message_wins_as_in_lighthouse() -> None:
    finished = finished_of(Lighthouse(slo=None, provider=None).handle(triggered(evaluation={"timeframe": "5m"})))
    assert "no SLI-provider configured" in finished.data["message"]


@pytest.mark.parametrize("provider", ["prometheus", None])
def test_a_broken_slo_file_fails_the_evaluation_naming_the_file_and_the_field(provider: str | None) -> None:
    decision = Lighthouse(slo=SLO_BROKEN, provider=provider).handle(triggered(evaluation={"timeframe": "5m"}))
    finished = finished_of(decision)
    assert (finished.data["status"], finished.data["result"]) == ("errored", "fail")
    message = finished.data["message"]
    assert "sockshop/staging/carts/slo.yaml:3" in message
    assert "weight" in message
    assert not [s for s in decision.emitted if s.destination == "tasks.get-sli"]


def test_the_finished_event_answers_the_trigger() -> None:
    lighthouse = Lighthouse()
    trigger = triggered(evaluation={"timeframe": "5m"}, labels={"buildId": "42"})
    request = only(lighthouse.handle(trigger), "tasks.get-sli")
    finished = finished_of(lighthouse.handle(sli_finished(request, {"response_time_p95": 540, "throughput": 9})))

    assert finished.type == "sh.keptn.event.evaluation.finished"
    assert finished.triggeredid == trigger.id
    assert finished.shkeptncontext == trigger.shkeptncontext
    assert finished.gitcommitid == "slo-v1"
    assert finished.data["labels"] == {"buildId": "42"}
    evaluation = finished.data["evaluation"]
    assert (evaluation["timeStart"], evaluation["timeEnd"]) == ("2024-05-01T11:55:00.000Z", "2024-05-01T12:00:00.000Z")
    assert base64.b64decode(evaluation["sloFileContent"]).decode() == SLO_A
    assert lighthouse.state is not None and lighthouse.state.pending == []


def test_a_failed_gate_says_why_and_which_target_was_violated() -> None:
    finished = Lighthouse().evaluate({"response_time_p95": 900, "throughput": 9})
    assert finished.data["result"] == "fail"
    assert finished.data["message"] == "Evaluation failed since the calculated score of 0 is below the warning value of 75"
    assert [(t["criteria"], t["violated"]) for t in p95(finished)["passTargets"]] == [("<=+10%", False), ("<600", True)]
    explanation = finished.data["evaluation"]["explanation"]
    assert explanation[0].startswith("Quality gate: FAIL")
    assert any("<600" in line and "VIOLATED" in line and "900" in line for line in explanation)
    why = explanation[-1]
    assert why.startswith("Why:") and "Failed: Response Time P95" in why


# --- the SLI provider's answer (§4.1 step 6) ----------------------------------------------------------


@pytest.mark.parametrize("status", ["errored", "aborted"])
def test_an_errored_or_aborted_sli_answer_fails_the_evaluation_with_lighthouses_text(status: str) -> None:
    lighthouse = Lighthouse()
    request = only(lighthouse.handle(triggered(evaluation={"timeframe": "5m"})), "tasks.get-sli")
    answer = sli_finished(request, {}, status=status, result="fail", message="Prometheus at http://p:9090 is down")
    finished = finished_of(lighthouse.handle(answer))
    assert (finished.data["status"], finished.data["result"]) == ("errored", "fail")
    assert finished.data["message"] == (
        "evaluation performed by lighthouse received an unexpected error: Prometheus at http://p:9090 is down"
    )
    assert lighthouse.state is not None and lighthouse.state.history == []


def test_a_failed_sli_answer_forces_fail_but_keeps_the_computed_score() -> None:
    lighthouse = Lighthouse()
    request = only(lighthouse.handle(triggered(evaluation={"timeframe": "5m"})), "tasks.get-sli")
    answer = sli_finished(request, {"response_time_p95": 540, "throughput": None}, result="fail",
                          message="unable to retrieve metrics")
    finished = finished_of(lighthouse.handle(answer))
    # Keptn #6096: data.result is fail, evaluation.result and score are what the values scored.
    assert (finished.data["status"], finished.data["result"]) == ("succeeded", "fail")
    assert finished.data["message"] == "lighthouse failed because SLI failed with message unable to retrieve metrics"
    assert finished.data["evaluation"]["result"] == "pass"
    assert finished.data["evaluation"]["score"] == 100


def test_unusable_indicator_values_fail_the_evaluation_saying_which_entry() -> None:
    lighthouse = Lighthouse()
    request = only(lighthouse.handle(triggered(evaluation={"timeframe": "5m"})), "tasks.get-sli")
    answer = sli_finished(request, {})
    answer.data["get-sli"]["indicatorValues"] = [{"metric": "response_time_p95", "value": "fast"}]
    finished = finished_of(lighthouse.handle(answer))
    assert (finished.data["status"], finished.data["result"]) == ("errored", "fail")
    assert "entry 0 (response_time_p95)" in finished.data["message"]


def test_an_answer_to_an_unknown_request_is_ignored_and_changes_nothing() -> None:
    lighthouse = Lighthouse()
    request = only(lighthouse.handle(triggered(evaluation={"timeframe": "5m"})), "tasks.get-sli")
    before = lighthouse.state
    stranger = sli_finished(request, {"response_time_p95": 540})
    stranger.triggeredid = str(uuid.uuid4())
    decision = lighthouse.handle(stranger)
    assert decision.outputs == ()
    assert decision.state is before
    # The real answer still finds its request afterwards.
    assert finished_of(lighthouse.handle(sli_finished(request, {"response_time_p95": 540})))


def test_events_the_evaluator_does_not_handle_change_nothing() -> None:
    lighthouse = Lighthouse()
    lighthouse.handle(triggered(evaluation={"timeframe": "5m"}))
    before = lighthouse.state
    for event_type in ("sh.keptn.event.deployment.finished", "sh.keptn.event.staging.evaluation.triggered",
                       "sh.keptn.event.evaluation.started", "sh.keptn.event.get-sli.started"):
        decision = lighthouse.handle(KeptnEvent(type=event_type, data={"project": PROJECT, "stage": STAGE}))
        assert (decision.state, decision.outputs) == (before, ()), event_type


# --- scoring against history (§4.3) --------------------------------------------------------------------


def test_the_first_evaluation_has_no_baseline_so_the_relative_criterion_holds() -> None:
    finished = Lighthouse().evaluate({"response_time_p95": 580, "throughput": 9})
    assert finished.data["result"] == "pass"
    indicator = p95(finished)
    assert indicator["status"] == "pass"
    assert finished.data["evaluation"]["comparedEvents"] == []


def test_a_relative_criterion_compares_with_the_previous_result() -> None:
    lighthouse = Lighthouse()
    first = lighthouse.evaluate({"response_time_p95": 500, "throughput": 9})
    second = lighthouse.evaluate({"response_time_p95": 540, "throughput": 9})
    third = lighthouse.evaluate({"response_time_p95": 600, "throughput": 9})

    assert second.data["result"] == "pass"
    assert second.data["evaluation"]["comparedEvents"] == [first.id]
    assert p95(second)["value"]["comparedValue"] == 500
    assert [(t["criteria"], t["targetValue"], t["violated"]) for t in p95(second)["passTargets"]] == [
        ("<=+10%", 550, False), ("<600", 600, False),
    ]
    # 600 against 540 * 1.1 = 594: the relative criterion fails, the warning holds: 50 % < 75 % is fail.
    assert third.data["evaluation"]["comparedEvents"] == [second.id]
    assert p95(third)["value"]["comparedValue"] == 540
    assert p95(third)["status"] == "warning"
    assert third.data["result"] == "fail"
    assert third.data["evaluation"]["score"] == 50


def test_several_results_aggregate_the_newest_ones_only() -> None:
    several = SLO_A.replace("compare_with: single_result", "compare_with: several_results, "
                            "number_of_comparison_results: 3, aggregate_function: avg")
    lighthouse = Lighthouse(slo=several)
    earlier = [lighthouse.evaluate({"response_time_p95": value, "throughput": 9}) for value in (400, 420, 440, 460)]
    assert [e.data["result"] for e in earlier] == ["pass"] * 4
    latest = lighthouse.evaluate({"response_time_p95": 500, "throughput": 9})
    # avg(460, 440, 420) = 440, +10 % = 484 < 500: the relative criterion fails, the oldest (400) is not used.
    assert latest.data["evaluation"]["comparedEvents"] == [earlier[3].id, earlier[2].id, earlier[1].id]
    assert p95(latest)["value"]["comparedValue"] == 440
    assert p95(latest)["passTargets"][0] == {"criteria": "<=+10%", "targetValue": 484, "violated": True}


def test_include_result_with_score_pass_skips_failed_results_as_baseline() -> None:
    lighthouse = Lighthouse(slo=SLO_PASS_ONLY)
    first = lighthouse.evaluate({"response_time_p95": 500, "throughput": 9})
    failed = lighthouse.evaluate({"response_time_p95": 700, "throughput": 9})
    assert failed.data["result"] == "fail"
    after = lighthouse.evaluate({"response_time_p95": 540, "throughput": 9})
    # The failed 700 is not the baseline: the last passed result (500) is.
    assert after.data["evaluation"]["comparedEvents"] == [first.id]
    assert p95(after)["value"]["comparedValue"] == 500


def test_include_result_with_score_all_compares_with_a_failed_result_too() -> None:
    lighthouse = Lighthouse()
    lighthouse.evaluate({"response_time_p95": 500, "throughput": 9})
    failed = lighthouse.evaluate({"response_time_p95": 700, "throughput": 9})
    after = lighthouse.evaluate({"response_time_p95": 540, "throughput": 9})
    assert after.data["evaluation"]["comparedEvents"] == [failed.id]
    assert p95(after)["value"]["comparedValue"] == 700


def test_an_sli_failure_stored_as_fail_is_no_baseline_for_pass_only_comparisons() -> None:
    lighthouse = Lighthouse(slo=SLO_PASS_ONLY)
    first = lighthouse.evaluate({"response_time_p95": 500, "throughput": 9})
    request = only(lighthouse.handle(triggered(evaluation={"timeframe": "5m"})), "tasks.get-sli")
    lighthouse.handle(sli_finished(request, {"response_time_p95": 100, "throughput": None}, result="fail",
                                   message="unable to retrieve metrics"))
    after = lighthouse.evaluate({"response_time_p95": 540, "throughput": 9})
    # data.result was forced to fail: Keptn's datastore filter on data.result leaves it out.
    assert after.data["evaluation"]["comparedEvents"] == [first.id]


# --- invalidation ----------------------------------------------------------------------------------


def test_an_invalidated_result_is_left_out_of_later_comparisons() -> None:
    lighthouse = Lighthouse()
    first = lighthouse.evaluate({"response_time_p95": 500, "throughput": 9})
    second_trigger = triggered(evaluation={"timeframe": "5m"})
    request = only(lighthouse.handle(second_trigger), "tasks.get-sli")
    lighthouse.handle(sli_finished(request, {"response_time_p95": 900, "throughput": 9}))

    decision = lighthouse.handle(invalidated(second_trigger.id))
    assert decision.outputs == ()
    assert decision.state is not None and [h.invalidated for h in decision.state.history] == [True, False]

    after = lighthouse.evaluate({"response_time_p95": 540, "throughput": 9})
    assert after.data["evaluation"]["comparedEvents"] == [first.id]
    assert p95(after)["value"]["comparedValue"] == 500


def test_invalidating_an_unknown_or_already_invalidated_evaluation_changes_nothing() -> None:
    lighthouse = Lighthouse()
    trigger = triggered(evaluation={"timeframe": "5m"})
    lighthouse.handle(sli_finished(only(lighthouse.handle(trigger), "tasks.get-sli"), {"response_time_p95": 500}))
    lighthouse.handle(invalidated(trigger.id))
    before = lighthouse.state
    for event in (invalidated(trigger.id), invalidated(str(uuid.uuid4()))):
        decision = lighthouse.handle(event)
        assert (decision.state, decision.outputs) == (before, ())


# --- redelivery, bounds, the stored state ----------------------------------------------------------


def test_a_redelivered_trigger_sends_nothing_again() -> None:
    lighthouse = Lighthouse()
    trigger = triggered(evaluation={"timeframe": "5m"})
    first = lighthouse.handle(trigger)
    again = lighthouse.handle(trigger)
    assert len(first.emitted) == 2
    assert again.outputs == ()
    assert lighthouse.state is not None and len(lighthouse.state.pending) == 1


def test_a_redelivered_sli_answer_scores_once() -> None:
    lighthouse = Lighthouse()
    request = only(lighthouse.handle(triggered(evaluation={"timeframe": "5m"})), "tasks.get-sli")
    answer = sli_finished(request, {"response_time_p95": 500, "throughput": 9})
    assert len(lighthouse.handle(answer).emitted) == 1
    assert lighthouse.handle(answer).outputs == ()
    assert lighthouse.state is not None and len(lighthouse.state.history) == 1


def test_output_ids_derive_from_the_input_so_a_replay_re_emits_the_same_events() -> None:
    trigger = triggered(evaluation={"timeframe": "5m"})
    one, two = Lighthouse().handle(trigger), Lighthouse().handle(trigger)
    assert [s.event.id for s in one.emitted] == [s.event.id for s in two.emitted]
    assert [s.event for s in one.emitted] == [s.event for s in two.emitted]
    assert len({s.event.id for s in one.emitted} | {trigger.id}) == 3


def test_the_history_keeps_only_the_newest_results() -> None:
    lighthouse = Lighthouse(history_size=3)
    finished = [lighthouse.evaluate({"response_time_p95": 500 + n, "throughput": 9}) for n in range(5)]
    assert lighthouse.state is not None
    assert [h.id for h in lighthouse.state.history] == [f.id for f in reversed(finished[-3:])]


def test_unanswered_sli_requests_are_bounded() -> None:
    lighthouse = Lighthouse()
    requests = [only(lighthouse.handle(triggered(evaluation={"timeframe": "5m"})), "tasks.get-sli")
                for _ in range(MAX_PENDING + 2)]
    assert lighthouse.state is not None
    assert [p.get_sli_id for p in lighthouse.state.pending] == [r.id for r in requests[2:]]
    # The oldest request was given up: its late answer is ignored; a newer one is still scored.
    assert lighthouse.handle(sli_finished(requests[0], {"response_time_p95": 500})).outputs == ()
    assert finished_of(lighthouse.handle(sli_finished(requests[-1], {"response_time_p95": 500})))


def test_the_state_survives_a_json_round_trip_and_decides_the_same_afterwards() -> None:
    lighthouse = Lighthouse()
    lighthouse.evaluate({"response_time_p95": 500, "throughput": 9})
    second = triggered(evaluation={"timeframe": "5m"}, labels={"buildId": "7"})
    request = only(lighthouse.handle(second), "tasks.get-sli")
    lighthouse.handle(sli_finished(request, {"response_time_p95": 520, "throughput": 9}))
    lighthouse.handle(invalidated(second.id))
    pending = only(lighthouse.handle(triggered(evaluation={"timeframe": "5m"})), "tasks.get-sli")
    state = lighthouse.state
    assert state is not None and state.pending and state.history and state.recent

    stored = state.model_dump_json().encode()  # what the shell writes to the table
    restored = EvaluatorState.model_validate_json(stored)
    assert restored == state

    answer = sli_finished(pending, {"response_time_p95": 545, "throughput": 9})
    config = lighthouse.config()
    from_memory, from_table = decide(state, answer, config, NOW), decide(restored, answer, config, NOW)
    assert from_memory.emitted == from_table.emitted
    assert from_memory.state == from_table.state
    assert p95(finished_of(from_table))["value"]["comparedValue"] == 500


def test_the_keys_state_is_never_changed_in_place() -> None:
    # The shell may still hold the state it passed in (e.g. to retry after a failed send).
    lighthouse = Lighthouse()
    lighthouse.evaluate({"response_time_p95": 500, "throughput": 9})
    trigger = triggered(evaluation={"timeframe": "5m"})
    request = only(lighthouse.handle(trigger), "tasks.get-sli")
    config = lighthouse.config()
    for event in (triggered(evaluation={"timeframe": "5m"}),
                  sli_finished(request, {"response_time_p95": 510, "throughput": 9})):
        state = lighthouse.state
        assert state is not None
        snapshot = state.model_dump_json()
        decision = decide(state, event, config, NOW)
        assert decision.state is not state and decision.state != state
        assert state.model_dump_json() == snapshot, event.type
        lighthouse.handle(event)
    state = lighthouse.state
    assert state is not None
    snapshot = state.model_dump_json()
    assert decide(state, invalidated(trigger.id), config, NOW).state is not state
    assert state.model_dump_json() == snapshot


def test_the_key_of_an_event_is_its_project_stage_and_service() -> None:
    # The shell keys the table by this; the flow's outputs must stay on the same key.
    lighthouse = Lighthouse()
    decision = lighthouse.handle(triggered(evaluation={"timeframe": "5m"}))
    assert {str(Key.of_data(s.event.data)) for s in decision.emitted} == {f"{PROJECT}/{STAGE}/{SERVICE}"}
