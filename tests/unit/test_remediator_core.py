"""The remediator's pure core: action selection, step counters, escalation, cooldown, cap, duplicates, closing."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tidegate.agents.remediator import (
    ESCALATED_TYPE,
    QUOTA_DENIED_TYPE,
    QUOTA_GRANTED_TYPE,
    QUOTA_REQUESTED_TYPE,
    AuditKind,
    Decision,
    IgnoreReason,
    ProblemStatus,
    RemediationFileProblem,
    RemediationInput,
    RemediationState,
    RemediatorSettings,
    decide,
    is_relevant,
    next_deadline,
    remediation_tick,
)
from tidegate.schemas.events import KeptnEvent, sequence_type
from tidegate.schemas.ids import derived_id
from tidegate.schemas.keys import Key
from tidegate.schemas.remediation import Remediation, convert_legacy_remediation
from tidegate.schemas.tidegate_events import CONTROL_TYPE

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
KEY = Key("sockshop", "production", "carts")
CTX_A = "11111111-1111-4111-8111-111111111111"
CTX_B = "22222222-2222-4222-8222-222222222222"
CTX_C = "33333333-3333-4333-8333-333333333333"

REMEDIATION = Remediation.model_validate({
    "apiVersion": "spec.keptn.sh/0.1.4",
    "kind": "Remediation",
    "metadata": {"name": "carts-remediation"},
    "spec": {"remediations": [
        {"problemType": "response_time_p95", "actionsOnOpen": [
            {"name": "Scale up", "action": "scaling", "description": "Add a replica", "value": "1"},
            {"name": "Promotion off", "action": "toggle-feature", "value": {"EnablePromotion": "off"}},
        ]},
        {"problemType": "HighLatency", "actionsOnOpen": [{"name": "Restart", "action": "restart"}]},
        {"problemType": "default", "actionsOnOpen": [{"name": "Escalate", "action": "escalate", "value": {}}]},
    ]},
})

FREE = RemediatorSettings(cooldown=timedelta(0), max_actions_per_hour=0)


def get_action(
    context: str = CTX_A,
    title: str = "response_time_p95",
    root: str = "",
    problem_id: str | None = None,
    *,
    event_id: str | None = None,
    index: int = 0,
    key: Key = KEY,
    extra_problem: dict[str, Any] | None = None,
) -> KeptnEvent:
    problem: dict[str, Any] = {"ProblemTitle": title, "rootCause": root, "State": "OPEN", **(extra_problem or {})}
    if problem_id:
        problem["ProblemID"] = problem_id
    return KeptnEvent(
        id=event_id or derived_id(f"{context}:{title}", f"get-action:{index}"),
        type="sh.keptn.event.get-action.triggered",
        shkeptncontext=context,
        gitcommitid="abc123",
        time=T0,
        data={"project": key.project, "stage": key.stage, "service": key.service, "labels": {"buildId": "7"},
              "problem": problem, "get-action": {"actionIndex": index}},
    )


def problem_closed(context: str = CTX_A, problem_id: str = "fp-1", event_id: str | None = None) -> KeptnEvent:
    return KeptnEvent(
        id=event_id or derived_id(context, "closed"),
        type="sh.keptn.events.problem",
        shkeptncontext=context,
        data={"project": KEY.project, "stage": KEY.stage, "service": KEY.service, "State": "CLOSED",
              "ProblemID": problem_id, "ProblemTitle": "response_time_p95"},
    )


def remediation_finished(context: str, result: str, status: str = "succeeded") -> KeptnEvent:
    return KeptnEvent(
        id=derived_id(context, f"finished:{result}:{status}"),
        type=sequence_type(KEY.stage, "remediation", "finished"),
        shkeptncontext=context,
        data={"project": KEY.project, "stage": KEY.stage, "service": KEY.service, "result": result, "status": status},
    )


def finished_of(decision: Decision) -> KeptnEvent:
    [finished] = [e for e in decision.events if e.type == "sh.keptn.event.get-action.finished"]
    return finished


def types_of(decision: Decision) -> list[str]:
    return [e.type for e in decision.events]


class Run:
    """Feeds events to the core like the shell does: one state per key, outputs routed back in order."""

    def __init__(self, settings: RemediatorSettings = FREE, remediation: RemediationInput = REMEDIATION) -> None:
        self.settings = settings
        self.remediation = remediation
        self.states: dict[Key, RemediationState | None] = {}
        self.sent: list[KeptnEvent] = []
        self.audit: list[AuditKind] = []

    def feed(self, event: KeptnEvent, now: datetime = T0, *, follow: bool = True) -> Decision:
        key = Key.of_data(event.data)
        decision = decide(self.states.get(key), event, self.remediation, self.settings, now)
        self.states[key] = decision.state
        self.audit += [record.kind for record in decision.audit]
        for emitted in decision.emitted:
            self.sent.append(emitted.event)
            if follow and emitted.event.type in (QUOTA_REQUESTED_TYPE, QUOTA_GRANTED_TYPE, QUOTA_DENIED_TYPE):
                self.feed(emitted.event, now)
        return decision

    def state(self, key: Key = KEY) -> RemediationState:
        state = self.states.get(key)
        assert state is not None
        return state

    def answers(self) -> list[KeptnEvent]:
        return [e for e in self.sent if e.type == "sh.keptn.event.get-action.finished"]


# -- action selection and the step counter ------------------------------------------------------------


def test_the_first_get_action_is_answered_started_then_finished_with_the_first_action() -> None:
    event = get_action()
    decision = decide(None, event, REMEDIATION, FREE, T0)
    started, finished = decision.events
    assert started.type == "sh.keptn.event.get-action.started"
    assert started.id == derived_id(event.id, "started")
    assert started.triggeredid == event.id and started.shkeptncontext == CTX_A
    assert finished.id == derived_id(event.id, "finished")
    assert finished.triggeredid == event.id
    assert finished.gitcommitid == "abc123"
    assert finished.data["status"] == "succeeded" and finished.data["result"] == "pass"
    assert finished.data["action"] == {"name": "Scale up", "action": "scaling", "description": "Add a replica",
                                       "value": "1"}
    assert finished.data["get-action"] == {"actionIndex": 1}
    assert finished.data["labels"] == {"buildId": "7"}
    assert [e.key for e in decision.emitted] == [KEY, KEY]
    assert decision.state is not None
    record = decision.state.problem(CTX_A)
    assert record is not None and record.steps == 1 and record.status is ProblemStatus.OPEN
    assert [r.kind for r in decision.audit] == [AuditKind.ACTION_SELECTED]


def test_the_counter_lives_in_the_state_whatever_the_payload_says() -> None:
    run = Run()
    # Keptn's merge kept the first actionIndex forever; here the payload's index is ignored.
    run.feed(get_action(index=0, event_id="ga-1"))
    run.feed(get_action(index=0, event_id="ga-2"))
    first, second = run.answers()
    assert first.data["action"]["name"] == "Scale up"
    assert second.data["action"]["name"] == "Promotion off"
    assert second.data["get-action"] == {"actionIndex": 2}


def test_exhausted_actions_fail_and_escalate_with_the_actions_tried() -> None:
    run = Run()
    for n in range(3):
        run.feed(get_action(event_id=f"ga-{n}"))
    last = run.answers()[-1]
    assert last.data["status"] == "succeeded" and last.data["result"] == "fail"
    assert "all 2 action(s)" in last.data["message"] and "'Scale up', 'Promotion off'" in last.data["message"]
    assert "action" not in last.data
    [escalation] = [e for e in run.sent if e.type == ESCALATED_TYPE]
    assert escalation.id == derived_id("ga-2", "escalated")
    assert escalation.shkeptncontext == CTX_A
    assert escalation.data["reason"] == "exhausted"
    assert [a["name"] for a in escalation.data["actionsTried"]] == ["Scale up", "Promotion off"]
    assert escalation.data["problem"]["problemTitle"] == "response_time_p95"
    assert run.state().problem(CTX_A).status is ProblemStatus.ESCALATED  # type: ignore[union-attr]
    assert AuditKind.ESCALATED in run.audit
    # A later get-action of the escalated run fails again without a second escalation.
    run.feed(get_action(event_id="ga-9"))
    assert run.answers()[-1].data["result"] == "fail"
    assert len([e for e in run.sent if e.type == ESCALATED_TYPE]) == 1


@pytest.mark.parametrize(
    ("title", "root", "expected"),
    [
        ("response_time_p95", "HighLatency", "Restart"),  # rootCause first
        ("response_time_p95", "unknown cause", "Scale up"),  # then problemTitle
        ("disk full", "", "Escalate"),  # then default
    ],
)
def test_actions_are_chosen_by_root_cause_then_title_then_default(title: str, root: str, expected: str) -> None:
    decision = decide(None, get_action(title=title, root=root), REMEDIATION, FREE, T0)
    assert finished_of(decision).data["action"]["name"] == expected


def test_no_matching_problem_type_fails_and_escalates() -> None:
    only = Remediation.model_validate({"apiVersion": "spec.keptn.sh/0.1.4", "kind": "Remediation", "spec": {
        "remediations": [{"problemType": "error_rate", "actionsOnOpen": [{"action": "x"}]}]}})
    decision = decide(None, get_action(title="disk full"), only, FREE, T0)
    finished = finished_of(decision)
    assert finished.data["status"] == "succeeded" and finished.data["result"] == "fail"
    assert "'disk full'" in finished.data["message"] and "'default'" in finished.data["message"]
    assert ESCALATED_TYPE in types_of(decision)


def test_no_remediation_file_is_errored_and_names_what_to_upload() -> None:
    decision = decide(None, get_action(), None, FREE, T0)
    finished = finished_of(decision)
    assert finished.data["status"] == "errored" and finished.data["result"] == "fail"
    assert "no remediation.yaml" in finished.data["message"]
    assert "'carts'" in finished.data["message"] and "'production'" in finished.data["message"]
    assert AuditKind.CONFIG_ERROR in [r.kind for r in decision.audit]


def test_an_unusable_remediation_file_is_errored_with_the_file_named() -> None:
    problem = RemediationFileProblem("sockshop/production/carts/remediation.yaml", "apiVersion 'v2' is not supported")
    finished = finished_of(decide(None, get_action(), problem, FREE, T0))
    assert finished.data["status"] == "errored"
    assert finished.data["message"].startswith("sockshop/production/carts/remediation.yaml cannot be used")
    assert "apiVersion 'v2'" in finished.data["message"]


def test_the_legacy_remediation_form_works_after_conversion() -> None:
    legacy = convert_legacy_remediation({"remediations": [
        {"name": "response_time_p95", "actions": [{"action": "featuretoggle", "value": "EnablePromotion:off"}]}]})
    finished = finished_of(decide(None, get_action(), legacy, FREE, T0))
    assert finished.data["action"]["action"] == "toggle-feature"
    assert finished.data["action"]["value"] == {"EnablePromotion": "off"}


def test_a_redelivered_get_action_is_ignored_and_changes_nothing() -> None:
    event = get_action()
    first = decide(None, event, REMEDIATION, FREE, T0)
    again = decide(first.state, event, REMEDIATION, FREE, T0 + timedelta(seconds=5))
    assert again.state is first.state
    assert again.events == []
    assert [i.reason for i in again.ignored] == [IgnoreReason.DUPLICATE]


def test_the_same_input_and_state_give_the_same_outputs() -> None:
    event = get_action()
    assert decide(None, event, REMEDIATION, FREE, T0).outputs == decide(None, event, REMEDIATION, FREE, T0).outputs


@pytest.mark.parametrize(
    ("data_change", "needle"),
    [({"problem": "slow"}, "cannot read"), ({"get-action": {"actionIndex": "many"}}, "cannot read")],
)
def test_an_unreadable_payload_is_answered_errored(data_change: dict[str, Any], needle: str) -> None:
    event = get_action()
    event = event.model_copy(update={"data": {**event.data, **data_change}})
    decision = decide(None, event, REMEDIATION, FREE, T0)
    assert types_of(decision)[0] == "sh.keptn.event.get-action.started"
    finished = finished_of(decision)
    assert finished.data["status"] == "errored" and needle in finished.data["message"]


def test_a_get_action_without_context_is_answered_errored() -> None:
    event = get_action().model_copy(update={"shkeptncontext": None})
    finished = finished_of(decide(None, event, REMEDIATION, FREE, T0))
    assert finished.data["status"] == "errored" and "shkeptncontext" in finished.data["message"]


def test_a_get_action_without_service_goes_to_the_dlq() -> None:
    event = get_action(key=Key("sockshop", "production", ""))
    decision = decide(None, event, REMEDIATION, FREE, T0)
    assert decision.events == []
    assert decision.ignored[0].dead_letter


# -- cooldown -------------------------------------------------------------------------------------------


def test_an_action_within_the_cooldown_waits_for_a_tick() -> None:
    settings = RemediatorSettings(cooldown=timedelta(seconds=60), max_actions_per_hour=0)
    run = Run(settings)
    run.feed(get_action(CTX_A, problem_id="fp-1"), T0)
    decision = run.feed(get_action(CTX_B, title="HighLatency", problem_id="fp-2"), T0 + timedelta(seconds=10))
    assert types_of(decision) == ["sh.keptn.event.get-action.started"]
    assert [r.kind for r in decision.audit] == [AuditKind.DEFERRED]
    assert next_deadline(run.state()) == T0 + timedelta(seconds=60)

    early = run.feed(remediation_tick(KEY, T0 + timedelta(seconds=30)), T0 + timedelta(seconds=30))
    assert early.events == [] and early.ignored[0].reason is IgnoreReason.NOTHING_TO_DO

    due = run.feed(remediation_tick(KEY, T0 + timedelta(seconds=60)), T0 + timedelta(seconds=60))
    finished = finished_of(due)
    assert finished.triggeredid == decision.events[0].triggeredid
    assert finished.data["action"]["name"] == "Restart"
    assert next_deadline(run.state()) is None
    assert run.state().last_action_at == T0 + timedelta(seconds=60)


def test_the_cooldown_does_not_delay_an_action_after_it_passed() -> None:
    settings = RemediatorSettings(cooldown=timedelta(seconds=60), max_actions_per_hour=0)
    run = Run(settings)
    run.feed(get_action(event_id="ga-1"), T0)
    decision = run.feed(get_action(event_id="ga-2"), T0 + timedelta(seconds=61))
    assert finished_of(decision).data["action"]["name"] == "Promotion off"


# -- cap per project --------------------------------------------------------------------------------------


def test_actions_need_a_grant_from_the_project_key() -> None:
    settings = RemediatorSettings(cooldown=timedelta(0), max_actions_per_hour=2)
    decision = decide(None, get_action(), REMEDIATION, settings, T0)
    started, request = decision.emitted
    assert started.event.type == "sh.keptn.event.get-action.started"
    assert request.event.type == QUOTA_REQUESTED_TYPE
    # Keyed by the project alone, so one worker owns the project's count.
    assert request.key == Key("sockshop")
    assert Key.of_data(request.event.data) == Key("sockshop")
    assert request.event.data["requester"] == {"stage": "production", "service": "carts"}

    grant = decide(None, request.event, None, settings, T0)
    [answer] = grant.emitted
    assert answer.event.type == QUOTA_GRANTED_TYPE and answer.key == KEY
    assert grant.state is not None and grant.state.grants == [T0]

    done = decide(decision.state, answer.event, REMEDIATION, settings, T0)
    assert finished_of(done).data["action"]["name"] == "Scale up"


def test_the_cap_per_hour_denies_and_escalates_then_frees_up() -> None:
    settings = RemediatorSettings(cooldown=timedelta(0), max_actions_per_hour=2)
    run = Run(settings)
    other = Key("sockshop", "production", "orders")
    run.feed(get_action(CTX_A, problem_id="fp-1", event_id="a"), T0)
    run.feed(get_action(CTX_B, problem_id="fp-2", event_id="b", key=other), T0 + timedelta(minutes=10))
    run.feed(get_action(CTX_C, problem_id="fp-3", event_id="c"), T0 + timedelta(minutes=20))
    first, second, third = run.answers()
    assert first.data["result"] == second.data["result"] == "pass"
    assert third.data["result"] == "fail"
    assert "already had 2 remediation actions" in third.data["message"]
    assert "TIDEGATE_REMEDIATION_MAX_ACTIONS_PER_HOUR=2" in third.data["message"]
    assert [e.data["reason"] for e in run.sent if e.type == ESCALATED_TYPE] == ["quota"]
    assert AuditKind.QUOTA_DENIED in run.audit
    assert QUOTA_DENIED_TYPE in [e.type for e in run.sent]
    # An hour after the first grant, the project may act again.
    run.feed(get_action(CTX_C, problem_id="fp-4", title="HighLatency", event_id="d", key=other),
             T0 + timedelta(minutes=61))
    assert run.answers()[-1].data["result"] == "pass"


def test_a_grant_for_nothing_pending_is_ignored() -> None:
    grant = KeptnEvent(type=QUOTA_GRANTED_TYPE, data={"project": "sockshop", "stage": "production",
                                                      "service": "carts", "triggeredid": "nope"})
    decision = decide(None, grant, REMEDIATION, FREE, T0)
    assert decision.events == [] and decision.ignored[0].reason is IgnoreReason.NOTHING_TO_DO


def test_a_quota_request_not_keyed_by_project_goes_to_the_dlq() -> None:
    bad = KeptnEvent(type=QUOTA_REQUESTED_TYPE, data={"project": "sockshop", "stage": "production",
                                                      "service": "carts", "triggeredid": "x"})
    assert decide(None, bad, None, FREE, T0).ignored[0].dead_letter


# -- one problem, one remediation -------------------------------------------------------------------------


def test_a_second_run_for_a_problem_being_remediated_is_declined() -> None:
    run = Run()
    run.feed(get_action(CTX_A, problem_id="fp-1", event_id="a1"))
    decision = run.feed(get_action(CTX_B, problem_id="fp-1", event_id="b1"))
    finished = finished_of(decision)
    assert finished.data["result"] == "fail" and "action" not in finished.data
    assert CTX_A in finished.data["message"] and "already being remediated" in finished.data["message"]
    assert [r.kind for r in decision.audit] == [AuditKind.DUPLICATE_DECLINED]
    assert ESCALATED_TYPE not in types_of(decision)
    assert run.state().problem(CTX_B).status is ProblemStatus.DECLINED  # type: ignore[union-attr]
    # The original run goes on with its next action.
    assert finished_of(run.feed(get_action(CTX_A, problem_id="fp-1", event_id="a2"))).data["result"] == "pass"


def test_the_same_problem_may_be_remediated_again_once_the_first_run_resolved_it() -> None:
    run = Run()
    run.feed(get_action(CTX_A, problem_id="fp-1", event_id="a1"))
    run.feed(remediation_finished(CTX_A, "pass"))
    assert run.state().problem(CTX_A).status is ProblemStatus.RESOLVED  # type: ignore[union-attr]
    decision = run.feed(get_action(CTX_B, problem_id="fp-1", event_id="b1"))
    assert finished_of(decision).data["action"]["name"] == "Scale up"


def test_a_failed_iteration_keeps_the_problem_open_and_an_aborted_run_ends_it() -> None:
    run = Run()
    run.feed(get_action(CTX_A, problem_id="fp-1", event_id="a1"))
    kept = run.feed(remediation_finished(CTX_A, "fail"))
    assert kept.ignored and run.state().problem(CTX_A).status is ProblemStatus.OPEN  # type: ignore[union-attr]
    run.feed(remediation_finished(CTX_A, "pass", status="aborted"))
    assert run.state().problem(CTX_A).status is ProblemStatus.ABORTED  # type: ignore[union-attr]
    assert AuditKind.REMEDIATION_FINISHED in run.audit


def test_a_forgotten_open_problem_no_longer_blocks_after_its_ttl() -> None:
    run = Run(RemediatorSettings(cooldown=timedelta(0), max_actions_per_hour=0, problem_ttl=timedelta(hours=1)))
    run.feed(get_action(CTX_A, problem_id="fp-1", event_id="a1"), T0)
    decision = run.feed(get_action(CTX_B, problem_id="fp-1", event_id="b1"), T0 + timedelta(hours=2))
    assert finished_of(decision).data["result"] == "pass"
    assert run.state().problem(CTX_A) is None


# -- closing problems ---------------------------------------------------------------------------------------


def test_closing_an_open_problem_aborts_its_run() -> None:
    run = Run()
    run.feed(get_action(CTX_A, problem_id="fp-1", event_id="a1"))
    decision = run.feed(problem_closed(CTX_A))
    [abort] = decision.emitted
    assert abort.event.type == CONTROL_TYPE
    assert abort.event.shkeptncontext == CTX_A
    assert abort.event.data == {"project": "sockshop", "stage": "production", "service": "carts", "state": "abort"}
    assert abort.key == KEY
    assert [r.kind for r in decision.audit] == [AuditKind.PROBLEM_CLOSED]
    assert run.state().problem(CTX_A).status is ProblemStatus.CLOSED  # type: ignore[union-attr]


def test_a_get_action_for_a_closed_problem_passes_after_an_abort_and_ends_the_loop() -> None:
    run = Run()
    run.feed(get_action(CTX_A, problem_id="fp-1", event_id="a1"))
    run.feed(problem_closed(CTX_A))
    decision = run.feed(get_action(CTX_A, problem_id="fp-1", event_id="a2"))
    assert types_of(decision) == [
        "sh.keptn.event.get-action.started", CONTROL_TYPE, "sh.keptn.event.get-action.finished",
    ]
    finished = finished_of(decision)
    assert finished.data["result"] == "pass" and "closed" in finished.data["message"]
    assert "action" not in finished.data


def test_closing_a_problem_whose_run_has_not_asked_yet_still_stops_it() -> None:
    decision = decide(None, problem_closed(CTX_A), REMEDIATION, FREE, T0)
    assert types_of(decision) == [CONTROL_TYPE]
    assert decision.state is not None
    assert decision.state.problem(CTX_A).status is ProblemStatus.CLOSED  # type: ignore[union-attr]
    again = decide(decision.state, problem_closed(CTX_A, event_id="other-id"), REMEDIATION, FREE, T0)
    assert again.events == [] and again.ignored[0].reason is IgnoreReason.NOTHING_TO_DO


def test_closing_a_problem_answers_the_action_waiting_for_its_cooldown() -> None:
    run = Run(RemediatorSettings(cooldown=timedelta(seconds=60), max_actions_per_hour=0))
    run.feed(get_action(CTX_A, problem_id="fp-1", event_id="a1"), T0)
    run.feed(get_action(CTX_B, title="HighLatency", problem_id="fp-2", event_id="b1"), T0 + timedelta(seconds=5))
    decision = run.feed(problem_closed(CTX_B, problem_id="fp-2"), T0 + timedelta(seconds=10))
    assert types_of(decision) == [CONTROL_TYPE, "sh.keptn.event.get-action.finished"]
    assert finished_of(decision).triggeredid == "b1"
    assert finished_of(decision).data["result"] == "pass"
    assert next_deadline(run.state()) is None


def test_an_open_problem_event_is_not_the_remediators_business() -> None:
    opened = problem_closed().model_copy(update={"data": {**problem_closed().data, "State": "OPEN"}})
    decision = decide(None, opened, REMEDIATION, FREE, T0)
    assert decision.events == [] and decision.ignored[0].reason is IgnoreReason.UNHANDLED_TYPE


# -- routing ----------------------------------------------------------------------------------------------


def test_relevance_filter() -> None:
    relevant: Iterable[KeptnEvent] = (get_action(), problem_closed(), remediation_finished(CTX_A, "pass"),
                                      remediation_tick(KEY, T0))
    assert all(is_relevant(e.type) for e in relevant)
    others = [KeptnEvent(type="sh.keptn.event.get-action.finished"), KeptnEvent(type="sh.keptn.event.dev.delivery.finished"),
              KeptnEvent(type="sh.tidegate.tick")]
    assert not any(is_relevant(e.type) for e in others)
    ignored = decide(None, others[1], None, FREE, T0)
    assert ignored.state is None and ignored.ignored[0].reason is IgnoreReason.UNHANDLED_TYPE


def test_settings_read_go_durations() -> None:
    settings = RemediatorSettings(cooldown="90s", problem_ttl="1h30m")  # type: ignore[arg-type]
    assert settings.cooldown == timedelta(seconds=90)
    assert settings.problem_ttl == timedelta(hours=1, minutes=30)
    assert RemediatorSettings(cooldown="45").cooldown == timedelta(seconds=45)  # type: ignore[arg-type]
