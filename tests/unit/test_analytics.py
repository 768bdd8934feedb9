"""Analytics from a recorded audit stream, with every expected figure worked out by hand below.

The stream (project `shop`, stages dev/staging/production, report window 2026-01-01 to 2026-01-11):

| ctx | service | what happens (times in UTC) |
|---|---|---|
| F | carts | dev trigger 2025-12-31 22:00; production deployed 01-01 01:00, delivery pass 01:30 |
| A | carts | dev trigger 01-01 10:00; staging delivery pass 10:45 (eval pass 95); production deployed 11:00, eval pass 100, delivery pass 11:30 |
| B | carts | dev trigger 01-03 09:00; production deployed 12:10, eval FAIL 50 (response_time_p95) 12:20, delivery fail 12:30, rollback 12:32 |
| C | carts | dev trigger 01-05 08:00; production deployed 10:05, delivery pass 10:30 |
| P1 | carts | production problem opened 01-05 14:00 (4 h after C), action scaling 14:05 -> pass, CLOSED 14:30 |
| D | orders | dev trigger 01-07 00:00; production deployed 06:10, delivery pass 07:00 |
| P2 | orders | production problem opened 01-08 10:00 (> 24 h after D), toggle-feature fails, scaling pending, escalated; never closed |
| E | carts | production delivery on 01-12: after the window |
| evals | | staging carts 01-04 fail 0 (throughput) but invalidated; dev carts 01-06 warning 80; staging orders 01-06 errored 0; production orders 01-09 fail 40 (error_rate, response_time_p95) |

DORA (production): deployments F, A, C, D = 4 -> 0.4/day. Lead times 12600, 5400, 9000, 25200 s:
median 10800, mean 13050, p90 (inclusive: position 2.7) 12600 + 0.7 * 12600 = 21420.
Changes F, A, B, C, D = 5; B failed (failed evaluation and rollback), C failed (problem P1);
D's problem P2 comes 27 h 50 min later (> 24 h) -> CFR 2/5. Problems P1 (restored in 1800 s), P2 (unresolved).
Quality gates: counted 95 pass, 100 pass, 50 fail, 80 warning, 0 fail (errored), 40 fail = 6;
the invalidated one is left out. Remediation: 3 actions, 1 succeeded, 1 failed, 1 pending, 1 escalation.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tidegate.readside.analytics import Analytics, ReportOptions, analytics_from_store, parse_since
from tidegate.readside.analytics.window import WindowError, parse_until
from tidegate.readside.history import HistoryStore, entry_of_event
from tidegate.schemas.events import KeptnEvent, sequence_type, task_type

PROJECT = "shop"
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 1, 11, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0, month: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


class Recorder:
    """Builds the audit stream: each event gets a readable unique id."""

    def __init__(self) -> None:
        self.events: list[KeptnEvent] = []

    def add(self, type_: str, time: datetime, context: str, stage: str, service: str, *,
            triggeredid: str | None = None, ident: str | None = None, **data: Any) -> KeptnEvent:
        event = KeptnEvent(
            id=ident or f"{context}-{len(self.events)}",
            type=type_,
            time=time,
            source="test",
            shkeptncontext=context,
            triggeredid=triggeredid,
            data={"project": PROJECT, "stage": stage, "service": service, **data},
        )
        self.events.append(event)
        return event

    def sequence(self, context: str, stage: str, service: str, triggered: datetime, finished: datetime | None,
                 result: str = "pass", name: str = "delivery", **data: Any) -> None:
        trigger = self.add(sequence_type(stage, name, "triggered"), triggered, context, stage, service, **data)
        if finished is not None:
            self.add(sequence_type(stage, name, "finished"), finished, context, stage, service,
                     triggeredid=trigger.id, result=result, status="succeeded")

    def task(self, task: str, context: str, stage: str, service: str, triggered: datetime,
             finished: datetime | None, result: str = "pass", status: str = "succeeded", **data: Any) -> str:
        trigger = self.add(task_type(task, "triggered"), triggered, context, stage, service, **data)
        if finished is not None:
            self.add(task_type(task, "finished"), finished, context, stage, service,
                     triggeredid=trigger.id, result=result, status=status)
        return trigger.id

    def evaluation(self, context: str, stage: str, service: str, time: datetime, result: str, score: float,
                   failed: tuple[str, ...] = (), status: str = "succeeded", triggeredid: str | None = None) -> None:
        indicators = [{"value": {"metric": sli, "value": 1, "success": True}, "status": "fail", "score": 0}
                      for sli in failed]
        indicators.append({"value": {"metric": "throughput", "value": 5, "success": True}, "status": "info",
                           "score": 0})
        self.add(task_type("evaluation", "finished"), time, context, stage, service,
                 triggeredid=triggeredid or f"{context}-evaluation-{time.isoformat()}", result=result,
                 status=status, evaluation={"result": result, "score": score, "indicatorResults": indicators})


def delivery(rec: Recorder, context: str, service: str, first: datetime, deployed: datetime,
             finished: datetime, result: str = "pass") -> None:
    """A delivery that starts in dev (its trigger is `first`) and reaches production."""
    rec.sequence(context, "dev", service, first, None)
    rec.sequence(context, "production", service, deployed - timedelta(minutes=15), None)
    trigger = rec.events[-1]
    rec.task("deployment", context, "production", service, deployed - timedelta(minutes=10), deployed)
    rec.add(sequence_type("production", "delivery", "finished"), finished, context, "production", service,
            triggeredid=trigger.id, result=result, status="succeeded")


def recorded_stream() -> list[KeptnEvent]:
    rec = Recorder()
    delivery(rec, "F", "carts", at(31, 22, month=12, year=2025), at(1, 1), at(1, 1, 30))
    # A: through staging with a quality gate, then production.
    rec.sequence("A", "dev", "carts", at(1, 10), at(1, 10, 20))
    rec.sequence("A", "staging", "carts", at(1, 10, 21), at(1, 10, 45))
    rec.task("deployment", "A", "staging", "carts", at(1, 10, 22), at(1, 10, 30))
    rec.evaluation("A", "staging", "carts", at(1, 10, 40), "pass", 95)
    rec.sequence("A", "production", "carts", at(1, 10, 46), None)
    production_trigger = rec.events[-1]
    rec.task("deployment", "A", "production", "carts", at(1, 10, 47), at(1, 11))
    rec.evaluation("A", "production", "carts", at(1, 11, 10), "pass", 100)
    rec.add(sequence_type("production", "delivery", "finished"), at(1, 11, 30), "A", "production", "carts",
            triggeredid=production_trigger.id, result="pass", status="succeeded")
    # B: deployed, then its evaluation fails, the delivery fails and a rollback follows.
    delivery(rec, "B", "carts", at(3, 9), at(3, 12, 10), at(3, 12, 30), result="fail")
    rec.evaluation("B", "production", "carts", at(3, 12, 20), "fail", 50, failed=("response_time_p95",))
    rec.sequence("B", "production", "carts", at(3, 12, 31), None, name="rollback")
    rec.task("rollback", "B", "production", "carts", at(3, 12, 32), at(3, 12, 40))
    # C: a clean delivery, then a problem 4 hours later.
    delivery(rec, "C", "carts", at(5, 8), at(5, 10, 5), at(5, 10, 30))
    problem = {"problem": {"ProblemTitle": "slow carts", "State": "OPEN"}}
    rec.sequence("P1", "production", "carts", at(5, 14), None, name="remediation", **problem)
    rec.task("action", "P1", "production", "carts", at(5, 14, 5), at(5, 14, 10),
             action={"name": "scale up", "action": "scaling"})
    rec.add("sh.keptn.events.problem", at(5, 14, 30), "P1", "production", "carts",
            problem={"State": "CLOSED", "ProblemTitle": "slow carts"})
    # D: orders, and a problem more than 24 hours after its change.
    delivery(rec, "D", "orders", at(7, 0), at(7, 6, 10), at(7, 7))
    rec.sequence("P2", "production", "orders", at(8, 10), None, name="remediation", **problem)
    rec.task("action", "P2", "production", "orders", at(8, 10, 5), at(8, 10, 10), result="fail",
             action={"name": "toggle", "action": "toggle-feature"})
    rec.task("action", "P2", "production", "orders", at(8, 10, 20), None, action={"name": "scale", "action": "scaling"})
    rec.add("sh.tidegate.remediation.escalated", at(8, 10, 30), "P2", "production", "orders", reason="exhausted")
    # E: after the window.
    delivery(rec, "E", "carts", at(12, 8), at(12, 9), at(12, 10))
    # More quality gates: an invalidated one, a warning, an errored one, a late production failure.
    rec.evaluation("X", "staging", "carts", at(4, 9), "fail", 0, failed=("throughput",), triggeredid="X-eval")
    rec.add(task_type("evaluation", "invalidated"), at(4, 10), "X", "staging", "carts", triggeredid="X-eval")
    rec.evaluation("Y", "dev", "carts", at(6, 9), "warning", 80)
    rec.evaluation("Z", "staging", "orders", at(6, 11), "fail", 0, status="errored")
    rec.evaluation("W", "production", "orders", at(9, 12), "fail", 40, failed=("error_rate", "response_time_p95"))
    return rec.events


def with_late_and_duplicated(events: list[KeptnEvent]) -> list[KeptnEvent]:
    """The stream as a consumer may meet it: some events late (out of time order), some twice."""
    mixed = list(events)
    random.Random(7).shuffle(mixed)
    return mixed + mixed[::5]


def report_json(analytics: Analytics, **options: Any) -> dict[str, Any]:
    return analytics.report(PROJECT, SINCE, UNTIL, ReportOptions(**options)).to_json_dict()


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    analytics = Analytics()
    analytics.apply_all(with_late_and_duplicated(recorded_stream()))
    return report_json(analytics)


def test_dora_of_production_matches_the_hand_computed_figures(report: dict[str, Any]) -> None:
    assert report["productionStage"] == "production"
    assert report["productionStageFrom"] == "inferred"
    dora = report["dora"]
    assert dora["stage"] == "production"
    assert dora["deployments"] == 4
    assert dora["deploymentsPerDay"] == 0.4
    assert dora["leadTime"] == {"count": 4, "medianSeconds": 10800.0, "p90Seconds": 21420.0, "meanSeconds": 13050.0}
    assert (dora["changes"], dora["failedChanges"], dora["changeFailureRate"]) == (5, 2, 0.4)
    assert dora["failureCauses"] == {"rollback": 1, "failed_evaluation": 1, "remediation": 1}
    assert (dora["problems"], dora["restored"], dora["unresolved"]) == (2, 1, 1)
    assert dora["timeToRestore"] == {"count": 1, "medianSeconds": 1800.0, "p90Seconds": 1800.0, "meanSeconds": 1800.0}


def test_quality_gate_trends(report: dict[str, Any]) -> None:
    gates = report["qualityGates"]
    assert gates["evaluations"] == 6
    assert gates["evaluationsPerDay"] == 0.6
    assert gates["results"] == {"pass": 2, "warning": 1, "fail": 3}
    assert gates["shares"] == {"pass": 0.3333, "warning": 0.1667, "fail": 0.5}
    assert (gates["errored"], gates["invalidated"]) == (1, 1)
    score = gates["score"]
    assert (score["count"], score["minimum"], score["median"], score["mean"], score["maximum"]) == (6, 0, 65, 60.8333, 100)
    assert {b["lower"]: b["count"] for b in score["buckets"] if b["count"]} == {0: 1, 40: 1, 50: 1, 80: 1, 90: 2}
    assert [(d["date"], d["evaluations"]) for d in gates["daily"]] == [
        ("2026-01-01", 2), ("2026-01-03", 1), ("2026-01-06", 2), ("2026-01-09", 1)
    ]
    assert gates["daily"][2]["results"] == {"pass": 0, "warning": 1, "fail": 1}
    assert gates["failingSlis"] == [
        {"sli": "response_time_p95", "failures": 2, "share": 0.3333},
        {"sli": "error_rate", "failures": 1, "share": 0.1667},
    ]


def test_remediation_outcomes(report: dict[str, Any]) -> None:
    remediation = report["remediation"]
    assert (remediation["actions"], remediation["succeeded"], remediation["failed"], remediation["pending"]) == (3, 1, 1, 1)
    assert remediation["successRate"] == 0.5
    assert remediation["byAction"] == [
        {"action": "scaling", "runs": 2, "succeeded": 1, "failed": 0, "pending": 1, "successRate": 1.0},
        {"action": "toggle-feature", "runs": 1, "succeeded": 0, "failed": 1, "pending": 0, "successRate": 0.0},
    ]
    assert (remediation["escalations"], remediation["escalationReasons"]) == (1, {"exhausted": 1})


def test_per_stage_and_service(report: dict[str, Any]) -> None:
    stages = {stage["stage"]: stage for stage in report["stages"]}
    assert sorted(stages) == ["dev", "production", "staging"]
    staging = stages["staging"]
    # Only A was delivered into staging: from its dev trigger 10:00 to the staging finish 10:45.
    assert staging["dora"]["deployments"] == 1
    assert staging["dora"]["leadTime"]["medianSeconds"] == 2700.0
    assert staging["qualityGates"]["evaluations"] == 2  # A's pass and orders' errored one
    assert staging["qualityGates"]["invalidated"] == 1
    services = {s["service"]: s for s in stages["production"]["services"]}
    assert services["carts"]["dora"]["deployments"] == 3  # F, A, C
    assert services["carts"]["dora"]["changeFailureRate"] == round(2 / 4, 4)  # B and C of F, A, B, C
    assert services["orders"]["dora"]["changeFailureRate"] == 0.0
    assert services["orders"]["remediation"]["escalations"] == 1


def test_arrival_order_and_repeats_change_nothing() -> None:
    in_order = Analytics()
    assert in_order.apply_all(recorded_stream()) == len(recorded_stream())
    mixed = Analytics()
    stream = with_late_and_duplicated(recorded_stream())
    assert mixed.apply_all(stream) == len(recorded_stream())  # repeats are not new
    assert json.dumps(report_json(in_order)) == json.dumps(report_json(mixed))


def test_a_late_event_lands_in_its_own_time() -> None:
    stream = recorded_stream()
    finish_of_c = next(e for e in stream if e.shkeptncontext == "C" and e.type.endswith("production.delivery.finished"))
    analytics = Analytics()
    analytics.apply_all(e for e in stream if e.id != finish_of_c.id)
    assert report_json(analytics)["dora"]["deployments"] == 3
    analytics.apply(finish_of_c)  # arrives days later, counts where it happened
    assert report_json(analytics)["dora"]["deployments"] == 4


def test_replaying_the_stored_audit_gives_identical_figures(tmp_path: Any) -> None:
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    try:
        stream = with_late_and_duplicated(recorded_stream())
        store.ingest(entry_of_event(e) for e in stream)
        first = analytics_from_store(store, PROJECT).report(PROJECT, SINCE, UNTIL).to_json_dict()
        direct = Analytics()
        direct.apply_all(stream)
        assert first == report_json(direct)
        store.reset()  # what `tidegate history rebuild` does before replaying audit
        store.ingest(entry_of_event(e) for e in reversed(stream))
        replayed = analytics_from_store(store, PROJECT).report(PROJECT, SINCE, UNTIL).to_json_dict()
        assert json.dumps(replayed) == json.dumps(first)
    finally:
        store.close()


def test_a_given_production_stage_and_stage_order_are_used() -> None:
    analytics = Analytics()
    analytics.apply_all(recorded_stream())
    report = report_json(analytics, production_stage="staging", production_stage_from="shipyard",
                         stage_order=("production", "staging", "dev"))
    assert (report["productionStage"], report["productionStageFrom"]) == ("staging", "shipyard")
    assert report["dora"]["deployments"] == 1
    assert [s["stage"] for s in report["stages"]] == ["production", "staging", "dev"]


def test_the_failure_window_is_configurable() -> None:
    analytics = Analytics()
    analytics.apply_all(recorded_stream())
    # With 48 hours P2 (27 h 50 min after D) fails D too.
    report = report_json(analytics, failure_window=timedelta(hours=48))
    assert (report["dora"]["failedChanges"], report["dora"]["failureCauses"]["remediation"]) == (3, 2)


def test_a_project_without_events_reports_zeros() -> None:
    report = Analytics().report("empty", SINCE, UNTIL)
    assert report.production_stage is None and report.production_stage_from == "none"
    assert report.dora.deployments == 0 and report.dora.change_failure_rate is None
    assert report.quality_gates.evaluations == 0 and report.quality_gates.shares["pass"] is None
    assert report.stages == []


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ends .* before it starts"):
        Analytics().report(PROJECT, UNTIL, SINCE)


@pytest.mark.parametrize(("text", "span"), [("30d", timedelta(days=30)), ("2w", timedelta(weeks=2)),
                                            ("12h", timedelta(hours=12)), ("1h30m", timedelta(minutes=90))])
def test_since_accepts_days_weeks_and_go_durations(text: str, span: timedelta) -> None:
    assert parse_since(text) == span


@pytest.mark.parametrize("text", ["thirty days", "0d", "-5h", ""])
def test_since_that_is_not_a_positive_duration_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(WindowError, match="30d"):
        parse_since(text)


def test_until_reads_iso_times_and_defaults_to_now() -> None:
    now = datetime(2026, 2, 1, tzinfo=UTC)
    assert parse_until(None, now) == now
    assert parse_until("2026-01-11T00:00:00Z", now) == UNTIL
    with pytest.raises(WindowError, match="2026-01-31T00:00:00Z"):
        parse_until("yesterday", now)
