"""JSON Schemas of the configuration files, generated from the models (for editors and other tools).

`tidegate schemas export [DIR]` writes them; the checked-in copies in `schemas/jsonschema/` must equal
a fresh export (a unit test says so), so regenerate them whenever a model changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tidegate.schemas.files import KINDS

JSON_SCHEMA_DIR = Path(__file__).parent / "jsonschema"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, one per file kind (`shipyard.json`, `slo.json`, ...)."""
    schemas: dict[str, dict[str, Any]] = {}
    for kind, info in KINDS.items():
        schema: dict[str, Any] = {"$schema": _DIALECT, **info.model.model_json_schema()}
        schema.setdefault("description", info.description)
        schemas[f"{kind.value}.json"] = schema
    return schemas


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_json_schemas(directory: Path = JSON_SCHEMA_DIR) -> list[Path]:
    """Write every schema into `directory` (created if needed); returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, schema in json_schemas().items():
        target = directory / name
        target.write_text(render(schema), encoding="utf-8")
        written.append(target)
    return written
