"""YAML reads a key with nothing under it (`tasks:`) as null; Keptn's Go structs read it as the empty value.

The file models apply these as `mode="before"` field validators, so null and empty mean the same:
    _null_is_empty = field_validator("tasks", mode="before")(null_is_empty_list)

and give absent fields their empty value with `Field(default_factory=empty_list)` (or `empty_mapping`).
These are plain functions rather than the builtins `list` and `dict`: pydantic inspects the signature
of every default factory when it builds a model, and for a builtin `inspect.signature` parses the text
signature with `tokenize`, whose first use compiles tokenize's regular expressions (about 14M
instructions, ~5 ms, of every `tidegate lint`). `tests/unit/test_file_models.py` keeps the builtins out.
"""

from __future__ import annotations

from typing import Any


def null_is_empty_str(value: Any) -> Any:
    return "" if value is None else value


def null_is_empty_list(value: Any) -> Any:
    return [] if value is None else value


def null_is_empty_mapping(value: Any) -> Any:
    return {} if value is None else value


def empty_list() -> list[Any]:
    return []


def empty_mapping() -> dict[str, Any]:
    return {}
