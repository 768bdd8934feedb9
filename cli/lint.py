"""`tidegate lint`: check Keptn configuration files before they are uploaded.

    tidegate lint shipyard.yaml slo.yaml project/ [--kind KIND] [--output text|json]

Directories are searched for *.yaml and *.yml files (hidden directories are skipped). Each file's
kind is detected from its content (or given with --kind). Text output prints `OK path (kind)` for a
usable file, then its warnings, and `path:line: field: message` for each error, with a count on
stderr; exit code 0 when every file is usable, 1 otherwise. Warnings never fail the run. SLO criteria
are also checked against the lighthouse grammar, since a bad one makes every evaluation error.
"""

# No `from __future__ import annotations` here: typer reads the command's signature at every run (see
# cli/evaluate.py).
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import typer

from tidegate.qualitygate import CriteriaError, parse_criteria
from tidegate.schemas.errors import FileError, FileProblem, Severity
from tidegate.schemas.files import FileKind, LoadedFile, load_file

YAML_SUFFIXES = (".yaml", ".yml")


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LintResult(NamedTuple):
    """The verdict on one file (or on a path that yielded no file). A NamedTuple, as
    schemas.files.KindInfo: immutable, and created without the generated methods a frozen dataclass
    compiles at every start on Python 3.11."""

    path: str
    kind: FileKind | None
    problems: list[FileProblem]
    converted_from: str | None = None

    @property
    def valid(self) -> bool:
        return not any(p.severity is Severity.ERROR for p in self.problems)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind.value if self.kind else None,
            "valid": self.valid,
            "problems": [
                {"line": p.line, "column": p.column, "field": p.field, "message": p.message,
                 "severity": p.severity.value}
                for p in self.problems
            ],
        }

    def text_lines(self) -> list[str]:
        lines: list[str] = []
        if self.valid:
            what = self.kind.value if self.kind else "unknown"
            if self.converted_from:
                what += f", converted from {self.converted_from}"
            lines.append(f"OK {self.path} ({what})")
        lines.extend(_problem_line(p) for p in self.problems)
        return lines


def _problem_line(problem: FileProblem) -> str:
    if problem.severity is Severity.ERROR:
        return str(problem)
    place = f"{problem.path}:{problem.line}" if problem.line is not None else problem.path
    return ": ".join(part for part in (place, "warning", problem.field, problem.message) if part)


def lint_paths(paths: Iterable[Path], kind: FileKind | None = None) -> list[LintResult]:
    """Check every file named or found under the given paths, in order."""
    results: list[LintResult] = []
    for path in paths:
        if path.is_dir():
            found = list(_yaml_files(path))
            if not found:
                results.append(LintResult(str(path), None, [FileProblem(
                    str(path), None, None, "", "no .yaml or .yml files in this directory",
                )]))
            results.extend(lint_file(file, kind) for file in found)
        else:
            results.append(lint_file(path, kind))
    return results


def lint_file(path: Path, kind: FileKind | None = None) -> LintResult:
    if kind is None and path.name == "config.yaml" and path.parent.name == "command":
        # The command connector's file: its `actions` would otherwise be read as a job-executor file,
        # whose tasks need an image. The connector reads it with the same model (schemas.commandconfig).
        kind = FileKind.COMMAND
    try:
        loaded: LoadedFile = load_file(path, kind)
    except FileError as error:
        return LintResult(str(path), FileKind(error.kind) if error.kind else kind, error.problems)
    problems = [*slo_criteria_problems(loaded), *loaded.warnings]
    return LintResult(str(path), loaded.kind, sorted(problems, key=lambda p: p.line or 0), loaded.converted_from)


def slo_criteria_problems(loaded: LoadedFile) -> Iterator[FileProblem]:
    """Criteria outside the lighthouse grammar: the file loads, but every evaluation with it errors."""
    if loaded.kind is not FileKind.SLO:
        return
    for o, objective in enumerate(_items(loaded.raw.get("objectives"))):
        for group in ("pass", "warning"):
            for s, criteria_set in enumerate(_items(objective.get(group) if isinstance(objective, dict) else None)):
                criteria = criteria_set.get("criteria") if isinstance(criteria_set, dict) else None
                for c, criterion in enumerate(_items(criteria)):
                    try:
                        parse_criteria(str(criterion))
                    except CriteriaError as error:
                        yield loaded.problem_at(("objectives", o, group, s, "criteria", c), str(error))


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _yaml_files(directory: Path) -> Iterator[Path]:
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(".") or (entry.is_symlink() and entry.is_dir()):
            continue  # hidden folders (.git) and linked folders, which could loop
        if entry.is_dir():
            yield from _yaml_files(entry)
        elif entry.suffix.lower() in YAML_SUFFIXES:
            yield entry


def lint_command(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Files, or directories to search for *.yaml / *.yml.")],
    kind: Annotated[
        FileKind | None,
        typer.Option("--kind", help="Check every file as this kind instead of detecting it."),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", help="text: one line per file and problem; json: a list of results.")
    ] = OutputFormat.TEXT,
) -> None:
    """Check shipyard, SLO, SLI, remediation, load-test, job and webhook files; exit 1 if any is unusable."""
    results = lint_paths(paths, kind)
    if output is OutputFormat.JSON:
        import json  # here: text output, the usual case, does not load it

        typer.echo(json.dumps([result.as_json() for result in results], indent=2))
    else:
        for result in results:
            for line in result.text_lines():
                typer.echo(line)
        invalid = sum(not result.valid for result in results)
        typer.echo(f"{len(results)} checked, {invalid} with errors", err=True)
    raise typer.Exit(0 if all(result.valid for result in results) else 1)
