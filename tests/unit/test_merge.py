"""Payload merge: later values win for every type, arrays are later-then-earlier, inputs untouched."""

from __future__ import annotations

import copy

import pytest

from tidegate.agents.merge import merge, merge_all


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("direct", "blue_green_service"),
        (1, 2),  # Keptn kept the earlier number (QUIRK): Tidegate lets the later one win
        (True, False),
        (False, True),
        (1.5, 0),
        ("text", 3),  # type mismatch
        ({"a": 1}, "flat"),
        ("flat", {"a": 1}),
        ("value", None),
    ],
)
def test_later_scalar_wins_for_every_type(earlier: object, later: object) -> None:
    assert merge({"x": earlier}, {"x": later}) == {"x": later}


def test_action_index_advances_across_loop_iterations() -> None:
    # The remediation loop returns actionIndex N+1; Keptn's number quirk kept N forever.
    assert merge({"get-action": {"actionIndex": 0}}, {"get-action": {"actionIndex": 1}}) == {
        "get-action": {"actionIndex": 1}
    }


def test_arrays_put_later_items_first() -> None:
    earlier = {"deployment": {"deploymentURIsLocal": ["http://carts.sockshop-dev:80"]}}
    later = {"deployment": {"deploymentURIsLocal": ["http://carts.sockshop-staging:80"]}}
    assert merge(earlier, later) == {
        "deployment": {"deploymentURIsLocal": ["http://carts.sockshop-staging:80", "http://carts.sockshop-dev:80"]}
    }


def test_objects_merge_recursively_keeping_keys_only_one_side_has() -> None:
    earlier = {"labels": {"buildId": "17"}, "deployment": {"deploymentstrategy": "direct", "names": ["direct"]}}
    later = {"labels": {"owner": "team-a"}, "deployment": {"deploymentstrategy": "user_managed"}, "test": {"x": 1}}
    assert merge(earlier, later) == {
        "labels": {"buildId": "17", "owner": "team-a"},
        "deployment": {"deploymentstrategy": "user_managed", "names": ["direct"]},
        "test": {"x": 1},
    }


def test_inputs_are_not_modified_and_not_shared() -> None:
    earlier = {"a": {"list": [1]}, "keep": {"deep": [1, 2]}}
    later = {"a": {"list": [2]}, "new": {"deep": [3]}}
    before = copy.deepcopy((earlier, later))
    merged = merge(earlier, later)
    merged["keep"]["deep"].append(99)
    merged["new"]["deep"].append(99)
    merged["a"]["list"].append(99)
    assert (earlier, later) == before


def test_merge_all_applies_updates_in_order() -> None:
    assert merge_all({"result": "pass", "n": 1}, {"result": "warning"}, {"n": 2}, {"result": "fail"}) == {
        "result": "fail",
        "n": 2,
    }
