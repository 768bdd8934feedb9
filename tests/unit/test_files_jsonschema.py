"""The checked-in JSON Schemas are what the models generate today (run `tidegate schemas export` after a change)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tidegate.schemas.export import JSON_SCHEMA_DIR, json_schemas, render, write_json_schemas
from tidegate.schemas.files import FileKind


def test_there_is_one_schema_per_file_kind_including_the_four_keptn_specs() -> None:
    assert set(json_schemas()) == {f"{kind.value}.json" for kind in FileKind}
    assert {"shipyard.json", "slo.json", "sli.json", "remediation.json"} <= set(json_schemas())


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_checked_in_schema_equals_a_fresh_export(name: str) -> None:
    checked_in = JSON_SCHEMA_DIR / name
    assert checked_in.exists(), f"{checked_in} is missing: run `tidegate schemas export`"
    assert checked_in.read_text(encoding="utf-8") == render(json_schemas()[name]), (
        f"{checked_in} is out of date: run `tidegate schemas export` and commit the result"
    )


def test_the_shipyard_schema_describes_the_shipyard_structure() -> None:
    schema = json_schemas()["shipyard.json"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["spec"]
    stage = schema["$defs"]["Stage"]
    assert set(stage["properties"]) == {"name", "sequences"}
    assert schema["$defs"]["Task"]["required"] == ["name"]


def test_export_writes_every_schema_into_a_directory(tmp_path: Path) -> None:
    written = write_json_schemas(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(json_schemas())
    assert json.loads((tmp_path / "out" / "sli.json").read_text())["required"] == ["indicators"]
