"""`tidegate lint` end to end: output, exit codes and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

from typer.testing import CliRunner

from tidegate.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
SOCKSHOP = ROOT / "examples" / "sockshop"

BROKEN_SHIPYARD = dedent("""\
    apiVersion: spec.keptn.sh/0.2.2
    kind: Shipyard
    metadata:
      name: sockshop
    spec:
      stages:
        - name: dev
          sequences:
            - name: delivery
              tasks:
                - name: deployment
        - name: prod.eu
          sequences:
            - name: delivery
              triggeredOn:
                - event: dev.delivery.finished
              tasks:
                - name: deployment
    """)
REPO = Path(__file__).resolve().parents[2]
SLI = "spec_version: '1.0'\nindicators:\n  throughput: sum(rate(http_requests_total[1m]))\n"


def lint(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["lint", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_valid_files_print_ok_with_their_kind_and_exit_0(tmp_path: Path) -> None:
    (tmp_path / "sli.yaml").write_text(SLI)
    code, out, err = lint(tmp_path / "sli.yaml")
    assert code == 0
    assert out.splitlines() == [f"OK {tmp_path / 'sli.yaml'} (sli)"]
    assert err.strip() == "1 checked, 0 with errors"


def test_a_broken_shipyard_prints_file_line_field_message_and_exits_1(tmp_path: Path) -> None:
    shipyard = tmp_path / "shipyard.yaml"
    shipyard.write_text(BROKEN_SHIPYARD)
    code, out, _ = lint(shipyard)
    assert code == 1
    assert out.splitlines() == [
        f"{shipyard}:12: spec.stages[1].name: stage 'prod.eu': dots are not allowed in stage names"
    ]


def test_the_command_connectors_file_is_checked_as_one_with_lines(tmp_path: Path) -> None:
    # command/config.yaml has `actions` like a job-executor file, whose tasks need an image: lint must read
    # it with the command connector's model, and say where a broken one is wrong.
    folder = tmp_path / "command"
    folder.mkdir()
    config = folder / "config.yaml"
    config.write_text((REPO / "examples" / "sockshop" / "command" / "config.yaml").read_text())
    code, out, _ = lint(config)
    assert code == 0, out
    assert out.splitlines() == [f"OK {config} (command)"]
    config.write_text("actions:\n  - name: x\n    events: [{name: sh.keptn.event.test.triggered}]\n"
                      "    tasks:\n      - name: t\n        cmd: [run]\n        workingDir: /etc\n")
    code, out, _ = lint(config, "--output", "json")
    assert code == 1
    [result] = json.loads(out)
    assert result["kind"] == "command" and not result["valid"]
    assert [(p["line"], p["field"]) for p in result["problems"]] == [(7, "actions[0].tasks[0].workingDir")]


def test_directories_are_searched_and_one_bad_file_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "prometheus" / "sli.yml").write_text(SLI)
    (tmp_path / "shipyard.yaml").write_text(BROKEN_SHIPYARD)
    (tmp_path / "notes.txt").write_text("not yaml")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.yaml").write_text("x: [")
    code, out, err = lint(tmp_path)
    assert code == 1
    assert out.splitlines() == [
        f"OK {tmp_path / 'prometheus' / 'sli.yml'} (sli)",
        f"{tmp_path / 'shipyard.yaml'}:12: spec.stages[1].name: stage 'prod.eu': dots are not allowed in stage names",
    ]
    assert err.strip() == "2 checked, 1 with errors"


def test_warnings_are_printed_but_do_not_fail(tmp_path: Path) -> None:
    shipyard = tmp_path / "shipyard.yaml"
    shipyard.write_text(BROKEN_SHIPYARD.replace("prod.eu", "prod").replace("dev.delivery", "qa.delivery"))
    code, out, _ = lint(shipyard)
    assert code == 0
    assert out.splitlines() == [
        f"OK {shipyard} (shipyard)",
        f"{shipyard}:16: warning: spec.stages[1].sequences[0].triggeredOn[0].event: trigger 'qa.delivery.finished' "
        "waits for stage 'qa', which this shipyard does not define, so it never fires",
    ]


def test_converted_legacy_files_say_so(tmp_path: Path) -> None:
    legacy = tmp_path / "shipyard.yaml"
    legacy.write_text('stages:\n  - name: "dev"\n    deployment_strategy: "direct"\n')
    code, out, _ = lint(legacy)
    assert code == 0
    assert out.splitlines() == [f"OK {legacy} (shipyard, converted from Keptn 0.7 shipyard)"]


def test_json_output_lists_every_file_with_its_problems(tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_text(BROKEN_SHIPYARD)
    (tmp_path / "sli.yaml").write_text(SLI)
    code, out, _ = lint(tmp_path, "--output", "json")
    assert code == 1
    assert json.loads(out) == [
        {
            "path": str(tmp_path / "shipyard.yaml"),
            "kind": "shipyard",
            "valid": False,
            "problems": [{
                "line": 12, "column": 13, "field": "spec.stages[1].name",
                "message": "stage 'prod.eu': dots are not allowed in stage names", "severity": "error",
            }],
        },
        {"path": str(tmp_path / "sli.yaml"), "kind": "sli", "valid": True, "problems": []},
    ]


def test_kind_overrides_detection(tmp_path: Path) -> None:
    odd = tmp_path / "queries.yaml"
    odd.write_text("spec_version: '1.0'\n")
    code, out, _ = lint(odd)
    assert code == 1 and "cannot tell which kind of Keptn file this is" in out
    code, out, _ = lint(odd, "--kind", "sli")
    assert code == 1
    assert out.splitlines() == [f"{odd}:1: indicators: missing required field"]
    code, _, err = lint(odd, "--kind", "helm")
    assert code == 2 and "helm" in err


def test_missing_paths_empty_directories_and_syntax_errors_are_reported(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "slo.yaml").write_text("objectives:\n  - sli: a\n   pass: x\n")
    code, out, _ = lint(tmp_path / "nope.yaml", tmp_path / "empty", tmp_path / "slo.yaml")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"{tmp_path / 'nope.yaml'}: no such file"
    assert lines[1] == f"{tmp_path / 'empty'}: no .yaml or .yml files in this directory"
    assert lines[2].startswith(f"{tmp_path / 'slo.yaml'}:3: invalid YAML: ")


def test_slo_criteria_outside_the_grammar_are_errors_with_their_line(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("objectives:\n  - sli: rt\n    pass:\n      - criteria:\n          - '<=+10%'\n          - '<= ten'\n")
    code, out, _ = lint(slo)
    assert code == 1
    [line] = out.splitlines()
    assert line.startswith(f"{slo}:6: objectives[0].pass[0].criteria[1]: criterion '<= ten' is not valid")


def test_the_sockshop_example_passes_lint_without_warnings() -> None:
    code, out, _ = lint(SOCKSHOP)
    assert code == 0
    assert all(line.startswith("OK ") for line in out.splitlines())
    assert len(out.splitlines()) == len(list(SOCKSHOP.rglob("*.yaml")))


def test_the_installed_command_runs_lint_and_schema_export(tmp_path: Path) -> None:
    (tmp_path / "sli.yaml").write_text(SLI)
    tidegate = Path(sys.executable).with_name("tidegate")
    linted = subprocess.run([str(tidegate), "lint", str(tmp_path / "sli.yaml")], capture_output=True, text=True, check=False)
    assert (linted.returncode, linted.stdout.strip()) == (0, f"OK {tmp_path / 'sli.yaml'} (sli)")
    exported = subprocess.run([str(tidegate), "schemas", "export", str(tmp_path / "schemas")],
                              capture_output=True, text=True, check=False)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "schemas" / "shipyard.json").is_file()
