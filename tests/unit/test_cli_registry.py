"""The `tidegate` command table (cli/main.py COMMANDS): every entry resolves, the help it lists is the
command's own, and the quick commands do not import the server side (FastAPI, SQLAlchemy, Kafka clients)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer
from click.testing import CliRunner
from typer.testing import CliRunner as TyperCliRunner

from tidegate.cli.main import COMMANDS, LazyGroup, app, load_command

REPO = Path(__file__).resolve().parents[2]
SERVER_SIDE = ("fastapi", "sqlalchemy", "aiokafka", "faust", "confluent_kafka")

# Runs `tidegate ARGS...` in this fresh interpreter, then writes which server-side modules it imported.
PROBE = """
import importlib, json, sys
from tidegate.cli.main import main
out, preload, args, watched = sys.argv[1], sys.argv[2], sys.argv[3:], {watched!r}
if preload:
    importlib.import_module(preload)
sys.argv = ["tidegate", *args]
try:
    main()
except SystemExit:
    pass
with open(out, "w") as handle:
    json.dump(sorted(name for name in sys.modules if name.split(".")[0] in watched), handle)
"""


def imported_by(args: list[str], tmp_path: Path, preload: str = "", watched: tuple[str, ...] = SERVER_SIDE) -> list[str]:
    out = tmp_path / "modules.json"
    completed = subprocess.run(
        [sys.executable, "-c", PROBE.format(watched=watched), str(out), preload, *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.exists(), completed.stderr
    modules: list[str] = json.loads(out.read_text())
    return modules


@pytest.mark.parametrize("args", [["--help"], ["lint", "examples/sockshop"]], ids=["help", "lint"])
def test_quick_commands_do_not_import_the_server_side(args: list[str], tmp_path: Path) -> None:
    assert imported_by(args, tmp_path) == []


def test_evaluate_reads_the_slo_without_building_the_other_file_models(tmp_path: Path) -> None:
    # The SLO goes through the one YAML reader (schemas.yamlreader), not schemas.files, which would
    # build every file model on start.
    values = tmp_path / "values.json"
    values.write_text("[]")
    args = ["evaluate", "--slo", str(REPO / "examples" / "sockshop" / "slo.yaml"), "--sli", str(values)]
    modules = set(imported_by(args, tmp_path, watched=("tidegate", *SERVER_SIDE)))
    assert {"tidegate.schemas.yamlreader", "tidegate.schemas.slo", "tidegate.qualitygate.engine"} <= modules
    assert not {"tidegate.schemas.files", "tidegate.schemas.shipyard", "tidegate.schemas.webhook"} & modules
    # Result and Status come from schemas.outcomes: the event models are not built either.
    assert "tidegate.schemas.outcomes" in modules and "tidegate.schemas.events" not in modules
    assert not {name for name in modules if name.split(".")[0] in SERVER_SIDE}


def test_the_probe_reports_what_was_imported(tmp_path: Path) -> None:
    # The same run with FastAPI imported first must be reported, or the test above proves nothing.
    assert "fastapi" in imported_by(["--help"], tmp_path, preload="fastapi")


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_entry_resolves_to_a_command_of_that_name_with_the_listed_help(name: str) -> None:
    command = load_command(name, COMMANDS[name])
    assert command.name == name
    own = (command.short_help or command.help or "").split("\n\n")[0]
    assert " ".join(own.split()) == COMMANDS[name].help


def test_the_help_listed_from_the_table_is_the_help_of_the_loaded_commands() -> None:
    lazy, loaded = typer.main.get_command(app), typer.main.get_command(app)
    assert isinstance(lazy, LazyGroup) and isinstance(loaded, LazyGroup)
    with click.Context(loaded) as context:
        for name in COMMANDS:  # load every command, so that this listing comes from the commands themselves
            assert loaded.get_command(context, name) is not None
    assert not lazy.commands and set(loaded.commands) == set(COMMANDS)
    from_table = CliRunner().invoke(lazy, ["--help"], terminal_width=100)
    from_commands = CliRunner().invoke(loaded, ["--help"], terminal_width=100)
    assert from_table.exit_code == from_commands.exit_code == 0
    assert from_table.output == from_commands.output
    for name in COMMANDS:
        assert f" {name} " in from_table.output
    assert not lazy.commands  # listing them loaded none


def test_a_mistyped_command_suggests_the_right_one_without_loading_it() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    with click.Context(group) as context, pytest.raises(click.UsageError) as raised:
        group.resolve_command(context, ["lnt"])
    assert raised.value.message == "No such command 'lnt'. Did you mean 'lint'?"
    assert not group.commands


def test_a_mistyped_command_suggests_the_right_one_when_run() -> None:
    # As a user meets it: typer runs the group on its own copy of Click, whose UsageError is not
    # `click.UsageError`; the suggestion from the whole table must still reach the message.
    result = TyperCliRunner().invoke(app, ["lnt"])
    assert result.exit_code == 2
    assert "No such command 'lnt'. Did you mean 'lint'?" in " ".join(result.output.replace("│", " ").split())


def test_nested_groups_and_their_commands_are_reachable() -> None:
    for args in (["get", "metrics", "--help"], ["configure", "monitoring", "prometheus", "--help"],
                 ["pause", "sequence", "--help"], ["send", "event", "--help"], ["schemas", "export", "--help"]):
        result = CliRunner().invoke(typer.main.get_command(app), args)
        assert result.exit_code == 0, (args, result.output)
        assert "Usage: tidegate " + " ".join(args[:-1]) in " ".join(result.output.split())


def test_an_entry_of_the_table_cannot_be_changed_in_place() -> None:
    entry = COMMANDS["lint"]
    with pytest.raises(AttributeError):
        entry.target = "tidegate.cli.evaluate:evaluate_command"  # type: ignore[misc]
    assert (entry.target, entry.help.split(";")[0]) == (
        "tidegate.cli.lint:lint_command", "Check shipyard, SLO, SLI, remediation, load-test, job and webhook files")


# Runs the real entry point, with an atexit handler that records whether the cyclic collector was on.
EXIT_PROBE = """
import atexit, gc, sys
from pathlib import Path
from tidegate.cli.main import main
marker = Path(sys.argv[1])
atexit.register(lambda: marker.write_text(f"atexit ran; collector on: {gc.isenabled()}"))
sys.argv = ["tidegate", *sys.argv[2:]]
main()
"""


def test_the_entry_point_ends_as_the_command_ends(tmp_path: Path) -> None:
    # main() freezes the process's objects once the command is done (no collection of them at exit):
    # the exit code, every line of output (stdout is a pipe here, so block-buffered until the exit
    # flushes it) and atexit handlers are as before, and the collector was never turned off.
    good, bad = tmp_path / "slo.yaml", tmp_path / "shipyard.yaml"
    good.write_text("objectives:\n  - sli: response_time_p95\n    pass:\n      - criteria: [\"<600\"]\n")
    bad.write_text("apiVersion: spec.keptn.sh/0.2.2\nkind: Shipyard\nspec:\n  stages: []\n")
    marker = tmp_path / "marker"
    completed = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE, str(marker), "lint", str(good), str(bad)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert completed.stdout.splitlines() == [
        f"OK {good} (slo)",
        f"{bad}:4: spec.stages: a shipyard needs at least one stage",
    ]
    assert completed.stderr.splitlines()[-1] == "2 checked, 1 with errors"
    assert marker.read_text() == "atexit ran; collector on: True"
