"""Reading SLI values and earlier evaluations from JSON: Keptn's shapes in, clear errors for anything else."""

from __future__ import annotations

from typing import Any

import pytest

from tidegate.qualitygate import (
    InputError,
    PreviousIndicator,
    SLIValue,
    previous_from_json,
    sli_values_from_json,
)


def test_sli_values_with_keptns_defaults() -> None:
    values = sli_values_from_json(
        [
            {"metric": "rt", "value": 540, "success": True, "message": "", "comparedValue": 500},
            {"metric": "er", "success": False, "message": "query failed"},
        ]
    )
    assert values == [
        SLIValue("rt", 540.0, True, "", 500.0),
        SLIValue("er", 0.0, False, "query failed", 0.0),
    ]


def test_previous_evaluations_keep_order_and_skip_valueless_indicators() -> None:
    previous = previous_from_json(
        [
            {
                "id": "new",
                "result": "warning",
                "invalidated": True,
                "evaluation": {
                    "indicatorResults": [
                        {"value": {"metric": "rt", "value": 510, "success": True}},
                        {"value": None, "status": "fail"},
                        {"value": {"metric": "er", "success": False}},
                    ]
                },
            },
            {"result": "pass"},
        ]
    )
    assert [(p.id, p.result, p.invalidated) for p in previous] == [
        ("new", "warning", True),
        (None, "pass", False),
    ]
    assert previous[0].indicators == (
        PreviousIndicator("rt", 510.0, True),
        PreviousIndicator("er", 0.0, False),
    )
    assert previous[1].indicators == ()
    assert previous_from_json(None) == []


@pytest.mark.parametrize(
    ("items", "complaint"),
    [
        ({"metric": "rt"}, "expected a JSON list of indicator values"),
        (["rt"], "entry 0 is a JSON string"),
        ([{"value": 1}], "entry 0: `metric` is required"),
        ([{"metric": "rt", "value": "540"}], "entry 0 (rt): `value` must be a number, got a JSON string"),
        ([{"metric": "rt", "value": True}], "`value` must be a number, got a JSON boolean"),
        ([{"metric": "rt", "value": 1, "success": "yes"}], "`success` must be true or false"),
    ],
)
def test_unusable_sli_values_are_named(items: Any, complaint: str) -> None:
    with pytest.raises(InputError) as raised:
        sli_values_from_json(items, source="values.json")
    assert str(raised.value).startswith("values.json")
    assert complaint in str(raised.value)


@pytest.mark.parametrize(
    ("items", "complaint"),
    [
        ({"result": "pass"}, "expected a JSON list of evaluation.finished data objects"),
        ([{"evaluation": {}}], "entry 0 has no `result`"),
        ([{"result": "pass", "id": 7}], "`id` must be the event id"),
        ([{"result": "pass", "evaluation": []}], "`evaluation` must be an object"),
        (
            [
                {"result": "pass"},
                {"result": "pass", "evaluation": {"indicatorResults": [{"value": {"value": "x"}}]}},
            ],
            "entry 1: evaluation.indicatorResults[0].value.value must be a number",
        ),
        ([{"result": "pass", "invalidated": "no"}], "`invalidated` must be true or false"),
    ],
)
def test_unusable_previous_evaluations_are_named(items: Any, complaint: str) -> None:
    with pytest.raises(InputError) as raised:
        previous_from_json(items, source="previous.json")
    assert complaint in str(raised.value)
