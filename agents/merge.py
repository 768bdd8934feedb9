"""Payload merge: how the data of finished tasks accumulates into the next task's `.triggered` payload.

Keptn's rules (shipyard-controller `common.Merge`, 0.16+), with one deliberate fix:

- objects merge recursively, key by key;
- arrays: the later items come first, then the earlier ones (`later + earlier`), so
  `deploymentURIsLocal[0]` is always the newest stage's URI, as Keptn does;
- every other value, whatever its type (strings, numbers, booleans, null, or a type mismatch):
  the later value wins. Keptn keeps the *earlier* number or boolean (a gap in a Go type switch),
  so e.g. `get-action.actionIndex` could never advance; Tidegate lets later values win for every type.

Pure: the inputs are never modified, and the result shares no mutable structure with them.
"""

from __future__ import annotations

import copy
from typing import Any


def copy_value(value: Any) -> Any:
    """A deep copy of a JSON-like value: the same result as `copy.deepcopy`, several times faster.

    Plain dicts with string keys, lists and immutable scalars are copied here (payloads are JSON, so
    that is nearly everything); any other value, e.g. a dict subclass, goes to `copy.deepcopy`. Unlike
    `copy.deepcopy`, a sub-value that appears twice becomes two equal copies (JSON cannot share them)."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        out: dict[str, Any] = {}
        for name, item in value.items():
            if type(name) is not str:
                return copy.deepcopy(value)
            out[name] = copy_value(item)
        return out
    if kind is list:
        return [copy_value(item) for item in value]
    return copy.deepcopy(value)


def merge(earlier: Any, later: Any) -> Any:
    """Merge `later` onto `earlier` and return a new value."""
    kind = type(later)
    if kind is str or kind is int or kind is float or kind is bool or later is None:
        # An immutable scalar wins whatever `earlier` is, as below; most payload values are one, so
        # skip the type checks and the call to `copy_value`.
        return later
    if isinstance(earlier, dict) and isinstance(later, dict):
        # Copies each value of `earlier` once (a full copy first would copy the merged ones twice);
        # keys keep the order a copy of `earlier` updated by `later` has.
        out: dict[Any, Any] = {
            name: merge(value, later[name]) if name in later else copy_value(value)
            for name, value in earlier.items()
        }
        for name, value in later.items():
            if name not in earlier:
                out[name] = copy_value(value)
        return out
    if isinstance(earlier, list) and isinstance(later, list):
        return copy_value(later) + copy_value(earlier)
    return copy_value(later)


def merge_all(base: dict[str, Any], *updates: dict[str, Any]) -> dict[str, Any]:
    """Merge each update onto `base` in order (later updates win)."""
    result: dict[str, Any] = copy_value(base)
    for update in updates:
        result = merge(result, update)
    return result
