"""Choosing earlier evaluations and aggregating their values as Keptn did (reference §4.3, §4.4, §4.6 D)."""

from __future__ import annotations

import pytest

from tidegate.qualitygate.baseline import aggregate, baseline_of, select_previous, successful_values
from tidegate.qualitygate.inputs import PreviousEvaluation, PreviousIndicator


def _previous(
    ident: str, result: str, value: float = 1.0, *, invalidated: bool = False
) -> PreviousEvaluation:
    return PreviousEvaluation(
        id=ident, result=result, indicators=(PreviousIndicator("rt", value, True),), invalidated=invalidated
    )


HISTORY = [
    _previous("e1", "fail"),
    _previous("e2", "warning"),
    _previous("e3", "pass", invalidated=True),
    _previous("e4", "pass"),
    _previous("e5", "warning"),
    _previous("e6", "pass"),
]


@pytest.mark.parametrize(
    ("include", "limit", "expected"),
    [
        ("all", 3, ["e1", "e2", "e4"]),
        ("pass", 3, ["e4", "e6"]),
        ("pass_or_warn", 3, ["e2", "e4", "e5"]),
        ("PASS", 1, ["e4"]),
        ("anything-else", 10, ["e1", "e2", "e4", "e5", "e6"]),
        ("all", 0, []),
    ],
)
def test_selection_filters_on_the_overall_result_skips_invalidated_and_takes_the_newest(
    include: str, limit: int, expected: list[str]
) -> None:
    assert [e.id for e in select_previous(HISTORY, include, limit)] == expected


def test_only_successful_values_are_collected_per_metric_in_order() -> None:
    first = PreviousEvaluation(
        "a", "pass", (PreviousIndicator("rt", 100, True), PreviousIndicator("er", 1, False))
    )
    second = PreviousEvaluation(
        "b", "pass", (PreviousIndicator("rt", 0, False), PreviousIndicator("rt", 120, True))
    )
    assert successful_values([first, second]) == {"rt": [100, 120]}


def test_keptns_percentile_table() -> None:
    # TestCalculatePercentile in lighthouse-service.
    values = [float(v) for v in range(11)]
    assert aggregate(values, "p50") == 5.0
    assert aggregate(values, "p90") == 9.8
    assert aggregate(values, "p95") == 10.0


def test_worked_example_d_aggregates() -> None:
    values = [200.0, 100.0, 140.0, 120.0]
    assert aggregate(values, "avg") == 140.0
    assert aggregate(values, "p50") == 130.0  # position 2.5: between 120 and 140
    assert aggregate(values, "p90") == 200.0  # position 4.5 >= 4: the maximum
    assert aggregate(values, "p95") == 200.0


def test_single_value_and_negative_values() -> None:
    assert aggregate([7.0], "p90") == 7.0
    assert aggregate([7.0], "p50") == 7.0
    assert aggregate([-10.0, -20.0], "avg") == -15.0
    assert aggregate([-10.0, -20.0, -30.0], "p50") == -20.0


def test_unknown_aggregate_function_gives_zero_like_keptn() -> None:
    assert aggregate([100.0, 200.0], "p99") == 0.0
    assert aggregate([100.0], "AVG") == 0.0


def test_no_successful_value_means_no_baseline() -> None:
    assert baseline_of(None, "avg") is None
    assert baseline_of([], "avg") is None
    baseline = baseline_of([1.0, 3.0], "avg")
    assert baseline is not None
    assert (baseline.value, baseline.values, baseline.known_function) == (2.0, (1.0, 3.0), True)
