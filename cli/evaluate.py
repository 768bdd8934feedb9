"""`tidegate evaluate`: a Keptn-compatible quality gate for CI, with no control plane at all.

    tidegate evaluate --slo slo.yaml --sli values.json [--previous previous.json] [--output json|text]
    tidegate evaluate --replay --project P --stage S --service V --slo NEW_SLO.yaml [--since 30d]  (what-if)

VALUES.json is a list of indicator values as in `get-sli.finished` (`metric`, `value`, `success`,
`message`); PREVIOUS.json a list of earlier `evaluation.finished` data objects, newest first.
Exit code 0 for pass or warning, 1 for fail, 2 for unusable input (unreadable files, an SLO with
no objectives, an invalid criterion or total score); the verdict is still printed when there is one.
Every input file is read within the YAML reader's bounds (schemas.yamlreader): at most MAX_FILE_BYTES,
nested at most MAX_DEPTH levels (the JSON files too); over a bound is unusable input naming the file.
"""

# No `from __future__ import annotations` here: typer reads the command's signature at every run, and
# annotations kept as text are compiled and evaluated one by one then (13 parameters: ~13M instructions).
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from tidegate.cli.options import EndpointOption, TokenOption
from tidegate.qualitygate import (
    EvaluationResult,
    InputError,
    QualityGate,
    explain,
    previous_from_json,
    sli_values_from_json,
)
from tidegate.qualitygate.results import Reason
from tidegate.schemas.errors import FileError, YamlSyntaxError
from tidegate.schemas.outcomes import Status
from tidegate.schemas.slo import SLO
from tidegate.schemas.yamlreader import MAX_DEPTH, MAX_FILE_BYTES, load_yaml

EXIT_GATE_PASSED = 0
EXIT_GATE_FAILED = 1
EXIT_UNUSABLE_INPUT = 2


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class _Unusable(Exception):
    """Input the gate cannot use; the message is shown to the user as is."""


def evaluate_command(
    slo: Annotated[
        Path, typer.Option("--slo", help="The SLO file (slo.yaml) with objectives and total_score.")
    ],
    sli: Annotated[
        Path | None,
        typer.Option("--sli", help="JSON list of indicator values: [{metric, value, success, message}]."),
    ] = None,
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous",
            help="JSON list of earlier evaluation.finished data objects, newest first (for relative criteria).",
        ),
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option("--output", help="text: a readable report; json: the evaluation.finished data."),
    ] = OutputFormat.TEXT,
    replay: Annotated[bool, typer.Option("--replay", help="re-score a service's stored evaluations with --slo "
                                         "and show the verdicts that would change (readside/analytics)")] = False,
    project: Annotated[str | None, typer.Option("--project", help="--replay: the project")] = None,
    stage: Annotated[str | None, typer.Option("--stage", help="--replay: the stage")] = None,
    service: Annotated[str | None, typer.Option("--service", help="--replay: the service")] = None,
    since: Annotated[str, typer.Option("--since", help="--replay: how far back (30d, 2w, 12h)")] = "30d",
    until: Annotated[str | None, typer.Option("--until", help="--replay: end of the window, ISO 8601")] = None,
    store: Annotated[str | None, typer.Option("--store", help="--replay: a history store URL instead of the gateway")] = None,
    endpoint: EndpointOption = None,
    api_token: TokenOption = None,
) -> None:
    """Score SLI values against an SLO as Keptn's lighthouse did; exit 0 pass/warning, 1 fail, 2 unusable input."""
    if replay:
        from tidegate.cli.analytics_cmd import replay_evaluations  # the replay asks the gateway or a store

        raise typer.Exit(replay_evaluations(project=project, stage=stage, service=service, slo=slo, since=since,
                                            until=until, json_output=output is OutputFormat.JSON, store=store,
                                            endpoint=endpoint, api_token=api_token))
    if sli is None:
        typer.echo("error: --sli is required: the JSON file of indicator values to score (or use --replay)", err=True)
        raise typer.Exit(EXIT_UNUSABLE_INPUT)
    try:
        gate = QualityGate(_load_slo(slo))
        values = sli_values_from_json(_load_json(sli, "SLI values"), source=f"SLI values file {str(sli)!r}")
        history = (
            previous_from_json(
                _load_json(previous, "previous evaluations"),
                source=f"previous evaluations file {str(previous)!r}",
            )
            if previous is not None
            else []
        )
    except (_Unusable, InputError) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(EXIT_UNUSABLE_INPUT) from None
    verdict = gate.evaluate(values, history)
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(verdict.to_event_data(), indent=2))
    else:
        typer.echo("\n".join(explain(verdict)))
    raise typer.Exit(exit_code(verdict))


def exit_code(verdict: EvaluationResult) -> int:
    """0 when the gate lets the change through, 1 when it fails it, 2 when the SLO itself is unusable."""
    if verdict.status is Status.ERRORED or verdict.reason in (Reason.INVALID_CRITERIA, Reason.NO_OBJECTIVES):
        return EXIT_UNUSABLE_INPUT
    return EXIT_GATE_PASSED if verdict.passed_gate else EXIT_GATE_FAILED


def _read(path: Path, what: str) -> str:
    """The text of a user's input file, at most MAX_FILE_BYTES (read that far and no further, so a
    FIFO or /dev/zero is refused as well as a large file)."""
    try:
        with path.open("rb") as handle:
            content = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise _Unusable(f"{what} file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise _Unusable(f"{what} file {str(path)!r} is a directory; give the path of a file") from None
    except OSError as error:
        raise _Unusable(f"cannot read {what} file {str(path)!r}: {error}") from None
    if len(content) > MAX_FILE_BYTES:
        raise _Unusable(f"{what} file {str(path)!r} is larger than {MAX_FILE_BYTES} bytes, the most Tidegate reads")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Unusable(f"cannot read {what} file {str(path)!r}: {error}") from None


def _load_slo(path: Path) -> SLO:
    text = _read(path, "SLO")
    try:
        document = load_yaml(text, path)  # the YAML reader of `tidegate lint`: YAML 1.2, bounded
    except FileError as error:
        raise _Unusable(_yaml_problem(path, error)) from None
    try:
        return SLO.model_validate(document)
    except ValidationError as error:
        raise _Unusable(f"SLO file {str(path)!r} is not a valid SLO: {_describe(error)}") from None


def _yaml_problem(path: Path, error: FileError) -> str:
    """`SLO file 'slo.yaml' is not valid YAML at line 3, column 7: ...`, or `... is refused at ...`
    when the YAML reader's size, nesting or alias limit stopped it."""
    what = "is not valid YAML" if isinstance(error, YamlSyntaxError) else "is refused"
    found = []
    for problem in error.problems:
        where = f" at line {problem.line}, column {problem.column}" if problem.line is not None else ""
        found.append(f"{where}: {problem.message.removeprefix('invalid YAML: ')}")
    return f"SLO file {str(path)!r} {what}" + ("; ".join(found) or f": {error}")


def _load_json(path: Path, what: str) -> Any:
    """A JSON input file within the YAML reader's bounds: MAX_FILE_BYTES, nested at most MAX_DEPTH levels."""
    text = _read(path, what)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _Unusable(
            f"{what} file {str(path)!r} is not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:  # nested deeper than the interpreter's stack: far past MAX_DEPTH
        data = None
        depth = MAX_DEPTH + 1
    else:
        depth = _depth(data)
    if depth > MAX_DEPTH:
        raise _Unusable(f"{what} file {str(path)!r} is refused: it nests deeper than {MAX_DEPTH} levels")
    return data


def _depth(data: Any) -> int:
    """Levels of lists and objects in parsed JSON (0 for a scalar), without recursion."""
    deepest, pending = 0, [(data, 1)]
    while pending:
        value, level = pending.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:  # one level past the limit is enough to refuse
            pending.extend((child, level + 1) for child in children)
    return deepest


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]).lstrip(
            "."
        )
        message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
