"""The criteria grammar, with Keptn's own parser test table (evaluate_sli_handler_test.go) and its oddities."""

from __future__ import annotations

import pytest

from tidegate.qualitygate.criteria import (
    INVALID_CRITERIA,
    UNPARSABLE_TARGET,
    CriteriaError,
    CriterionKind,
    parse_criteria,
)

FIXED = CriterionKind.FIXED
PCT = CriterionKind.RELATIVE_PCT
ABS = CriterionKind.RELATIVE_ABS


@pytest.mark.parametrize(
    ("text", "operator", "kind", "value"),
    [
        # Keptn's TestParseCriteriaString table.
        ("<10", "<", FIXED, 10.0),
        ("<=10", "<=", FIXED, 10.0),
        ("=10", "=", FIXED, 10.0),
        (">=10", ">=", FIXED, 10.0),
        (">10", ">", FIXED, 10.0),
        (">-10%", ">", PCT, -10.0),
        ("<=+10.5%", "<=", PCT, 10.5),
        ("<=+10", "<=", ABS, 10.0),
        ("  <=+10   %", "<=", PCT, 10.0),
        ("  <=10%", "<=", PCT, 10.0),
        # More of the grammar.
        ("<=-10", "<=", ABS, -10.0),  # a sign makes it relative: no negative fixed threshold
        ("<= 6 0 0", "<=", FIXED, 600.0),  # all spaces go
        ("<.5", "<", FIXED, 0.5),
        ("<5.", "<", FIXED, 5.0),
        ("<1e3", "<", FIXED, 1000.0),
        ("=0%", "=", PCT, 0.0),
        ("<=+-5", "<=", ABS, -5.0),  # Go's number parser accepts the second sign
    ],
)
def test_valid_criteria(text: str, operator: str, kind: CriterionKind, value: float) -> None:
    criterion = parse_criteria(text)
    assert (criterion.operator, criterion.kind, criterion.value) == (operator, kind, value)
    assert criterion.text == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", INVALID_CRITERIA),
        ("600", INVALID_CRITERIA),
        ("less than 600", INVALID_CRITERIA),
        ("\t<600", INVALID_CRITERIA),  # only spaces are removed
        ("<600\t", UNPARSABLE_TARGET),
        ("<=ten", UNPARSABLE_TARGET),
        ("<=", UNPARSABLE_TARGET),
        ("<=10%%", UNPARSABLE_TARGET),
        ("=>5", UNPARSABLE_TARGET),
        ("<<5", UNPARSABLE_TARGET),
        ("|5", UNPARSABLE_TARGET),
        ("<1_000", UNPARSABLE_TARGET),
        ("<1e400", UNPARSABLE_TARGET),
        ("<600ms", UNPARSABLE_TARGET),
    ],
)
def test_invalid_criteria_carry_keptns_reason_and_a_fix(text: str, reason: str) -> None:
    with pytest.raises(CriteriaError) as raised:
        parse_criteria(text)
    assert raised.value.reason == reason
    assert raised.value.criteria == text
    assert "followed by a number" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "baseline", "target"),
    [
        ("<=+10%", 500.0, 550.0),
        ("<=10%", 500.0, 550.0),
        ("<=-5%", 140.0, 133.0),
        ("<=+50", 140.0, 190.0),
        ("<=-10", 140.0, 130.0),
        (">=-80%", 200.0, 40.0),
        ("<600", 500.0, 600.0),
        ("<=+10%", -200.0, -220.0),
    ],
)
def test_targets(text: str, baseline: float, target: float) -> None:
    assert parse_criteria(text).target(baseline) == target


@pytest.mark.parametrize(
    ("text", "measured", "target", "holds"),
    [
        ("<10", 10.0, 10.0, False),
        ("<=10", 10.0, 10.0, True),
        ("=10", 10.0, 10.0, True),
        (">=10", 10.0, 10.0, True),
        (">10", 10.0, 10.0, False),
        (">9", 10.0, 9.0, True),
    ],
)
def test_operators(text: str, measured: float, target: float, holds: bool) -> None:
    assert parse_criteria(text).holds(measured, target) is holds
