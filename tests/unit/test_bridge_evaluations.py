"""The Bridge's quality-gate views: one evaluation's breakdown and verdict, the heatmap, the score chart."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tidegate.bridge.evaluations import (
    heatmap,
    invalidation_event,
    read_evaluation,
    score_chart,
    slo_summary,
)
from tidegate.gateway.rules import check_event
from tidegate.schemas.events import KeptnEvent

REPO = Path(__file__).resolve().parents[2]
SLO = (REPO / "examples" / "sockshop" / "slo.yaml").read_bytes()
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def indicator(metric: str, value: float, status: str, *, compared: float = 0.0, key: bool = False,
              passes: Sequence[tuple[str, float, bool]] = (), warnings: Sequence[tuple[str, float, bool]] = (),
              score: float = 0, name: str = "") -> dict[str, Any]:
    return {
        "value": {"metric": metric, "value": value, "comparedValue": compared, "success": True},
        "score": score, "status": status, "keySli": key, "displayName": name,
        "passTargets": [{"criteria": c, "targetValue": t, "violated": v} for c, t, v in passes],
        "warningTargets": [{"criteria": c, "targetValue": t, "violated": v} for c, t, v in warnings],
    }


def finished(result: str, score: float, indicators: list[dict[str, Any]], *, when: datetime = T0,
             slo: bytes | None = SLO, message: str = "") -> dict[str, Any]:
    evaluation: dict[str, Any] = {"timeStart": "2024-05-01T11:55:00.000Z", "timeEnd": "2024-05-01T12:00:00.000Z",
                                  "result": result, "score": score, "indicatorResults": indicators,
                                  "comparedEvents": ["e-0"]}
    if slo is not None:
        evaluation["sloFileContent"] = base64.b64encode(slo).decode()
    event = KeptnEvent(type="sh.keptn.event.evaluation.finished", source="tidegate-evaluator", time=when,
                       shkeptncontext="ctx-1", triggeredid="eval-triggered-1",
                       data={"project": "sockshop", "stage": "staging", "service": "carts", "result": result,
                             "status": "succeeded", "message": message, "evaluation": evaluation})
    return event.to_json_dict()


FAILED = finished("fail", 0, [
    indicator("response_time_p95", 1.2, "fail", compared=0.31, name="Response time P95 (s)",
              passes=[("<=+10%", 0.341, True), ("<0.5", 0.5, True)], warnings=[("<=0.8", 0.8, True)]),
    indicator("error_rate", 0.08, "fail", compared=0.002, key=True, name="Error rate",
              passes=[("<=0.01", 0.01, True)], warnings=[("<=0.05", 0.05, True)]),
    indicator("throughput", 130, "pass", compared=120, name="Throughput", passes=[(">=-20%", 96, False)], score=1),
    indicator("response_time_p50", 0.6, "info", name="Response time P50 (s)"),
], message="Evaluation failed due to key_sli objective(s) failing: Error rate")


def test_the_breakdown_names_the_failed_key_sli_and_every_violated_target() -> None:
    evaluation = read_evaluation(FAILED)
    assert evaluation.result == "fail" and evaluation.score == 0
    assert evaluation.verdict() == "fail: the key SLI Error rate failed, which fails the whole evaluation (score 0)"
    violated = [(row.metric, target.criteria) for row, target in evaluation.violations]
    assert violated == [("response_time_p95", "<=+10%"), ("response_time_p95", "<0.5"), ("response_time_p95", "<=0.8"),
                        ("error_rate", "<=0.01"), ("error_rate", "<=0.05")]
    assert "throughput" not in [row.metric for row, _ in evaluation.violations], "a passed SLI explains nothing"


def test_weights_and_thresholds_come_from_the_slo_file_the_evaluation_used() -> None:
    evaluation = read_evaluation(FAILED)
    weights = {row.metric: row.weight for row in evaluation.indicators}
    # examples/sockshop/slo.yaml: the p95 objective has weight 2; the others the default 1.
    assert weights == {"response_time_p95": 2, "error_rate": 1, "throughput": 1, "response_time_p50": 1}
    assert (evaluation.pass_threshold, evaluation.warning_threshold) == (90.0, 75.0)
    assert evaluation.slo_problem is None


def test_an_unreadable_slo_file_is_reported_and_the_rest_still_shows() -> None:
    summary = slo_summary("not base64!")
    assert summary.weights == {} and summary.problem is not None
    assert "cannot be read" in summary.problem
    evaluation = read_evaluation(finished("pass", 100, [indicator("error_rate", 0.0, "pass")], slo=None))
    assert evaluation.indicators[0].weight is None and evaluation.slo_problem is None


def test_relative_change_against_the_baseline() -> None:
    p95 = read_evaluation(FAILED).indicators[0]
    assert p95.change is not None and round(p95.change, 1) == round((1.2 - 0.31) / 0.31 * 100, 1)
    p50 = read_evaluation(FAILED).indicators[3]
    assert p50.change is None, "no baseline, no change"


def test_verdicts_by_score_when_no_key_sli_failed() -> None:
    warning = read_evaluation(finished("warning", 80, [indicator("throughput", 100, "warning")]))
    assert warning.verdict() == ("warning: the score 80 is below the pass threshold of 90 and reaches the warning "
                                 "threshold of 75")
    low = read_evaluation(finished("fail", 50, [indicator("throughput", 10, "fail")]))
    assert low.verdict() == "fail: the score 50 is below the warning threshold of 75"
    good = read_evaluation(finished("pass", 100, [indicator("throughput", 150, "pass")]))
    assert good.verdict() == "pass: the score 100 reaches the pass threshold of 90"


def test_the_heatmap_puts_the_oldest_evaluation_left_and_marks_missing_slis() -> None:
    old = read_evaluation(finished("pass", 100, [indicator("throughput", 120, "pass"),
                                                 indicator("old_sli", 1, "info")], when=T0))
    new = read_evaluation(FAILED | {"id": "new", "time": "2024-05-01T13:00:00.000Z"})
    grid = heatmap([new, old])  # the store answers newest first
    assert [c.evaluation_id for c in grid.columns] == [old.id, "new"]
    assert [c.status for c in grid.score_cells] == ["pass", "fail"]
    names = [row.name for row in grid.rows]
    assert names[:4] == ["Response time P95 (s)", "Error rate", "Throughput", "Response time P50 (s)"]
    assert names[-1] == "old_sli"
    error_rate = next(row for row in grid.rows if row.name == "Error rate")
    assert error_rate.key_sli
    assert [cell.status for cell in error_rate.cells] == ["missing", "fail"]
    assert error_rate.cells[1].value == 0.08


def test_the_heatmap_shows_at_most_max_rows_and_says_how_many_are_hidden() -> None:
    many = read_evaluation(finished("pass", 100, [indicator(f"sli{i}", i, "pass") for i in range(25)]))
    grid = heatmap([many], max_rows=20)
    assert len(grid.rows) == 20 and grid.hidden_rows == 5


def test_the_score_chart_maps_scores_to_the_plot_and_skips_invalidated_and_unscored_runs() -> None:
    runs = [read_evaluation(finished("pass", 100, [], when=T0)),
            read_evaluation(finished("fail", 0, [], when=T0 + timedelta(hours=1))),
            read_evaluation(finished("fail", 40, [], when=T0 + timedelta(hours=2)), invalidated=True)]
    chart = score_chart(runs, width=200, height=124)
    # 40 left and 48 right for labels: x runs 40..152; 24 above and below: score 100 at y=24, 0 at y=100.
    assert [(p.x, p.y) for p in chart.points] == [(40.0, 24.0), (152.0, 100.0)]
    assert chart.polyline == "40.0,24.0 152.0,100.0"
    assert chart.pass_y == 100 - 0.9 * 76 and chart.warning_y == 100 - 0.75 * 76
    single = score_chart(runs[:1], width=200, height=124)
    assert single.points[0].x == 96.0, "one point sits in the middle"


def test_the_invalidation_is_an_event_the_api_accepts() -> None:
    body = invalidation_event(read_evaluation(FAILED), "the load generator was broken", "tidegate-bridge")
    assert check_event(body) == []
    assert body["type"] == "sh.keptn.event.evaluation.invalidated"
    assert body["triggeredid"] == "eval-triggered-1" and body["shkeptncontext"] == "ctx-1"
    assert body["data"]["evaluation"] == {"reason": "the load generator was broken"}
