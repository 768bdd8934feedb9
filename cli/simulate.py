"""`tidegate simulate`: run a shipyard with no Kafka, to see what happens before it happens.

    tidegate simulate --shipyard shipyard.yaml [--respond TASK=RESULT[@STAGE]]... \\
        [--approve auto|approve|decline|hold] TRIGGERS.jsonl

The sequencer and approver cores run in memory (agents.sequencer.Driver) and the connectors are
played: each task `.triggered` is answered with `.started` then `.finished` carrying RESULT
(pass by default; warning, fail, errored; silent = never answer; hang = `.started` only). Approvals go to the approver
core; the ones it leaves to a human are answered per `--approve` (auto: approve pass/warning,
decline the rest; hold: nobody answers). Time is virtual: when nothing is left to do the clock
jumps to the next timer, so `triggeredAfter` delays and timeouts take no real time.

TRIGGERS.jsonl holds one CloudEvent per line, usually `sh.keptn.event.<stage>.<sequence>.triggered`
(a `sh.tidegate.sequence.control` line pauses, resumes or aborts a run at its `time`). Missing ids,
keptnContexts and times are filled in deterministically, so the same input gives the same output.

Output (stdout, JSON lines): every event published, in order (`id, type, time, shkeptncontext,
triggeredid, key, data`, plus `topic` and `source`), then one line `{"summary": [...]}` with each
sequence's final state. Exit code 0 when the run settled, 1 when it did not within --max-events,
2 for unusable input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from tidegate.agents.sequencer import (
    ApprovalPolicy,
    Driver,
    Responders,
    RespondRule,
    RuleError,
    SequencerConfig,
    SimulationLimitError,
)
from tidegate.agents.sequencer.driver import EPOCH
from tidegate.schemas.durations import parse_duration
from tidegate.schemas.errors import DurationError, FileError, TidegateError
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.files import load_file
from tidegate.schemas.ids import derived_id
from tidegate.schemas.shipyard import Shipyard

EXIT_SETTLED = 0
EXIT_DID_NOT_SETTLE = 1
EXIT_UNUSABLE_INPUT = 2
INPUT_SOURCE = "tidegate-simulate/input"
_ID_SEED = "tidegate-simulate"


class TriggerFileError(TidegateError, ValueError):
    """A line of the triggers file that cannot be used; the message names the line."""


@dataclass(frozen=True, slots=True)
class Trigger:
    event: KeptnEvent
    at: datetime


def load_triggers(lines: list[str], where: str) -> list[Trigger]:
    """Read JSON lines into events, filling in missing ids, keptnContexts and times.

    A line without `time` happens with the line before it (the first one at the earliest time given in
    the file, or 2025-01-01T00:00:00Z). Filled-in ids and contexts derive from the line number.
    """
    parsed: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as error:
            raise TriggerFileError(f"{where}:{number}: not JSON ({error.msg} at column {error.colno})") from None
        if not isinstance(raw, dict):
            raise TriggerFileError(f"{where}:{number}: expected a JSON object (a CloudEvent), found {type(raw).__name__}")
        if not raw.get("type"):
            raise TriggerFileError(f"{where}:{number}: the event has no type, e.g. "
                                   '"type": "sh.keptn.event.dev.delivery.triggered"')
        parsed.append((number, raw))
    events: list[KeptnEvent] = []
    for number, raw in parsed:
        raw.setdefault("id", derived_id(_ID_SEED, f"{where}:{number}:id"))
        raw.setdefault("shkeptncontext", derived_id(_ID_SEED, f"{where}:{number}:context"))
        raw.setdefault("source", INPUT_SOURCE)
        try:
            events.append(KeptnEvent.model_validate(raw))
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in error.errors())
            raise TriggerFileError(f"{where}:{number}: not a usable CloudEvent: {problems}") from None
    given = [event.time for (_, raw), event in zip(parsed, events, strict=True) if raw.get("time")]
    moment = min(given, default=EPOCH)
    triggers: list[Trigger] = []
    for (_, raw), event in zip(parsed, events, strict=True):
        if raw.get("time"):
            moment = event.time
        else:
            event = event.model_copy(update={"time": moment})
        triggers.append(Trigger(event, moment))
    return triggers


def load_shipyard(path: Path) -> Shipyard:
    """The shipyard file, validated (Keptn 0.7 files are converted); warnings go to stderr."""
    loaded = load_file(path, kind="shipyard")
    for warning in loaded.warnings:
        typer.echo(f"warning: {warning}", err=True)
    return loaded.expect(Shipyard)


def simulate_command(
    triggers: Annotated[Path, typer.Argument(
        metavar="TRIGGERS.jsonl",
        help="CloudEvents, one per line (usually <stage>.<sequence>.triggered); missing ids and times are filled in.",
    )],
    shipyard: Annotated[Path, typer.Option("--shipyard", help="The project's shipyard.yaml.")],
    respond: Annotated[list[str] | None, typer.Option(
        "--respond", metavar="TASK=RESULT[@STAGE]",
        help="How the played connector answers TASK (in STAGE only, if given): pass (default), warning, fail, "
             "errored, silent (never answers) or hang (.started, never .finished). Repeatable; a "
             "stage-specific rule beats a general one.",
    )] = None,
    approve: Annotated[ApprovalPolicy, typer.Option(
        "--approve",
        help="Approvals the approver leaves to a human (manual, or pass/warning property missing, which "
             "Keptn treats as manual): auto = approve pass/warning and decline the rest, approve, decline, "
             "or hold (nobody answers).",
    )] = ApprovalPolicy.AUTO,
    started_timeout: Annotated[str, typer.Option(
        "--started-timeout", help="How long a task may go without a .started before its sequence times out.",
    )] = "10m",
    max_events: Annotated[int, typer.Option(
        "--max-events", min=1, help="Stop if the run has not settled after this many events (catches loops).",
    )] = 10_000,
) -> None:
    """Run a shipyard's sequences in memory with played connectors and virtual time; print every event."""
    try:
        model = load_shipyard(shipyard)
        rules = tuple(RespondRule.parse(text) for text in respond or [])
        timeout = parse_duration(started_timeout)
        lines = _read_lines(triggers)
        inputs = load_triggers(lines, str(triggers))
    except (FileError, RuleError, DurationError, TriggerFileError) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(EXIT_UNUSABLE_INPUT) from None
    if not inputs:
        typer.echo(f"error: {triggers} has no events; write one CloudEvent per line", err=True)
        raise typer.Exit(EXIT_UNUSABLE_INPUT)

    config = SequencerConfig(shipyard_for=lambda _project: model, started_timeout=timeout)
    driver = Driver(config, responders=Responders(rules), approval=approve,
                    start=min(t.at for t in inputs), max_events=max_events)
    for trigger in inputs:
        driver.publish(trigger.event, at=trigger.at)
    exit_code = EXIT_SETTLED
    try:
        driver.run()
    except SimulationLimitError as problem:
        typer.echo(f"error: {problem}", err=True)
        exit_code = EXIT_DID_NOT_SETTLE
    for published in driver.published:
        typer.echo(json.dumps(published.to_json_dict(), ensure_ascii=False))
    typer.echo(json.dumps({"summary": [s.to_json_dict() for s in driver.summary()]}, ensure_ascii=False))
    if driver.ignored_counts.get("invalid"):
        for event, ignored in driver.ignored:
            if ignored.dead_letter:
                typer.echo(f"warning: event {event.id} would go to the DLQ: {ignored.detail}", err=True)
    raise typer.Exit(exit_code)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise TriggerFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TriggerFileError(f"{path}: cannot read the file ({error})") from None
