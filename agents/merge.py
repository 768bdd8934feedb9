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


def merge(earlier: Any, later: Any) -> Any:
    """Merge `later` onto `earlier` and return a new value."""
    if isinstance(earlier, dict) and isinstance(later, dict):
        merged: dict[str, Any] = copy.deepcopy(earlier)
        for name, value in later.items():
            merged[name] = merge(earlier[name], value) if name in earlier else copy.deepcopy(value)
        return merged
    if isinstance(earlier, list) and isinstance(later, list):
        return copy.deepcopy(later) + copy.deepcopy(earlier)
    return copy.deepcopy(later)


def merge_all(base: dict[str, Any], *updates: dict[str, Any]) -> dict[str, Any]:
    """Merge each update onto `base` in order (later updates win)."""
    result: dict[str, Any] = copy.deepcopy(base)
    for update in updates:
        result = merge(result, update)
    return result
