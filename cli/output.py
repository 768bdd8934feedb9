"""Output for people (aligned tables) and for scripts (`--output json`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table: for people; json: for scripts")
]


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    texts = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in texts)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in texts]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def show(data: Any, output: OutputFormat, rows: Sequence[Sequence[Any]], headers: Sequence[str],
         empty: str = "nothing found") -> None:
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(data, indent=2))
    elif rows:
        typer.echo(table(rows, headers))
    else:
        typer.echo(empty)
