"""`tidegate schemas export [DIR]`: write the JSON Schemas of the configuration files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tidegate.schemas.export import JSON_SCHEMA_DIR, write_json_schemas

schemas_app = typer.Typer(help="JSON Schemas of shipyard, SLO, SLI, remediation and the other Keptn files.")


@schemas_app.command("export")
def export_command(
    directory: Annotated[
        Path, typer.Argument(help="Where to write <kind>.json (default: the package's schemas/jsonschema).")
    ] = JSON_SCHEMA_DIR,
) -> None:
    """Write one JSON Schema per file kind, generated from the models."""
    for path in write_json_schemas(directory):
        typer.echo(str(path))
