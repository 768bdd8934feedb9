"""YAML reads a key with nothing under it (`tasks:`) as null; Keptn's Go structs read it as the empty value.

The file models apply these as `mode="before"` field validators, so null and empty mean the same:
    _null_is_empty = field_validator("tasks", mode="before")(null_is_empty_list)
"""

from __future__ import annotations

from typing import Any


def null_is_empty_str(value: Any) -> Any:
    return "" if value is None else value


def null_is_empty_list(value: Any) -> Any:
    return [] if value is None else value


def null_is_empty_mapping(value: Any) -> Any:
    return {} if value is None else value
