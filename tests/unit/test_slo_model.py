"""The SLO model reads what Keptn users wrote and applies lighthouse's defaults (reference §4.2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tidegate.schemas.slo import SLO

EXAMPLES = Path("/work/shared/keptn-examples")


def _example_slo_paths() -> list[str]:
    index = EXAMPLES / "index.json"
    if not index.exists():
        return []
    return [entry["path"] for entry in json.loads(index.read_text()) if entry["kind"] == "slo"]


def _slo(text: str) -> SLO:
    return SLO.model_validate(yaml.safe_load(text))


def test_all_keptn_example_slo_files_are_listed() -> None:
    if not (EXAMPLES / "index.json").exists():
        pytest.skip("the Keptn example files are not available on this machine")
    assert len(_example_slo_paths()) == 38


@pytest.mark.parametrize("path", _example_slo_paths())
def test_every_keptn_example_slo_is_accepted(path: str) -> None:
    raw: Any = yaml.safe_load((EXAMPLES / path).read_text(encoding="utf-8"))
    slo = SLO.model_validate(raw)
    written = [objective for objective in (raw.get("objectives") or []) if objective is not None]
    assert [o.sli for o in slo.objectives] == [str(o["sli"]) for o in written]
    for objective, source in zip(slo.objectives, written, strict=True):
        assert len(objective.pass_) == len(source.get("pass") or [])
        assert len(objective.warning) == len(source.get("warning") or [])
        assert objective.weight == (source.get("weight") or 1)
    if raw.get("total_score"):
        assert slo.total_score is not None
        assert slo.total_score.pass_ == raw["total_score"]["pass"]
    assert slo.previous_results_needed >= 1


def test_missing_comparison_gets_keptns_whole_default() -> None:
    slo = _slo("objectives: [{sli: rt}]")
    assert slo.comparison.compare_with == "single_result"
    assert slo.comparison.include_result_with_score == "all"
    assert slo.comparison.number_of_comparison_results == 1
    assert slo.comparison.aggregate_function == "avg"
    assert slo.previous_results_needed == 1


def test_empty_comparison_and_objectives_are_accepted_as_missing() -> None:
    slo = _slo("spec_version: '0.1.0'\ncomparison:\nobjectives:\n")
    assert slo.objectives == []
    assert slo.comparison.compare_with == "single_result"
    assert slo.comparison.number_of_comparison_results == 1


def test_present_comparison_fills_only_empty_fields() -> None:
    slo = _slo("comparison: {compare_with: several_results, include_result_with_score: ''}\nobjectives: []")
    assert slo.comparison.include_result_with_score == "all"
    assert slo.comparison.number_of_comparison_results == 3
    assert slo.comparison.aggregate_function == "avg"
    assert slo.previous_results_needed == 3


def test_compare_with_omitted_inside_comparison_fetches_three_results() -> None:
    slo = _slo("comparison: {number_of_comparison_results: 5}\nobjectives: []")
    assert slo.comparison.compare_with == ""
    assert slo.previous_results_needed == 3


@pytest.mark.parametrize(
    ("comparison", "expected"),
    [
        ("{compare_with: single_result, number_of_comparison_results: 7}", 1),
        ("{compare_with: several_results, number_of_comparison_results: 7}", 7),
        ("{compare_with: Several_Results, number_of_comparison_results: 7}", 3),
    ],
)
def test_previous_results_needed_follows_compare_with(comparison: str, expected: int) -> None:
    assert _slo(f"comparison: {comparison}\nobjectives: []").previous_results_needed == expected


def test_weight_zero_or_missing_becomes_one_and_others_are_kept() -> None:
    slo = _slo("objectives: [{sli: a, weight: 0}, {sli: b}, {sli: c, weight: 3}, {sli: d, weight: -1}]")
    assert [o.weight for o in slo.objectives] == [1, 1, 3, -1]


def test_null_objectives_and_null_criteria_sets_are_dropped() -> None:
    slo = _slo("objectives:\n  -\n  - sli: rt\n    pass:\n      -\n      - criteria: ['<1']\n    warning:\n")
    assert [o.sli for o in slo.objectives] == ["rt"]
    assert [s.criteria for s in slo.objectives[0].pass_] == [["<1"]]
    assert slo.objectives[0].warning == []


def test_pass_is_read_from_the_pass_key_and_informational_objectives_are_recognised() -> None:
    slo = _slo("objectives: [{sli: rt, pass: [{criteria: ['<600']}]}, {sli: throughput}]")
    assert slo.objectives[0].pass_[0].criteria == ["<600"]
    assert not slo.objectives[0].is_informational
    assert slo.objectives[1].is_informational
    assert slo.maximum_score == 1.0


def test_unquoted_numbers_are_read_as_their_text() -> None:
    slo = _slo(
        "spec_version: 1.0\nfilter: {id: 4711}\nobjectives: [{sli: rt}]\ntotal_score: {pass: 90, warning: 75}"
    )
    assert slo.spec_version == "1.0"
    assert slo.filter == {"id": "4711"}
    assert slo.total_score is not None
    assert (slo.total_score.pass_, slo.total_score.warning) == ("90", "75")


def test_display_name_is_the_objective_name_when_set() -> None:
    slo = _slo("objectives: [{sli: rt, displayName: Response Time}, {sli: er}]")
    assert [o.name for o in slo.objectives] == ["Response Time", "er"]


def test_indicators_are_the_slis_in_order_without_duplicates() -> None:
    assert _slo("objectives: [{sli: b}, {sli: a}, {sli: b}]").indicators == ["b", "a"]


def test_include_results_is_compared_case_insensitively() -> None:
    assert (
        _slo("comparison: {include_result_with_score: PASS_OR_WARN}\nobjectives: []").include_results
        == "pass_or_warn"
    )


def test_an_empty_file_is_an_slo_without_objectives() -> None:
    assert SLO.model_validate(None).objectives == []


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("objectives: [{displayName: x}]", "sli"),
        ("- sli: rt", "mapping"),
        ("objectives: [{sli: rt, pass: [{criteria: '<600'}]}]", "list of strings"),
        ("objectives: [{sli: rt, weight: heavy}]", "weight"),
        ("comparison: {number_of_comparison_results: -2}\nobjectives: []", "number_of_comparison_results"),
    ],
)
def test_unusable_slo_files_are_rejected_with_the_place_named(text: str, complaint: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _slo(text)
    assert complaint in str(raised.value)
